"""SKEL q -> coordinates of a Rajagopal-style OpenSim full-body model (and the raw SKEL coordinates).

Numpy only. ``docs/biomechanics-export.md`` explains every choice; in short:

- 1-DoF joints with identical names (knee, ankle, subtalar, mtp, pro_sup) and the elbow/wrist are copied
  (SKEL's pin axes for ankle/subtalar/mtp are the Rajagopal ones).
- 3-DoF joints are re-sequenced, not copied: SKEL composes a joint as ``R3 R2 R1`` (first DoF about the fixed
  axes) while an OpenSim CustomJoint is body-fixed ``R1 R2 R3``; we build the rotation matrix and extract
  OpenSim's Z-X-Y angles, so the segment orientation is identical, not just similar for small angles.
- pelvis_tilt/list/rotation are the pelvis orientation in the OpenSim ground (the result's Blender world turned
  y-up: X = x, Y = z, Z = -y), pelvis_tx/ty/tz the pelvis joint centre in that ground (metres).
- lumbar_* = lumbar and thorax together (Rajagopal has one back joint between pelvis and torso).
- arm_* = scapula and shoulder together (humerus relative to the thorax). SKEL's zero has the arms abducted
  90 deg, Rajagopal's hangs them down: the SKEL rest is arm_add = -90 deg, which comes out of the rest frames
  (the humerus BSM frame is the thorax frame abducted by 90 deg).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..dofs import JOINT_NAMES
from ..kinematics import (
    BLENDER_TO_OPENSIM,
    euler_zxy_sequence,
    joint_rotations_bsm,
    local_rotations_model,
)
from ..rotations import special_procrustes

# Joint indices in SKEL's tree, from the DoF table; checked against the result's joint_names.
_J = {
    name: JOINT_NAMES.index(name)
    for name in ("pelvis", "femur_r", "femur_l", "lumbar_body", "thorax", "scapula_r", "humerus_r", "scapula_l",
                 "humerus_l")
}

# Rajagopal coordinates, in the model's CoordinateSet order.
RAJAGOPAL_COORDINATES: tuple[str, ...] = (
    "pelvis_tilt",
    "pelvis_list",
    "pelvis_rotation",
    "pelvis_tx",
    "pelvis_ty",
    "pelvis_tz",
    "hip_flexion_r",
    "hip_adduction_r",
    "hip_rotation_r",
    "knee_angle_r",
    "ankle_angle_r",
    "subtalar_angle_r",
    "mtp_angle_r",
    "hip_flexion_l",
    "hip_adduction_l",
    "hip_rotation_l",
    "knee_angle_l",
    "ankle_angle_l",
    "subtalar_angle_l",
    "mtp_angle_l",
    "lumbar_extension",
    "lumbar_bending",
    "lumbar_rotation",
    "arm_flex_r",
    "arm_add_r",
    "arm_rot_r",
    "elbow_flex_r",
    "pro_sup_r",
    "wrist_flex_r",
    "wrist_dev_r",
    "arm_flex_l",
    "arm_add_l",
    "arm_rot_l",
    "elbow_flex_l",
    "pro_sup_l",
    "wrist_flex_l",
    "wrist_dev_l",
)
TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")

# Rajagopal name <- SKEL name for the copied DoFs (same meaning, same sign, same zero).
COPIED: dict[str, str] = {
    **{
        f"{n}_{s}": f"{n}_{s}"
        for s in "rl"
        for n in ("knee_angle", "ankle_angle", "subtalar_angle", "mtp_angle", "pro_sup")
    },
    **{f"elbow_flex_{s}": f"elbow_flexion_{s}" for s in "rl"},
    **{f"wrist_flex_{s}": f"wrist_flexion_{s}" for s in "rl"},
    **{f"wrist_dev_{s}": f"wrist_deviation_{s}" for s in "rl"},
}

# arm_add at SKEL's q = 0: the humerus rest frame is the thorax frame turned by R_x(-90 deg) (right) /
# R_x(+90 deg) (left), i.e. 90 deg of abduction (documented value; the mapping reads it from rest_frames).
ARM_REST_ADD_DEG = -90.0


@dataclass(frozen=True)
class Offset:
    coordinate: str
    source: str
    offset_deg: float
    note: str


# The table that docs/biomechanics-export.md reproduces (a test keeps them in step).
OFFSETS: tuple[Offset, ...] = (
    Offset(
        "pelvis_tilt/list/rotation",
        "pelvis orientation in the OpenSim ground",
        0.0,
        "re-extracted as body-fixed Z-X-Y from the world orientation of the pelvis",
    ),
    Offset("pelvis_tx/ty/tz", "joints_world[:, 0] (Blender z up) -> (x, z, -y)", 0.0, "metres"),
    Offset("hip_flexion/adduction/rotation_r/_l", "hip_* (SKEL)", 0.0, "re-sequenced to body-fixed Z-X-Y"),
    Offset("knee_angle, ankle_angle, subtalar_angle, mtp_angle, pro_sup", "same name", 0.0, "copied"),
    Offset(
        "lumbar_extension/bending/rotation",
        "lumbar_* and thorax_* together",
        0.0,
        "single back joint; re-sequenced to Z-X-Y",
    ),
    Offset("arm_flex_r/_l", "scapula_* and shoulder_*_x/y/z together", 0.0, "humerus relative to the thorax"),
    Offset(
        "arm_add_r/_l",
        "scapula_* and shoulder_*_x/y/z together",
        ARM_REST_ADD_DEG,
        "SKEL q = 0 is a T-pose (arms abducted 90 deg); Rajagopal 0 has the arms down",
    ),
    Offset("arm_rot_r/_l", "scapula_* and shoulder_*_x/y/z together", 0.0, "humerus relative to the thorax"),
    Offset("elbow_flex", "elbow_flexion", 0.0, "copied"),
    Offset("wrist_flex / wrist_dev", "wrist_flexion / wrist_deviation", 0.0, "copied"),
)


class ExportError(ValueError):
    """A result that cannot be exported; the message says what is wrong."""


def _check_tree(result: Mapping[str, np.ndarray]) -> None:
    names = [str(n) for n in result["joint_names"]]
    for name, j in _J.items():
        if j >= len(names) or names[j] != name:
            raise ExportError(
                f"result's joint {j} is {names[j] if j < len(names) else None!r}, expected {name!r}: "
                "not a SKEL-family result"
            )


def dof_names(result: Mapping[str, np.ndarray]) -> list[str]:
    return [str(n) for n in result["dof_names"]]


def source_fps(result: Mapping[str, np.ndarray]) -> float:
    """Frame rate of the source video: ``fps`` times the frame stride seen in ``frame_index``."""
    fi = np.asarray(result["frame_index"], dtype=np.int64)
    stride = 1
    if fi.size > 1:
        d = np.diff(fi)
        stride = max(1, int(round(float(np.median(d[d > 0])))) if np.any(d > 0) else 1)
    return float(result["fps"]) * stride


def times(result: Mapping[str, np.ndarray]) -> np.ndarray:
    """Seconds of each fitted frame on the source video's clock: frame_index / source fps."""
    return np.asarray(result["frame_index"], dtype=np.float64) / source_fps(result)


def pelvis_translation(result: Mapping[str, np.ndarray]) -> np.ndarray:
    """Pelvis joint centre (T, 3) in the OpenSim ground (y up), metres."""
    return np.asarray(result["joints_world"], dtype=np.float64)[:, 0] @ BLENDER_TO_OPENSIM.T


def skel_motion(result: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The 46 SKEL coordinates in degrees (SKEL names, q order) then pelvis_tx/ty/tz in metres."""
    q = np.degrees(np.asarray(result["poses"], dtype=np.float64))
    return [*dof_names(result), *TRANSLATIONS], np.column_stack([q, pelvis_translation(result)])


def _rotations(result: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rp = joint_rotations_bsm(
        result["poses"], result["dof_joint"], result["dof_axis"], result["dof_flip"], len(result["joint_names"])
    )
    return rp, local_rotations_model(rp, result["rest_frames"])


def rajagopal_motion(result: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Rajagopal-style coordinates (degrees; pelvis_t* in metres), columns in RAJAGOPAL_COORDINATES order."""
    _check_tree(result)
    names = dof_names(result)
    rp, loc = _rotations(result)
    m = np.asarray(result["rest_frames"], dtype=np.float64)
    out: dict[str, np.ndarray] = {}

    # pelvis: orientation of its BSM frame in the ground = C A M_0 Rp_0 (A: rotation of model_to_world)
    a = special_procrustes(np.asarray(result["model_to_world"])[:3, :3])
    r_pelvis = BLENDER_TO_OPENSIM @ a @ m[0] @ rp[:, 0]
    e = euler_zxy_sequence(r_pelvis)
    out["pelvis_tilt"], out["pelvis_list"], out["pelvis_rotation"] = e.T
    t = pelvis_translation(result)
    for k, n in enumerate(TRANSLATIONS):
        out[n] = t[:, k]

    # Every other joint: orientation of the child body frame relative to the parent body frame,
    # B_p^T B_c with B_j = Rglob_j M_j, i.e. M_p^T (R_a ... R_c) M_c. The BSM frames are OpenSim's anatomical
    # frames, so this is what the Rajagopal coordinates measure, rest offsets included: for SKEL-format bodies
    # M_thorax^T M_humerus = R_x(-90 deg) (right; +90 left), the T-pose's arm_add = -90 deg.
    def rel(parent: int, chain: tuple[int, ...]) -> np.ndarray:
        r = loc[:, chain[0]]
        for j in chain[1:]:
            r = r @ loc[:, j]
        return m[parent].T @ r @ m[chain[-1]]

    # hips; Rajagopal's left axes are (z, -x, -y)
    for side in "rl":
        s = 1.0 if side == "r" else -1.0
        e = euler_zxy_sequence(rel(_J["pelvis"], (_J[f"femur_{side}"],)))
        out[f"hip_flexion_{side}"], out[f"hip_adduction_{side}"], out[f"hip_rotation_{side}"] = (
            e[:, 0],
            s * e[:, 1],
            s * e[:, 2],
        )

    # trunk: lumbar then thorax, relative to the pelvis (one back joint in Rajagopal)
    e = euler_zxy_sequence(rel(_J["pelvis"], (_J["lumbar_body"], _J["thorax"])))
    out["lumbar_extension"], out["lumbar_bending"], out["lumbar_rotation"] = e.T

    # arms: scapula then humerus, relative to the thorax (no scapula in Rajagopal)
    for side in "rl":
        s = 1.0 if side == "r" else -1.0
        e = euler_zxy_sequence(rel(_J["thorax"], (_J[f"scapula_{side}"], _J[f"humerus_{side}"])))
        out[f"arm_flex_{side}"], out[f"arm_add_{side}"], out[f"arm_rot_{side}"] = e[:, 0], s * e[:, 1], s * e[:, 2]

    q = np.asarray(result["poses"], dtype=np.float64)
    for raj, sk in COPIED.items():
        out[raj] = q[:, names.index(sk)]

    cols = []
    for n in RAJAGOPAL_COORDINATES:
        cols.append(out[n] if n in TRANSLATIONS else np.degrees(out[n]))
    return list(RAJAGOPAL_COORDINATES), np.column_stack(cols)
