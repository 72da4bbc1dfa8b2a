"""``make profile``: pyinstrument's view of ``ctmap convert`` on 50,000 generated events.

It runs the Python source of the compiled modules (a Python profiler cannot see inside
compiled functions), so times are those of the pure build; the proportions are what matter.
For the compiled build, ``perf record --call-graph dwarf`` shows its C functions by name.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pyinstrument import Profiler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.pure import use_source  # noqa: E402

use_source()

from bench import gen_events  # noqa: E402
from clevertap_mapper import MapperConfig  # noqa: E402
from clevertap_mapper.checks import Checker  # noqa: E402
from clevertap_mapper.io.writers import Output, RejectsWriter  # noqa: E402
from clevertap_mapper.pipeline import run_convert  # noqa: E402


def main() -> None:
    data = ROOT / "bench" / "data" / "events-50000.ndjson"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        gen_events.write(str(data), 50_000, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Output(f"{tmp}/out.ndjson")
        rejects = RejectsWriter(f"{tmp}/rejects.ndjson")
        profiler = Profiler(interval=0.0005)
        with profiler:
            run_convert([str(data)], MapperConfig(), out, rejects, checker=Checker("strict"))
        out.commit()
        rejects.commit()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
