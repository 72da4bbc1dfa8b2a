"""Upload bodies, numbered: the deterministic stream an upload sends and a checkpoint names.

``plan_bodies`` runs the same read -> map -> check stages as ``convert`` (``map_items`` over
``read_items``) and groups the records with the one batcher (``io.writers.batches``): at most
1000 records a body, device tokens in bodies of their own of at most 100 (spec s0). Each body
keeps the input position of every record (for rejections CleverTap sends back) and the
read/map/check rejections met since the previous body, so that they are written once, when
that body is acknowledged, and never again on a resumed run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import ConfigError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.io.readers import STDIN, read_items
from clevertap_mapper.io.writers import MAX_BATCH_RECORDS, MAX_TOKEN_BATCH_RECORDS, batches
from clevertap_mapper.pipeline import Mapped, Summary, map_items

Record = dict[str, Any]


@dataclass(slots=True)
class Body:
    """Upload body number ``seq`` (0-based): its records, where each came from, and the
    rejections of the input read since the previous body."""

    seq: int
    records: list[Record]
    positions: list[Position]
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def is_token(self) -> bool:
        return bool(self.records) and self.records[0].get("type") == "token"


def _is_event(record: Record) -> bool:
    return record.get("type") == "event"


def _not_event(record: Record) -> bool:
    return record.get("type") != "event"


def check_passes(inputs: list[str], profiles_first: bool) -> None:
    """Refuse ``profiles_first`` on stdin: it must be read twice (ConfigError)."""
    if profiles_first and STDIN in inputs:
        raise ConfigError("--profiles-first reads the inputs twice, which stdin ('-') cannot "
                          "be; upload from a file, or drop --profiles-first")


def plan_bodies(inputs: list[str], config: MapperConfig, summary: Summary, *,
                checker: Checker | None = None, profiles_first: bool = False,
                max_records: int = MAX_BATCH_RECORDS,
                max_tokens: int = MAX_TOKEN_BATCH_RECORDS) -> Iterator[Body]:
    """The numbered upload bodies of ``inputs``, counting what is read into ``summary``.

    ``profiles_first``: CleverTap's advice for history (spec s1.10) is profiles before events;
    the inputs are then read twice, streaming: profiles and tokens first, events second
    (the second pass counts nothing and repeats no rejection).

    Rejections met after the last body come in a final body with no records.
    """
    check_passes(inputs, profiles_first)
    passes: list[Callable[[Record], bool] | None] = (
        [_not_event, _is_event] if profiles_first else [None])
    carried: list[Rejection] = []
    seq = 0
    for number, keep in enumerate(passes):
        first = number == 0
        counts = summary if first else Summary()
        results = map_items(read_items(inputs, js_numbers=config.compat is not None), config,
                            counts, checker)
        positions: dict[int, Position] = {}  # id(record) -> position, while in the batcher
        records = _records(results, summary if first else None, keep, positions, carried)
        for group in batches(records, max_records, max_tokens):
            body = Body(seq, group, [positions.pop(id(r)) for r in group], carried[:])
            carried.clear()
            yield body
            seq += 1
    if carried:
        yield Body(seq, [], [], carried[:])


def _records(results: Iterator[Mapped | Rejection], summary: Summary | None,
             keep: Callable[[Record], bool] | None, positions: dict[int, Position],
             rejections: list[Rejection]) -> Iterator[Record]:
    """The records of ``results`` that ``keep`` selects, noting their positions; rejections
    (counted only on the first pass) go to ``rejections``."""
    for result in results:
        if type(result) is Mapped:
            for record in result.records:
                if summary is not None:
                    summary.records[str(record.get("type"))] += 1
                if keep is None or keep(record):
                    positions[id(record)] = result.pos
                    yield record
        elif summary is not None and isinstance(result, Rejection):
            summary.rejected[result.code] += 1
            rejections.append(result.compact())
