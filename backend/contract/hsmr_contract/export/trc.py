"""Marker trajectories (``.trc``): writer and an independent reader, numpy only.

Layout (OpenSim / Pose2Sim / OpenCap style, tab-separated):

1. ``PathFileType  4  (X/Y/Z)  <file name>``
2. ``DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames``
3. the values of line 2
4. ``Frame#  Time  <marker1>\\t\\t\\t<marker2>...`` (each name spans its three X/Y/Z columns)
5. ``\\t\\tX1\\tY1\\tZ1\\tX2...``
6. an empty line, then one row per frame: frame number (1-based), time, x y z per marker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class TrcFormatError(ValueError):
    """A ``.trc`` file this reader cannot use; the message says what is wrong."""


@dataclass
class TrcTable:
    header: dict[str, str]
    markers: list[str]
    frame: np.ndarray  # (T,) int
    time: np.ndarray  # (T,)
    xyz: np.ndarray  # (T, M, 3)

    @property
    def units(self) -> str:
        return self.header["Units"]


_KEYS = (
    "DataRate",
    "CameraRate",
    "NumFrames",
    "NumMarkers",
    "Units",
    "OrigDataRate",
    "OrigDataStartFrame",
    "OrigNumFrames",
)


def write_trc(
    path: str | os.PathLike,
    time: np.ndarray,
    markers: list[str] | tuple[str, ...],
    xyz: np.ndarray,
    *,
    rate: float,
    units: str = "m",
) -> Path:
    """Write (T, M, 3) marker positions. Missing samples may be NaN (OpenSim treats them as gaps)."""
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    xyz = np.asarray(xyz, dtype=np.float64)
    n = time.shape[0]
    if xyz.shape != (n, len(markers), 3):
        raise ValueError(f"marker array has shape {xyz.shape}, expected ({n}, {len(markers)}, 3)")
    if len(set(markers)) != len(markers):
        raise ValueError("marker names must be unique")
    for m in markers:
        if not m or any(ch.isspace() for ch in m):
            raise ValueError(f"marker name {m!r} is empty or contains whitespace")
    path = Path(path)
    values = (f"{rate:g}", f"{rate:g}", str(n), str(len(markers)), units, f"{rate:g}", "1", str(n))
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "\t".join(_KEYS),
        "\t".join(values),
        "\t".join(["Frame#", "Time", *(f"{m}\t\t" for m in markers)]).rstrip("\t"),
        "\t\t" + "\t".join(f"{a}{i + 1}" for i in range(len(markers)) for a in "XYZ"),
        "",
    ]
    for i in range(n):
        coords = "\t".join("" if not np.isfinite(v) else f"{v:.6f}" for v in xyz[i].reshape(-1))
        lines.append(f"{i + 1}\t{time[i]:.6f}\t{coords}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_trc(path: str | os.PathLike) -> TrcTable:
    """Read a ``.trc``; checks the counts of line 3 against the marker names and rows."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise TrcFormatError(f"{path}: does not start with 'PathFileType'; not a .trc file")
    keys = lines[1].split("\t")
    vals = lines[2].split("\t")
    if len(keys) != len(vals):
        raise TrcFormatError(f"{path}: header lines 2 and 3 have {len(keys)} and {len(vals)} fields")
    header = dict(zip((k.strip() for k in keys), (v.strip() for v in vals), strict=True))
    names_line = lines[3].split("\t")
    if names_line[:2] != ["Frame#", "Time"]:
        raise TrcFormatError(f"{path}: line 4 must start with 'Frame#' and 'Time'")
    # each marker name sits on the first of its three columns
    cells = names_line[2:]
    markers = [c.strip() for c in cells if c.strip()]
    for k, name in enumerate(markers):
        pos = cells.index(name)
        if pos != 3 * k:
            raise TrcFormatError(f"{path}: marker {name!r} does not start a 3-column X/Y/Z group")
    if int(header.get("NumMarkers", len(markers))) != len(markers):
        raise TrcFormatError(f"{path}: NumMarkers={header['NumMarkers']} but {len(markers)} names")
    rows = [ln for ln in lines[5:] if ln.strip()]
    m = len(markers)
    frame = np.empty(len(rows), dtype=np.int64)
    time = np.empty(len(rows))
    xyz = np.full((len(rows), m, 3), np.nan)
    for r, ln in enumerate(rows):
        cells = ln.split("\t")
        frame[r] = int(cells[0])
        time[r] = float(cells[1])
        coords = [float(c) if c.strip() else np.nan for c in cells[2 : 2 + 3 * m]]
        if len(coords) != 3 * m:
            raise TrcFormatError(f"{path}: row {r + 1} has {len(coords)} coordinates, expected {3 * m}")
        xyz[r] = np.array(coords).reshape(m, 3)
    if int(header.get("NumFrames", len(rows))) != len(rows):
        raise TrcFormatError(f"{path}: NumFrames={header['NumFrames']} but {len(rows)} rows")
    return TrcTable(header, markers, frame, time, xyz)


def write_markers_trc(result: dict[str, np.ndarray], path: str | os.PathLike, *, skin: bool = True) -> Path:
    """Joint centres (+ skin landmarks) in the OpenSim ground (y up), metres; frames at the result's fps."""
    from .markers import virtual_markers
    from .opensim_map import times

    names, xyz = virtual_markers(result, skin=skin)
    # DataRate is the fitted rate; the rows carry the source-video times (gaps stay visible in Time).
    return write_trc(path, times(result), names, xyz, rate=float(result["fps"]), units="m")
