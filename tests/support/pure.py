"""Run the compiled modules from their Python source, in this process.

The modules listed under ``[tool.ctmap] compiled`` in pyproject.toml are normally compiled
(setup.py). ``use_source()`` makes the next imports of them load the ``.py`` files instead:
for tests of the source itself (``CTMAP_PURE=1``) and for a Python profiler, which cannot
see inside compiled functions. Call it before anything imports clevertap_mapper.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import tomllib
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
COMPILED = {p.removesuffix(".py").replace("/", "."): ROOT / p for p in tomllib.loads(
    (ROOT / "pyproject.toml").read_text())["tool"]["ctmap"]["compiled"]}


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules as their .py files, ignoring the built extensions."""

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        source = COMPILED.get(name)
        return importlib.util.spec_from_file_location(name, source) if source else None


def use_source() -> None:
    loaded = [name for name in COMPILED if name in sys.modules]
    if loaded:
        raise RuntimeError(f"already imported, compiled: {', '.join(loaded)}")
    if not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())
