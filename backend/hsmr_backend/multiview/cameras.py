"""Calibrated cameras: the typed record, and the two calibration formats Pose2Sim reads (its ``.toml`` and
Qualisys' ``.qca.txt``), read by Pose2Sim's rules (../shared/reference/multicamera.md)."""

from __future__ import annotations

import math
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

# A Qualisys camera looks along its -z with y up in the image; OpenCV's along +z with y down: a half turn about x.
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
QCA_SUBPIXELS = 64.0  # Qualisys stores intrinsics (and, by Pose2Sim's rule, distortions) in 1/64 pixel


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message is one line saying what is wrong and what to do."""


@dataclass(frozen=True)
class CalibratedCamera:
    """One calibrated camera. OpenCV conventions: x right, y down, z forward; ``X_cam = R @ X_world + t``."""

    name: str
    K: np.ndarray  # (3,3) pixels
    dist: np.ndarray  # (4,) or (5,) OpenCV k1, k2, p1, p2[, k3]
    R: np.ndarray  # (3,3) world -> camera
    t: np.ndarray  # (3,) metres
    size: tuple[int, int]  # (width, height) of the calibrated image, pixels

    @property
    def centre(self) -> np.ndarray:
        """The camera's optical centre in the world (metres)."""
        return -self.R.T @ self.t

    @property
    def projection(self) -> np.ndarray:
        """(3,4) pinhole projection of homogeneous world points to homogeneous pixels."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(…,3) world points -> the same points in this camera's frame."""
        return np.asarray(points, dtype=np.float64) @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """(…,3) world points -> (…,2) undistorted pixels (pinhole; see :meth:`undistort`)."""
        p = self.to_camera(points)
        z = np.where(np.abs(p[..., 2]) > 1e-9, p[..., 2], 1e-9)
        k = self.K
        return np.stack([k[0, 0] * p[..., 0] / z + k[0, 2], k[1, 1] * p[..., 1] / z + k[1, 2]], -1)

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """(…,2) pixels of the real (distorted) image -> where the pinhole camera ``K`` would see them."""
        xy = np.asarray(pixels, dtype=np.float64)
        if not np.any(self.dist):
            return xy.copy()
        import cv2

        flat = xy.reshape(-1, 1, 2)
        out = cv2.undistortPoints(flat, self.K, np.asarray(self.dist, dtype=np.float64), P=self.K)
        return out.reshape(xy.shape)

    def with_principal_point(self, cx: float, cy: float) -> CalibratedCamera:
        """The same camera with its principal point at (cx, cy) pixels."""
        k = self.K.copy()
        k[0, 2], k[1, 2] = cx, cy
        return replace(self, K=k)


def _rodrigues(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """Rodrigues vector of a rotation matrix (inverse of the reader's conversion)."""
    import cv2

    return cv2.Rodrigues(np.asarray(r, dtype=np.float64))[0].ravel()


def natural_key(text: str) -> list[int | str]:
    """Sort key putting ``cam2`` before ``cam10`` (Pose2Sim orders cameras this way)."""
    return [int(c) if c.isdigit() else c.lower() for c in re.split(r"(\d+)", str(text))]


def _checked(name: str, cam: CalibratedCamera, path: Path) -> CalibratedCamera:
    arrays = (cam.K, cam.dist, cam.R, cam.t)
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise CalibrationError(f"{path.name}: camera {name!r} has non-finite numbers; fix or re-export the calibration")
    if cam.K[0, 0] <= 0 or cam.K[1, 1] <= 0 or min(cam.size) <= 0:
        raise CalibrationError(f"{path.name}: camera {name!r} has a non-positive focal length or image size; "
                               "fix or re-export the calibration")
    if abs(np.linalg.det(cam.R) - 1.0) > 1e-3:
        raise CalibrationError(f"{path.name}: camera {name!r} has a rotation that is not a rotation; "
                               "fix or re-export the calibration")
    return cam


def _toml_camera(key: str, table: dict, path: Path) -> CalibratedCamera:
    try:
        k = np.asarray(table["matrix"], dtype=np.float64).reshape(3, 3)
        w, h = (float(x) for x in table["size"])
        dist = np.asarray(table.get("distortions", [0.0] * 4), dtype=np.float64).ravel()
        r = _rodrigues(np.asarray(table["rotation"], dtype=np.float64).reshape(3))
        t = np.asarray(table["translation"], dtype=np.float64).reshape(3)
    except (KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"{path.name}: camera [{key}] lacks or garbles {e}; a Pose2Sim calibration has "
                               "size, matrix, distortions, rotation and translation for every camera") from None
    if table.get("fisheye", False):
        raise CalibrationError(f"{path.name}: camera [{key}] is a fisheye camera, which is not supported; "
                               "calibrate it with the pinhole model")
    name = str(table.get("name", key))
    return _checked(name, CalibratedCamera(name, k, dist, r, t, (round(w), round(h))), path)


def read_toml(path: Path) -> list[CalibratedCamera]:
    """Pose2Sim's ``.toml``: one table per camera (``[metadata]`` and other non-camera tables skipped)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CalibrationError(f"{path.name} is not a readable TOML file ({e}); give a Pose2Sim calibration "
                               ".toml or a Qualisys .qca.txt") from None
    tables = {k: v for k, v in doc.items() if isinstance(v, dict) and k != "metadata"}
    return [_toml_camera(k, v, path) for k, v in tables.items() if "matrix" in v or "rotation" in v]


def _qca_camera(cam: ET.Element, path: Path) -> CalibratedCamera:
    name = cam.get("serial", "?")
    fov, tr, intr = cam.find("fov_video"), cam.find("transform"), cam.find("intrinsic")
    if fov is None or tr is None or intr is None:
        raise CalibrationError(f"{path.name}: camera {name!r} lacks fov_video, transform or intrinsic; "
                               "export the calibration again from Qualisys")
    try:
        g = lambda e, a: float(e.attrib[a])  # noqa: E731
        left, top = g(fov, "left"), g(fov, "top")
        w, h = g(fov, "right") - left + 1, g(fov, "bottom") - top + 1
        s = QCA_SUBPIXELS
        dist = np.array([g(intr, "radialDistortion1"), g(intr, "radialDistortion2"),
                         g(intr, "tangentalDistortion1"), g(intr, "tangentalDistortion2")]) / s
        k = np.array([[g(intr, "focalLengthU") / s, 0.0, g(intr, "centerPointU") / s - left],
                      [0.0, g(intr, "focalLengthV") / s, g(intr, "centerPointV") / s - top], [0.0, 0.0, 1.0]])
        r = np.array([[g(tr, f"r{i}{j}") for j in (1, 2, 3)] for i in (1, 2, 3)])
        centre = np.array([g(tr, a) for a in "xyz"]) / 1000.0
    except (KeyError, ValueError) as e:
        raise CalibrationError(f"{path.name}: camera {name!r} lacks or garbles {e}; "
                               "export the calibration again from Qualisys") from None
    rot = QUALISYS_TO_OPENCV @ r  # r's rows are the camera's axes in the lab; then the half turn about x
    return _checked(name, CalibratedCamera(name, k, dist, rot, -rot @ centre, (round(w), round(h))), path)


def read_qca(path: Path) -> list[CalibratedCamera]:
    """Qualisys ``.qca.txt`` (XML): the video cameras (``model`` containing "video" or "none"), in natural order
    of their serial."""
    try:
        root = ET.fromstring(path.read_bytes())
    except ET.ParseError as e:
        raise CalibrationError(f"{path.name} is not a readable Qualisys .qca.txt (XML: {e}); export it again "
                               "from Qualisys or give a Pose2Sim .toml") from None
    found = root.findall("cameras/camera")
    video = [c for c in found if any(m in c.get("model", "").lower() for m in ("video", "none"))]
    cams = [_qca_camera(c, path) for c in video]
    return sorted(cams, key=lambda c: natural_key(c.name))


def read_calibration(path: str | Path) -> list[CalibratedCamera]:
    """Every camera of a Pose2Sim ``.toml`` or a Qualisys ``.qca.txt``; :class:`CalibrationError` otherwise."""
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(f"calibration file {str(p)!r} not found; give the path of a Pose2Sim .toml or "
                               "a Qualisys .qca.txt")
    name = p.name.lower()
    if name.endswith(".toml"):
        cams = read_toml(p)
    elif name.endswith(".qca.txt") or name.endswith(".qca"):
        cams = read_qca(p)
    else:
        raise CalibrationError(f"{p.name} is not a calibration file this tool reads: give a Pose2Sim .toml or a "
                               "Qualisys .qca.txt")
    if not cams:
        raise CalibrationError(f"{p.name} holds no camera; give a Pose2Sim .toml or a Qualisys .qca.txt "
                               "with the cameras that filmed the clips")
    names = [c.name for c in cams]
    if len(set(names)) != len(names):
        raise CalibrationError(f"{p.name} names a camera twice ({', '.join(names)}); give each camera its own name")
    return cams


def write_toml(cameras: list[CalibratedCamera], path: str | Path) -> None:
    """Pose2Sim's ``.toml`` layout (round trip of :func:`read_toml`)."""
    fmt = lambda a: "[ " + ", ".join(repr(float(x)) for x in a) + "]"  # noqa: E731
    parts = []
    for c in cameras:
        k = c.K
        parts.append(
            f'[{c.name}]\nname = "{c.name}"\nsize = {fmt(c.size)}\n'
            f"matrix = [ {fmt(k[0])}, {fmt(k[1])}, {fmt(k[2])}]\n"
            f"distortions = {fmt(c.dist)}\nrotation = {fmt(rotation_vector(c.R))}\n"
            f"translation = {fmt(c.t)}\nfisheye = false\n\n")
    Path(path).write_text("".join(parts) + "[metadata]\nadjusted = false\nerror = 0.0\n", encoding="utf-8")
