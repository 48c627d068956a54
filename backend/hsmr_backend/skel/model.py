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
from .kinematics import rot_align

N_J = dofs.N_JOINTS
# Joints whose bone orientation is per_joint_rot alone (RotAlign forced to I): root and the leaves.
ALIGN_FORCED_I = (0, 5, 10, 13, 18, 23)
# SKEL joint k -> SMPL joint slot whose pose-corrective rotation it provides (skel.md §5.7).
SMPL_JOINT_CORRESP = (0, 2, 5, 8, 8, 11, 1, 4, 7, 7, 10, 3, 6, 15, 14, 17, 19, 0, 21, 13, 16, 18, 0, 20)
SPINE_JOINTS = (11, 12, 13)  # constant-curvature joints
SCAPULA_JOINTS = (14, 19)  # ellipsoid joints
_SPINE_SMALL = 1e-5  # |theta| below which the arc uses its Taylor form (as SKEL)
SKIN_CHUNK_BYTES = 2 << 20  # blended-transform block per skinning chunk (fits in L2/L3)


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
    v_shaped_cm: Tensor  # (Br, 3, V) the same skin, coordinate-major (what the skinning uses)

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

        # internally the skin is coordinate-major (3, V): every per-vertex step is then a plain 2-D matmul
        # or a contiguous elementwise op over V (broadcast batched matmuls are far slower on CPU)
        buf("skin_template_v", data.skin_template_v)
        buf("skin_template_cm", data.skin_template_v.T)  # (3, V)
        buf("skin_faces", data.skin_template_f, torch.long)
        buf("shapedirs_cm", data.shapedirs.transpose(2, 1, 0).reshape(K, 3 * V))  # (K, 3V) coord-major
        self.has_posedirs = data.posedirs is not None
        pd = data.posedirs if data.posedirs is not None else np.zeros((V, 3, 207), np.float32)
        buf("posedirs_cm", pd.transpose(2, 1, 0).reshape(207, 3 * V))  # (207, 3V) coord-major
        buf("J_regressor", data.J_regressor_osim)
        buf("J_regressor_t", data.J_regressor_osim.T)  # (V, 24)
        buf("skin_weights", data.skin_weights)
        buf("skin_weights_t", data.skin_weights.T)  # (24, V)
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

        # DoF table -> per-DoF axis (not re-normalised) and flip; per-joint slots (46 = identity).
        # Each DoF turns about a fixed axis: R = I + sin(t) K + (1 - cos(t)) K^2 with the constant cross-product
        # matrix K of the unit axis and t = q * flip * |axis| (the angle of the rotation vector q*flip*axis).
        # Same matrix as exp(skew(q flip axis)), in a few elementwise ops (this is on the fitter's hot path).
        ax = np.array([d.axis for d in dofs.DOFS], np.float64)
        norm = np.linalg.norm(ax, axis=1)
        k = np.zeros((len(ax), 3, 3))
        u = ax / np.maximum(norm, 1e-12)[:, None]
        k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -u[:, 2], u[:, 1], -u[:, 0]
        k = k - k.transpose(0, 2, 1)
        buf("dof_k", k)
        buf("dof_k2", k @ k)
        buf("dof_angle_scale", np.array([d.flip for d in dofs.DOFS], np.float64) * norm)
        slots = np.full((N_J, 3), dofs.N_DOFS, np.int64)
        for j in range(N_J):
            for i, d in enumerate(dofs.dofs_of_joint(j)):
                slots[j, i] = d.index
        buf("dof_slots", slots, torch.long)
        buf("_dof_joint", np.array([d.joint for d in dofs.DOFS]), torch.long)
        self.levels = _depth_levels(dofs.PARENTS)
        pos_in_level = {j: i for lev in self.levels for i, j in enumerate(lev)}
        for li, lev in enumerate(self.levels):
            buf(f"_lvl{li}", np.array(lev), torch.long)
            if li:
                buf(f"_lvl{li}_par", np.array([pos_in_level[dofs.PARENTS[j]] for j in lev]), torch.long)
        order = [j for lev in self.levels for j in lev]
        buf("_level_inverse", np.argsort(order), torch.long)
        buf("_level_order", np.array(order), torch.long)
        self._level_bounds = tuple(int(v) for v in np.cumsum([0] + [len(lev) for lev in self.levels]))
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
        first = [dofs.dofs_of_joint(j)[0].index for j in SPINE_JOINTS]  # bending; extension follows it
        buf("_spine_dofs", np.array(first + [i + 1 for i in first]), torch.long)
        buf("_scap_dofs", np.array([26, 27, 36, 37]), torch.long)
        buf("_scap_sign", np.array([1.0, 1.0, -1.0, -1.0]))
        buf("_scap_xsign", np.array([-1.0, 1.0]))
        self._subset_cache: dict[tuple, tuple[Tensor, Tensor]] = {}
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
        """Sort bone vertices by (placement bone, posing bone) so each group is a contiguous block."""
        Vb = data.skel_template_v.shape[0]
        self.num_bone_verts = Vb
        self.register_buffer("bone_faces", torch.as_tensor(data.skel_template_f), persistent=False)
        self.register_buffer("bone_template", torch.as_tensor(data.skel_template_v), persistent=False)
        rigid = np.argmax(data.skel_weights_rigid, axis=1)
        w = data.skel_weights
        nnz = np.count_nonzero(w, axis=1)
        # official files: every bone vertex follows one bone -> one composite affine map per group
        one_hot = Vb > 0 and bool(np.all(nnz == 1)) and bool(np.allclose(w.max(axis=1), 1.0, atol=1e-6))
        self.bone_one_hot = one_hot
        # the one joint that poses each bone vertex (None when the posing weights are blended)
        self.bone_vertex_joint = np.argmax(w, axis=1).astype(np.int32) if one_hot else None
        key = rigid * N_J + (np.argmax(w, axis=1) if one_hot else 0)
        order = np.argsort(key, kind="stable")
        keys, starts = np.unique(key[order], return_index=True)
        ends = np.append(starts[1:], Vb)
        self.bone_groups = [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
        self.bone_group_rigid_list = [int(k) // N_J for k in keys]
        self.register_buffer("bone_group_rigid", torch.as_tensor(keys // N_J), persistent=False)
        self.register_buffer("bone_group_pose", torch.as_tensor(keys % N_J), persistent=False)
        self.bone_sorted = bool(np.all(order == np.arange(Vb)))
        sorted_t = np.ascontiguousarray(data.skel_template_v[order].T)  # (3, Vb)
        self.register_buffer("bone_template_sorted_t", torch.as_tensor(sorted_t), persistent=False)
        self.register_buffer("bone_unsort", torch.as_tensor(np.argsort(order)), persistent=False)
        if not one_hot:  # soft posing weights: blended like the skin
            wt = np.ascontiguousarray(w[order].T, dtype=np.float32)  # (24, Vb)
            self.register_buffer("bone_weights_t", torch.as_tensor(wt), persistent=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str | Path) -> SKEL:
        """Load an official SKEL v1.1.1 ``.pkl`` or a SKEL-format ``.npz`` body."""
        path = Path(path).expanduser()
        suffix = path.suffix.lower()
        if path.is_dir():
            found = sorted(p.name for p in path.glob("skel_*.pkl"))
            hint = f"pass one of {', '.join(found)} in it" if found else "pass skel_male.pkl or skel_female.pkl"
            raise SkelFileError(f"{path} is a folder; {hint}")
        if suffix == ".zip":
            raise SkelFileError(f"{path}: unzip it and pass skel_male.pkl or skel_female.pkl from inside")
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
        v_cm = self.skin_template_cm + (betas @ self.shapedirs_cm).view(Br, 3, V)
        J = (v_cm.reshape(Br * 3, V) @ self.J_regressor_t).view(Br, 3, N_J).transpose(1, 2)  # (Br, 24, 3)
        J_local = torch.cat([J[:, :1], J[:, 1:] - J[:, self.parents_idx[1:]]], 1)
        Rk01 = self._bone_orientation(J_local)
        M = Rk01 @ self.apose_rot.transpose(-1, -2)
        S = self._bone_scale(J_local, v_cm)
        return RestState(
            betas=betas,
            v_shaped=v_cm.transpose(1, 2).contiguous(),
            v_shaped_cm=v_cm,
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

    def _bone_scale(self, J_local: Tensor, v_cm: Tensor) -> Tensor:
        """Per-bone, per-axis scale of the bone mesh (skel.md §6)."""
        Br = J_local.shape[0]
        ratio = J_local.norm(dim=-1) / self.off_len  # r_k (index 0 unused; off_len clamped)
        ratio = torch.cat([ratio, ratio.new_ones(Br, 1)], 1)
        s = ratio[:, self.scale_src]  # (Br, 24)
        lumbar = J_local[:, 11, 1].abs() / self.lumbar_off_y
        s = torch.cat([s[:, :11], lumbar[:, None], s[:, 12:]], 1)
        S = s[:, :, None].expand(Br, N_J, 3).reshape(Br, N_J * 3)
        if self.pair_groups:
            diff = v_cm[:, self.pair_axis, self.pair_a] - v_cm[:, self.pair_axis, self.pair_b]
            r = diff / self.pair_den
            vals = torch.stack([r[:, g].amin(dim=-1) for g in self.pair_groups], -1)
            S = S.scatter(1, self.pair_target.expand(Br, -1), vals)
        return S.view(Br, N_J, 3)

    # ------------------------------------------------------------------ pose
    def dof_rotations(self, poses: Tensor) -> Tensor:
        """(B, 46) -> (B, 24, 3, 3) Rp_j = R_last ... R_first in each joint's BSM frame."""
        return self._joint_rotations(poses, self.dof_k, self.dof_k2)

    def _local_rotations(self, poses: Tensor, M: Tensor) -> Tensor:
        """(B, 46), rest frames M (Br, 24, 3, 3) -> R_j = M_j Rp_j M_j^T (B, 24, 3, 3), each DoF's rotation
        built about its axis already carried into the model frame (M K M^T: shape-dependent, no batch B), so
        the conjugation costs no per-frame matmuls."""
        Mk = M[:, self._dof_joint]  # (Br, 46, 3, 3)
        Mt = Mk.transpose(-1, -2)
        return self._joint_rotations(poses, Mk @ self.dof_k @ Mt, Mk @ self.dof_k2 @ Mt)

    def _joint_rotations(self, poses: Tensor, k1: Tensor, k2: Tensor) -> Tensor:
        """Each DoF's rotation I + sin(t) K + (1 - cos(t)) K^2 (K, K^2 given: in the BSM frame or carried into
        the model frame), composed per joint R_last ... R_first -> (B, 24, 3, 3)."""
        t = (poses * self.dof_angle_scale)[..., None, None]  # (B, 46, 1, 1)
        R = torch.sin(t) * k1 + (1 - torch.cos(t)) * k2 + torch.eye(3, dtype=poses.dtype, device=poses.device)
        eye = torch.eye(3, dtype=R.dtype, device=R.device).expand(R.shape[0], 1, 3, 3)
        R = torch.cat([R, eye], 1)[:, self.dof_slots]  # (B, 24, 3, 3, 3)
        return R[:, :, 2] @ R[:, :, 1] @ R[:, :, 0]

    def joint_offsets(self, poses: Tensor, rest: RestState) -> Tensor:
        """delta_j(q) (B, 24, 3): spine arc and scapula ellipsoid translations relative to q = 0 (§5.5)."""
        B = poses.shape[0]
        # spine: lumbar, thorax, head; bending bends in x, extension in z, twist (third DoF) translates nothing
        l_ = rest.spine_lengths.repeat(1, 2)  # (Br, 6)
        x, y = _arc(poses[:, self._spine_dofs], l_)  # (B, 6): columns 0-2 bending, 3-5 extension
        spine = torch.stack([-x[:, :3], y[:, :3] + y[:, 3:] - 2 * l_[:, :3], -x[:, 3:]], -1)  # (B, 3, 3)
        # scapulae: right (a, e) = (q26, q27); left uses the mirrored formula on (-q36, -q37)
        ae = poses[:, self._scap_dofs] * self._scap_sign  # (B, 4): a_r, e_r, -a_l, -e_l
        w, h = rest.thorax_width[:, None], rest.thorax_height[:, None]
        scap = _ellipsoid(ae[:, 0::2], ae[:, 1::2], w, h, self._scap_xsign) - _ellipsoid_rest(w, h, self._scap_xsign)
        z = poses.new_zeros(B, 1, 3)
        spine = spine.expand(B, -1, -1)
        scap = scap.expand(B, -1, -1)
        return torch.cat([z.expand(B, 11, 3), spine, scap[:, :1], z.expand(B, 4, 3), scap[:, 1:], z.expand(B, 4, 3)], 1)

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
        M = rest.rest_frames
        R_local = self._local_rotations(poses, M)  # (B, 24, 3, 3) = M Rp M^T
        delta = self.joint_offsets(poses, rest)
        t_local = rest.joints_local + delta  # root: J_0 (delta_0 = 0)

        # forward kinematics by depth level (parents of level L all sit in level L-1), on 3x4 affine maps
        # [R | t] laid out level by level, so a level is a slice and one matmul: G = R_par [R | t] + [0 | p_par]
        A_loc = torch.cat([R_local, t_local.expand(B, -1, -1)[..., None]], -1)[:, self._level_order]  # (B,24,3,4)
        G_lv = [A_loc[:, : self._level_bounds[1]]]
        for li in range(1, len(self.levels)):
            par = getattr(self, f"_lvl{li}_par")
            Gp = G_lv[-1][:, par]
            G_here = Gp[..., :3] @ A_loc[:, self._level_bounds[li] : self._level_bounds[li + 1]]
            G_lv.append(G_here + torch.nn.functional.pad(Gp[..., 3:], (3, 0)))
        G34 = torch.cat(G_lv, 1)[:, self._level_inverse]
        Rg, pg = G34[..., :3], G34[..., 3]

        J = rest.joints
        # pose-corrective features: SMPL slots 1..23 filled from SKEL local rotations (duplicates: later wins)
        eye = torch.eye(3, dtype=poses.dtype, device=poses.device)
        R_ext = torch.cat([R_local, eye.expand(B, 1, 3, 3)], 1)
        pose_features = (R_ext[:, self.smpl_src] - eye).reshape(B, 207)

        # skinning transform per joint: x -> Rg_j (x - J_j) + pg_j, stored column-wise (B, 24, 4, 3)
        t_skin = pg - (Rg @ J[..., None]).squeeze(-1)
        A = torch.cat([Rg.transpose(-1, -2), t_skin[:, :, None, :]], 2)  # (B, 24, 4 columns, 3)
        if skin:
            skin_verts = self._skin(rest, A, pose_features, pose_correctives, skin_vertex_ids, trans)
        else:
            skin_verts = poses.new_zeros(B, 0, 3)
        bone_verts = self._bone_verts(rest, Rg, pg, A, trans) if bone_mesh else None

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
        self,
        rest: RestState,
        A: Tensor,
        pose_features: Tensor,
        correctives: bool,
        ids: Tensor | np.ndarray | None,
        trans: Tensor,
    ) -> Tensor:
        """LBS in coordinate-major layout; A (B, 24, 4, 3) column-wise joint transforms -> (B, n, 3)."""
        B = A.shape[0]
        if ids is None:
            v, Wt, P = rest.v_shaped_cm, self.skin_weights_t, self.posedirs_cm
        else:
            ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
            v = rest.v_shaped_cm[:, :, ids]
            Wt, P = self._subset(ids)
        n = v.shape[2]
        corr = correctives and self.has_posedirs
        P3 = P.view(207, 3, n)
        # Per chunk of vertices: add the pose correctives (pitfall 7: joints come from v_shaped, the skin from
        # v_shaped + correctives), blend the 24 joint transforms (a (B*12, 24) @ (24, n) matmul: 4 columns x
        # 3 rows each) and apply them. Chunks keep every temporary in cache (~2 MB).
        At = A.reshape(B, N_J, 12).transpose(1, 2).reshape(B * 12, N_J)
        chunk = max(256, SKIN_CHUNK_BYTES // (12 * B * A.element_size()))
        outs = []
        for s in range(0, n, chunk):
            vv = v[:, :, s : s + chunk]
            if corr:
                vv = torch.stack([torch.addmm(vv[:, c], pose_features, P3[:, c, s : s + chunk]) for c in range(3)], 1)
            T = (At @ Wt[:, s : s + chunk]).view(B, 4, 3, -1)
            o = torch.addcmul(T[:, 3], T[:, 0], vv[:, 0:1])
            o = o.addcmul_(T[:, 1], vv[:, 1:2]).addcmul_(T[:, 2], vv[:, 2:3])  # o is not saved for backward
            outs.append(o.add_(trans[:, :, None]))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 2)  # (B, 3, n)
        return out.transpose(1, 2).contiguous()

    def _subset(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Skin weights and pose correctives of a vertex subset; cached (the fitter reuses one subset)."""
        key = (tuple(ids.tolist()), self.posedirs_cm.dtype, self.posedirs_cm.device)
        hit = self._subset_cache.get(key)
        if hit is None:
            hit = (self.skin_weights_t[:, ids], self.posedirs_cm.view(207, 3, -1)[:, :, ids].reshape(207, -1))
            self._subset_cache.clear()  # keep one entry: memory stays bounded
            self._subset_cache[key] = hit
        return hit

    def _bone_verts(self, rest: RestState, Rg: Tensor, pg: Tensor, A: Tensor, trans: Tensor) -> Tensor:
        """Bone mesh: placed in T-pose by [Rk01_b | J_b] diag(S_b) (rigid bone b), posed by the skel weights."""
        B = Rg.shape[0]
        Rk01, S, J = rest.bone_orient, rest.bone_scale, rest.joints
        place = Rk01 * S[:, :, None, :]  # Rk01_b diag(S_b)   (Br, 24, 3, 3)
        if self.bone_one_hot:
            # x = Rg_k (Rk01_b S_b v0 + J_b - J_k) + pg_k for placement bone b, posing bone k
            b, k = self.bone_group_rigid, self.bone_group_pose
            C = Rg[:, k] @ place[:, b]  # (B, G, 3, 3)
            d = pg[:, k] + (Rg[:, k] @ (J[:, b] - J[:, k])[..., None]).squeeze(-1) + trans[:, None]
            v0t = self.bone_template_sorted_t  # (3, Vb): one (B*3, 3) @ (3, n) matmul per group,
            out = v0t.new_empty(B, v0t.shape[1], 3)  # written in place: no full-size temporaries
            for g, (s, e) in enumerate(self.bone_groups):
                part = torch.addmm(d[:, g].reshape(B * 3, 1), C[:, g].reshape(B * 3, 3), v0t[:, s:e])
                out[:, s:e] = part.view(B, 3, e - s).transpose(1, 2)
            return out if self.bone_sorted else out[:, self.bone_unsort]
        # soft posing weights: place every vertex in T-pose (per rigid group), then skin like the skin
        Br, v0t = place.shape[0], self.bone_template_sorted_t
        v_align = v0t.new_empty(Br, 3, v0t.shape[1])
        for g, (s, e) in enumerate(self.bone_groups):
            rb = self.bone_group_rigid_list[g]
            part = torch.addmm(J[:, rb].reshape(Br * 3, 1), place[:, rb].reshape(Br * 3, 3), v0t[:, s:e])
            v_align[:, :, s:e] = part.view(Br, 3, e - s)
        At = A.reshape(B, N_J, 12).transpose(1, 2).reshape(B * 12, N_J)
        out = v0t.new_empty(B, v0t.shape[1], 3)
        chunk = max(256, SKIN_CHUNK_BYTES // (12 * B * A.element_size()))
        for s in range(0, v0t.shape[1], chunk):
            T = (At @ self.bone_weights_t[:, s : s + chunk]).view(B, 4, 3, -1)
            vv = v_align[:, :, s : s + chunk]
            o = torch.addcmul(T[:, 3], T[:, 0], vv[:, 0:1])
            o = o.addcmul_(T[:, 1], vv[:, 1:2]).addcmul_(T[:, 2], vv[:, 2:3]).add_(trans[:, :, None])
            out[:, s : s + chunk] = o.transpose(1, 2)
        return out if self.bone_sorted else out[:, self.bone_unsort]

    def rest_arrays(self, betas: Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """The shaped body at rest as numpy arrays (float32, faces and joint ids int32), named as in the result
        file: ``rest_joints``, ``rest_frames``, ``skin_rest_verts``, ``skin_faces``, ``skin_weights``;
        ``skin_posedirs`` (207, V, 3) when the body has pose correctives; ``bone_rest_verts``, ``bone_faces`` and
        ``bone_vertex_joint`` when it has a bone mesh posed by one joint per vertex (else those keys are absent)."""
        with_bones = self.bone_vertex_joint is not None and self.bone_faces.numel() > 0
        zeros = torch.zeros(1, dofs.N_DOFS, dtype=self.dtype, device=self.device)
        b = torch.as_tensor(betas, dtype=self.dtype, device=self.device).reshape(1, -1)
        with torch.no_grad():
            out = self(zeros, b, zeros[:, :3], pose_correctives=False, bone_mesh=with_bones)

        def f32(t: Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        arrays = {
            "rest_joints": f32(out.joints[0]),
            "rest_frames": f32(out.rest_frames[0]),
            "skin_rest_verts": f32(out.v_shaped[0]),
            "skin_faces": out.skin_faces.cpu().numpy().astype(np.int32).reshape(-1, 3),
            "skin_weights": f32(self.skin_weights),
        }
        if self.has_posedirs:  # stored coordinate-major (207, 3V)
            arrays["skin_posedirs"] = np.ascontiguousarray(
                f32(self.posedirs_cm).reshape(207, 3, self.num_verts).transpose(0, 2, 1))
        if with_bones and out.bone_verts is not None:
            arrays["bone_rest_verts"] = f32(out.bone_verts[0])
            arrays["bone_faces"] = self.bone_faces.cpu().numpy().astype(np.int32).reshape(-1, 3)
            arrays["bone_vertex_joint"] = self.bone_vertex_joint.copy()
        return arrays

    def forward(
        self,
        poses: Tensor | np.ndarray,
        betas: Tensor | np.ndarray,
        trans: Tensor | np.ndarray | None = None,
        pose_correctives: bool = True,
        bone_mesh: bool = False,
        skin_vertex_ids: Tensor | np.ndarray | None = None,
        skin: bool = True,
    ) -> SKELOutput:
        """``poses`` (B, 46) radians, ``betas`` (B or 1, k), ``trans`` (B, 3) metres (added after skinning).
        ``skin=False`` skips the skin (joints, offsets and pose features only)."""
        return self.pose(self.rest_state(betas), poses, trans, pose_correctives, bone_mesh, skin_vertex_ids, skin)


def _arc(theta: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
    """Planar constant-curvature arc of length l bent by theta: x = l(1-cos)/theta, y = l sin/theta."""
    small = theta.abs() < _SPINE_SMALL
    ts = torch.where(small, torch.ones_like(theta), theta)  # safe denominator for the unused branch
    x = torch.where(small, length * theta / 2, length * (1 - torch.cos(ts)) / ts)
    y = torch.where(small, length * (1 - theta * theta / 6), length * torch.sin(ts) / ts)
    return x, y


def _ellipsoid(a: Tensor, e: Tensor, w: Tensor, h: Tensor, xsign: Tensor) -> Tensor:
    """Scapula position on the thorax ellipsoid, abduction a, elevation e (skel.md §5.5); (..., n) -> (..., n, 3).
    Right: (-rx cos a, -rz sin(e - pi/4), ry sin a), rx = w/4 cos(e - pi/4), ry = w/4, rz = h/2; the left
    is the same on (-a, -e) with the x sign flipped."""
    c = e - math.pi / 4
    rx = w / 4 * torch.cos(c)
    return torch.stack([xsign * rx * torch.cos(a), -h / 2 * torch.sin(c), w / 4 * torch.sin(a)], -1)


def _ellipsoid_rest(w: Tensor, h: Tensor, xsign: Tensor) -> Tensor:
    zero = torch.zeros_like(xsign)
    return _ellipsoid(zero.expand_as(w * xsign), zero.expand_as(w * xsign), w, h, xsign)
