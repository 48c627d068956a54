"""Shared test set-up: import paths and the location of ../shared."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "backend", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def open_body():
    """(model, landmark regressor) of the bundled open body; skips where its assets are not generated."""
    from hsmr_backend.skel import load_body
    from hsmr_backend.skel.landmarks import load_landmark_regressor

    try:
        model = load_body("open")
    except Exception as e:  # assets not generated in this checkout
        pytest.skip(f"open body unavailable: {e}")
    return model, load_landmark_regressor("open")
