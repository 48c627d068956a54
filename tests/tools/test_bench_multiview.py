"""The Qualisys calibration reader of benchmarks/accuracy/pose2sim_demo.py, on a calibration written
here from a known OpenCV camera."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmarks.accuracy import pose2sim_demo as mv
from hsmr_backend.scene import pitch_roll_deg

SUB = 64.0  # sensor sub-pixels per image pixel, as in the Pose2Sim demo's calibration


def _qca(serial: str, r_cv: np.ndarray, centre_m: np.ndarray, f: float, c: tuple[float, float]) -> str:
    """A camera entry in Qualisys' layout: rows of ``transform`` are its axes in the lab (looking along -z, y
    up in the image), position in mm, intrinsics in sub-pixels."""
    r_q = np.diag([1.0, -1.0, -1.0]) @ r_cv
    t = " ".join(f'r{i + 1}{j + 1}="{r_q[i, j]!r}"' for i in range(3) for j in range(3))
    x, y, z = (1000.0 * centre_m).tolist()
    return (f'<camera active="1" serial="{serial}" viewrotation="0"><transform {t} x="{x}" y="{y}" z="{z}"/>'
            f'<intrinsic centerPointU="{c[0] * SUB}" centerPointV="{c[1] * SUB}" focalLengthU="{f * SUB}" '
            f'focalLengthV="{f * SUB}" sensorMaxU="{1088 * SUB}" sensorMaxV="{1920 * SUB}"/></camera>')


def test_qualisys_cameras_read_back_as_opencv_cameras():
    rng = np.random.default_rng(0)
    # a camera 3 m from the lab origin, 1.9 m up, looking at the origin with a little roll
    centre = np.array([2.0, -2.2, 1.9])
    fwd = -centre / np.linalg.norm(centre)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    roll = Rotation.from_rotvec(fwd * 0.2).as_matrix()
    r_cv = np.stack([roll @ right, roll @ down, fwd])  # rows: the camera's x, y, z in the lab
    text = "<calibration><cameras>" + _qca("camA", r_cv, centre, 1680.0, (530.0, 950.0)) + "</cameras></calibration>"
    cam = mv.read_qca(text)["camA"]
    np.testing.assert_allclose(cam["R"], r_cv, atol=1e-12)
    np.testing.assert_allclose(cam["C"], centre, atol=1e-9)
    assert cam["f"] == 1680.0 and cam["c"] == (530.0, 950.0)
    np.testing.assert_allclose(cam["up"], r_cv[:, 2], atol=1e-12)  # the lab's +z in camera axes
    pitch, roll = pitch_roll_deg(cam["up"])
    assert pitch == pytest.approx(np.degrees(np.arcsin(-fwd[2])))  # looking down at the origin
    assert pitch > 20 and abs(roll) == pytest.approx(np.degrees(0.2), abs=0.5)  # rolled 0.2 rad about its axis
    # projection matches the camera it was written from (a 1080-wide frame is the 1088-wide one, centred)
    pts = rng.normal([0.0, 0.0, 1.0], 0.5, (20, 3))
    pc = (pts - centre) @ r_cv.T
    want = np.stack([1680.0 * pc[:, 0] / pc[:, 2] + 526.0, 1680.0 * pc[:, 1] / pc[:, 2] + 950.0], -1)
    h = np.hstack([pts, np.ones((20, 1))]) @ mv.projection(cam, 1080).T
    np.testing.assert_allclose(h[:, :2] / h[:, 2:], want, atol=1e-6)
    # the lab's origin is in front of the camera, and up points up in the image
    assert (pc[:, 2] > 0).all() and cam["up"][1] < 0


def test_thigh_inclination_ignores_how_tilt_and_hip_flexion_split_it():
    from benchmarks.accuracy.bench_multiview_fit import dof_differences
    from hsmr_contract.dofs import N_DOFS, dof_index

    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 0.3, (10, N_DOFS))
    b = a.copy()
    shift = np.radians(12.0)  # the pelvis 12° further back, both hips 12° more flexed: the thighs stay
    b[:, dof_index("pelvis_tilt")] += shift
    for side in "rl":
        b[:, dof_index(f"hip_flexion_{side}")] -= shift
    d = dof_differences(b, a)
    assert d["hip flexion"] == pytest.approx(12.0) and d["pelvis tilt"] == pytest.approx(12.0)
    assert d["hip flexion + pelvis tilt"] == pytest.approx(0.0, abs=1e-9)
    assert d["knee"] == 0.0
    b[:, dof_index("hip_flexion_r")] += np.radians(4.0)  # one thigh moves: half of it in the mean of both sides
    assert dof_differences(b, a)["hip flexion + pelvis tilt"] == pytest.approx(2.0)
