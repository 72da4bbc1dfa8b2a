"""The convert pipeline: read -> map -> check -> write, streaming, with a summary.

``run_convert`` is what ``ctmap convert`` and library users call. Memory stays flat: one line,
its records and at most one open upload body per kind are held at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import MappingError
from clevertap_mapper.io.model import Position, Rejection, SourceEvent, SourceRecords
from clevertap_mapper.io.readers import Item, read_items
from clevertap_mapper.io.writers import BatchWriter, Output, RejectsWriter
from clevertap_mapper.jsonutil import dumps
from clevertap_mapper.mapping.core import map_event

Format = Literal["records", "batches"]
Record = dict[str, Any]


@dataclass
class Summary:
    """What a run did, for the closing report and for scripts (``as_dict``)."""

    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    bodies: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "events_by_type": dict(self.by_type),
            "records": sum(self.records.values()),
            "records_by_kind": dict(self.records),
            "rejected": self.rejected_total,
            "rejected_by_code": dict(self.rejected),
            "warnings_by_code": dict(self.warnings),
            "bodies": self.bodies,
        }


@dataclass(slots=True)
class Mapped:
    """The records of one event (or of one line of already-mapped records)."""

    pos: Position
    records: list[Record]
    event: Any = None


def _type_of(event: Any) -> str:
    t = event.get("type") if type(event) is dict else None
    return t.lower() if type(t) is str else "(none)"


def map_items(items: Iterable[Item], config: MapperConfig, summary: Summary,
              checker: Checker | None = None) -> Iterator[Mapped | Rejection]:
    """Map and check a stream of read items, counting into ``summary``."""
    strict = checker is not None and checker.level == "strict"
    check = checker.check if checker is not None and checker.level != "off" else None
    by_type = summary.by_type
    for item in items:
        if type(item) is SourceEvent:
            event = item.event
            summary.events += 1
            by_type[_type_of(event)] += 1
            try:
                records = map_event(event, config)
            except MappingError as exc:
                yield Rejection(item.pos, "map", exc.code, exc.message, event=event)
                continue
        elif type(item) is SourceRecords:
            event = None
            records = item.records
            summary.events += 1
            by_type["(records)"] += 1
        else:
            assert isinstance(item, Rejection)
            summary.events += 1
            yield item
            continue
        if check is not None:
            kept = []
            for record in records:
                findings = check(record)
                errors = [f for f in findings if f.severity == "error"] if strict else []
                for f in findings:
                    if f not in errors:
                        summary.warnings[f.code] += 1
                if errors:
                    first = errors[0]
                    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                    yield Rejection(item.pos, "check", first.code, first.message + more,
                                    event=event, record=record)
                else:
                    kept.append(record)
            records = kept
            if not records:
                continue
        yield Mapped(item.pos, records, event)


ProgressHook = Callable[[Summary], None]


def run_convert(inputs: list[str], config: MapperConfig, out: Output | None,
                rejects: RejectsWriter | None, *, fmt: Format = "records",
                checker: Checker | None = None, progress: ProgressHook | None = None,
                progress_every: int = 5000) -> Summary:
    """Convert ``inputs`` to CleverTap records in ``out`` (None: count only), rejects apart.

    Raises InputError when an input cannot be read at all; what was converted before stays in
    ``out`` (the caller decides whether to commit it).
    """
    summary = Summary()
    items = read_items(inputs, js_numbers=config.compat is not None)
    writer = BatchWriter(out) if (out is not None and fmt == "batches") else None
    write = out.write if out is not None else None
    kinds = summary.records
    rejected = summary.rejected
    option = orjson.OPT_APPEND_NEWLINE
    n = 0
    try:
        for result in map_items(items, config, summary, checker):
            if type(result) is Mapped:
                for record in result.records:
                    kind = record.get("type")
                    kinds[kind] += 1
                    if writer is not None:
                        writer.add(dumps(record), kind == "token")
                    elif write is not None:
                        try:
                            write(orjson.dumps(record, option=option))
                        except TypeError:
                            write(dumps(record) + b"\n")
            else:
                assert isinstance(result, Rejection)
                rejected[result.code] += 1
                if rejects is not None:
                    rejects.write(result)
            n += 1
            if progress is not None and n % progress_every == 0:
                progress(summary)
    finally:
        if writer is not None:
            writer.close()
            summary.bodies = writer.bodies
    return summary
