"""Shared test helpers: paths to the shared material and the samples."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


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
