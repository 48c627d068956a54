"""Sanity checks of the synthetic result file the export tests build on (synthetic/export_clip.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsmr_contract import dofs
from hsmr_contract import result_format as rf
from synthetic.export_clip import pose_chain, rest_joints, save_synthetic, smooth_poses


def test_synthetic_result_is_valid_and_in_limits(tmp_path: Path):
    back = rf.load(save_synthetic(tmp_path))
    lim = back["dof_limits"]
    q = back["poses"]
    assert np.all((q >= lim[:, 0] - 1e-6) & (q <= lim[:, 1] + 1e-6))


def test_synthetic_chain_keeps_bone_lengths():
    rest = rest_joints()
    q = smooth_poses(5, 30.0)
    for t in range(5):
        _, pos = pose_chain(q[t], rest)
        for j, p in enumerate(dofs.PARENTS):
            if p >= 0:
                assert np.isclose(np.linalg.norm(pos[j] - pos[p]), np.linalg.norm(rest[j] - rest[p]))
