"""The rig maths, bpy-free: how SKEL's DoFs become one Euler channel each on a Blender bone.

SKEL (``shared/DESIGN.md``, "The rig"): joint j rotates locally by ``R_j = M_j Rp_j(q) M_jᵀ`` about its
rest joint centre ``J_j`` and translates by ``δ_j(q)`` (parent's rest-aligned frame); ``Rp_j`` composes the
joint's DoF rotations ``R_last ··· R_first``, each ``exp(flip·q·axis)`` in the joint's BSM frame.

Blender: bone j gets the armature-space rest matrix ``B_j = [M_j A_j | J_j]``. Then the bone's
``matrix_basis`` that reproduces SKEL is ``[A_jᵀ Rp_j A_j | A_jᵀ M_jᵀ δ_j]``. ``A_j`` maps bone-local axes to
BSM axes so that every DoF axis (with its flip) becomes ``+X``, ``+Y`` or ``+Z`` of the bone: the Euler
channel then holds q itself, in SKEL's sign. Blender's Euler mode ``'ABC'`` applies A first, so the mode
lists the joint's DoF channels in composition order.

Everything here is numpy only (float64) so that it can be tested without Blender; ``fk_blender`` simulates
Blender's pose evaluation so the layout can be checked against ``fk_skel`` analytically. Rotations, DoF
rotations and the chain come from ``hsmr_contract`` (shared with the backend, one implementation); this module
adds what is rig-specific: bone layout, channels, Blender's evaluation and the limit table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hsmr_contract.kinematics import chain_transforms, joint_rotations_bsm, local_rotations_model
from hsmr_contract.rotations import euler_to_rotmat, special_procrustes

AXES = "XYZ"


def euler_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """Blender's Euler matrix for mode ``order`` ('XYZ', 'ZXY', ...): the first letter is applied first."""
    angles = np.asarray(angles, dtype=np.float64)
    return euler_to_rotmat(order.lower(), angles[..., [AXES.index(letter) for letter in order]])


@dataclass(frozen=True)
class BoneLayout:
    """How one SKEL joint becomes a Blender bone."""

    index: int
    name: str
    parent: int
    A: np.ndarray  # (3,3) bone-local axes -> BSM axes
    rest: np.ndarray  # (4,4) armature-space (model-frame) rest matrix [M A | J]
    length: float  # rest bone length (head -> tail along local +Y), metres
    euler_order: str  # Blender rotation mode
    dofs: tuple[int, ...]  # DoF indices of this joint, composition order
    channels: tuple[int, ...]  # for each DoF: 0, 1, 2 = X, Y, Z Euler channel
    display_dir: np.ndarray  # (3,) unit vector, bone-local, from head toward the child joint (for display)
    display_length: float  # distance head -> child joint (or a fraction of the parent for leaves)

    @property
    def tail(self) -> np.ndarray:
        return self.rest[:3, 3] + self.rest[:3, 1] * self.length


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else v


def _rest_frames(result: dict[str, Any]) -> np.ndarray:
    """The stored rest frames M_j as exact rotations: guards against float32 drift in the file."""
    return special_procrustes(np.asarray(result["rest_frames"]))


def _children(parents: np.ndarray) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    return kids


def _choose_axes(
    dof_dirs: list[np.ndarray], want_y: np.ndarray
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Pick A (columns = bone X, Y, Z in BSM coordinates) and the channel of each DoF.

    ``dof_dirs`` are the DoFs' signed unit axes (flip·axis) in BSM coordinates; ``want_y`` is the direction toward
    the child joint, BSM coordinates (ties, and the roll of hinge bones).
    """
    n = len(dof_dirs)
    best: tuple[float, np.ndarray, tuple[int, ...]] | None = None
    for channels in itertools.permutations(range(3), n):
        cols: list[np.ndarray | None] = [None, None, None]
        for d, c in zip(dof_dirs, channels, strict=True):
            cols[c] = d
        free = [i for i in range(3) if cols[i] is None]
        if n >= 2:
            fixed = [c for c in cols if c is not None]
            if abs(float(np.dot(fixed[0], fixed[1]))) > 1e-6:
                continue  # only orthogonal DoF axes can share a bone frame
        if n == 3:
            a = np.stack(cols, axis=1)  # type: ignore[arg-type]
        elif n == 2:
            i = free[0]
            j, k = (i + 1) % 3, (i + 2) % 3
            cols[i] = np.cross(cols[j], cols[k])  # type: ignore[arg-type]
            a = np.stack(cols, axis=1)  # type: ignore[arg-type]
        else:
            c0 = channels[0]
            axis = cols[c0]
            assert axis is not None
            if c0 == 1:  # DoF on Y: X/Z free around it
                ref = np.eye(3)[int(np.argmin(np.abs(axis)))]
                x = _unit(np.cross(axis, ref))
                cols[0], cols[2] = x, np.cross(x, axis)
            else:  # Y = preferred direction made orthogonal to the DoF axis
                y = want_y - axis * float(np.dot(want_y, axis))
                if np.linalg.norm(y) < 1e-6:
                    y = np.cross(axis, np.eye(3)[int(np.argmin(np.abs(axis)))])
                y = _unit(y)
                cols[1] = y
                other = 2 if c0 == 0 else 0
                # right-handed: X = Y × Z, Z = X × Y
                cols[other] = np.cross(y, axis) if other == 0 else np.cross(axis, y)
            a = np.stack(cols, axis=1)  # type: ignore[arg-type]
        if np.linalg.det(a) < 0.5:
            continue
        # The channel letters depend on the DoF table alone (the same for every body): the DoF along the BSM
        # y axis (OpenSim's long axis of a segment) is the bone's Y, i.e. twist on Y; a 1-DoF hinge sits on X.
        # The body's geometry only breaks ties and sets the roll of hinge bones (Y toward the child).
        along = float(np.dot(a[:, 1], want_y))
        if n == 1:
            twist = abs(float(dof_dirs[0][1])) > 0.7
            score = 1.0 if (channels[0] == 1) == twist and channels[0] != 2 else 0.0
        else:
            # where the sign is free (2-DoF wrists), Y goes down the segment: OpenSim's y points proximally
            score = abs(float(a[1, 1])) - 1e-3 * float(a[1, 1]) + 1e-6 * along
        if best is None or score > best[0] + 1e-9:
            best = (score, a, tuple(channels))
    if best is None:
        raise ValueError("DoF axes of a joint are not mutually orthogonal; cannot map them onto one bone")
    return best[1], best[2]


def build_layout(result: dict[str, Any]) -> list[BoneLayout]:
    """Bone layouts for the 24 joints from a result's rest data and DoF table."""
    joints = np.asarray(result["rest_joints"], dtype=np.float64)
    frames = _rest_frames(result)
    parents = np.asarray(result["joint_parents"], dtype=np.int64)
    names = [str(n) for n in result["joint_names"]]
    dof_joint = np.asarray(result["dof_joint"], dtype=np.int64)
    dof_axis = np.asarray(result["dof_axis"], dtype=np.float64)
    dof_flip = np.asarray(result["dof_flip"], dtype=np.float64)
    kids = _children(parents)
    out: list[BoneLayout] = []
    for j, name in enumerate(names):
        m = frames[j]
        if kids[j]:
            # toward the (mean of the) child joints; the spine child for the pelvis
            target = joints[kids[j]].mean(axis=0)
            spine = [k for k in kids[j] if names[k] in ("lumbar_body", "thorax", "head")]
            if spine:
                target = joints[spine[0]]
            d_model = target - joints[j]
        else:
            p = parents[j]
            d_model = (joints[j] - joints[p]) * 0.5 if p >= 0 else np.array([0.0, 0.1, 0.0])
        display_length = max(float(np.linalg.norm(d_model)), 0.01)
        want_y = _unit(m.T @ d_model)
        dofs = tuple(int(i) for i in np.flatnonzero(dof_joint == j))
        dirs = [_unit(dof_flip[i] * dof_axis[i]) for i in dofs]
        a, channels = _choose_axes(dirs, want_y)
        rest = np.eye(4)
        rest[:3, :3] = m @ a
        rest[:3, 3] = joints[j]
        order_axes = [AXES[c] for c in channels]
        order = "".join(order_axes + [x for x in AXES if x not in order_axes])
        length = max(display_length, 0.02)
        out.append(
            BoneLayout(
                index=j, name=name, parent=int(parents[j]), A=a, rest=rest, length=length, euler_order=order,
                dofs=dofs, channels=channels, display_dir=_unit(a.T @ want_y), display_length=display_length,
            )
        )
    return out


def dof_rotations(result: dict[str, Any], poses: np.ndarray) -> np.ndarray:
    """SKEL's ``Rp_j(q)`` (T, 24, 3, 3) in each joint's BSM frame: R_last ··· R_first.

    About the unit DoF axes: a Blender Euler channel turns by exactly q, and SKEL's stored axes are unit to
    within 4e-9, so this is the chain the rig reproduces."""
    axes = np.asarray(result["dof_axis"], dtype=np.float64)
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    return joint_rotations_bsm(
        poses, np.asarray(result["dof_joint"]), axes, np.asarray(result["dof_flip"], dtype=np.float64),
        len(result["joint_names"]),
    )


def fk_skel(result: dict[str, Any], poses: np.ndarray, trans: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """SKEL's chain (model frame, trans added): global transforms (T, 24, 4, 4); joints = [..., :3, 3]."""
    joints = np.asarray(result["rest_joints"], dtype=np.float64)
    parents = np.asarray(result["joint_parents"])
    rot = local_rotations_model(dof_rotations(result, poses), _rest_frames(result))
    t = np.asarray(offsets, dtype=np.float64) + (joints - np.where(parents[:, None] < 0, 0.0, joints[parents]))
    root = parents < 0
    t[:, root] = joints[root] + np.asarray(trans, dtype=np.float64)[:, None, :]
    return chain_transforms(rot, t, parents)


@dataclass
class Channels:
    """Per-frame channel values: rotation_euler (T, 24, 3) and location (T, 24, 3), bone-local."""

    rotation: np.ndarray
    location: np.ndarray


def channels_from_result(
    layout: list[BoneLayout], result: dict[str, Any], poses: np.ndarray | None = None
) -> Channels:
    """Euler and location channel values for every bone and frame."""
    poses = np.asarray(result["poses"] if poses is None else poses, dtype=np.float64)
    trans = np.asarray(result["trans"], dtype=np.float64)
    offsets = np.asarray(result["joint_offsets"], dtype=np.float64)
    t_count = poses.shape[0]
    rot = np.zeros((t_count, len(layout), 3))
    loc = np.zeros((t_count, len(layout), 3))
    for b in layout:
        for dof, ch in zip(b.dofs, b.channels, strict=True):
            rot[:, b.index, ch] = poses[:, dof]
        q = b.rest[:3, :3]  # M A
        delta = trans if b.parent < 0 else offsets[:, b.index]
        loc[:, b.index] = delta @ q  # (M A)ᵀ δ, row-vector form
    return Channels(rot, loc)


def fk_blender(layout: list[BoneLayout], channels: Channels) -> np.ndarray:
    """Simulate Blender's pose evaluation: pose matrices (T, 24, 4, 4) in armature space.

    ``P_j = P_parent · B_parent⁻¹ · B_j · basis_j`` with ``basis = T(loc) · Euler(rot)``.
    """
    t_count = channels.rotation.shape[0]
    pose = np.zeros((t_count, len(layout), 4, 4))
    for b in layout:
        basis = np.zeros((t_count, 4, 4))
        basis[:, 3, 3] = 1.0
        basis[:, :3, :3] = euler_matrix(channels.rotation[:, b.index], b.euler_order)
        basis[:, :3, 3] = channels.location[:, b.index]
        if b.parent < 0:
            pose[:, b.index] = b.rest @ basis
        else:
            rel = np.linalg.inv(layout[b.parent].rest) @ b.rest
            pose[:, b.index] = pose[:, b.parent] @ rel @ basis
    return pose


def skinning_matrices(layout: list[BoneLayout], pose: np.ndarray) -> np.ndarray:
    """``P_j · B_j⁻¹`` (T, 24, 4, 4): what the Armature modifier applies to rest vertices."""
    inv = np.stack([np.linalg.inv(b.rest) for b in layout])
    return pose @ inv[None]


def lbs(verts: np.ndarray, weights: np.ndarray, skin_mats: np.ndarray) -> np.ndarray:
    """Linear blend skinning of rest ``verts`` (V,3) with ``weights`` (V,24) by (T,24,4,4) → (T,V,3)."""
    blended = np.einsum("vj,tjab->tvab", weights, skin_mats[:, :, :3, :])
    return np.einsum("tvab,vb->tva", blended[..., :3], verts) + blended[..., 3]


def limit_table(layout: list[BoneLayout], result: dict[str, Any]) -> dict[str, tuple[str, int, float, float]]:
    """DoF name -> (bone name, channel 0/1/2, lower, upper): the table the Blender rig must carry."""
    names = [str(n) for n in result["dof_names"]]
    limits = np.asarray(result["dof_limits"], dtype=np.float64)
    out: dict[str, tuple[str, int, float, float]] = {}
    for b in layout:
        for dof, ch in zip(b.dofs, b.channels, strict=True):
            out[names[dof]] = (b.name, ch, float(limits[dof, 0]), float(limits[dof, 1]))
    return out
