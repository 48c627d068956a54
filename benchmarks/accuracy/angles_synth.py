"""Known motions, body shapes and the comparison maths of ``bench_angles_synthetic.py`` (numpy only).

Ground truth and result are compared in the same terms:
- every non-root DoF directly (the joint DoFs do not depend on the world frame);
- the pelvis only relative to the world's up direction: SKEL composes the root as ``R_y(q2)·R_x(q1)·R_z(q0)``
  in the y-up model frame (heading outermost), and the result's model frame is world-aligned (its y is the
  fitted ground normal, docs/fitting.md "World frame"), so ``pelvis_tilt`` (q0) and ``pelvis_list`` (q1) mean
  "relative to up" on both sides whatever the heading; the heading itself is left out;
- the Rajagopal coordinates of ``hsmr_contract.export.opensim_map`` computed on both, each with its own body's
  rest frames, without the pelvis (heading-dependent) coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hsmr_contract import dofs
from hsmr_contract.export.opensim_map import RAJAGOPAL_COORDINATES, rajagopal_motion

# betas of the open body: 0 height (1 unit ~ 7 cm), 1 weight, 2 muscle, 3 gender (+ towards female), 4 proportions
SHAPES: dict[str, tuple[float, ...]] = {
    "average": (0.0, 0.0, 0.0, 0.0, 0.0),
    "tall-light": (2.0, -1.5, 0.5, -1.5, 0.0),
    "short-heavy": (-2.0, 2.0, 0.0, 1.5, 0.0),
}
MOTIONS = ("walk", "squat", "sit-to-stand")

# rows of the per-joint table: label -> SKEL DoF names averaged (both sides)
SKEL_ROWS: dict[str, list[str]] = {
    "pelvis tilt (vs up)": ["pelvis_tilt"],
    "pelvis list (vs up)": ["pelvis_list"],
    "hip flexion": ["hip_flexion_r", "hip_flexion_l"],
    "hip adduction": ["hip_adduction_r", "hip_adduction_l"],
    "hip rotation": ["hip_rotation_r", "hip_rotation_l"],
    "knee flexion": ["knee_angle_r", "knee_angle_l"],
    "ankle dorsiflexion": ["ankle_angle_r", "ankle_angle_l"],
    "lumbar extension": ["lumbar_extension"],
    "lumbar bending/twist": ["lumbar_bending", "lumbar_twist"],
    "thorax (3)": ["thorax_bending", "thorax_extension", "thorax_twist"],
    "shoulder (x/y/z)": [f"shoulder_{s}_{a}" for s in "rl" for a in "xyz"],
    "elbow flexion": ["elbow_flexion_r", "elbow_flexion_l"],
}
SAGITTAL = ["hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l", "ankle_angle_r", "ankle_angle_l"]
RAJ_ROWS: dict[str, list[str]] = {
    "hip_flexion": ["hip_flexion_r", "hip_flexion_l"],
    "hip_adduction": ["hip_adduction_r", "hip_adduction_l"],
    "hip_rotation": ["hip_rotation_r", "hip_rotation_l"],
    "knee_angle": ["knee_angle_r", "knee_angle_l"],
    "ankle_angle": ["ankle_angle_r", "ankle_angle_l"],
    "lumbar_extension": ["lumbar_extension"],
    "lumbar_bending": ["lumbar_bending"],
    "lumbar_rotation": ["lumbar_rotation"],
    "arm_flex": ["arm_flex_r", "arm_flex_l"],
    "arm_add": ["arm_add_r", "arm_add_l"],
    "arm_rot": ["arm_rot_r", "arm_rot_l"],
    "elbow_flex": ["elbow_flex_r", "elbow_flex_l"],
}
RAJ_PELVIS = ("pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz")
# the rotational coordinates averaged for the "all rotational DoFs" figure (OpenCap's summary is over the
# model's rotational DoFs): Rajagopal's non-pelvis rotations plus pelvis tilt/list relative to up
RAJ_ALL = [n for n in RAJAGOPAL_COORDINATES if n not in RAJ_PELVIS]


def betas_vector(name: str, k: int = 10) -> np.ndarray:
    b = np.zeros(k)
    b[: len(SHAPES[name])] = SHAPES[name]
    return b


def _smooth01(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero slope at both ends (x clipped to [0, 1])."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def motion(name: str, n: int, fps: float) -> np.ndarray:
    """(n, 46) radians of a known motion, every limited DoF clipped into its limits.

    Signs (OpenSim's, as SKEL's): hip flexion, lumbar extension, ankle dorsiflexion, knee flexion positive;
    pelvis_tilt > 0 tilts the pelvis backwards, so a forward trunk lean is negative."""
    t = np.arange(n) / fps
    u = np.arange(n) / max(1, n - 1)  # 0..1 over the clip
    q = np.zeros((n, dofs.N_DOFS))
    ix = dofs.dof_index
    deg = np.radians

    def both(dof: str, r: np.ndarray | float, lft: np.ndarray | float) -> None:
        q[:, ix(f"{dof}_r")] = r
        q[:, ix(f"{dof}_l")] = lft

    # arms hang by default (T-pose is shoulder x = 0; x = +-75 deg brings them down), elbows a bit bent
    q[:, ix("shoulder_r_x")] = deg(75)
    q[:, ix("shoulder_l_x")] = -deg(75)
    both("elbow_flexion", deg(15), deg(15))
    if name == "walk":  # in place, one stride per second, gait-like ranges
        ph = 2 * np.pi * 1.0 * t
        hip = lambda p: deg(10) + deg(20) * np.sin(p)  # noqa: E731  -10..30 deg
        knee = lambda p: deg(5) + deg(55) * np.clip(np.sin(p + 0.6), 0, None) ** 2  # noqa: E731 swing peak
        ank = lambda p: deg(8) * np.sin(p - 1.0)  # noqa: E731
        both("hip_flexion", hip(ph), hip(ph + np.pi))
        both("knee_angle", knee(ph), knee(ph + np.pi))
        both("ankle_angle", ank(ph), ank(ph + np.pi))
        both("hip_adduction", deg(3) * np.sin(ph), deg(3) * np.sin(ph + np.pi))
        q[:, ix("pelvis_list")] = deg(4) * np.sin(ph)
        q[:, ix("pelvis_rotation")] = deg(6) * np.sin(ph)
        q[:, ix("lumbar_twist")] = -deg(5) * np.sin(ph)
        q[:, ix("shoulder_r_z")] = -deg(20) * np.sin(ph)  # arms swing against the legs
        q[:, ix("shoulder_l_z")] = -deg(20) * np.sin(ph)
        both("elbow_flexion", deg(20) + deg(10) * np.sin(ph), deg(20) - deg(10) * np.sin(ph))
    elif name == "squat":  # down and up once, trunk leaning forward, arms forward for balance
        # thighs about horizontal at the bottom (thigh from vertical = hip flexion + pelvis tilt = 90 deg) and
        # feet flat (foot pitch = tilt + hip - knee + ankle = 0)
        s = np.sin(np.pi * u) ** 2
        q[:, ix("pelvis_tilt")] = -deg(25) * s
        both("hip_flexion", deg(115) * s, deg(115) * s)
        both("knee_angle", deg(110) * s + deg(3), deg(110) * s + deg(3))
        both("ankle_angle", deg(20) * s, deg(20) * s)
        q[:, ix("lumbar_extension")] = -deg(10) * s
        q[:, ix("shoulder_r_z")] = deg(70) * s
        q[:, ix("shoulder_l_z")] = deg(70) * s
    elif name == "sit-to-stand":  # seated, lean forward, rise, stand (a box is the chair)
        lean = _smooth01(u / 0.35)
        rise = _smooth01((u - 0.3) / 0.45)
        q[:, ix("pelvis_tilt")] = -deg(5) - deg(30) * lean * (1 - rise) + deg(5) * rise
        both("hip_flexion", *(2 * [deg(85) + deg(25) * lean * (1 - rise) - deg(85) * rise]))
        both("knee_angle", *(2 * [deg(90) * (1 - rise) + deg(3)]))
        both("ankle_angle", *(2 * [deg(12) * (1 - rise) + deg(6) * lean * (1 - rise)]))
        q[:, ix("lumbar_extension")] = -deg(10) * lean * (1 - rise)
        q[:, ix("shoulder_r_z")] = deg(30) * lean * (1 - rise)
        q[:, ix("shoulder_l_z")] = deg(30) * lean * (1 - rise)
    else:
        raise ValueError(f"unknown motion {name!r}; choose from {', '.join(MOTIONS)}")
    lim = np.array([(d.lower, d.upper) for d in dofs.DOFS])
    return np.clip(q, lim[:, 0], lim[:, 1])


def dof_errors_deg(gt: np.ndarray, est: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame absolute error (degrees) of every DoF compared: all but ``pelvis_rotation`` (the heading)."""
    d = np.degrees(np.asarray(est, np.float64) - np.asarray(gt, np.float64))
    d = (d + 180.0) % 360.0 - 180.0  # the pelvis angles are unbounded
    return {n: np.abs(d[:, k]) for k, n in enumerate(dofs.DOF_NAMES) if n != "pelvis_rotation"}


def raj_errors_deg(gt_result: Mapping[str, np.ndarray], est_result: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame absolute error (degrees) of the non-pelvis Rajagopal coordinates, each side mapped with its
    own rest frames."""
    names, g = rajagopal_motion(gt_result)
    _, e = rajagopal_motion(est_result)
    d = (e - g + 180.0) % 360.0 - 180.0
    return {n: np.abs(d[:, k]) for k, n in enumerate(names) if n not in RAJ_PELVIS}


def gt_result(est: Mapping[str, np.ndarray], poses: np.ndarray, rest_frames: np.ndarray) -> dict[str, np.ndarray]:
    """A result-like dict of the ground truth on the frames of ``est`` for ``rajagopal_motion``: the DoF
    table, joint names and world rotation of the result, the true poses and the true body's rest frames."""
    keys = ("dof_names", "dof_joint", "dof_axis", "dof_flip", "joint_names", "frame_index", "fps", "model_to_world")
    out = {k: np.asarray(est[k]) for k in keys}
    out.update(
        poses=np.asarray(poses, np.float64),
        rest_frames=np.asarray(rest_frames, np.float64),
        joints_world=np.zeros((len(poses), len(est["joint_names"]), 3)),
    )
    return out


def mean_over(errs: Mapping[str, np.ndarray], names: list[str]) -> float:
    return float(np.mean([errs[n].mean() for n in names]))
