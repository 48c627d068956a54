"""OpenSim motion files (``.mot``): writer and an independent reader, numpy only.

Format (OpenSim Storage, as the IK tool writes it): a header of ``key=value`` lines closed by ``endheader``,
then one tab-separated line of column names (``time`` first, coordinate names exactly as in the model),
then one row per frame. Rotations are in degrees when ``inDegrees=yes``; translations are always metres.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class MotFormatError(ValueError):
    """A ``.mot`` file this reader cannot use; the message says what is wrong."""


@dataclass
class MotTable:
    """A read-back motion: header values, column names (``time`` excluded) and the data rows."""

    name: str
    header: dict[str, str]
    columns: list[str]
    time: np.ndarray  # (T,)
    values: np.ndarray  # (T, C)
    comments: list[str] = field(default_factory=list)

    @property
    def in_degrees(self) -> bool:
        return self.header.get("inDegrees", "no").strip().lower() == "yes"

    def column(self, name: str) -> np.ndarray:
        try:
            return self.values[:, self.columns.index(name)]
        except ValueError:
            raise KeyError(f"no column {name!r} in the motion; columns: {', '.join(self.columns)}") from None


def write_mot(
    path: str | os.PathLike,
    time: np.ndarray,
    columns: list[str] | tuple[str, ...],
    values: np.ndarray,
    *,
    in_degrees: bool = True,
    name: str = "Coordinates",
    comments: list[str] | tuple[str, ...] = (),
) -> Path:
    """Write a ``.mot``; ``values`` is (T, C) with C == len(columns) (the ``time`` column is added here)."""
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape != (time.shape[0], len(columns)):
        raise ValueError(f"values have shape {values.shape}, expected ({time.shape[0]}, {len(columns)})")
    if len(set(columns)) != len(columns) or "time" in columns:
        raise ValueError("column names must be unique and must not include 'time'")
    for c in columns:
        if not c or any(ch.isspace() for ch in c):
            raise ValueError(f"column name {c!r} is empty or contains whitespace")
    if any("=" in c or c.strip().lower() == "endheader" for c in comments):
        raise ValueError("header comments must not contain '=' or be 'endheader'")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinite numbers")
    lines = [
        name,
        "version=1",
        f"nRows={time.shape[0]}",
        f"nColumns={len(columns) + 1}",  # OpenSim counts the time column
        f"inDegrees={'yes' if in_degrees else 'no'}",
        *comments,  # free text: no '=' (OpenSim would read it as a key)
        "endheader",
        "\t".join(("time", *columns)),
    ]
    body = np.column_stack([time, values])
    rows = ["\t".join(f"{x:.8f}" for x in row) for row in body]
    path = Path(path)
    path.write_text("\n".join(lines + rows) + "\n", encoding="utf-8")
    return path


def read_mot(path: str | os.PathLike) -> MotTable:
    """Read a ``.mot``/``.sto`` written by OpenSim or by :func:`write_mot`; checks nRows/nColumns."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        end = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "endheader")
    except StopIteration:
        raise MotFormatError(f"{path}: no 'endheader' line; not an OpenSim motion file") from None
    name = lines[0].strip() if end > 0 else ""
    header: dict[str, str] = {}
    comments: list[str] = []
    for ln in lines[1:end]:
        if "=" in ln:
            k, v = ln.split("=", 1)
            header[k.strip()] = v.strip()
        elif ln.strip():
            comments.append(ln)
    if end + 1 >= len(lines):
        raise MotFormatError(f"{path}: no column-name line after 'endheader'")
    cols = lines[end + 1].split("\t") if "\t" in lines[end + 1] else lines[end + 1].split()
    cols = [c.strip() for c in cols]
    if not cols or cols[0] != "time":
        raise MotFormatError(f"{path}: first column is {cols[0]!r}, expected 'time'")
    rows = [ln for ln in lines[end + 2 :] if ln.strip()]
    data = np.array([[float(x) for x in ln.split()] for ln in rows], dtype=np.float64).reshape(len(rows), -1)
    if data.shape[1] != len(cols):
        raise MotFormatError(f"{path}: rows have {data.shape[1]} values but there are {len(cols)} column names")
    for key, n in (("nRows", data.shape[0]), ("nColumns", len(cols)), ("datarows", data.shape[0])):
        if key in header and int(header[key]) != n:
            raise MotFormatError(f"{path}: header says {key}={header[key]} but the file holds {n}")
    return MotTable(name, header, cols[1:], data[:, 0], data[:, 1:], comments)


_UNITS = "Units are S.I. units (second, meters, Newtons, ...)"
_ANGLES = (
    "If the header above contains a line with 'inDegrees', this indicates whether rotational values are in "
    "degrees (yes) or radians (no)."
)


def write_skel_mot(result: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """The 46 SKEL coordinates (SKEL names, degrees) and pelvis_tx/ty/tz (OpenSim ground, metres)."""
    from .opensim_map import skel_motion, times

    names, values = skel_motion(result)
    comments = (
        _UNITS,
        _ANGLES,
        "SKEL coordinates (q 0 is SKEL's T-pose); pelvis_t* in the y-up ground: X world x, Y world z, Z minus world y.",
    )
    return write_mot(path, times(result), names, values, in_degrees=True, name="Coordinates", comments=comments)


def write_rajagopal_mot(result: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Rajagopal-style coordinates (degrees; pelvis_t* metres); see docs/biomechanics-export.md."""
    from .opensim_map import rajagopal_motion, times

    names, values = rajagopal_motion(result)
    comments = (
        _UNITS,
        _ANGLES,
        "Rajagopal-style coordinates mapped from SKEL (arm_add -90 deg at SKEL's "
        "T-pose); y-up ground: X world x, Y world z, Z minus world y.",
    )
    return write_mot(path, times(result), names, values, in_degrees=True, name="Coordinates", comments=comments)
