"""The add-on's vendored copies of backend modules stay byte-identical (the add-on cannot import the backend)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["result_format.py", "protocol.py", "export/csv.py", "export/mot.py",
                                  "export/opensim_map.py", "export/kinematics.py"])
def test_vendored_copy_is_identical(name: str) -> None:
    src = ROOT / "backend" / "hsmr_backend" / name
    copy = ROOT / "hsmr_blender" / "io" / name
    assert copy.read_bytes() == src.read_bytes(), f"copy {src} to {copy} (byte-identical)"


def test_io_package_imports_without_bpy() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['bpy'] = None\n"
            "import hsmr_blender.io.rig_math, hsmr_blender.io.backend, hsmr_blender.io.export.mot, hsmr_blender\n")
    cp = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert cp.returncode == 0, cp.stderr
