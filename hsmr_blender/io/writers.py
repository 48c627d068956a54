"""Small numpy-only writers for the add-on's exports: the 46 DoFs as CSV and as an OpenSim ``.mot``.

(The backend's bio-export writers had not landed on main when this was written; these are the add-on's own.)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _check(time: np.ndarray, values: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (time.shape[0], len(names)):
        raise ValueError(f"values have shape {values.shape}, expected ({time.shape[0]}, {len(names)})")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinite numbers")
    return time, values


def write_dof_csv(path: str | os.PathLike, time: np.ndarray, values: np.ndarray, names: list[str],
                  frames: np.ndarray | None = None) -> Path:
    """CSV: ``frame,time_s,<dof names...>``, angles in radians (SKEL's sign and units)."""
    time, values = _check(time, values, names)
    frames = np.arange(len(time)) if frames is None else np.asarray(frames)
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(["frame", "time_s", *names]) + "\n")
        for f, t, row in zip(frames, time, values, strict=True):
            fh.write(f"{int(round(f))},{t:.6f}," + ",".join(f"{v:.8f}" for v in row) + "\n")
    return path


def write_mot(path: str | os.PathLike, time: np.ndarray, values: np.ndarray, names: list[str],
              name: str = "HSMR coordinates") -> Path:
    """OpenSim storage (``.mot``): SKEL's coordinates in degrees, tab separated, ``time`` first."""
    time, values = _check(time, values, names)
    header = [name, "version=1", f"nRows={len(time)}", f"nColumns={len(names) + 1}", "inDegrees=yes", "endheader",
              "\t".join(["time", *names])]
    rows = ["\t".join(f"{x:.8f}" for x in row) for row in np.column_stack([time, np.degrees(values)])]
    path = Path(path)
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return path
