"""A small stand-in body for fitter tests and the synthetic benchmark when no SKEL-family body is at hand.

It has SKEL's 24 joints, 46 DoFs, axes, flips and composition order (from ``hsmr_contract.dofs``), a
hand-made T-pose skeleton (metres, model frame: y up, subject faces +z, +x = subject's left), one rest
frame ``M = R_y(-90°)`` for every joint (BSM x anterior, y up, z right -> model frame), no spine/scapula
translations, and 33 "skin vertices" rigidly attached to joints at the MediaPipe landmark places. Like the
body model it has ``rest_state(betas)`` and ``pose(rest, poses, trans, ...)`` (the fitter's ``BodyModel``),
and its call is ``model(poses, betas, trans, pose_correctives=..., bone_mesh=..., skin_vertex_ids=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hsmr_backend.fit import BodyModel
from hsmr_contract.dofs import DOFS, JOINTS, PARENTS


@dataclass
class Track:
    """The fields of a LandmarkTrack the fitter reads: kp2d (T,33,3) px + confidence, kp3d (T,33,3), valid."""

    kp2d: np.ndarray
    kp3d: np.ndarray
    valid: np.ndarray
    fps: float = 30.0


_REST = np.array([
    [0.0, 0.95, 0.0],  # 0 pelvis
    [-0.09, 0.90, 0.0], [-0.09, 0.50, 0.0], [-0.09, 0.09, -0.01], [-0.09, 0.05, -0.05], [-0.09, 0.02, 0.13],
    [0.09, 0.90, 0.0], [0.09, 0.50, 0.0], [0.09, 0.09, -0.01], [0.09, 0.05, -0.05], [0.09, 0.02, 0.13],
    [0.0, 1.05, -0.03], [0.0, 1.28, -0.03], [0.0, 1.52, 0.0],  # lumbar, thorax, head
    [-0.04, 1.40, -0.05], [-0.19, 1.42, -0.03], [-0.46, 1.42, -0.03], [-0.48, 1.42, -0.02], [-0.72, 1.42, -0.02],
    [0.04, 1.40, -0.05], [0.19, 1.42, -0.03], [0.46, 1.42, -0.03], [0.48, 1.42, -0.02], [0.72, 1.42, -0.02],
])

# MediaPipe's 33 landmarks: (attached joint, rest position)
_LM = [
    (13, (0.0, 1.62, 0.11)),  # nose
    (13, (0.015, 1.66, 0.095)), (13, (0.035, 1.66, 0.09)), (13, (0.05, 1.66, 0.085)),  # left eye in/eye/out
    (13, (-0.015, 1.66, 0.095)), (13, (-0.035, 1.66, 0.09)), (13, (-0.05, 1.66, 0.085)),
    (13, (0.075, 1.63, 0.0)), (13, (-0.075, 1.63, 0.0)),  # ears
    (13, (0.025, 1.58, 0.095)), (13, (-0.025, 1.58, 0.095)),  # mouth left/right
    (20, (0.19, 1.42, -0.03)), (15, (-0.19, 1.42, -0.03)),  # shoulders
    (21, (0.46, 1.42, -0.03)), (16, (-0.46, 1.42, -0.03)),  # elbows
    (23, (0.72, 1.42, -0.02)), (18, (-0.72, 1.42, -0.02)),  # wrists
    (23, (0.80, 1.41, -0.05)), (18, (-0.80, 1.41, -0.05)),  # pinky
    (23, (0.82, 1.42, 0.0)), (18, (-0.82, 1.42, 0.0)),  # index
    (23, (0.76, 1.42, 0.04)), (18, (-0.76, 1.42, 0.04)),  # thumb
    (6, (0.09, 0.90, 0.0)), (1, (-0.09, 0.90, 0.0)),  # hips
    (7, (0.09, 0.50, 0.0)), (2, (-0.09, 0.50, 0.0)),  # knees
    (8, (0.09, 0.09, -0.01)), (3, (-0.09, 0.09, -0.01)),  # ankles
    (9, (0.09, 0.03, -0.07)), (4, (-0.09, 0.03, -0.07)),  # heels
    (10, (0.09, 0.01, 0.16)), (5, (-0.09, 0.01, 0.16)),  # foot index
]
LANDMARK_JOINT = np.array([j for j, _ in _LM])
LANDMARK_REST = np.array([p for _, p in _LM], dtype=np.float64)


@dataclass
class ToyRest:
    joints: torch.Tensor  # (Br,24,3)
    rest_frames: torch.Tensor  # (Br,24,3,3)
    landmarks: torch.Tensor  # (Br,33,3) the landmark "vertices" at rest


@dataclass
class ToyOutput:
    joints: torch.Tensor  # (B,24,3)
    joints_tpose: torch.Tensor  # (B,24,3)
    rest_frames: torch.Tensor  # (B,24,3,3)
    global_transforms: torch.Tensor  # (B,24,4,4)
    skin_verts: torch.Tensor  # (B,n,3) the landmark "vertices" (subset when asked)
    joint_offsets: torch.Tensor  # (B,24,3) zeros


def _axis_rots(axes: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
    """Rodrigues for unit axes (D,3) and angles (B,D) -> (B,D,3,3)."""
    x, y, z = axes[:, 0], axes[:, 1], axes[:, 2]
    o = torch.zeros_like(x)
    kk = torch.stack([torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)], -2)
    s, c = torch.sin(ang)[..., None, None], torch.cos(ang)[..., None, None]
    return torch.eye(3) + s * kk + (1 - c) * (kk @ kk)


class ToyBody(torch.nn.Module, BodyModel):
    """The stand-in body; implements the fitter's BodyModel (rest_state once per shape, then pose)."""

    name = "toy"

    def __init__(self) -> None:
        super().__init__()
        m = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # R_y(-90°)
        self.register_buffer("M", m)
        self.register_buffer("rest", torch.tensor(_REST, dtype=torch.float32))
        self.register_buffer("lm_rest", torch.tensor(LANDMARK_REST, dtype=torch.float32))
        axes = torch.tensor([d.axis for d in DOFS], dtype=torch.float32)
        self.register_buffer("axes_n", axes / axes.norm(dim=1, keepdim=True))
        self.register_buffer("flips", torch.tensor([d.flip for d in DOFS], dtype=torch.float32))
        self.joint_dofs = [[d.index for d in DOFS if d.joint == j] for j in range(24)]

    def shaped_rest(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stature (beta0) scales everything about the floor; beta1 widens (x)."""
        b0 = betas[:, 0:1, None] if betas.shape[1] > 0 else 0.0
        b1 = betas[:, 1:2, None] if betas.shape[1] > 1 else 0.0
        scale = torch.stack([1 + 0.04 * b0 + 0.05 * b1, 1 + 0.04 * b0 + 0 * b1, 1 + 0.04 * b0 + 0 * b1], -1)[:, 0]
        return self.rest[None] * scale, self.lm_rest[None] * scale

    def rest_state(self, betas: torch.Tensor) -> ToyRest:
        joints, lm = self.shaped_rest(torch.as_tensor(betas))
        return ToyRest(joints, self.M.expand(len(joints), 24, 3, 3), lm)

    def pose(self, rest: ToyRest, poses, trans=None, pose_correctives=False, bone_mesh=False, skin_vertex_ids=None):
        b = poses.shape[0]
        trans = torch.zeros(b, 3) if trans is None else trans
        rest_j, lm = rest.joints.expand(b, 24, 3), rest.landmarks.expand(b, -1, 3)
        g = []
        rots = _axis_rots(self.axes_n, poses * self.flips)  # (B,46,3,3), all DoFs at once
        for j, jt in enumerate(JOINTS):
            rp = None
            for d in self.joint_dofs[j]:
                rp = rots[:, d] if rp is None else rots[:, d] @ rp
            r = self.M @ rp @ self.M.T
            if jt.parent < 0:
                gr, gt = r, rest_j[:, 0]
            else:
                pr, pt = g[jt.parent]
                gr = pr @ r
                gt = pt + (pr @ (rest_j[:, j] - rest_j[:, jt.parent])[..., None])[..., 0]
            g.append((gr, gt))
        rot = torch.stack([x[0] for x in g], 1)
        pos = torch.stack([x[1] for x in g], 1)
        lj = torch.as_tensor(LANDMARK_JOINT)
        verts = (rot[:, lj] @ (lm - rest_j[:, lj])[..., None])[..., 0] + pos[:, lj] + trans[:, None]
        if skin_vertex_ids is not None:
            verts = verts[:, torch.as_tensor(np.asarray(skin_vertex_ids))]
        gtf = torch.zeros(b, 24, 4, 4)
        gtf[:, :, :3, :3] = rot
        gtf[:, :, :3, 3] = pos + trans[:, None]
        gtf[:, :, 3, 3] = 1
        return ToyOutput(
            joints=pos + trans[:, None],
            joints_tpose=rest_j,
            rest_frames=self.M.expand(b, 24, 3, 3),
            global_transforms=gtf,
            skin_verts=verts,
            joint_offsets=torch.zeros(b, 24, 3),
        )

    def forward(self, poses, betas, trans, pose_correctives=False, bone_mesh=False, skin_vertex_ids=None):
        return self.pose(self.rest_state(betas), poses, trans, pose_correctives, bone_mesh, skin_vertex_ids)


@dataclass(frozen=True)
class ToyRegressor:
    """The 33 landmarks are the toy body's 33 skin vertices (same interface as skel.landmarks)."""

    vertex_ids: np.ndarray = field(default_factory=lambda: np.arange(33)[:, None])
    vertex_weights: np.ndarray = field(default_factory=lambda: np.ones((33, 1), np.float32))
    joint_weights: np.ndarray = field(default_factory=lambda: np.zeros((33, 24), np.float32))

    def apply(self, skin_verts: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(self.vertex_ids)
        picked = skin_verts[..., ids.reshape(-1), :].reshape(*skin_verts.shape[:-2], *ids.shape, 3)
        vw = torch.as_tensor(self.vertex_weights, dtype=skin_verts.dtype)
        jw = torch.as_tensor(self.joint_weights, dtype=skin_verts.dtype)
        return (picked * vw[..., None]).sum(-2) + torch.einsum("lj,...jc->...lc", jw, joints)

    def __call__(self, output) -> torch.Tensor:
        return self.apply(output.skin_verts, output.joints)


assert len(_LM) == 33 and len(PARENTS) == 24
