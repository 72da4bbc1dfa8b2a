"""``--workers N`` gives the same output, byte for byte, as one process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clevertap_mapper import MapperConfig
from clevertap_mapper.checks import Checker
from clevertap_mapper.io.writers import Output, RejectsWriter
from clevertap_mapper.pipeline import run_convert

ids = st.sampled_from(["u1", "u2", 7, "", None])
event = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page", "screen", "alias", "group", 5])},
    optional={"userId": ids, "anonymousId": ids, "previousId": ids,
              "event": st.sampled_from(["Played", "Order Completed", ""]),
              "properties": st.dictionaries(st.sampled_from(["a", "ts", "products", "revenue"]),
                                            st.integers() | st.text(max_size=5), max_size=3),
              "traits": st.dictionaries(st.sampled_from(["email", "gender", "x.y"]),
                                        st.text(max_size=5), max_size=3),
              "timestamp": st.sampled_from(["2024-01-01T00:00:00Z", "bad"])})
line = st.one_of(event.map(json.dumps), st.sampled_from(["", "{oops", "[1]", "  "]),
                 st.lists(event, max_size=3).map(lambda b: json.dumps({"batch": b})))


def convert(tmp: Path, lines: list[str], workers: int, fmt: Any, head: str = "",
            end: str = "\n") -> tuple[bytes, bytes, dict]:
    src = tmp / "in.ndjson"
    src.write_text(head + "\n".join(lines) + end)
    out, rej = Output(str(tmp / f"o{workers}")), RejectsWriter(str(tmp / f"r{workers}"))
    summary = run_convert([str(src)], MapperConfig(track_anonymous=True), out, rej, fmt=fmt,
                          checker=Checker("strict"), workers=workers, block_bytes=200)
    out.commit()
    rej.commit()
    return (tmp / f"o{workers}").read_bytes(), (tmp / f"r{workers}").read_bytes(), \
        summary.as_dict()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line, min_size=1, max_size=60), st.sampled_from(["records", "batches"]),
       st.sampled_from([2, 3]), st.sampled_from(["", "\ufeff"]), st.sampled_from(["\n", ""]))
def test_workers_output_is_identical(tmp_path: Path, lines: list[str], fmt: Any, workers: int,
                                     head: str, end: str) -> None:
    # Blocks of 200 bytes: lines longer than a block, a BOM, no newline at the end.
    one = convert(tmp_path, lines, 1, fmt, head, end)
    assert convert(tmp_path, lines, workers, fmt, head, end) == one
