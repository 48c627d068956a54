"""The contract package (``hsmr_contract``) stands alone: numpy only, and its rotation maps agree with each other."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import hsmr_contract
from hsmr_contract import kinematics, rotations
from hsmr_contract.meta import Meta, MetaError

HEAVY = ("torch", "bpy", "cv2", "mediapipe", "matplotlib", "hsmr_backend", "hsmr_blender")


def test_every_module_imports_without_torch_bpy_opencv_or_mediapipe() -> None:
    names = [m.name for m in pkgutil.walk_packages(hsmr_contract.__path__, "hsmr_contract.")]
    assert {"hsmr_contract.dofs", "hsmr_contract.result_format", "hsmr_contract.export.trc"} <= set(names)
    code = (
        "import importlib, json, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def _random_rotations(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    return rotations.rotvec_to_rotmat(v / np.linalg.norm(v, axis=1, keepdims=True) * rng.uniform(0, np.pi, (n, 1)))


def test_rotvec_to_rotmat_is_a_rotation_about_its_axis() -> None:
    r = _random_rotations(50)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(rotations.rotvec_to_rotmat(np.array([0.0, 0.0, 0.3])), rotations.rot_z(0.3), atol=1e-15)
    axis = np.array([1.0, 2.0, -0.5])
    np.testing.assert_allclose(rotations.rotvec_to_rotmat(axis) @ axis, axis, atol=1e-12)  # the axis stays
    assert np.array_equal(rotations.rotvec_to_rotmat(np.zeros(3)), np.eye(3))


def test_euler_conventions_intrinsic_and_extrinsic() -> None:
    a = np.array([0.3, -0.7, 1.1])
    rx, ry, rz = rotations.rot_x, rotations.rot_y, rotations.rot_z
    np.testing.assert_allclose(rotations.euler_to_rotmat("ZXY", a), rz(a[0]) @ rx(a[1]) @ ry(a[2]), atol=1e-15)
    np.testing.assert_allclose(rotations.euler_to_rotmat("xyz", a), rz(a[2]) @ ry(a[1]) @ rx(a[0]), atol=1e-15)
    # intrinsic ABC equals extrinsic cba with the angles reversed
    np.testing.assert_allclose(rotations.euler_to_rotmat("YXZ", a), rotations.euler_to_rotmat("zxy", a[::-1]),
                               atol=1e-15)
    with pytest.raises(ValueError, match="three letters"):
        rotations.euler_to_rotmat("Zxy", a)


@pytest.mark.parametrize("convention", ["ZXY", "YXZ"])
def test_rotmat_to_euler_inverts_euler_to_rotmat(convention: str) -> None:
    r = _random_rotations(200, seed=1)
    angles = rotations.rotmat_to_euler(convention, r)
    assert np.all(np.abs(angles[:, 1]) <= np.pi / 2 + 1e-12)
    np.testing.assert_allclose(rotations.euler_to_rotmat(convention, angles), r, atol=1e-10)


def test_rotmat_to_euler_at_the_singularity_keeps_the_rotation() -> None:
    r = rotations.euler_to_rotmat("ZXY", np.array([0.4, np.pi / 2, 0.25]))
    a = rotations.rotmat_to_euler("ZXY", r, prev_last=np.array(0.25))
    np.testing.assert_allclose(a, [0.4, np.pi / 2, 0.25], atol=1e-6)
    for conv in ("ZXY", "YXZ"):
        r = rotations.euler_to_rotmat(conv, np.array([0.4, -np.pi / 2, 0.25]))
        a = rotations.rotmat_to_euler(conv, r)
        assert a[2] == 0.0
        np.testing.assert_allclose(rotations.euler_to_rotmat(conv, a), r, atol=1e-6)


def test_pelvis_angles_invert_pelvis_matrix() -> None:
    q = np.random.default_rng(2).uniform([-np.pi, -1.4, -np.pi], [np.pi, 1.4, np.pi], (100, 3))
    rp = kinematics.pelvis_matrix(q)
    rx, ry, rz = rotations.rot_x, rotations.rot_y, rotations.rot_z
    np.testing.assert_allclose(rp[7], ry(q[7, 2]) @ rx(q[7, 1]) @ rz(q[7, 0]), atol=1e-15)
    np.testing.assert_allclose(kinematics.pelvis_angles(rp), q, atol=1e-10)


def test_special_procrustes_and_registration() -> None:
    r = _random_rotations(20, seed=3)
    noisy = r + 1e-3 * np.random.default_rng(4).normal(size=r.shape)
    np.testing.assert_allclose(rotations.special_procrustes(noisy), r, atol=5e-3)
    np.testing.assert_allclose(rotations.special_procrustes(r), r, atol=1e-12)
    x = np.random.default_rng(5).normal(size=(30, 3))
    t = np.array([0.1, -2.0, 0.5])
    rot, trans = rotations.rigid_points_registration(x, x @ r[0].T + t)
    np.testing.assert_allclose(rot, r[0], atol=1e-10)
    np.testing.assert_allclose(trans, t, atol=1e-10)


CONVERT_META = {  # the keys convert writes, in its order (values as in a real keypoints-mode result)
    "producer": "hsmr-backend", "versions": {"hsmr_backend": "0.1.0", "numpy": "1.26.4"}, "mode": "keypoints",
    "body": "open", "device": "cpu", "source": "/data/clip.mp4", "source_fps": 60.0, "rotation": 0, "stride": 1,
    "frames": None, "focal_px": 1573.04, "focal_source": "default", "subject": "subject: the largest person",
    "candidates": [[255.7, 416.9, 546.1, 1153.9]], "options": {"mode": "auto", "up": "auto"},
    "world_notes": ["static camera assumed"], "left_right_swaps": 0, "leg_swaps": 0,
    "views": {"front": 100, "side": 0, "back": 0}, "feet_resting_share": 0.99, "up_source": "scene edges",
    "scene_focal_px": 1642.7, "camera_motion": {"moved": False, "shift": 0.0003, "rotation_deg": 0.02, "frame": 99,
                                                "pairs": 7},
}


def test_meta_round_trips_what_convert_writes() -> None:
    text = json.dumps(CONVERT_META)
    meta = Meta.from_json(text)
    assert meta.source == "/data/clip.mp4" and meta.source_fps == 60.0 and meta.extra == {}
    assert meta.to_json() == text
    vfr = {**CONVERT_META, "variable_frame_rate": True, "timestamps_ms": [0.0, 16.7, None]}
    assert Meta.from_json(json.dumps(vfr)).to_json() == json.dumps(vfr)


def test_meta_keeps_unknown_keys_and_refuses_non_objects() -> None:
    meta = Meta.from_json(json.dumps({"mode": "hsmr", "people": 2, "cameras": ["a", "b"]}))
    assert meta.mode == "hsmr" and meta.source is None and meta.extra == {"people": 2, "cameras": ["a", "b"]}
    assert json.loads(meta.to_json())["cameras"] == ["a", "b"]
    with pytest.raises(MetaError, match="not a JSON object"):
        Meta.from_json("[1, 2]")
    with pytest.raises(MetaError, match="source"):
        Meta.from_json('{"source": 3}')
