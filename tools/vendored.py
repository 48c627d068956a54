"""The add-on's vendored copies of backend modules: one list, used by ``python3 build.py vendor`` and by
tests/test_blender_vendored.py (the add-on cannot import the backend, so it carries byte-identical copies)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend" / "hsmr_backend"
ADDON_IO = ROOT / "hsmr_blender" / "io"

# (backend source, add-on copy)
VENDORED: tuple[tuple[Path, Path], ...] = tuple(
    (BACKEND / name, ADDON_IO / name)
    for name in (
        "result_format.py",
        "protocol.py",
        "export/csv.py",
        "export/mot.py",
        "export/opensim_map.py",
        "export/kinematics.py",
    )
)


def vendor() -> list[Path]:
    """Copy every vendored file from its backend source; returns the copies that changed."""
    changed = []
    for src, copy in VENDORED:
        if not copy.exists() or copy.read_bytes() != src.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, copy)
            changed.append(copy)
    return changed
