"""Fixtures every test folder may use: the location of ../shared and the open body.

Imports come from the installed packages (hsmr_backend, hsmr_contract) and the repository root (hsmr_blender,
synthetic, tests.support): see ``pythonpath`` in pyproject.toml's pytest options.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
