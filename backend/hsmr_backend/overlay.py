"""``RESULT.overlay.mp4``: the fitted skeleton (SKEL joint centres projected with the result's camera) drawn over
the footage, so a user can judge the fit at a glance. Reads only result-file arrays. With several calibrated
cameras, one video per camera: the body seen through that camera (its intrinsics and lens distortion) over its
own clip, shifted by its frame offset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import video as V

MAX_SIDE = 1280  # the overlay is a preview: cap its size so writing it stays cheap

# left side (model +x, subject's left) warm, right side cool, trunk white
_LEFT = {6, 7, 8, 9, 10, 19, 20, 21, 22, 23}
_RIGHT = {1, 2, 3, 4, 5, 14, 15, 16, 17, 18}


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of (..., 3) OpenCV camera-frame points to (..., 2) pixels."""
    z = np.maximum(points_cam[..., 2:3], 1e-6)
    uv = points_cam[..., :2] / z
    return uv * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def _color(j: int) -> tuple[int, int, int]:
    return (0, 140, 255) if j in _LEFT else (255, 160, 0) if j in _RIGHT else (240, 240, 240)


def draw_frame(frame: np.ndarray, joints_2d: np.ndarray, parents: np.ndarray, valid: bool,
               keypoints: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
    """Draw one frame's skeleton (pixels in the full-size frame; ``scale`` maps them onto ``frame``)."""
    th = max(2, int(round(frame.shape[0] / 300)))
    pts = np.round(joints_2d * scale).astype(np.int32)
    if keypoints is not None:
        for x, y, c in keypoints:
            if c > 0.5:
                cv2.circle(frame, (int(x * scale), int(y * scale)), th, (0, 255, 0), -1, cv2.LINE_AA)
    for j, p in enumerate(parents):
        if p >= 0:
            cv2.line(frame, tuple(pts[p]), tuple(pts[j]), _color(j), th, cv2.LINE_AA)
    for j in range(len(pts)):
        cv2.circle(frame, tuple(pts[j]), th + 1, _color(j), -1, cv2.LINE_AA)
    if not valid:
        cv2.putText(frame, "subject lost (bridged)", (10, 10 + 12 * th), cv2.FONT_HERSHEY_SIMPLEX, th / 3,
                    (0, 0, 255), th, cv2.LINE_AA)
    return frame


def lens_pixels(points_cam: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels of the real image: the pinhole ``K``, then OpenCV's lens
    distortion (k1, k2, p1, p2[, k3])."""
    pts = np.array(points_cam, np.float64).reshape(-1, 3)
    pts[:, 2] = np.maximum(pts[:, 2], 1e-6)
    if not np.any(dist):
        uv = project(pts, K)
    else:
        uv = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, np.asarray(dist, np.float64))[0]
    return uv.reshape(*np.shape(points_cam)[:-1], 2)


@dataclass
class OverlayView:
    """What one overlay draws: per fitted frame the joints and the fitted keypoints in the clip's own pixels, and
    which of the clip's frames shows each (clip frame = the result's ``frame_index`` + ``frame_offset``)."""

    joints_2d: np.ndarray  # (T, 24, 2)
    keypoints: np.ndarray  # (T, 33, 3)
    frame_offset: int = 0


def overlay_view(result: Mapping[str, np.ndarray], camera: int | None = None) -> OverlayView:
    """The single-camera fields (``camera`` None), or camera ``camera`` of a calibrated result: its pose, refined
    intrinsics and distortion; its undistorted keypoints are distorted back onto its clip."""
    if camera is None:
        K = np.asarray(result["camera_K"], np.float64)
        return OverlayView(project(np.asarray(result["joints_cam"], np.float64), K), np.asarray(result["keypoints_2d"]))
    K = np.asarray(result["cameras_K"][camera], np.float64)
    dist = np.asarray(result["cameras_distortion"][camera], np.float64)
    world_to_cam = np.linalg.inv(np.asarray(result["cameras_to_world"][camera], np.float64))
    joints_cam = np.asarray(result["joints_world"], np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    kps = np.array(result["keypoints_2d_views"][camera], np.float64)
    rays = np.stack([(kps[..., 0] - K[0, 2]) / K[0, 0], (kps[..., 1] - K[1, 2]) / K[1, 1],
                     np.ones(kps.shape[:-1])], -1)
    kps[..., :2] = lens_pixels(rays, K, dist)
    return OverlayView(lens_pixels(joints_cam, K, dist), kps, int(result["cameras_frame_offset"][camera]))


def write_overlay(source: V.FrameSource, stride: int, result: Mapping[str, np.ndarray],
                  path: str | os.PathLike, progress: Callable[[str, int, int], None] | None = None,
                  max_side: int = MAX_SIDE, camera: int | None = None) -> Path:
    """Write the overlay video (mp4v) of the result's fitted frames atomically: a partly written file never carries
    the final name. ``stride``: the conversion's --stride (the clip's frames between fitted ones are skipped);
    ``camera``: which camera of a calibrated result ``source`` is (None: the single camera)."""
    path = Path(path)
    view = overlay_view(result, camera)
    frame_index = np.asarray(result["frame_index"])
    row = {int(f) + view.frame_offset: i for i, f in enumerate(frame_index)}
    if not row:
        raise OSError("no frames to draw")
    clip_range = V.FrameRange(min(row), max(row) + 1, stride)
    parents = np.asarray(result["joint_parents"])
    valid = np.asarray(result["valid"])
    w, h = source.size
    s = min(1.0, max_side / max(w, h))
    size = (int(round(w * s)) // 2 * 2, int(round(h * s)) // 2 * 2)
    tmp = path.with_name(path.stem + ".part.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(result["fps"]), size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {tmp} (mp4v codec unavailable)")
    n = len(row)
    done = 0
    sx = size[0] / w

    def scaled():  # runs in the decoder thread (bilinear: INTER_AREA costs ~10x more for a preview)
        for idx, frame in source.frames(clip_range):
            yield idx, (cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR) if s < 1.0 else frame)

    try:
        for idx, img in V.prefetch(scaled()):
            i = row.get(idx)
            if i is None:
                continue
            writer.write(draw_frame(img, view.joints_2d[i], parents, bool(valid[i]), view.keypoints[i], sx))
            done += 1
            if progress is not None:
                progress("overlay", done, n)
    finally:
        writer.release()
    if done == 0:
        tmp.unlink(missing_ok=True)
        raise OSError("no frames to draw")
    os.replace(tmp, path)
    return path
