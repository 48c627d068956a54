"""The add-on's vendored copies of backend modules stay byte-identical (the add-on cannot import the backend)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from vendored import VENDORED  # noqa: E402


def test_every_addon_copy_is_listed() -> None:
    """A backend module copied into the add-on but missing from the list would escape the check below."""
    listed = {copy for _, copy in VENDORED}
    for copy in (ROOT / "hsmr_blender" / "io").rglob("*.py"):
        src = ROOT / "backend" / "hsmr_backend" / copy.relative_to(ROOT / "hsmr_blender" / "io")
        if src.exists() and copy.name != "__init__.py":
            assert copy in listed, f"{copy} mirrors {src} but is not in tools/vendored.py VENDORED"


@pytest.mark.parametrize("src,copy", VENDORED, ids=[str(c.relative_to(ROOT)) for _, c in VENDORED])
def test_vendored_copy_is_identical(src: Path, copy: Path) -> None:
    assert copy.read_bytes() == src.read_bytes(), f"{copy} differs from {src}: run `python3 build.py vendor`"


def test_io_package_imports_without_bpy() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['bpy'] = None\n"
            "import hsmr_blender.io.rig_math, hsmr_blender.io.backend, hsmr_blender.io.export.mot, hsmr_blender\n")
    cp = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert cp.returncode == 0, cp.stderr
