"""Retargeting as array maths: world rotations per mapped target bone, the hips path, local channels.

Every mapped target bone takes the world rotation of its SKEL joint relative to SKEL's rest, after a fixed
per-bone offset from the two rests (the smallest rotation that points the target segment where the SKEL
segment points at rest: T- or A-pose, any roll, any object transform). The result is expressed in the target's
facing (a turn about the vertical between the two bodies). All frames at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rot
from .mapping import Mapping
from .presets import AIMED, SOURCE, SPINE_SOURCE
from .source import FOOT_POINTS, SourceMotion

_NEXT = {"shoulder": "upper_arm", "upper_arm": "forearm", "forearm": "hand", "thigh": "shin", "shin": "foot",
         "foot": "toe", "neck": "head"}


@dataclass
class TargetRig:
    """What the maths needs of the target armature (read from Blender by the bpy layer)."""

    names: list[str]
    parents: np.ndarray  # (N,) parent index, -1 for roots
    rest: np.ndarray  # (N, 4, 4) armature-space rest matrices (Bone.matrix_local)
    tails: np.ndarray  # (N, 3) armature-space rest tails
    matrix_world: np.ndarray  # (4, 4) the object's transform

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def scale(self) -> float:
        return float(np.cbrt(abs(np.linalg.det(self.matrix_world[:3, :3]))))

    @property
    def obj_rotation(self) -> np.ndarray:
        return self.matrix_world[:3, :3] / self.scale

    def world_heads(self) -> np.ndarray:
        return self.rest[:, :3, 3] @ self.matrix_world[:3, :3].T + self.matrix_world[:3, 3]

    def world_tails(self) -> np.ndarray:
        return self.tails @ self.matrix_world[:3, :3].T + self.matrix_world[:3, 3]

    def order(self) -> list[int]:
        """Bone indices, parents before children."""
        depth = np.zeros(len(self.names), dtype=int)
        for j in range(len(self.names)):
            p = int(self.parents[j])
            while p >= 0:
                depth[j] += 1
                p = int(self.parents[p])
        return [int(j) for j in np.argsort(depth, kind="stable")]


class Rig:
    """The target rig with the quantities every step needs."""

    def __init__(self, target: TargetRig, mapping: Mapping, source: SourceMotion) -> None:
        self.target = target
        self.mapping = mapping
        self.src = source
        self.heads = target.world_heads()
        self.tails_w = target.world_tails()
        self.order = target.order()
        self.yaw = self._body_yaw()

    def bone(self, role: str) -> int | None:
        names = self.mapping.bones(role)
        return self.target.index(names[0]) if names else None

    def bones(self, role: str) -> list[int]:
        return [self.target.index(n) for n in self.mapping.bones(role)]

    def _body_yaw(self) -> np.ndarray:
        """Turn about world z taking the target's left-right axis onto SKEL's (both bodies upright)."""
        tl, tr = self.bone("thigh.L"), self.bone("thigh.R")
        s = self.src
        a = self.heads[tl] - self.heads[tr] if tl is not None and tr is not None else np.array([1.0, 0, 0])
        b = s.rest_joints[s.index("femur_l")] - s.rest_joints[s.index("femur_r")]
        ang = np.arctan2(b[1], b[0]) - np.arctan2(a[1], a[0])
        c, si = np.cos(ang), np.sin(ang)
        return np.array([[c, -si, 0.0], [si, c, 0.0], [0.0, 0.0, 1.0]])

    def in_target_facing(self, d: np.ndarray) -> np.ndarray:
        """A source world rotation (..., 3, 3) expressed in the target's facing."""
        return self.yaw.T @ d @ self.yaw

    def segment(self, role: str) -> np.ndarray:
        """The target's rest segment of a role (world): first bone's head -> next role's head (or last tail)."""
        bones = self.bones(role)
        base = role.split(".")[0]
        side = role[len(base):]
        nxt = self.bone(_NEXT[base] + side) if base in _NEXT else None
        end = self.heads[nxt] if nxt is not None else self.tails_w[bones[-1]]
        return end - self.heads[bones[0]]

    @property
    def leg_ratio(self) -> float:
        """Target leg length over SKEL's (hip-knee-ankle): how the hips path is scaled."""
        return self.leg_length() / max(source_leg_length(self.src), 1e-9)

    def leg_length(self) -> float:
        out = []
        for s in ("L", "R"):
            th, sh, ft = self.bone(f"thigh.{s}"), self.bone(f"shin.{s}"), self.bone(f"foot.{s}")
            if th is None or sh is None or ft is None:
                continue
            h = self.heads
            out.append(np.linalg.norm(h[sh] - h[th]) + np.linalg.norm(h[ft] - h[sh]))
        return float(np.mean(out)) if out else 0.0


def source_leg_length(src: SourceMotion) -> float:
    j = src.rest_joints
    return float(np.mean([np.linalg.norm(j[src.index(f"tibia_{s}")] - j[src.index(f"femur_{s}")])
                          + np.linalg.norm(j[src.index(f"talus_{s}")] - j[src.index(f"tibia_{s}")]) for s in "lr"]))


def role_offset(rig: Rig, role: str) -> np.ndarray:
    """The fixed rotation that points the target's rest segment along SKEL's rest segment (the rest offset)."""
    if role == "hips":
        return np.eye(3)  # the trunk's rest is upright in both bodies; its bone axes say nothing
    _, a, b = SOURCE[role]
    src = rig.src
    d_src = src.rest_joints[src.index(b)] - src.rest_joints[src.index(a)]
    return rot.min_rotation(rig.segment(role), rig.yaw.T @ d_src)


def role_rotations(rig: Rig) -> dict[int, np.ndarray]:
    """World rotation relative to rest for every mapped bone except the spine chain."""
    src = rig.src
    out: dict[int, np.ndarray] = {}
    for role in rig.mapping.roles():
        if role not in SOURCE:
            continue
        joint, a, b = SOURCE[role]
        delta = rig.in_target_facing(src.rotations[:, src.index(joint)]) @ role_offset(rig, role)
        if role.split(".")[0] in AIMED:  # swing onto the segment as it is (child joints translate a little)
            want = (src.joints[:, src.index(b)] - src.joints[:, src.index(a)]) @ rig.yaw
            delta = rot.min_rotation(delta @ rig.segment(role), want) @ delta
        for j in rig.bones(role):
            out[j] = delta
    return out


def spine_rotations(rig: Rig) -> dict[int, np.ndarray]:
    """Lumbar + thorax spread over the target's spine bones, then the chain turned so its chord is SKEL's."""
    bones = sorted(rig.bones("spine"), key=rig.order.index)
    if not bones:
        return {}
    src = rig.src
    top = rig.bone("neck") if rig.bone("neck") is not None else rig.bone("head")
    pts = [rig.heads[j] for j in bones] + [rig.heads[top] if top is not None else rig.tails_w[bones[-1]]]
    segs = np.diff(np.array(pts), axis=0)
    lengths = np.linalg.norm(segs, axis=1)
    mids = (np.cumsum(lengths) - 0.5 * lengths) / max(lengths.sum(), 1e-9)
    lum, tho, head = (src.index(n) for n in SPINE_SOURCE)
    l1 = np.linalg.norm(src.rest_joints[tho] - src.rest_joints[lum])
    l2 = np.linalg.norm(src.rest_joints[head] - src.rest_joints[tho])
    u_l, u_t = 0.5 * l1 / (l1 + l2), (l1 + 0.5 * l2) / (l1 + l2)
    d_lum = rig.in_target_facing(src.rotations[:, lum])
    d_tho = rig.in_target_facing(src.rotations[:, tho])
    chord_src_rest = rig.yaw.T @ (src.rest_joints[head] - src.rest_joints[lum])
    offset = rot.min_rotation(segs.sum(axis=0), chord_src_rest)
    deltas = [rot.slerp(d_lum, d_tho, float(np.clip((u - u_l) / (u_t - u_l), 0.0, 1.0))) @ offset for u in mids]
    chord = sum(d @ s for d, s in zip(deltas, segs, strict=True))
    chord_src = (src.joints[:, head] - src.joints[:, lum]) @ rig.yaw  # yawᵀ·v, row form
    fix = rot.min_rotation(chord, chord_src)
    return {j: fix @ d for j, d in zip(bones, deltas, strict=True)}


def _ground_shift(src: SourceMotion) -> float:
    """How far SKEL's foot points sit above their T-pose heights while they rest on the ground: with it, a
    standing SKEL pelvis is at its T-pose height plus this (the rest pose's feet define standing)."""
    pts = [src.index(n) for n in FOOT_POINTS]
    lift = src.joints[:, pts, 2] - src.rest_joints[pts, 2]  # (T, 4)
    if src.resting.any():
        return float(np.median(lift[src.resting]))
    return float(np.percentile(lift.min(axis=1), 5))


def hips_path(rig: Rig, root_motion: bool, lift: float = 0.0) -> dict[int, np.ndarray]:
    """World heads of the hips (and a root bone): the pelvis path scaled by the leg-length ratio.

    ``lift``: how far the hips must rise for the target's feet to stand on its floor in SKEL's rest pose."""
    src = rig.src
    hips = rig.bone("hips")
    assert hips is not None
    ratio = rig.leg_ratio
    pelvis = src.joints[:, src.index("pelvis")]
    move_z = pelvis[:, 2] - (src.rest_joints[src.index("pelvis"), 2] + _ground_shift(src))
    move = np.column_stack([pelvis[:, :2] - pelvis[0, :2], move_z])
    move = (move @ rig.yaw) * ratio  # yawᵀ·v in row form, then scaled
    if not root_motion:
        move[:, :2] = 0.0
    out = {hips: rig.heads[hips] + move + np.array([0.0, 0.0, lift])}
    root = rig.bone("root")
    if root is not None and root_motion:
        flat = move.copy()
        flat[:, 2] = 0.0
        out[root] = rig.heads[root] + flat
    return out


def expand(rig: Rig, deltas: dict[int, np.ndarray], t_count: int) -> np.ndarray:
    """(T, N, 3, 3) rotations for every bone: unmapped bones turn with their parent."""
    out = np.empty((t_count, len(rig.target.names), 3, 3))
    for j in rig.order:
        p = int(rig.target.parents[j])
        out[:, j] = deltas[j] if j in deltas else (out[:, p] if p >= 0 else np.eye(3))
    return out


def forward(rig: Rig, rots: np.ndarray, located: dict[int, np.ndarray]) -> np.ndarray:
    """World heads (T, N, 3) of every bone from the expanded rotations and the located heads."""
    heads = np.empty(rots.shape[:2] + (3,))
    for j in rig.order:
        p = int(rig.target.parents[j])
        if j in located:
            heads[:, j] = located[j]
        elif p < 0:
            heads[:, j] = rig.heads[j]
        else:
            heads[:, j] = heads[:, p] + rots[:, p] @ (rig.heads[j] - rig.heads[p])
    return heads


def local_channels(rig: Rig, rots: np.ndarray, heads: np.ndarray, bones: list[int],
                   located: list[int]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Pose-bone rotations (T, 3, 3) in each bone's rest frame, and locations (T, 3) of the located bones.

    Blender poses ``P_j = P_parent · B_parent⁻¹ · B_j · basis_j`` (armature space); with ``P = [δ B | h]`` and
    the object's rotation R: ``δ_arm = Rᵀ δ_world R``, ``basis = B_jᵀ δ_pᵀ δ_j B_j`` and
    ``loc = B_jᵀ δ_pᵀ (h_j − h_p) − B_jᵀ (h_j⁰ − h_p⁰)`` in armature units.
    """
    r_obj, scale = rig.target.obj_rotation, rig.target.scale
    arm = r_obj.T @ rots @ r_obj
    rest = rig.target.rest[:, :3, :3]
    basis: dict[int, np.ndarray] = {}
    locs: dict[int, np.ndarray] = {}
    for j in bones:
        p = int(rig.target.parents[j])
        d_p = arm[:, p] if p >= 0 else np.broadcast_to(np.eye(3), arm[:, j].shape)
        basis[j] = rest[j].T @ np.swapaxes(d_p, -1, -2) @ arm[:, j] @ rest[j]
        if j in located:
            h = (heads[:, j] - (heads[:, p] if p >= 0 else 0.0)) @ r_obj / scale  # Rᵀ·v / s, row form
            h0 = (rig.heads[j] - (rig.heads[p] if p >= 0 else 0.0)) @ r_obj / scale
            locs[j] = np.einsum("ab,tcb,tc->ta", rest[j].T, d_p, h) - rest[j].T @ h0
    return basis, locs
