"""Moved to ``hsmr_contract.rotations`` / ``hsmr_contract.kinematics``; kept until fit.py imports them."""

import numpy as np

from hsmr_contract.kinematics import pelvis_angles, pelvis_angles_sequence, pelvis_matrix  # noqa: F401
from hsmr_contract.rotations import rigid_points_registration, rot_x, rot_y, rot_z  # noqa: F401
from hsmr_contract.rotations import special_procrustes as orthonormalize  # noqa: F401


def kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The rotation of ``rigid_points_registration``."""
    return rigid_points_registration(src, dst, w)[0]
