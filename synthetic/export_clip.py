"""A synthetic, self-consistent result file for the export tests and benchmark (no SKEL model needed).

The body is a stick figure in SKEL's tree with a T-pose rest skeleton (model frame: y up, +x = subject's left,
+z anterior), BSM rest frames R_y(-90 deg) (BSM x anterior -> model +z, BSM z right -> model -x; the arms'
abducted by 90 deg, as in SKEL-format bodies), a skin
of one-hot-skinned points around each bone, smooth in-limit poses, and joints posed by an independent chain
computed with scipy here (not with the exporter's own kinematics).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hsmr_contract import dofs
from hsmr_contract import result_format as rf

REST_RIGHT = {  # right side; the left mirrors x
    "femur": (-0.09, 0.90, 0.0),
    "tibia": (-0.09, 0.50, 0.0),
    "talus": (-0.09, 0.08, -0.01),
    "calcn": (-0.09, 0.05, -0.04),
    "toes": (-0.09, 0.02, 0.12),
    "scapula": (-0.04, 1.42, -0.05),
    "humerus": (-0.18, 1.42, -0.02),
    "ulna": (-0.46, 1.42, -0.02),
    "radius": (-0.47, 1.42, -0.02),
    "hand": (-0.72, 1.42, -0.02),
}
REST_CENTRE = {
    "pelvis": (0.0, 0.95, 0.0),
    "lumbar_body": (0.0, 1.05, -0.02),
    "thorax": (0.0, 1.25, -0.02),
    "head": (0.0, 1.52, 0.0),
}
M_REST = Rotation.from_euler("y", -90, degrees=True).as_matrix()
# As in SKEL-format bodies (checked on the open body): every BSM rest frame is the pelvis's, except the arm
# chains, whose frames are abducted 90 deg (R_x(-90) right, R_x(+90) left) because q = 0 is a T-pose.
REST_FRAMES = np.tile(M_REST, (24, 1, 1))
REST_FRAMES[15:19] = M_REST @ Rotation.from_euler("x", -90, degrees=True).as_matrix()
REST_FRAMES[20:24] = M_REST @ Rotation.from_euler("x", 90, degrees=True).as_matrix()


def rest_joints() -> np.ndarray:
    out = np.zeros((24, 3))
    for j, name in enumerate(dofs.JOINT_NAMES):
        if name in REST_CENTRE:
            out[j] = REST_CENTRE[name]
        else:
            base, side = name.rsplit("_", 1)
            x, y, z = REST_RIGHT[base]
            out[j] = (x if side == "r" else -x, y, z)
    return out


def bsm_rotation(q: np.ndarray, joint: int) -> np.ndarray:
    """Rp_j with scipy: R_last ... R_first, each exp(flip q axis)."""
    r = Rotation.identity()
    for d in dofs.dofs_of_joint(joint):
        r = Rotation.from_rotvec(d.flip * q[d.index] * np.asarray(d.axis)) * r
    return r.as_matrix()


def pose_chain(q: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations (24,3,3) and joint positions (24,3) in the model frame (before trans)."""
    rot = np.zeros((24, 3, 3))
    pos = np.zeros((24, 3))
    for j, p in enumerate(dofs.PARENTS):
        local = REST_FRAMES[j] @ bsm_rotation(q, j) @ REST_FRAMES[j].T
        if p < 0:
            rot[j], pos[j] = local, rest[j]
        else:
            rot[j] = rot[p] @ local
            pos[j] = pos[p] + rot[p] @ (rest[j] - rest[p])
    return rot, pos


def skin(rest: np.ndarray, per_bone: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Points on a 5 cm cylinder around each bone (joint -> first child, or a short stub), one-hot weights."""
    rng = np.random.default_rng(1)
    verts, owner = [], []
    children = {p: j for j, p in reversed(list(enumerate(dofs.PARENTS))) if p >= 0}
    for j in range(24):
        a = rest[j]
        b = rest[children[j]] if j in children else a + np.array([0.0, 0.08, 0.0])
        axis = b - a
        axis = axis / np.linalg.norm(axis)
        u = np.cross(axis, [0.3, 0.5, 0.8])
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        s = rng.random(per_bone)
        phi = rng.random(per_bone) * 2 * np.pi
        pts = a + s[:, None] * (b - a) + 0.05 * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)
        verts.append(pts)
        owner += [j] * per_bone
    w = np.zeros((len(owner), 24))
    w[np.arange(len(owner)), owner] = 1.0
    return np.concatenate(verts), w


def smooth_poses(T: int, fps: float, seed: int = 0) -> np.ndarray:
    """In-limit sinusoids (80 % of each range); the pelvis sways by up to 10 degrees."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    q = np.zeros((T, 46))
    for d in dofs.DOFS:
        f, ph = 0.3 + rng.random(), rng.random() * 2 * np.pi
        if d.limited:
            mid, half = (d.lower + d.upper) / 2, (d.upper - d.lower) / 2
            q[:, d.index] = mid + 0.8 * half * np.sin(2 * np.pi * f * t + ph)
        else:
            q[:, d.index] = np.radians(10) * np.sin(2 * np.pi * f * t + ph)
    return q


# model (y up) -> Blender world (z up): +90 deg about x, a 30 deg yaw about world z, and an offset
MODEL_TO_WORLD = np.eye(4)
MODEL_TO_WORLD[:3, :3] = Rotation.from_euler("xz", [90, 30], degrees=True).as_matrix()
MODEL_TO_WORLD[:3, 3] = (0.4, -1.2, 0.05)


def synthetic_result(
    T: int = 40,
    fps: float = 30.0,
    poses: np.ndarray | None = None,
    model_to_world: np.ndarray | None = None,
    stride: int = 1,
) -> dict[str, np.ndarray]:
    q = smooth_poses(T, fps) if poses is None else np.asarray(poses, dtype=np.float64)
    T = q.shape[0]
    m2w = MODEL_TO_WORLD if model_to_world is None else model_to_world
    rest = rest_joints()
    verts, weights = skin(rest)
    trans = np.column_stack([np.linspace(0, 0.5, T), np.zeros(T), np.linspace(0, 0.2, T)])
    joints_model = np.stack([pose_chain(q[t], rest)[1] for t in range(T)]) + trans[:, None]
    joints_world = joints_model @ m2w[:3, :3].T + m2w[:3, 3]
    # a static OpenCV camera 4 m in front of the subject at chest height, looking back at it (model frame:
    # y up, the subject faces +z), carried into the world like the body
    cam_in_model = np.eye(4)
    cam_in_model[:3, :3] = np.diag([1.0, -1.0, -1.0])  # columns: camera x right, y down, z forward
    cam_in_model[:3, 3] = (0.2, 0.3, 4.0)
    camera_to_world = m2w @ cam_in_model
    joints_cam = (joints_model - cam_in_model[:3, 3]) @ cam_in_model[:3, :3]
    rng = np.random.default_rng(2)
    kp = rng.random((T, 33, 3))
    kp[..., 2] = 0.9
    valid = np.ones(T, bool)
    err = 3.0 + 0.2 * np.sin(np.arange(T))
    if T > 20:
        kp[5, :, 2] = 0.2  # a low-confidence frame
        valid[10:13] = False  # subject lost for three frames
        err[20] = 60.0  # one bad fit
    f32 = np.float32
    return {
        "meta_json": json.dumps({"producer": "synthetic/export_clip.py", "mode": "synthetic"}),
        "body": "open",
        "fps": f32(fps),
        "frame_index": np.arange(T) * stride,
        "valid": valid,
        "dof_names": np.array(dofs.DOF_NAMES),
        "dof_joint": np.array([d.joint for d in dofs.DOFS]),
        "dof_axis": np.array([d.axis for d in dofs.DOFS], f32),
        "dof_flip": np.array([d.flip for d in dofs.DOFS], f32),
        "dof_limits": np.array([(d.lower, d.upper) for d in dofs.DOFS], f32),
        "joint_names": np.array(dofs.JOINT_NAMES),
        "joint_parents": np.array(dofs.PARENTS),
        "poses": q.astype(f32),
        "betas": np.zeros(10, f32),
        "trans": trans.astype(f32),
        "joint_offsets": np.zeros((T, 24, 3), f32),
        "joints_cam": joints_cam.astype(f32),
        "joints_world": joints_world.astype(f32),
        "rest_joints": rest.astype(f32),
        "rest_frames": REST_FRAMES.astype(f32),
        "skin_rest_verts": verts.astype(f32),
        "skin_faces": np.zeros((1, 3), np.int64),
        "skin_weights": weights.astype(f32),
        "model_to_world": m2w.astype(f32),
        "camera_to_world": camera_to_world.astype(f32),
        "camera_K": np.array([[1000, 0, 320], [0, 1000, 240], [0, 0, 1]], f32),
        "image_size": np.array([640, 480]),
        "keypoint_names": np.array([f"kp{i}" for i in range(33)]),
        "keypoints_2d": kp.astype(f32),
        "reprojection_error_px": err.astype(f32),
        "fit_loss": (err / 100).astype(f32),
    }


def save_synthetic(tmp_path: Path, name: str = "clip.npz", **kw) -> Path:
    return rf.save(tmp_path / name, synthetic_result(**kw))
