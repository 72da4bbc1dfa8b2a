"""Shared test helpers: paths to the shared material and the samples; which build is tested.

The modules listed under ``[tool.ctmap] compiled`` in pyproject.toml are normally compiled
(setup.py). ``CTMAP_PURE=1`` tests their Python source instead, in this process (subprocesses
the tests start still load the compiled build). Either way a compiled module older than its
source stops the run: it would test code that is not what the source says.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.support.pure import COMPILED, use_source

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
PURE = os.environ.get("CTMAP_PURE") == "1"

if PURE:
    use_source()


def _stale_builds() -> list[str]:
    stale = []
    for name, source in COMPILED.items():
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        if origin and origin.suffix != ".py" and origin.stat().st_mtime < source.stat().st_mtime:
            stale.append(name)
    return stale


def pytest_configure(config: pytest.Config) -> None:
    if not PURE and (stale := _stale_builds()):
        pytest.exit(f"the compiled build of {', '.join(stale)} is older than its source: "
                    "rebuild with `make test` (or test the source with CTMAP_PURE=1)", 2)


def pytest_report_header() -> str:
    from clevertap_mapper import compiled  # noqa: PLC0415 - after the CTMAP_PURE hook

    return f"ctmap mapping core: {'compiled' if compiled() else 'pure Python'}"


def _shared() -> Path:
    # shared/ sits beside the checkout (../shared); CI lays a copy there too.
    for candidate in (ROOT.parent / "shared", ROOT / "shared"):
        if (candidate / "conformance").is_dir():
            return candidate
    return ROOT.parent / "shared"


SHARED = _shared()
CONFORMANCE = SHARED / "conformance"


@pytest.fixture
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance corpus not found at {CONFORMANCE}")
    return CONFORMANCE
