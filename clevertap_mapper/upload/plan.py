"""Upload bodies, numbered: the deterministic stream an upload sends and a checkpoint names.

``plan_bodies`` runs the same read -> map -> check loop as ``convert``
(``ChunkConverter.into``) and groups the records with the one batching rule
(``io.writers.Batcher``): at most 1000 records a body, device tokens in bodies of their own
of at most 100 (spec s0). Each body
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
from clevertap_mapper.errors import ConfigError, DamagedInputError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.io.readers import STDIN, expand_inputs, read_blocks, source_name
from clevertap_mapper.io.writers import MAX_BATCH_RECORDS, MAX_TOKEN_BATCH_RECORDS, Batcher
from clevertap_mapper.jsonutil import dumps, trimmed
from clevertap_mapper.stage import ChunkConverter, Sink, Stage, Summary

Record = dict[str, Any]


@dataclass(slots=True)
class Body:
    """Upload body number ``seq`` (0-based): its records, encoded as they are sent, where
    each came from, and the rejections of the input read since the previous body."""

    seq: int
    records: list[bytes]
    positions: list[Position]
    rejections: list[Rejection] = field(default_factory=list)
    is_token: bool = False


class Stopped(Exception):
    """``plan_bodies`` stopped reading because its ``stop`` asked it to (between two reads)."""


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
                max_tokens: int = MAX_TOKEN_BATCH_RECORDS,
                stop: Callable[[], bool] | None = None) -> Iterator[Body]:
    """The numbered upload bodies of ``inputs``, counting what is read into ``summary``.

    ``profiles_first``: CleverTap's advice for history (spec s1.10) is profiles before events;
    the inputs are then read twice, streaming: profiles and tokens first, events second
    (the second pass counts nothing and repeats no rejection).

    Rejections met after the last body come in a final body with no records. A damaged input
    (DamagedInputError) ends the stream after the bodies of every line before the damage.

    ``stop`` is asked after every read (1 MiB): when it says so, Stopped is raised, so that a
    stop is taken at once even while no body fills (every event rejected, or the profile
    pass over events).
    """
    check_passes(inputs, profiles_first)
    passes: list[Callable[[Record], bool] | None] = (
        [_not_event, _is_event] if profiles_first else [None])
    converter = ChunkConverter(config, checker, "batches")
    files = expand_inputs(inputs)
    carried: list[Rejection] = []
    seq = 0
    for number, keep in enumerate(passes):
        first = number == 0
        stage = Stage(config, summary if first else Summary(), checker)
        bodies = _Bodies(keep, carried, first, max_records, max_tokens)
        try:
            for body in _one_pass(files, converter, stage, bodies, summary if first else None,
                                  stop):
                body.seq = seq
                seq += 1
                yield body
        except DamagedInputError:
            # The lines before the damage are the same on every read of the file (whose size
            # and mtime a checkpoint holds), so the bodies they fill are numbered the same on
            # every run: send them, and their rejections, before stopping. (Not so for a read
            # error, which may strike elsewhere next time: there only full bodies go.)
            rest = bodies.drain()
            if carried:
                rest.append(Body(-1, [], [], carried[:]))
            for body in rest:
                body.seq = seq
                seq += 1
                yield body
            raise
    if carried:
        yield Body(seq, [], [], carried[:])


def _one_pass(files: list[str], converter: ChunkConverter, stage: Stage, bodies: _Bodies,
              summary: Summary | None, stop: Callable[[], bool] | None) -> Iterator[Body]:
    """The bodies of one pass over ``files``, each as soon as it is full, then the rest;
    with ``summary``, what the pass counted goes there, a block at a time."""
    for name in files:
        bodies.source = source_name(name)
        for block in read_blocks(name):
            block.counted(converter.into(stage, bodies, bodies.source, block.first,
                                         block.data))
            if summary is not None:
                bodies.count_into(summary)
            yield from bodies.take()
            if stop is not None and stop():
                raise Stopped
    yield from bodies.drain()


class _Bodies(Sink):
    """Upload bodies filled by one pass over the inputs (numbered by ``plan_bodies``).

    A record is encoded as it comes, with the position of its event, so that no record dict
    outlives its block. Each body takes the rejections in ``carried`` (met before it filled);
    with ``collect`` (the first pass), this pass's rejections are added there and counted.
    """

    def __init__(self, keep: Callable[[Record], bool] | None, carried: list[Rejection],
                 collect: bool, max_records: int, max_tokens: int) -> None:
        super().__init__()
        self.source = ""
        self.keep = keep
        self.carried = carried
        self.collect = collect
        # (encoded record, its event's position, whether it is a device token)
        self.batcher: Batcher[tuple[bytes, Position, bool]] = Batcher(max_records, max_tokens)
        self.full: list[Body] = []

    def add(self, mapped: list[Record], rejections: list[Rejection], line: int,
            index: int | None) -> None:
        if self.collect:
            carried = self.carried
            rejected = self.rejected
            for rejection in rejections:
                rejected[rejection.code] = rejected.get(rejection.code, 0) + 1
                carried.append(rejection.compact())
        kinds = self.kinds
        for record in mapped:
            kind = str(record.get("type"))
            kinds[kind] = kinds.get(kind, 0) + 1
            if self.keep is not None and not self.keep(record):
                continue
            token = kind == "token"
            full = self.batcher.add(
                (trimmed(dumps(record)), Position(self.source, line, index), token), token)
            if full is not None:
                self.full.append(self._body(full))

    def _body(self, items: list[tuple[bytes, Position, bool]]) -> Body:
        carried = self.carried
        rejections = carried[:]
        carried.clear()
        return Body(-1, [item[0] for item in items], [item[1] for item in items], rejections,
                    items[0][2])

    def take(self) -> list[Body]:
        """The bodies filled since the last call, in order (``seq`` still to be set)."""
        full, self.full = self.full, []
        return full

    def drain(self) -> list[Body]:
        """The bodies left open at the end of the pass."""
        return [self._body(items) for items in self.batcher.drain()]
