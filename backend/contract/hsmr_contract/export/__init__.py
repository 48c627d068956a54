"""Biomechanics exports of a result file: OpenSim ``.mot``/``.trc`` and CSV (numpy only).

The writers take the result as a dict of arrays, so the backend and the Blender add-on share them. The HTML
report (matplotlib) stays in the backend (``hsmr_backend.export.report``).
"""

from .csv import read_csv, write_angles_csv, write_csv
from .mot import MotTable, read_mot, write_mot, write_rajagopal_mot, write_skel_mot
from .opensim_map import OFFSETS, RAJAGOPAL_COORDINATES, ExportError, rajagopal_motion, skel_motion, times
from .trc import TrcTable, read_trc, write_markers_trc, write_trc

__all__ = [
    "OFFSETS",
    "RAJAGOPAL_COORDINATES",
    "ExportError",
    "MotTable",
    "TrcTable",
    "rajagopal_motion",
    "read_csv",
    "read_mot",
    "read_trc",
    "skel_motion",
    "times",
    "write_angles_csv",
    "write_csv",
    "write_markers_trc",
    "write_mot",
    "write_rajagopal_mot",
    "write_skel_mot",
    "write_trc",
]
