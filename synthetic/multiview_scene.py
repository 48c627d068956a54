"""A synthetic calibrated studio for the multi-view tests and benchmark: cameras on a ring looking at a moving
33-point person, or at the open body in a known motion."""

from __future__ import annotations

import numpy as np

from hsmr_backend.multiview import CalibratedCamera

SIZE = (1080, 1920)


def ring_cameras(n: int, radius: float = 3.5, height: float = 1.6, focal: float = 1500.0) -> list[CalibratedCamera]:
    """``n`` cameras around the world origin (z up), each looking at (0, 0, 1) m."""
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        centre = np.array([radius * np.cos(a), radius * np.sin(a), height])
        fwd = np.array([0.0, 0.0, 1.0]) - centre
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        r = np.stack([right, np.cross(fwd, right), fwd])
        k = np.array([[focal, 0.0, SIZE[0] / 2], [0.0, focal, SIZE[1] / 2], [0.0, 0.0, 1.0]])
        cams.append(CalibratedCamera(f"cam{i + 1:02d}", k, np.zeros(4), r, -r @ centre, SIZE))
    return cams


def person(frames: int, seed: int = 0, start=(0.0, 0.0)) -> np.ndarray:
    """(T,33,3) world points of a 'person': a fixed random point cloud 1.7 m tall whose parts sway over time."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.25, -0.15, 0.0], [0.25, 0.15, 1.7], (33, 3))
    t = np.arange(frames)[:, None, None] / 30.0
    phase = rng.uniform(0, 2 * np.pi, (1, 33, 1))
    sway = 0.08 * np.sin(2 * np.pi * 0.9 * t + phase) * np.array([1.0, 1.0, 0.6])
    tt = t[:, 0, 0]
    drift = np.stack([start[0] + 0.2 * np.sin(2 * np.pi * 0.3 * tt), start[1] + 0.2 * np.cos(2 * np.pi * 0.3 * tt),
                      0.1 * np.sin(2 * np.pi * 0.7 * tt)], -1)[:, None]
    return base[None] + sway + drift


def observe(points: np.ndarray, cams: list[CalibratedCamera], noise_px: float = 0.0, seed: int = 1) -> np.ndarray:
    """(V,T,33,3) pixels + confidence 1 of world points (T,33,3) in every camera."""
    rng = np.random.default_rng(seed)
    out = []
    for c in cams:
        xy = c.project(points) + rng.normal(0.0, noise_px, points.shape[:-1] + (2,)) if noise_px else c.project(points)
        out.append(np.concatenate([xy, np.ones(points.shape[:-1] + (1,))], -1))
    return np.stack(out)


MODEL_TO_LAB = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # model y up -> lab z up


def body_motion(frames: int, fps: float = 30.0) -> np.ndarray:
    """(T,46) a known in-limit motion: stepping in place with bending knees and swinging arms, turning slowly."""
    from hsmr_contract.dofs import DOFS, dof_index

    t = np.arange(frames) / fps
    q = np.zeros((frames, len(DOFS)))
    ph = 2 * np.pi * 0.8 * t
    for side, sign in (("r", 1.0), ("l", -1.0)):
        q[:, dof_index(f"hip_flexion_{side}")] = np.radians(25) + np.radians(25) * sign * np.sin(ph)
        q[:, dof_index(f"knee_angle_{side}")] = np.radians(35) + np.radians(30) * sign * np.sin(ph + 0.5)
        q[:, dof_index(f"ankle_angle_{side}")] = np.radians(8) * sign * np.sin(ph - 1.0)
        q[:, dof_index(f"elbow_flexion_{side}")] = np.radians(50) + np.radians(30) * sign * np.sin(ph)
    q[:, dof_index("shoulder_r_x")] = np.radians(70)
    q[:, dof_index("shoulder_l_x")] = -np.radians(70)
    q[:, dof_index("pelvis_rotation")] = 0.4 * np.sin(2 * np.pi * 0.2 * t)
    lim = np.array([(d.lower, d.upper) for d in DOFS])
    return np.clip(q, lim[:, 0], lim[:, 1])


def body_landmarks(model, regressor, poses: np.ndarray, betas: np.ndarray | None = None,
                   treadmill: bool = True) -> np.ndarray:
    """(T,33,3) the body's landmarks in the lab (z up), the lowest skin vertex on the floor in every frame and,
    horizontally, the pelvis over the origin (``treadmill``: walking in place, the stance foot slides back) or the
    talus joints' midpoint (feet planted, as benchmarks/accuracy/bench_angles_synthetic.py places its bodies)."""
    import torch

    with torch.no_grad():
        q = torch.as_tensor(poses, dtype=torch.float32)
        b = torch.zeros(len(q), 10) if betas is None else torch.as_tensor(betas, dtype=torch.float32)[None].expand(
            len(q), -1)
        out = model(q, b, torch.zeros(len(q), 3))
        lm = regressor.apply(out.skin_verts, out.joints).double().numpy() @ MODEL_TO_LAB.T
        verts = out.skin_verts.double().numpy() @ MODEL_TO_LAB.T
        joints = out.joints.double().numpy() @ MODEL_TO_LAB.T
    shift = np.zeros((len(q), 1, 3))
    shift[:, 0, :2] = -joints[:, 0, :2] if treadmill else -0.5 * (joints[:, 3, :2] + joints[:, 8, :2])
    shift[:, 0, 2] = -verts[..., 2].min(axis=1)
    return lm + shift
