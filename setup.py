"""Build hook: compiles the per-event hot path to C with mypyc, as black and mypy ship theirs.

The compiled modules (``[tool.ctmap] compiled`` in pyproject.toml) are the same Python source,
type-checked by mypy --strict, so there is one implementation; compiled, convert runs about
1.6x as fast (README, "The compiled hot path"). Everything else stays interpreted.

Compiling is all or nothing, and never fails the install: with CTMAP_COMPILE=0, without a C
compiler or Python's headers, or when mypy or the compiler fails, the package installs as pure
Python and behaves the same, only slower (``ctmap --version`` says which build runs).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _why_not_compiled() -> str | None:
    if os.environ.get("CTMAP_COMPILE", "1") == "0":
        return "CTMAP_COMPILE=0"
    compiler = os.environ.get("CC", "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h; on Debian: apt install python3-dev)"
    return None


def ext_modules() -> list[Any]:
    why = _why_not_compiled()
    if why is not None:
        print(f"ctmap: installing the pure-Python build: {why}", file=sys.stderr)
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 - only needed when compiling

    pyproject = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())
    try:
        return mypycify(pyproject["tool"]["ctmap"]["compiled"],  # type: ignore[no-any-return]
                        opt_level="3", debug_level="0")
    except (Exception, SystemExit) as exc:  # mypy's own errors end in SystemExit
        print(f"ctmap: the compiled build failed before compiling ({exc!r}); installing the "
              "pure-Python build", file=sys.stderr)
        return []


class AllOrNothing(build_ext):
    """Builds every compiled module, or none: the modules share one C library, so a partial
    build would not import. A failure leaves the pure-Python package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # whatever the compiler did wrong, the answer is pure Python
            for ext in self.extensions:
                built = Path(self.get_ext_fullpath(ext.name))
                built.unlink(missing_ok=True)
            print(f"ctmap: the compiled build failed ({exc}); installing the pure-Python build",
                  file=sys.stderr)


setup(ext_modules=ext_modules(), cmdclass={"build_ext": AllOrNothing})
