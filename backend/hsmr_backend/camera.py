"""The pinhole camera of a clip (OpenCV frame: x right, y down, z forward, metres; pixels) and its default."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Pinhole camera (no distortion) of the full frame. ``focal_source`` says where the focal came from."""

    K: np.ndarray  # (3,3) pixels
    width: int
    height: int
    focal_source: str  # "user" | "exif" | "default" | "scene" (convert: from the scene's edges) | ...

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(…,3) camera-frame points -> (…,2) pixels."""
        p = np.asarray(points, dtype=np.float64)
        z = np.maximum(p[..., 2], 1e-6)
        return np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)


DEFAULT_DIAGONAL_FOV_DEG = 70.0  # about a 31 mm lens on full frame


def default_camera(width: int, height: int, focal_px: float | None = None) -> Camera:
    """Camera for a ``width`` x ``height`` frame, principal point at the centre.

    Without a known focal the diagonal field of view is ``DEFAULT_DIAGONAL_FOV_DEG`` (70°): between a phone's
    main camera (24-28 mm, 75-84°) and the calibrated lab cameras of the Pose2Sim demo (66°). Once the resting
    feet are held, a focal that is too long costs more than one too short: on the renders of a 26 mm phone
    lens, squat and sit-to-stand lost 3.5-4.5° with the image diagonal as the focal (53°, the CLIFF/WHAM
    habit), 0-2° at 0.6x the true focal (docs/fitting.md, "Resting feet"). Give the real focal when known.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if focal_px is not None:
        if not (np.isfinite(focal_px) and focal_px > 0):
            raise ValueError(f"focal length must be a positive number of pixels, got {focal_px!r}")
        f, source = float(focal_px), "user"
    else:
        f = math.hypot(width, height) / (2.0 * math.tan(math.radians(DEFAULT_DIAGONAL_FOV_DEG) / 2.0))
        source = "default"
    k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    return Camera(K=k, width=int(width), height=int(height), focal_source=source)
