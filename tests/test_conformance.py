"""Golden tests: --compat rudderstack against the reference's own recorded output.

How a case matches (shared/conformance/README.md): records equal as JSON values; where the
reference sent a record with no identity at all, or crashed, ctmap must reject the event.
Inputs go through ctmap's own JSON reader, as a file line would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clevertap_mapper import MapperConfig, MappingError, map_event
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.mapping.js import truthy
from tests.conftest import CONFORMANCE


def _cases(name: str) -> list[dict[str, Any]]:
    path = CONFORMANCE / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _config(case: dict[str, Any]) -> MapperConfig:
    cfg = case["config"]  # JS truthiness: "false" switches a setting on, as in RudderStack
    return MapperConfig(track_anonymous=truthy(cfg.get("trackAnonymous")),
                        object_id_mapping=truthy(cfg.get("enableObjectIdMapping")),
                        compat="rudderstack")


def _expected_records(case: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The reference's records, or None where ctmap must reject the event."""
    expected = case["expected"]
    if not expected["ok"]:
        return None
    outs = expected["out"] if isinstance(expected["out"], list) else [expected["out"]]
    records = [o["body"]["JSON"]["d"][0] for o in outs]
    for r in records:
        if r.get("type") in ("event", "profile") and r.get("identity") is None \
                and "objectId" not in r:
            return None  # CleverTap refuses a record without identity (523): ctmap rejects
    return records


def _mismatch(case: dict[str, Any]) -> str | None:
    event = loads(json.dumps(case["event"]), js_numbers=True)
    want = _expected_records(case)
    try:
        got = json.loads(dumps(map_event(event, _config(case))))
    except MappingError as exc:
        return None if want is None else f"rejected ({exc.code}: {exc.message})"
    if want is None:
        return f"expected a rejection, got {got}"
    return None if got == want else f"expected {want}\n got {got}"


REFERENCE = _cases("reference-tests.ndjson")
PUBLIC = _cases("public.ndjson")


def test_corpus_is_present() -> None:
    assert len(REFERENCE) == 29, f"reference-tests.ndjson not found under {CONFORMANCE}"
    assert len(PUBLIC) > 1000


@pytest.mark.parametrize("case", REFERENCE, ids=[c["id"] for c in REFERENCE])
def test_reference_tests_match(case: dict[str, Any]) -> None:
    problem = _mismatch(case)
    assert problem is None, problem


# Cases where ctmap deliberately differs from the reference even in compat mode: none today.
# An entry here needs a reason (shared/DESIGN.md section 2 allows only rejections).
KNOWN_DIFFERENCES: dict[str, str] = {}


def test_public_corpus_matches_at_least_99_percent() -> None:
    problems = {c["id"]: p for c in PUBLIC if (p := _mismatch(c)) is not None}
    unexplained = {k: v for k, v in problems.items() if k not in KNOWN_DIFFERENCES}
    assert not unexplained, "\n".join(f"{k}: {v}" for k, v in list(unexplained.items())[:5])
    assert len(problems) <= len(PUBLIC) // 100


def test_unlisted_difference_would_fail(tmp_path: Path) -> None:
    """The comparison is not vacuous: a changed expected record is detected."""
    case = next(c for c in PUBLIC if c["expected"]["ok"] and not isinstance(
        c["expected"]["out"], list) and _expected_records(c))
    changed = json.loads(json.dumps(case))
    changed["expected"]["out"]["body"]["JSON"]["d"][0]["type"] = "not-a-type"
    assert _mismatch(changed) is not None
