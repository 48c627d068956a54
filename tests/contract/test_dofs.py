"""The DoF table against the published SKEL facts (independent numbers from skel.md §4, §7)."""

import math

import numpy as np
import pytest

from hsmr_contract import dofs


def test_table_shape_and_order():
    assert len(dofs.DOFS) == 46 and len(dofs.JOINTS) == 24
    assert dofs.PARENTS == (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 12, 14, 15, 16, 17, 12, 19, 20, 21, 22)
    assert [j.n_dofs for j in dofs.JOINTS] == [3, 3, 1, 1, 1, 1, 3, 1, 1, 1, 1, 3, 3, 3, 3, 3, 1, 1, 2, 3, 3, 1, 1, 2]
    assert dofs.DOF_NAMES[6] == "knee_angle_r" and dofs.DOF_NAMES[45] == "wrist_deviation_l"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ankle_angle_r", (-0.10501, -0.17402, 0.97913)),
        ("ankle_angle_l", (-0.10501, -0.17402, 0.97913)),
        ("subtalar_angle_r", (0.78718, 0.60475, -0.12095)),
        ("subtalar_angle_l", (-0.78718, -0.60475, -0.12095)),
        ("mtp_angle_r", (0.58095, 0.0, -0.81394)),
        ("mtp_angle_l", (-0.58095, 0.0, -0.81394)),
    ],
)
def test_pin_axes_match_published_values(name, expected):
    axis = dofs.DOFS[dofs.dof_index(name)].axis
    np.testing.assert_allclose(axis, expected, atol=2e-5)


def test_flips_and_limits():
    flips = {d.name: d.flip for d in dofs.DOFS}
    assert flips["knee_angle_r"] == flips["knee_angle_l"] == -1
    assert (flips["hip_flexion_l"], flips["hip_adduction_l"], flips["hip_rotation_l"]) == (1, -1, -1)
    assert (flips["scapula_abduction_r"], flips["scapula_elevation_r"], flips["scapula_upward_rot_r"]) == (1, -1, -1)
    assert (flips["wrist_flexion_l"], flips["wrist_deviation_l"]) == (-1, -1)
    lim = {d.name: (d.lower, d.upper) for d in dofs.DOFS}
    assert lim["knee_angle_r"] == (0.0, 3 * math.pi / 4)
    assert lim["scapula_elevation_l"] == (-0.4, -0.1)  # normalised from SKEL's reversed entry
    assert lim["hip_flexion_r"] == (-math.pi / 4, 3 * math.pi / 4)
    assert lim["shoulder_l_x"] == (-math.pi / 2 - 1.5, math.pi / 2)
    assert not any(dofs.DOFS[i].limited for i in range(3))
    assert all(d.limited for d in dofs.DOFS[3:])


def test_unknown_dof_name_is_a_clear_error():
    with pytest.raises(KeyError, match="valid names"):
        dofs.dof_index("knee")
