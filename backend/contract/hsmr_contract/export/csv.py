"""Joint angles as CSV (one row per frame: time, then one column per DoF), numpy only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_csv(
    path: str | os.PathLike,
    time: np.ndarray,
    columns: list[str] | tuple[str, ...],
    values: np.ndarray,
    *,
    unit: str = "deg",
) -> Path:
    """Write ``time_s`` then ``<name>_<unit>`` columns; ``values`` (T, C) are already in ``unit``."""
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (time.shape[0], len(columns)):
        raise ValueError(f"values have shape {values.shape}, expected ({time.shape[0]}, {len(columns)})")
    header = ",".join(["time_s", *(f"{c}_{unit}" for c in columns)])
    body = np.column_stack([time, values])
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        np.savetxt(fh, body, delimiter=",", fmt="%.8f")
    return path


def read_csv(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Header names and the (T, C) array, ``time_s`` included."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        names = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return names, data


def write_angles_csv(result: dict[str, np.ndarray], path: str | os.PathLike, *, radians: bool = False) -> Path:
    """time + the 46 SKEL DoFs, in degrees (default) or radians."""
    from .opensim_map import dof_names, times

    q = np.asarray(result["poses"], dtype=np.float64)
    return write_csv(
        path, times(result), dof_names(result), q if radians else np.degrees(q), unit="rad" if radians else "deg"
    )
