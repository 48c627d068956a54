"""Several calibrated cameras: calibration files, clips matched to cameras, synchronisation, one subject across
views, triangulation and calibration refinement (docs/multicamera.md)."""

from .cameras import CalibratedCamera, CalibrationError, read_calibration, write_toml
from .geometry import triangulate, triangulate_track
from .matching import fit_to_image, match_clips
from .refine import Refinement, refine_principal_points
from .subject import consistent_candidate, consistent_labels, disagreeing_frames
from .sync import SyncError, estimate_offsets, parse_offsets

__all__ = [
    "CalibratedCamera", "CalibrationError", "Refinement", "SyncError", "consistent_candidate", "consistent_labels",
    "disagreeing_frames", "estimate_offsets", "fit_to_image", "match_clips", "parse_offsets", "read_calibration",
    "refine_principal_points", "triangulate", "triangulate_track", "write_toml",
]
