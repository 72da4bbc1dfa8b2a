"""Build hook: compiles the per-event hot path to C with mypyc, as black and mypy ship theirs.

The compiled modules (``[tool.ctmap] compiled`` in pyproject.toml) are the same Python source,
type-checked by mypy --strict, so there is one implementation; compiled, convert spends about
half the time per event (README, "Benchmark"). Everything else stays interpreted. With
CTMAP_COMPILE=0, or on a machine without a C compiler, the package installs as pure Python and
behaves the same, only slower.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

from setuptools import setup


def ext_modules() -> list[object]:
    if os.environ.get("CTMAP_COMPILE", "1") == "0":
        return []
    compiler = os.environ.get("CC", "cc").split()[0]
    if shutil.which(compiler) is None:
        print(f"ctmap: no C compiler ({compiler}), so the pure-Python build is installed",
              file=sys.stderr)
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 - only needed when compiling

    pyproject = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())
    return mypycify(pyproject["tool"]["ctmap"]["compiled"],  # type: ignore[no-any-return]
                    opt_level="3", debug_level="0")


setup(ext_modules=ext_modules())
