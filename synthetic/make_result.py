"""Build valid result files for tests and benchmarks: random smooth in-limit poses through a body model.

``make_result(path, n_frames=..., body=...)``:
- ``body="synthetic"``: a small SKEL-like body made here (24 joints at T-pose positions, random rest frames,
  a point-cloud skin with smooth weights, random pose correctives); motion through an independent numpy
  SKEL chain (``fk_skel``) and linear blend skinning. Needs nothing but numpy.
- any other value (``"open"``, ``"fake"``, a pkl path): the backend's ``hsmr_backend.skel.load_body`` (or a SKEL
  built from ``synthetic/fake_skel.py``); used when the backend's SKEL core is available.
- ``"auto"``: the backend's open body when available, else synthetic.

The camera is static, 4 m in front of the subject, looking at it; joints_cam/joints_world/keypoints agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hsmr_blender.io import rig_math
from hsmr_contract import dofs, result_format
from hsmr_contract.meta import Meta

# Model frame (SMPL): y up, subject faces +z, +x = subject's left. Rough adult T-pose joint centres.
_TPOSE_RIGHT = {
    "pelvis": (0.0, 0.93, 0.0), "femur_r": (-0.09, 0.87, 0.0), "tibia_r": (-0.10, 0.48, 0.0),
    "talus_r": (-0.10, 0.08, -0.02), "calcn_r": (-0.10, 0.04, -0.06), "toes_r": (-0.10, 0.02, 0.12),
    "lumbar_body": (0.0, 1.03, -0.03), "thorax": (0.0, 1.22, -0.04), "head": (0.0, 1.52, 0.0),
    "scapula_r": (-0.07, 1.42, -0.06), "humerus_r": (-0.18, 1.42, -0.04), "ulna_r": (-0.45, 1.42, -0.04),
    "radius_r": (-0.47, 1.42, -0.02), "hand_r": (-0.71, 1.42, -0.02),
}


def _rest_joints() -> np.ndarray:
    out = []
    for name in dofs.JOINT_NAMES:
        if name in _TPOSE_RIGHT:
            out.append(_TPOSE_RIGHT[name])
        else:
            x, y, z = _TPOSE_RIGHT[name[:-1] + "r"]
            out.append((-x, y, z))
    return np.asarray(out, dtype=np.float64)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def dof_table() -> dict[str, np.ndarray]:
    return {
        "dof_names": np.array(dofs.DOF_NAMES),
        "dof_joint": np.array([d.joint for d in dofs.DOFS], dtype=np.int64),
        "dof_axis": np.array([d.axis for d in dofs.DOFS], dtype=np.float64),
        "dof_flip": np.array([d.flip for d in dofs.DOFS], dtype=np.float64),
        "dof_limits": np.array([(d.lower, d.upper) for d in dofs.DOFS], dtype=np.float64),
        "joint_names": np.array(dofs.JOINT_NAMES),
        "joint_parents": np.array(dofs.PARENTS, dtype=np.int64),
    }


def smooth_poses(n_frames: int, rng: np.random.Generator, margin: float = 0.02) -> np.ndarray:
    """Random smooth motion inside every limit (unlimited pelvis DoFs wander within ±π/2)."""
    t = np.linspace(0.0, 1.0, n_frames)[:, None]
    n = dofs.N_DOFS
    phase = rng.uniform(0, 2 * np.pi, size=(3, n))
    freq = rng.uniform(0.5, 3.0, size=(3, n))
    wave = sum(np.sin(2 * np.pi * freq[k] * t * max(1.0, n_frames / 120) + phase[k]) for k in range(3)) / 3.0
    lo = np.array([d.lower if d.limited else -np.pi / 2 for d in dofs.DOFS])
    hi = np.array([d.upper if d.limited else np.pi / 2 for d in dofs.DOFS])
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * (1 - margin)
    return mid + half * np.clip(wave, -1, 1)


def _synthetic_body(rng: np.random.Generator, n_verts: int) -> dict[str, np.ndarray]:
    joints = _rest_joints()
    frames = np.stack([_random_rotation(rng) for _ in range(24)])
    parents = np.array(dofs.PARENTS)
    # skin: points scattered around each segment (joint -> first child, or a short stub for leaves)
    kids = {j: [k for k in range(24) if parents[k] == j] for j in range(24)}
    per = max(n_verts // 24, 8)
    verts, owner = [], []
    for j in range(24):
        end = joints[kids[j][0]] if kids[j] else joints[j] + 0.5 * (joints[j] - joints[parents[j]])
        s = rng.uniform(0, 1, size=(per, 1))
        pts = joints[j] + s * (end - joints[j]) + rng.normal(scale=0.03, size=(per, 3))
        verts.append(pts)
        owner.append(np.full(per, j))
    v = np.concatenate(verts)
    own = np.concatenate(owner)
    d = np.linalg.norm(v[:, None, :] - joints[None], axis=2)
    w = np.exp(-((d / 0.08) ** 2))
    w[np.arange(len(v)), own] += 1.0
    w[w < 1e-3] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    n = len(v)
    idx = np.arange(n - 2)
    faces = np.stack([idx, idx + 1, idx + 2], axis=1)
    posedirs = rng.normal(scale=0.004, size=(207, n, 3))
    return {"rest_joints": joints, "rest_frames": frames, "skin_rest_verts": v, "skin_faces": faces,
            "skin_weights": w, "skin_posedirs": posedirs}


def _synthetic_offsets(poses: np.ndarray) -> np.ndarray:
    """Small smooth translations for the translating joints (spine arcs, scapula ellipsoid), zero elsewhere."""
    out = np.zeros((poses.shape[0], 24, 3))
    for j in (11, 12, 13, 14, 19):
        q = poses[:, [d.index for d in dofs.dofs_of_joint(j)]]
        out[:, j] = 0.03 * np.sin(q[:, :3] * np.array([1.0, 1.7, 0.6]))
    return out


def _camera(portrait: bool) -> dict[str, np.ndarray]:
    """A static camera 4.5 m in front of the subject; portrait = the shared clips' 1080x1920 frames."""
    c2w = np.eye(4)
    # OpenCV camera axes in the world: x right = +x, y down = -z, z forward = +y
    c2w[:3, :3] = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    c2w[:3, 3] = (0.2, -4.5, 1.0)
    if portrait:
        k = np.array([[1500.0, 0, 530.0], [0, 1500.0, 990.0], [0, 0, 1.0]])
        return {"camera_to_world": c2w, "camera_K": k, "image_size": np.array([1080, 1920])}
    k = np.array([[1100.0, 0, 610.0], [0, 1100.0, 380.0], [0, 0, 1.0]])
    return {"camera_to_world": c2w, "camera_K": k, "image_size": np.array([1280, 720])}


def _project(k: np.ndarray, cam: np.ndarray) -> np.ndarray:
    uv = cam @ k.T
    return uv[..., :2] / uv[..., 2:3]


def synthetic_result(n_frames: int = 30, seed: int = 0, n_verts: int = 1200, stride: int = 1,
                     correctives: bool = True, portrait: bool = False, fps: float = 30.0,
                     video: str = "", bones: bool = False) -> dict[str, Any]:
    """A complete result dictionary (not yet validated) from the synthetic body."""
    rng = np.random.default_rng(seed)
    body = _synthetic_body(rng, n_verts)
    table = dof_table()
    poses = smooth_poses(n_frames, rng)
    t = np.linspace(0, 1, n_frames)[:, None]
    trans = np.concatenate([0.4 * np.sin(2 * np.pi * t), 0.02 * np.sin(6 * np.pi * t), 0.8 * t], axis=1)
    offsets = _synthetic_offsets(poses)
    res = {**table, **body}
    g = rig_math.fk_skel(res, poses, trans, offsets)
    joints_model = g[:, :, :3, 3]
    # pose features: vec(R_j - I) of joints 1..23 (a stand-in for SKEL's SMPL-slot mapping)
    rloc = np.einsum("tjab->tjab", g[:, :, :3, :3])
    pf = (rloc[:, 1:] - np.eye(3)).reshape(n_frames, 207)
    skin_mats = g.copy()
    skin_mats[:, :, :3, 3] -= np.einsum("tjab,jb->tja", g[:, :, :3, :3], body["rest_joints"])
    m2w = np.eye(4)
    m2w[:3, :3] = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # model y up -> world z up, faces -y
    joints_world = joints_model @ m2w[:3, :3].T + m2w[:3, 3]
    cam = _camera(portrait)
    w2c = np.linalg.inv(cam["camera_to_world"])
    joints_cam = joints_world @ w2c[:3, :3].T + w2c[:3, 3]
    uv = _project(cam["camera_K"], joints_cam)
    kp = np.concatenate([uv, np.ones((n_frames, 24, 1))], axis=2)
    res.update(
        body="synthetic", fps=fps / stride, frame_index=np.arange(n_frames) * stride,
        valid=np.ones(n_frames, dtype=bool), poses=poses, betas=np.zeros(10), trans=trans,
        joint_offsets=offsets, joints_cam=joints_cam, joints_world=joints_world, model_to_world=m2w,
        keypoint_names=np.array(list(dofs.JOINT_NAMES)), keypoints_2d=kp,
        reprojection_error_px=np.zeros(n_frames), fit_loss=np.zeros(n_frames),
        meta_json=Meta(producer="synthetic/make_result.py", mode="synthetic", source=video or None).to_json(),
        **cam,
    )
    if bones:  # small rigid "bone meshes": a strip of triangles near each joint
        per = 12
        bv = np.concatenate([body["rest_joints"][j] + rng.normal(scale=0.02, size=(per, 3)) for j in range(24)])
        idx = np.concatenate([j * per + np.arange(per - 2) for j in range(24)])
        res.update(bone_rest_verts=bv, bone_faces=np.stack([idx, idx + 1, idx + 2], axis=1),
                   bone_vertex_joint=np.repeat(np.arange(24), per))
    if correctives:
        res["pose_features"] = pf
    else:
        res.pop("skin_posedirs")
    # the backend's posed skin, for tests (not a result field)
    res["_skin_mats"] = skin_mats
    return res


def posed_skin(res: dict[str, Any], frame: int, correctives: bool) -> np.ndarray:
    """Expected skin (model frame, trans included) of one frame: the backend's own output when the result
    came from it, else LBS of the (corrected) rest skin through the independent numpy chain."""
    if "_skin" in res:
        return res["_skin" if correctives else "_skin_nc"][frame]
    v = np.asarray(res["skin_rest_verts"], dtype=np.float64)
    if correctives and "skin_posedirs" in res and "pose_features" in res:
        v = v + np.einsum("k,kvc->vc", res["pose_features"][frame], res["skin_posedirs"])
    mats = res["_skin_mats"][frame : frame + 1]
    return rig_math.lbs(v, res["skin_weights"], mats)[0]


def backend_result(n_frames: int = 30, body: str = "fake", seed: int = 0, tmp_dir: str | Path | None = None,
                   correctives: bool = True, portrait: bool = False, fps: float = 30.0, video: str = "",
                   **_synthetic_only: Any) -> dict[str, Any]:
    """A result from the backend's SKEL (``hsmr_backend.skel``): ``body`` = "fake" (synthetic/fake_skel.py's
    official-format pkl), "open", or a model path. Same extra keys as ``synthetic_result``."""
    import tempfile

    import torch

    from hsmr_backend import skel as skel_pkg
    from hsmr_backend.skel import SKEL
    from hsmr_backend.skel.data import SkelData

    rng = np.random.default_rng(seed)
    if body == "fake":
        from .fake_skel import write_fake_skel_pkl

        folder = Path(tmp_dir or tempfile.mkdtemp())
        src = write_fake_skel_pkl(folder / "skel_male.pkl", seed=seed)
    elif body == "open":
        src = next((p for p in skel_pkg.OPEN_BODY_CANDIDATES if p.is_file()), None)
        if src is None:
            raise FileNotFoundError("the open body is missing: python build.py assets")
    else:
        src = Path(body)
    # the body's arrays through the backend's own loader (its public data class, not the module's buffers)
    data = SkelData.from_official_pkl(src) if src.suffix == ".pkl" else SkelData.from_npz(src)
    model = SKEL(data)
    poses = smooth_poses(n_frames, rng)
    t = np.linspace(0, 1, n_frames)[:, None]
    trans = np.concatenate([0.4 * np.sin(2 * np.pi * t), 0.02 * np.sin(6 * np.pi * t), 0.8 * t], axis=1)
    betas = rng.normal(scale=0.7, size=(1, 10))
    with torch.no_grad():
        out = model(torch.as_tensor(poses, dtype=torch.float32), torch.as_tensor(betas, dtype=torch.float32),
                    torch.as_tensor(trans, dtype=torch.float32), pose_correctives=True)
        out_nc = model(torch.as_tensor(poses, dtype=torch.float32), torch.as_tensor(betas, dtype=torch.float32),
                       torch.as_tensor(trans, dtype=torch.float32), pose_correctives=False)
    n = lambda x: x.detach().cpu().numpy().astype(np.float64)  # noqa: E731
    m2w = np.eye(4)
    m2w[:3, :3] = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    joints_world = n(out.joints) @ m2w[:3, :3].T
    cam = _camera(portrait)
    w2c = np.linalg.inv(cam["camera_to_world"])
    joints_cam = joints_world @ w2c[:3, :3].T + w2c[:3, 3]
    kp = np.concatenate([_project(cam["camera_K"], joints_cam), np.ones((n_frames, 24, 1))], axis=2)
    res: dict[str, Any] = {
        **dof_table(), **cam,
        "body": "fake" if body == "fake" else str(body), "fps": fps, "frame_index": np.arange(n_frames),
        "valid": np.ones(n_frames, dtype=bool), "poses": poses, "betas": betas[0], "trans": trans,
        "joint_offsets": n(out.joint_offsets), "joints_cam": joints_cam, "joints_world": joints_world,
        "model_to_world": m2w, "rest_joints": n(out.joints_tpose[0]), "rest_frames": n(out.rest_frames[0]),
        "skin_rest_verts": n(out.v_shaped[0]), "skin_faces": n(out.skin_faces).astype(np.int64),
        "skin_weights": np.asarray(data.skin_weights, dtype=np.float64),
        "keypoint_names": np.array(list(dofs.JOINT_NAMES)), "keypoints_2d": kp,
        "reprojection_error_px": np.zeros(n_frames), "fit_loss": np.zeros(n_frames),
        "meta_json": Meta(producer="synthetic (backend SKEL)", mode="test", source=video or None).to_json(),
        "_skin": n(out.skin_verts), "_skin_nc": n(out_nc.skin_verts),
    }
    if correctives and data.posedirs is not None:
        res["skin_posedirs"] = np.asarray(data.posedirs, dtype=np.float64).transpose(2, 0, 1)  # (V,3,207) -> (207,V,3)
        res["pose_features"] = n(out.pose_features)
    return res


def make_result(path: str | Path, n_frames: int = 30, body: str = "auto", seed: int = 0, **kw: Any) -> dict[str, Any]:
    """Write a valid result file and return its arrays plus private ``_`` keys (for the expected skin).

    ``body``: "synthetic" (numpy only), "fake"/"open"/a model path (the backend's SKEL), or "auto" (the fake
    official-format SKEL when the backend's SKEL core is importable, else synthetic).
    """
    if body == "auto":
        try:
            import torch  # noqa: F401

            from hsmr_backend.skel import SKEL  # noqa: F401

            body = "fake"
        except ImportError:
            body = "synthetic"
    if body == "synthetic":
        res = synthetic_result(n_frames=n_frames, seed=seed, **kw)
    else:
        res = backend_result(n_frames=n_frames, body=body, seed=seed, tmp_dir=Path(path).parent, **kw)
    result_format.save(path, {k: v for k, v in res.items() if not k.startswith("_")})
    return res
