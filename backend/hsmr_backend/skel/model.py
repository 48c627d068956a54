"""SKEL forward pass in torch: shape -> anatomical skeleton -> 46-DoF pose -> skin and bone meshes.

Re-implemented from the published description (``shared/reference/skel.md`` §5, §6, pitfalls §9); see
``docs/skel.md``. Two stages, so that the fitter can pose many frames of one shape cheaply:

    rest = model.rest_state(betas)                 # everything that depends on the shape only
    out = model.pose(rest, poses, trans, ...)      # per-frame work (rest may have batch 1 or B)
    out = model(poses, betas, trans, ...)          # == pose(rest_state(betas), poses, trans, ...)

Speed: skinning blends the 24 (3x4) joint transforms with one (V, 24) weight matmul and applies the
blended 3x4 per vertex (no (B, V, 4, 4) tensors); the bone mesh, whose posing weights are one bone per
vertex, is posed with one composite affine map per (placement bone, posing bone) pair applied to the raw
template, so the per-frame cost is a handful of small matmuls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from . import dofs
from .data import SkelData, SkelFileError
from .kinematics import axis_angle_to_matrix, rot_align

N_J = dofs.N_JOINTS
# Joints whose bone orientation is per_joint_rot alone (RotAlign forced to I): root and the leaves.
ALIGN_FORCED_I = (0, 5, 10, 13, 18, 23)
# SKEL joint k -> SMPL joint slot whose pose-corrective rotation it provides (skel.md §5.7).
SMPL_JOINT_CORRESP = (0, 2, 5, 8, 8, 11, 1, 4, 7, 7, 10, 3, 6, 15, 14, 17, 19, 0, 21, 13, 16, 18, 0, 20)
SPINE_JOINTS = (11, 12, 13)  # constant-curvature joints
SCAPULA_JOINTS = (14, 19)  # ellipsoid joints
_SPINE_SMALL = 1e-5  # |theta| below which the arc uses its Taylor form (as SKEL)


def _children(parents: tuple[int, ...]) -> list[int]:
    """First child of each joint in index order, 0 for leaves (SKEL's convention)."""
    child = [0] * len(parents)
    for j in range(len(parents) - 1, 0, -1):
        child[parents[j]] = j
    return child


CHILD = tuple(_children(dofs.PARENTS))


def smpl_slot_sources() -> list[int]:
    """For SMPL slots 1..23: the SKEL joint whose local rotation fills it, or -1 (slot stays I).

    Duplicates resolve as in SKEL (assignment in joint order, the later joint wins): SMPL ankles 7/8 get
    calcn (subtalar), not talus; the radius entries point at slot 0, which is not a pose feature.
    """
    src = [-1] * 24
    for k, slot in enumerate(SMPL_JOINT_CORRESP):
        src[slot] = k
    return src[1:]


def _depth_levels(parents: tuple[int, ...]) -> list[list[int]]:
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]


@dataclass
class RestState:
    """Shape-dependent quantities (batch Br = number of shapes; 1 broadcasts over any number of frames)."""

    betas: Tensor  # (Br, K)
    v_shaped: Tensor  # (Br, V, 3) skin in T-pose with shape blend shapes
    joints: Tensor  # (Br, 24, 3) J: anatomical joint centres regressed from v_shaped
    joints_local: Tensor  # (Br, 24, 3) J_: J_j - J_parent (root: J_0)
    bone_orient: Tensor  # (Br, 24, 3, 3) Rk01: bone-local frame -> model frame at rest
    rest_frames: Tensor  # (Br, 24, 3, 3) M = Rk01 Ra^T: BSM joint frame -> model frame at rest
    bone_scale: Tensor  # (Br, 24, 3) per-bone, per-axis scale of the bone mesh
    thorax_width: Tensor  # (Br,) |J19 - J14|, scapula ellipsoid
    thorax_height: Tensor  # (Br,) |J12 - J11|
    spine_lengths: Tensor  # (Br, 3) arc lengths of lumbar, thorax, head

    @property
    def batch(self) -> int:
        return self.betas.shape[0]


@dataclass
class SKELOutput:
    skin_verts: Tensor  # (B, V, 3) (or (B, len(skin_vertex_ids), 3))
    joints: Tensor  # (B, 24, 3) anatomical joint centres (+ trans)
    joints_ori: Tensor  # (B, 24, 3, 3) bone orientation G_j Rk01_j
    bone_verts: Tensor | None  # (B, Vb, 3) when bone_mesh=True
    skin_faces: Tensor  # (F, 3) long
    joints_tpose: Tensor  # (B, 24, 3) J (no trans)
    v_shaped: Tensor  # (B, V, 3)
    rest_frames: Tensor  # (B, 24, 3, 3) M_j
    joint_offsets: Tensor  # (B, 24, 3) delta_j(q), parent's rest-aligned frame (spine, scapula; else 0)
    global_transforms: Tensor  # (B, 24, 4, 4) G_j (without trans)
    pose_features: Tensor  # (B, 207) vec(R_smpl[1:] - I)
    local_rotations: Tensor  # (B, 24, 3, 3) R_j = M_j Rp_j M_j^T


class SKEL(nn.Module):
    """SKEL body model (official v1.1.1 file or any SKEL-format body such as the open default body)."""

    def __init__(self, data: SkelData) -> None:
        super().__init__()
        data.validate(data.name)
        self.name = data.name
        V = data.skin_template_v.shape[0]
        K = data.shapedirs.shape[2]
        self.num_verts, self.num_betas = V, K
        f32 = torch.float32

        def buf(name: str, x: np.ndarray | Tensor, dtype: torch.dtype | None = f32) -> None:
            t = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)
            self.register_buffer(name, t.to(dtype) if dtype is not None else t, persistent=False)

        buf("skin_template_v", data.skin_template_v)
        buf("skin_faces", data.skin_template_f, torch.long)
        buf("shapedirs_t", data.shapedirs.reshape(V * 3, K).T)  # (K, V*3)
        self.has_posedirs = data.posedirs is not None
        pd = data.posedirs if data.posedirs is not None else np.zeros((V, 3, 207), np.float32)
        buf("posedirs_t", pd.reshape(V * 3, 207).T)  # (207, V*3)
        buf("J_regressor", data.J_regressor_osim)
        buf("skin_weights", data.skin_weights)
        buf("per_joint_rot", data.per_joint_rot)
        Ra = data.apose_rel_transfo[:, :3, :3]
        off = data.apose_rel_transfo[:, :3, 3].astype(np.float64)
        buf("apose_rot", Ra)
        buf("apose_off", off)
        # Source vectors of the bone orientation: per_joint_rot_j @ off[child j]; the ulna points at the
        # wrist (off17 + off18), the thorax keeps its own child (pitfall 14: not the lumbar's).
        src = off[list(CHILD)].copy()
        src[16] = off[17] + off[18]
        src[21] = off[22] + off[23]
        tgt_idx = list(CHILD)
        tgt_idx[12] = CHILD[11]  # thorax target = the lumbar segment (b_12 = b_11)
        tgt_idx[16], tgt_idx[21] = N_J, N_J + 1  # ulna: elbow -> wrist (J_17 + J_18), see _bone_orientation
        buf("align_tgt", np.array(tgt_idx), torch.long)
        buf("align_src", np.einsum("jab,jb->ja", data.per_joint_rot.astype(np.float64), src))
        # bone-length denominators of §6 (constants; clamped so an all-zero offset cannot divide by 0)
        buf("off_len", np.maximum(np.linalg.norm(off, axis=1), 1e-8))
        buf("lumbar_off_y", np.maximum(abs(off[11, 1]), 1e-8).reshape(()))

        # DoF table -> per-DoF axis (not re-normalised) and flip; per-joint slots (46 = identity)
        buf("dof_axes", np.array([d.axis for d in dofs.DOFS], np.float64))
        buf("dof_flips", np.array([d.flip for d in dofs.DOFS], np.float64))
        slots = np.full((N_J, 3), dofs.N_DOFS, np.int64)
        for j in range(N_J):
            for i, d in enumerate(dofs.dofs_of_joint(j)):
                slots[j, i] = d.index
        buf("dof_slots", slots, torch.long)
        self.levels = _depth_levels(dofs.PARENTS)
        pos_in_level = {j: i for lev in self.levels for i, j in enumerate(lev)}
        for li, lev in enumerate(self.levels):
            buf(f"_lvl{li}", np.array(lev), torch.long)
            if li:
                buf(f"_lvl{li}_par", np.array([pos_in_level[dofs.PARENTS[j]] for j in lev]), torch.long)
        order = [j for lev in self.levels for j in lev]
        buf("_level_inverse", np.argsort(order), torch.long)
        buf("parents_idx", np.array([max(p, 0) for p in dofs.PARENTS]), torch.long)
        src_slots = smpl_slot_sources()
        buf("smpl_src", np.array([s if s >= 0 else N_J for s in src_slots]), torch.long)
        active = [j for j in range(N_J) if j not in ALIGN_FORCED_I]
        self.align_active = active
        buf("_align_active", np.array(active), torch.long)
        buf("_align_forced", np.array(ALIGN_FORCED_I), torch.long)
        buf("_align_inverse", np.argsort(active + list(ALIGN_FORCED_I)), torch.long)
        # §6 bone-scale sources: s_j = r_{child j}; leaves 1; ulna uses the radius' (r_{hand}); thorax the
        # lumbar's (r_{thorax}); the lumbar itself is overridden by its vertical ratio below.
        scale_src = [CHILD[j] if CHILD[j] > 0 else N_J for j in range(N_J)]
        scale_src[16], scale_src[21] = CHILD[17], CHILD[22]
        scale_src[12] = CHILD[11]
        buf("scale_src", np.array(scale_src), torch.long)
        self._setup_vertex_pairs(data)
        self._setup_bone_mesh(data)

    # ------------------------------------------------------------------ set-up helpers
    def _setup_vertex_pairs(self, data: SkelData) -> None:
        pairs = data.bone_scale_vertex_pairs
        if pairs is None or len(pairs) == 0:
            self.pair_groups: list[list[int]] = []
            for n in ("pair_a", "pair_b", "pair_axis", "pair_den", "pair_target"):
                self.register_buffer(n, torch.zeros(0), persistent=False)
            return
        pairs = np.asarray(pairs, np.int64)
        tmpl = data.skin_template_v.astype(np.float64)
        den = tmpl[pairs[:, 2], pairs[:, 4]] - tmpl[pairs[:, 3], pairs[:, 4]]
        if np.any(np.abs(den) < 1e-9):
            bad = pairs[np.abs(den) < 1e-9][0]
            raise SkelFileError(
                f"{data.name}: bone-scale vertices {bad[2]} and {bad[3]} coincide on axis {bad[4]} in the template"
            )
        targets = sorted({(int(b), int(a)) for b, a in pairs[:, :2]})
        self.pair_groups = [[i for i, p in enumerate(pairs) if (p[0], p[1]) == t] for t in targets]
        t = torch.as_tensor
        self.register_buffer("pair_a", t(pairs[:, 2]), persistent=False)
        self.register_buffer("pair_b", t(pairs[:, 3]), persistent=False)
        self.register_buffer("pair_axis", t(pairs[:, 4]), persistent=False)
        self.register_buffer("pair_den", t(den, dtype=torch.float32), persistent=False)
        self.register_buffer("pair_target", t([b * 3 + a for b, a in targets]), persistent=False)

    def _setup_bone_mesh(self, data: SkelData) -> None:
        Vb = data.skel_template_v.shape[0]
        self.num_bone_verts = Vb
        self.register_buffer("bone_faces", torch.as_tensor(data.skel_template_f), persistent=False)
        self.register_buffer("bone_template", torch.as_tensor(data.skel_template_v), persistent=False)
        rigid = np.argmax(data.skel_weights_rigid, axis=1)
        w = data.skel_weights
        nnz = np.count_nonzero(w, axis=1)
        one_hot = Vb > 0 and bool(np.all(nnz == 1)) and bool(np.allclose(w.max(axis=1), 1.0, atol=1e-6))
        self.bone_one_hot = one_hot
        if one_hot:
            # group vertices by (placement bone, posing bone); one affine map per group
            pose_bone = np.argmax(w, axis=1)
            key = rigid * N_J + pose_bone
            order = np.argsort(key, kind="stable")
            keys, starts = np.unique(key[order], return_index=True)
            ends = np.append(starts[1:], Vb)
            self.bone_groups = [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
            self.register_buffer("bone_group_rigid", torch.as_tensor(keys // N_J), persistent=False)
            self.register_buffer("bone_group_pose", torch.as_tensor(keys % N_J), persistent=False)
            self.bone_sorted = bool(np.all(order == np.arange(Vb)))
            self.register_buffer("bone_template_sorted", torch.as_tensor(data.skel_template_v[order]), persistent=False)
            self.register_buffer("bone_unsort", torch.as_tensor(np.argsort(order)), persistent=False)
        else:
            # general soft weights: ELL layout (k non-zeros per row)
            k = int(max(nnz.max(), 1)) if Vb else 1
            idx = np.argsort(-np.abs(w), axis=1)[:, :k]
            self.register_buffer("bone_rigid", torch.as_tensor(rigid), persistent=False)
            self.register_buffer("bone_w_idx", torch.as_tensor(idx), persistent=False)
            self.register_buffer("bone_w_val", torch.as_tensor(np.take_along_axis(w, idx, 1)), persistent=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str | Path) -> SKEL:
        """Load an official SKEL v1.1.1 ``.pkl`` or a SKEL-format ``.npz`` body."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".pkl":
            return cls(SkelData.from_official_pkl(path))
        if suffix == ".npz":
            return cls(SkelData.from_npz(path))
        raise SkelFileError(f"{path}: expected a SKEL .pkl (skel_male.pkl / skel_female.pkl) or a body .npz")

    @property
    def dtype(self) -> torch.dtype:
        return self.skin_template_v.dtype

    @property
    def device(self) -> torch.device:
        return self.skin_template_v.device

    def _t(self, x: Tensor | np.ndarray | None, what: str, shape_tail: tuple[int, ...]) -> Tensor:
        t = torch.as_tensor(x, device=self.device)
        t = t.to(self.dtype) if t.dtype != self.dtype else t
        if t.ndim != 1 + len(shape_tail) or tuple(t.shape[1:]) != shape_tail:
            tail = ", ".join(map(str, shape_tail))
            raise ValueError(f"SKEL: {what} must have shape (B, {tail}), got {tuple(t.shape)}")
        return t

    # ------------------------------------------------------------------ shape
    def rest_state(self, betas: Tensor | np.ndarray) -> RestState:
        """Everything that depends on the shape only. ``betas`` (Br, k): k < K is zero-padded, extra
        columns beyond the model's K directions are ignored (SKEL uses the first 10 only)."""
        betas = torch.as_tensor(betas, device=self.device)
        betas = betas.to(self.dtype) if betas.dtype != self.dtype else betas
        if betas.ndim != 2:
            raise ValueError(f"SKEL: betas must have shape (B, K), got {tuple(betas.shape)}")
        K = self.num_betas
        if betas.shape[1] < K:
            betas = torch.cat([betas, betas.new_zeros(betas.shape[0], K - betas.shape[1])], 1)
        betas = betas[:, :K]
        Br, V = betas.shape[0], self.num_verts
        v_shaped = self.skin_template_v + (betas @ self.shapedirs_t).view(Br, V, 3)
        J = torch.matmul(self.J_regressor, v_shaped)  # (Br, 24, 3)
        J_local = torch.cat([J[:, :1], J[:, 1:] - J[:, self.parents_idx[1:]]], 1)
        Rk01 = self._bone_orientation(J_local)
        M = Rk01 @ self.apose_rot.transpose(-1, -2)
        S = self._bone_scale(J_local, v_shaped)
        return RestState(
            betas=betas,
            v_shaped=v_shaped,
            joints=J,
            joints_local=J_local,
            bone_orient=Rk01,
            rest_frames=M,
            bone_scale=S,
            thorax_width=(J[:, 19] - J[:, 14]).norm(dim=-1),
            thorax_height=(J[:, 12] - J[:, 11]).norm(dim=-1),
            spine_lengths=(J[:, [11, 12, 13], 1] - J[:, [0, 11, 12], 1]).abs(),
        )

    def _bone_orientation(self, J_local: Tensor) -> Tensor:
        """Rk01_j = RotAlign(per_joint_rot_j off[child j] -> J_[child j]) per_joint_rot_j (skel.md §5.3)."""
        wrists = torch.stack([J_local[:, 17] + J_local[:, 18], J_local[:, 22] + J_local[:, 23]], 1)
        ext = torch.cat([J_local, wrists], 1)
        tgt = ext[:, self.align_tgt]
        act = self._align_active
        src = self.align_src[act].expand(tgt.shape[0], -1, -1)
        R_act = rot_align(src, tgt[:, act]) @ self.per_joint_rot[act]
        R_forced = self.per_joint_rot[self._align_forced].expand(tgt.shape[0], -1, -1, -1)
        return torch.cat([R_act, R_forced], 1)[:, self._align_inverse]

    def _bone_scale(self, J_local: Tensor, v_shaped: Tensor) -> Tensor:
        """Per-bone, per-axis scale of the bone mesh (skel.md §6)."""
        Br = J_local.shape[0]
        ratio = J_local.norm(dim=-1) / self.off_len  # r_k (index 0 unused; off_len clamped)
        ratio = torch.cat([ratio, ratio.new_ones(Br, 1)], 1)
        s = ratio[:, self.scale_src]  # (Br, 24)
        lumbar = J_local[:, 11, 1].abs() / self.lumbar_off_y
        s = torch.cat([s[:, :11], lumbar[:, None], s[:, 12:]], 1)
        S = s[:, :, None].expand(Br, N_J, 3).reshape(Br, N_J * 3)
        if self.pair_groups:
            diff = v_shaped[:, self.pair_a, self.pair_axis] - v_shaped[:, self.pair_b, self.pair_axis]
            r = diff / self.pair_den
            vals = torch.stack([r[:, g].amin(dim=-1) for g in self.pair_groups], -1)
            S = S.scatter(1, self.pair_target.expand(Br, -1), vals)
        return S.view(Br, N_J, 3)

    # ------------------------------------------------------------------ pose
    def dof_rotations(self, poses: Tensor) -> Tensor:
        """(B, 46) -> (B, 24, 3, 3) Rp_j = R_last ... R_first in each joint's BSM frame."""
        rotvec = (poses * self.dof_flips)[..., None] * self.dof_axes  # (B, 46, 3)
        R = axis_angle_to_matrix(rotvec)
        eye = torch.eye(3, dtype=R.dtype, device=R.device).expand(R.shape[0], 1, 3, 3)
        R = torch.cat([R, eye], 1)[:, self.dof_slots]  # (B, 24, 3, 3, 3)
        return R[:, :, 2] @ R[:, :, 1] @ R[:, :, 0]

    def joint_offsets(self, poses: Tensor, rest: RestState) -> Tensor:
        """delta_j(q) (B, 24, 3): spine arc and scapula ellipsoid translations relative to q = 0 (§5.5)."""
        B = poses.shape[0]
        spine = []
        for i, j in enumerate(SPINE_JOINTS):
            first = dofs.dofs_of_joint(j)[0].index  # bending, then extension
            b, e = poses[:, first], poses[:, first + 1]
            l_ = rest.spine_lengths[:, i]
            xb, yb = _arc(b, l_)
            xe, ye = _arc(e, l_)
            spine.append(torch.stack([-xb, yb + ye - 2 * l_, -xe], -1))
        w, h = rest.thorax_width, rest.thorax_height
        a_r, e_r = poses[:, 26], poses[:, 27]
        a_l, e_l = poses[:, 36], poses[:, 37]
        zero = torch.zeros_like(a_r)
        scap_r = _ellipsoid(a_r, e_r, w, h, -1.0) - _ellipsoid(zero, zero, w, h, -1.0)
        scap_l = _ellipsoid(-a_l, -e_l, w, h, 1.0) - _ellipsoid(zero, zero, w, h, 1.0)
        vals = torch.stack(spine + [scap_r, scap_l], 1)  # joints 11, 12, 13, 14, 19
        vals = vals.expand(B, -1, -1) if vals.shape[0] != B else vals
        z = vals.new_zeros(B, 1, 3)
        return torch.cat([z.expand(B, 11, 3), vals[:, :4], z.expand(B, 4, 3), vals[:, 4:], z.expand(B, 4, 3)], 1)

    def pose(
        self,
        rest: RestState,
        poses: Tensor | np.ndarray,
        trans: Tensor | np.ndarray | None = None,
        pose_correctives: bool = True,
        bone_mesh: bool = False,
        skin_vertex_ids: Tensor | np.ndarray | None = None,
        skin: bool = True,
    ) -> SKELOutput:
        """Pose B frames from a rest state of batch 1 or B. ``skin_vertex_ids`` computes only those skin
        vertices (in that order); ``skin=False`` skips the skin entirely (``skin_verts`` is then empty)."""
        poses = self._t(poses, "poses", (dofs.N_DOFS,))
        B = poses.shape[0]
        trans = poses.new_zeros(B, 3) if trans is None else self._t(trans, "trans", (3,))
        if trans.shape[0] != B or rest.batch not in (1, B):
            raise ValueError(f"SKEL: batch sizes differ: poses {B}, trans {trans.shape[0]}, betas {rest.batch}")
        Br = rest.batch
        Rp = self.dof_rotations(poses)
        M = rest.rest_frames
        R_local = M @ Rp @ M.transpose(-1, -2)  # (B, 24, 3, 3)
        delta = self.joint_offsets(poses, rest)
        t_local = rest.joints_local + delta  # root: J_0 (delta_0 = 0)

        # forward kinematics by depth level (parents of level L all sit in level L-1)
        Rg_lv = [R_local[:, self._lvl0]]
        pg_lv = [t_local[:, self._lvl0].expand(B, -1, -1)]
        for li in range(1, len(self.levels)):
            idx, par = getattr(self, f"_lvl{li}"), getattr(self, f"_lvl{li}_par")
            Rpar, ppar = Rg_lv[-1][:, par], pg_lv[-1][:, par]
            Rg_lv.append(Rpar @ R_local[:, idx])
            pg_lv.append(ppar + (Rpar @ t_local[:, idx, :, None]).squeeze(-1))
        Rg = torch.cat(Rg_lv, 1)[:, self._level_inverse]
        pg = torch.cat(pg_lv, 1)[:, self._level_inverse]

        J = rest.joints
        # pose-corrective features: SMPL slots 1..23 filled from SKEL local rotations (duplicates: later wins)
        eye = torch.eye(3, dtype=poses.dtype, device=poses.device)
        R_ext = torch.cat([R_local, eye.expand(B, 1, 3, 3)], 1)
        pose_features = (R_ext[:, self.smpl_src] - eye).reshape(B, 207)

        # skinning transform per joint: x -> Rg_j (x - J_j) + pg_j, stored column-wise (B, 24, 4, 3)
        t_skin = pg - (Rg @ J[..., None]).squeeze(-1)
        A = torch.cat([Rg.transpose(-1, -2), t_skin[:, :, None, :]], 2).reshape(B, N_J, 12)
        if skin:
            skin_verts = self._skin(rest, A, pose_features, pose_correctives, skin_vertex_ids) + trans[:, None]
        else:
            skin_verts = poses.new_zeros(B, 0, 3)
        bone_verts = self._bone_verts(rest, Rg, pg, A) + trans[:, None] if bone_mesh else None

        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=Rg.dtype, device=Rg.device).expand(B, N_J, 1, 4)
        G = torch.cat([torch.cat([Rg, pg[..., None]], -1), bottom], -2)
        ex = (lambda x: x.expand(B, *x.shape[1:])) if Br == 1 and B != 1 else (lambda x: x)
        return SKELOutput(
            skin_verts=skin_verts,
            joints=pg + trans[:, None],
            joints_ori=Rg @ rest.bone_orient,
            bone_verts=bone_verts,
            skin_faces=self.skin_faces,
            joints_tpose=ex(J),
            v_shaped=ex(rest.v_shaped),
            rest_frames=ex(M),
            joint_offsets=delta,
            global_transforms=G,
            pose_features=pose_features,
            local_rotations=R_local,
        )

    def _skin(
        self, rest: RestState, A: Tensor, pose_features: Tensor, correctives: bool, ids: Tensor | np.ndarray | None
    ) -> Tensor:
        B = A.shape[0]
        if ids is None:
            v = rest.v_shaped
            W = self.skin_weights
            P = self.posedirs_t
        else:
            ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
            v = rest.v_shaped[:, ids]
            W = self.skin_weights[ids]
            P = self.posedirs_t.view(207, -1, 3)[:, ids].reshape(207, -1)
        n = v.shape[1]
        if correctives and self.has_posedirs:
            v = v + (pose_features @ P).view(B, n, 3)  # pitfall 7: joints come from v_shaped, skin from v_pd
        T = torch.matmul(W, A).view(B, n, 4, 3)  # blended 3x4 transform per vertex, column-wise
        return _apply_cols(T, v)

    def _bone_verts(self, rest: RestState, Rg: Tensor, pg: Tensor, A: Tensor) -> Tensor:
        """Bone mesh: placed in T-pose by [Rk01_b | J_b] diag(S_b) (rigid bone b), posed by the skel weights."""
        B = Rg.shape[0]
        Rk01, S, J = rest.bone_orient, rest.bone_scale, rest.joints
        place = Rk01 * S[:, :, None, :]  # Rk01_b diag(S_b)   (Br, 24, 3, 3)
        if self.bone_one_hot:
            # x = Rg_k (Rk01_b S_b v0 + J_b - J_k) + pg_k for placement bone b, posing bone k
            b, k = self.bone_group_rigid, self.bone_group_pose
            C = Rg[:, k] @ place[:, b]  # (B, G, 3, 3)
            d = pg[:, k] + (Rg[:, k] @ (J[:, b] - J[:, k])[..., None]).squeeze(-1)
            v0 = self.bone_template_sorted
            parts = [
                torch.matmul(v0[s:e], C[:, g].transpose(-1, -2)) + d[:, g, None]
                for g, (s, e) in enumerate(self.bone_groups)
            ]
            out = torch.cat(parts, 1)
            return out if self.bone_sorted else out[:, self.bone_unsort]
        # soft posing weights: place every vertex, then blend the posing transforms (ELL layout)
        rb = self.bone_rigid
        v0 = self.bone_template
        v_align = (place[:, rb] @ v0[None, :, :, None]).squeeze(-1) + J[:, rb]
        T = (A[:, self.bone_w_idx] * self.bone_w_val[..., None]).sum(2).view(B, -1, 4, 3)
        return _apply_cols(T, v_align)

    def forward(
        self,
        poses: Tensor | np.ndarray,
        betas: Tensor | np.ndarray,
        trans: Tensor | np.ndarray | None = None,
        pose_correctives: bool = True,
        bone_mesh: bool = False,
        skin_vertex_ids: Tensor | np.ndarray | None = None,
    ) -> SKELOutput:
        """``poses`` (B, 46) radians, ``betas`` (B or 1, k), ``trans`` (B, 3) metres (added after skinning)."""
        return self.pose(self.rest_state(betas), poses, trans, pose_correctives, bone_mesh, skin_vertex_ids)


def _apply_cols(T: Tensor, v: Tensor) -> Tensor:
    """Apply per-vertex 3x4 transforms stored column-wise (B, n, 4, 3) to points (B|1, n, 3)."""
    return T[:, :, 3] + T[:, :, 0] * v[..., 0:1] + T[:, :, 1] * v[..., 1:2] + T[:, :, 2] * v[..., 2:3]


def _arc(theta: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
    """Planar constant-curvature arc of length l bent by theta: x = l(1-cos)/theta, y = l sin/theta."""
    small = theta.abs() < _SPINE_SMALL
    ts = torch.where(small, torch.ones_like(theta), theta)  # safe denominator for the unused branch
    x = torch.where(small, length * theta / 2, length * (1 - torch.cos(ts)) / ts)
    y = torch.where(small, length * (1 - theta * theta / 6), length * torch.sin(ts) / ts)
    return x, y


def _ellipsoid(a: Tensor, e: Tensor, w: Tensor, h: Tensor, xsign: float) -> Tensor:
    """Scapula position on the thorax ellipsoid, abduction a, elevation e (skel.md §5.5)."""
    c = e - math.pi / 4
    rx, ry, rz = w / 4 * torch.cos(c), w / 4, h / 2
    return torch.stack([xsign * rx * torch.cos(a), -rz * torch.sin(c), ry * torch.sin(a)], -1)
