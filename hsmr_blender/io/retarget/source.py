"""The source motion: SKEL's joints and per-joint world rotations (relative to its rest pose) from a result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import rig_math

FOOT_POINTS = ("calcn_l", "calcn_r", "toes_l", "toes_r")  # heel, heel, foot tip, foot tip: foot_resting's columns
RESTING_FIELD = "foot_resting"
_REST_SPEED = 0.25  # m/s: a resting foot point moves slower than this
_REST_HEIGHT = 0.025  # m above its lowest height in the clip


@dataclass
class SourceMotion:
    """SKEL's motion in Blender's world (z up, metres)."""

    joint_names: list[str]
    joints: np.ndarray  # (T, 24, 3) joint centres
    rotations: np.ndarray  # (T, 24, 3, 3) each joint's rotation relative to its rest (T-pose) orientation
    rest_joints: np.ndarray  # (24, 3) the T-pose joint centres
    resting: np.ndarray  # (T, 4) bool: left heel, right heel, left foot tip, right foot tip rest on the ground
    resting_derived: bool  # True when the result had no foot_resting and the spells were found here
    fps: float

    def index(self, name: str) -> int:
        return self.joint_names.index(name)


def resting_from_motion(joints: np.ndarray, names: list[str], fps: float) -> np.ndarray:
    """Resting spells from the feet's speed and height (for results without ``foot_resting``)."""
    pts = joints[:, [names.index(n) for n in FOOT_POINTS]]  # (T, 4, 3)
    if len(pts) < 2:
        return np.ones(pts.shape[:2], dtype=bool)
    vel = np.gradient(pts, axis=0) * fps
    speed = np.linalg.norm(vel, axis=-1)
    low = np.percentile(pts[..., 2], 5, axis=0)
    return (speed < _REST_SPEED) & (pts[..., 2] < low + _REST_HEIGHT)


def source_from_result(result: dict[str, Any], frames: np.ndarray | None = None) -> SourceMotion:
    """``frames``: indices of the result's frames to use (all when None)."""
    sel = slice(None) if frames is None else np.asarray(frames)
    poses = np.asarray(result["poses"], dtype=np.float64)[sel]
    trans = np.asarray(result["trans"], dtype=np.float64)[sel]
    offsets = np.asarray(result["joint_offsets"], dtype=np.float64)[sel]
    g = rig_math.fk_skel(result, poses, trans, offsets)
    m2w = np.asarray(result["model_to_world"], dtype=np.float64)
    r, t = m2w[:3, :3], m2w[:3, 3]
    joints = g[..., :3, 3] @ r.T + t
    rotations = r @ g[..., :3, :3] @ r.T
    rest = np.asarray(result["rest_joints"], dtype=np.float64) @ r.T + t
    names = [str(n) for n in result["joint_names"]]
    fps = float(result["fps"])
    derived = RESTING_FIELD not in result
    if derived:
        resting = resting_from_motion(joints, names, fps)
    else:
        resting = np.asarray(result[RESTING_FIELD], dtype=bool)[sel]
        if resting.shape != (len(poses), 4):
            raise ValueError(f"result field {RESTING_FIELD!r} has shape {resting.shape}, expected (T, 4): convert "
                             "the clip again")
    return SourceMotion(names, joints, rotations, rest, resting, derived, fps)
