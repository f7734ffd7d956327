"""Shared fixtures: where the shared data sets are, and skipping when they are absent."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets in ../shared/data; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}: this test needs ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """TFDV's reference outputs in ../shared/reference."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"reference outputs not found at {SHARED_REFERENCE}: this test needs ../shared/reference")
    return SHARED_REFERENCE
