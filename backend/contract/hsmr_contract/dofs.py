"""SKEL's kinematic tree and its 46 degrees of freedom: the single source for every other module.

Pure Python (no numpy, no torch) so that it can be serialised into result files and read anywhere.
Facts from the public SKEL model description (see ``shared/reference/skel.md`` §3, §4, §7):

- q is consumed joint by joint (0..23), ``JOINTS[j].n_dofs`` values each, in table order.
- Each DoF rotates about ``axis`` (in the joint's BSM frame, *not* re-normalised) by ``flip * q``;
  a joint's rotation is ``R_last @ ... @ R_first`` (the first listed DoF is applied first).
- Limits are in radians; SKEL's table plus HSMR's hip and shoulder limits; the left scapula elevation
  range, written reversed in SKEL, is normalised. The pelvis (global orientation) is unlimited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PI = math.pi


@dataclass(frozen=True)
class Joint:
    index: int
    name: str
    parent: int  # -1 for the root
    n_dofs: int
    kind: str  # "custom" | "walker_knee" | "pin" | "constant_curvature" | "ellipsoid"


@dataclass(frozen=True)
class Dof:
    index: int
    name: str
    joint: int
    axis: tuple[float, float, float]  # in the joint's BSM frame, as SKEL stores it (not normalised)
    flip: float  # q is multiplied by this before rotating about ``axis``
    lower: float  # radians; -inf where unlimited
    upper: float  # radians; +inf where unlimited

    @property
    def limited(self) -> bool:
        return math.isfinite(self.lower) and math.isfinite(self.upper)


JOINTS: tuple[Joint, ...] = (
    Joint(0, "pelvis", -1, 3, "custom"),
    Joint(1, "femur_r", 0, 3, "custom"),
    Joint(2, "tibia_r", 1, 1, "walker_knee"),
    Joint(3, "talus_r", 2, 1, "pin"),
    Joint(4, "calcn_r", 3, 1, "pin"),
    Joint(5, "toes_r", 4, 1, "pin"),
    Joint(6, "femur_l", 0, 3, "custom"),
    Joint(7, "tibia_l", 6, 1, "walker_knee"),
    Joint(8, "talus_l", 7, 1, "pin"),
    Joint(9, "calcn_l", 8, 1, "pin"),
    Joint(10, "toes_l", 9, 1, "pin"),
    Joint(11, "lumbar_body", 0, 3, "constant_curvature"),
    Joint(12, "thorax", 11, 3, "constant_curvature"),
    Joint(13, "head", 12, 3, "constant_curvature"),
    Joint(14, "scapula_r", 12, 3, "ellipsoid"),
    Joint(15, "humerus_r", 14, 3, "custom"),
    Joint(16, "ulna_r", 15, 1, "custom"),
    Joint(17, "radius_r", 16, 1, "custom"),
    Joint(18, "hand_r", 17, 2, "custom"),
    Joint(19, "scapula_l", 12, 3, "ellipsoid"),
    Joint(20, "humerus_l", 19, 3, "custom"),
    Joint(21, "ulna_l", 20, 1, "custom"),
    Joint(22, "radius_l", 21, 1, "custom"),
    Joint(23, "hand_l", 22, 2, "custom"),
)

JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)
PARENTS: tuple[int, ...] = tuple(j.parent for j in JOINTS)
N_JOINTS = len(JOINTS)


def _pin_axis(e0: float, e1: float, e2: float) -> tuple[float, float, float]:
    """Axis of an OpenSim PinJoint: R_X(e0) R_Y(e1) R_Z(e2) (0, 0, 1)."""
    # R_Z leaves (0,0,1) unchanged; R_Y(e1)(0,0,1) = (sin e1, 0, cos e1); then R_X(e0).
    x, y, z = math.sin(e1), 0.0, math.cos(e1)
    c, s = math.cos(e0), math.sin(e0)
    return (x, c * y - s * z, s * y + c * z)


_X = (1.0, 0.0, 0.0)
_Y = (0.0, 1.0, 0.0)
_Z = (0.0, 0.0, 1.0)
_TALUS = _pin_axis(0.175895, -0.105208, 0.0186622)  # same on both sides (SKEL quirk, kept)
_CALCN_R = _pin_axis(-1.76818999, 0.906223, 1.8196)
_CALCN_L = _pin_axis(1.76818999, -0.906223, 1.8196)
_TOES_R = _pin_axis(-3.14159, 0.619901, 0.0)
_TOES_L = _pin_axis(-3.14159, -0.619901, 0.0)
_ELBOW_R = (0.0494, 0.0366, 0.99810825)
_ELBOW_L = (-0.0494, -0.0366, 0.99810825)
_PROSUP_R = (-0.01716099, 0.99266564, -0.11966796)
_PROSUP_L = (0.01716099, -0.99266564, -0.11966796)

INF = math.inf
_HIP = ((-PI / 4, 3 * PI / 4), (-PI / 4, PI / 6), (-PI / 4, PI / 4))
_FOOT = (-PI / 4, PI / 4)
_SPINE = (-PI / 4, PI / 4)

# (name, joint, axis, flip, (lower, upper))
_ROWS: tuple[tuple[str, int, tuple[float, float, float], float, tuple[float, float]], ...] = (
    ("pelvis_tilt", 0, _Z, 1.0, (-INF, INF)),
    ("pelvis_list", 0, _X, 1.0, (-INF, INF)),
    ("pelvis_rotation", 0, _Y, 1.0, (-INF, INF)),
    ("hip_flexion_r", 1, _Z, 1.0, _HIP[0]),
    ("hip_adduction_r", 1, _X, 1.0, _HIP[1]),
    ("hip_rotation_r", 1, _Y, 1.0, _HIP[2]),
    ("knee_angle_r", 2, _Z, -1.0, (0.0, 3 * PI / 4)),
    ("ankle_angle_r", 3, _TALUS, 1.0, _FOOT),
    ("subtalar_angle_r", 4, _CALCN_R, 1.0, _FOOT),
    ("mtp_angle_r", 5, _TOES_R, 1.0, _FOOT),
    ("hip_flexion_l", 6, _Z, 1.0, _HIP[0]),
    ("hip_adduction_l", 6, _X, -1.0, _HIP[1]),
    ("hip_rotation_l", 6, _Y, -1.0, _HIP[2]),
    ("knee_angle_l", 7, _Z, -1.0, (0.0, 3 * PI / 4)),
    ("ankle_angle_l", 8, _TALUS, 1.0, _FOOT),
    ("subtalar_angle_l", 9, _CALCN_L, 1.0, _FOOT),
    ("mtp_angle_l", 10, _TOES_L, 1.0, _FOOT),
    ("lumbar_bending", 11, _X, 1.0, (-PI / 6, PI / 6)),
    ("lumbar_extension", 11, _Z, 1.0, _SPINE),
    ("lumbar_twist", 11, _Y, 1.0, _SPINE),
    ("thorax_bending", 12, _X, 1.0, _SPINE),
    ("thorax_extension", 12, _Z, 1.0, _SPINE),
    ("thorax_twist", 12, _Y, 1.0, _SPINE),
    ("head_bending", 13, _X, 1.0, _SPINE),
    ("head_extension", 13, _Z, 1.0, _SPINE),
    ("head_twist", 13, _Y, 1.0, _SPINE),
    ("scapula_abduction_r", 14, _Y, 1.0, (-0.628, 0.628)),
    ("scapula_elevation_r", 14, _Z, -1.0, (-0.4, -0.1)),
    ("scapula_upward_rot_r", 14, _X, -1.0, (-0.190, 0.319)),
    ("shoulder_r_x", 15, _X, 1.0, (-PI / 2, PI / 2 + 1.5)),
    ("shoulder_r_y", 15, _Y, 1.0, (-PI / 2, PI / 2)),
    ("shoulder_r_z", 15, _Z, 1.0, (-PI / 2, PI / 2)),
    ("elbow_flexion_r", 16, _ELBOW_R, 1.0, (0.0, 3 * PI / 4)),
    ("pro_sup_r", 17, _PROSUP_R, 1.0, (-3 * PI / 8, 3 * PI / 8)),
    ("wrist_flexion_r", 18, _X, 1.0, (-PI / 2, PI / 2)),
    ("wrist_deviation_r", 18, _Z, -1.0, (-PI / 4, PI / 4)),
    ("scapula_abduction_l", 19, _Y, 1.0, (-0.628, 0.628)),
    ("scapula_elevation_l", 19, _Z, 1.0, (-0.4, -0.1)),  # SKEL writes (-0.1, -0.4): normalised
    ("scapula_upward_rot_l", 19, _X, 1.0, (-0.210, 0.219)),
    ("shoulder_l_x", 20, _X, 1.0, (-PI / 2 - 1.5, PI / 2)),
    ("shoulder_l_y", 20, _Y, 1.0, (-PI / 2, PI / 2)),
    ("shoulder_l_z", 20, _Z, 1.0, (-PI / 2, PI / 2)),
    ("elbow_flexion_l", 21, _ELBOW_L, 1.0, (0.0, 3 * PI / 4)),
    ("pro_sup_l", 22, _PROSUP_L, 1.0, (-PI / 2, PI / 2)),
    ("wrist_flexion_l", 23, _X, -1.0, (-PI / 2, PI / 2)),
    ("wrist_deviation_l", 23, _Z, -1.0, (-PI / 4, PI / 4)),
)

DOFS: tuple[Dof, ...] = tuple(
    Dof(i, name, joint, axis, flip, lo, hi) for i, (name, joint, axis, flip, (lo, hi)) in enumerate(_ROWS)
)
DOF_NAMES: tuple[str, ...] = tuple(d.name for d in DOFS)
N_DOFS = len(DOFS)


def dofs_of_joint(joint: int) -> tuple[Dof, ...]:
    """The DoFs of one joint, in composition order (first applied first)."""
    return tuple(d for d in DOFS if d.joint == joint)


def dof_index(name: str) -> int:
    """Index of a DoF by its SKEL name; raises KeyError with the valid names otherwise."""
    try:
        return DOF_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown SKEL DoF {name!r}; valid names: {', '.join(DOF_NAMES)}") from None


def _check_table() -> None:
    assert N_JOINTS == 24 and N_DOFS == 46
    for j in JOINTS:
        assert len(dofs_of_joint(j.index)) == j.n_dofs, j
    # q is consumed joint by joint, in order
    assert [d.joint for d in DOFS] == sorted(d.joint for d in DOFS)
    for d in DOFS:
        assert d.lower < d.upper, d


_check_table()
