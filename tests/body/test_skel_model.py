"""SKEL forward pass: against a plain float64 transcription of skel.md §5/§6 and against analytic cases.

The reference below is written independently of the model's vectorised code (loops, 4x4 matrices, scipy
rotations, the official RotAlign formula with (1 - c) / s^2, the bone-scale vertex list retyped from
skel.md §6) so that indexing/broadcasting mistakes in the fast path show up as mismatches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from hsmr_backend.skel import SKEL
from hsmr_backend.skel.data import SkelData
from hsmr_contract import dofs
from synthetic.fake_skel import F_MODEL, build_fake_skel_dict, write_fake_skel_pkl

PARENTS = list(dofs.PARENTS)
CHILD = [next((c for c in range(24) if PARENTS[c] == j), 0) for j in range(24)]
CORRESP = [0, 2, 5, 8, 8, 11, 1, 4, 7, 7, 10, 3, 6, 15, 14, 17, 19, 0, 21, 13, 16, 18, 0, 20]
# skel.md §6 per-axis overrides: (bone, bone axis, vertex a, vertex b, SMPL axis)
SCALE_PAIRS = [(13, 0, 410, 384, 2), (13, 1, 414, 384, 1), (13, 2, 196, 3708, 0), (18, 0, 6179, 6137, 1),
               (18, 1, 5670, 5906, 0), (23, 0, 6179, 6137, 1), (23, 1, 5670, 5906, 0)]  # fmt: skip


def dense(x):
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def descendants(j: int) -> set[int]:
    out = {j}
    for c in range(24):
        if PARENTS[c] in out and c > j:
            out.add(c)
    for c in range(24):  # second pass: the tree is index-ordered, one pass after sorting suffices
        if PARENTS[c] in out:
            out.add(c)
    return out


def ref_offsets(q: np.ndarray, J: np.ndarray) -> np.ndarray:
    """skel.md §5.5, written out again: spine arcs and scapula ellipsoid, relative to q = 0."""
    d = np.zeros((24, 3))

    def arc(t, l):
        if abs(t) < 1e-5:
            return l * t / 2, l * (1 - t * t / 6)
        return l * (1 - np.cos(t)) / t, l * np.sin(t) / t

    for j, qb, qe, lo in ((11, 17, 18, 0), (12, 20, 21, 11), (13, 23, 24, 12)):
        l = abs(J[j, 1] - J[lo, 1])
        xb, yb = arc(q[qb], l)
        xe, ye = arc(q[qe], l)
        d[j] = np.array([-xb, yb, 0]) + np.array([0, ye, -xe]) - np.array([0, 2 * l, 0])
    w, h = np.linalg.norm(J[19] - J[14]), np.linalg.norm(J[12] - J[11])

    def f(a, e, sign):
        rx, ry, rz = w / 4 * np.cos(e - np.pi / 4), w / 4, h / 2
        return np.array([sign * rx * np.cos(a), -rz * np.sin(e - np.pi / 4), ry * np.sin(a)])

    d[14] = f(q[26], q[27], -1) - f(0, 0, -1)
    d[19] = f(-q[36], -q[37], 1) - f(0, 0, 1)
    return d


def reference(d: dict, q: np.ndarray, betas: np.ndarray, trans: np.ndarray, correctives: bool = True) -> dict:
    """One frame, float64."""
    v_t = dense(d["skin_template_v"])
    V = len(v_t)
    v_shaped = v_t + dense(d["shapedirs"])[:, :, :10] @ betas
    J = dense(d["J_regressor_osim"]) @ v_shaped
    Jl = J - J[[max(p, 0) for p in PARENTS]]
    Jl[0] = J[0]
    apose = dense(d["apose_rel_transfo"])
    Ra, off, per = apose[:, :3, :3], apose[:, :3, 3], dense(d["per_joint_rot"])
    Rk01 = np.zeros((24, 3, 3))
    for j in range(24):
        if j in (0, 5, 10, 13, 18, 23):
            Rk01[j] = per[j]
            continue
        b, o = Jl[CHILD[j]], off[CHILD[j]]
        if j == 12:
            b = Jl[CHILD[11]]
        if j in (16, 21):
            b, o = Jl[j + 1] + Jl[j + 2], off[j + 1] + off[j + 2]
        a_, b_ = per[j] @ o, b
        a_, b_ = a_ / np.linalg.norm(a_), b_ / np.linalg.norm(b_)
        v = np.cross(a_, b_)
        c, s = a_ @ b_, np.linalg.norm(v) + np.finfo(np.float64).eps
        K = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
        Rk01[j] = (np.eye(3) + K + K @ K * (1 - c) / s**2) @ per[j]
    delta = ref_offsets(q, J)
    G = np.zeros((24, 4, 4))
    R_loc = np.zeros((24, 3, 3))
    for j in range(24):
        Rp = np.eye(3)
        for dof in dofs.dofs_of_joint(j):
            Rp = Rotation.from_rotvec(dof.flip * q[dof.index] * np.array(dof.axis)).as_matrix() @ Rp
        R_loc[j] = Rk01[j] @ Ra[j].T @ Rp @ Ra[j] @ Rk01[j].T
        L = np.eye(4)
        L[:3, :3] = R_loc[j]
        L[:3, 3] = (J[0] if j == 0 else Jl[j]) + delta[j]
        G[j] = L if j == 0 else G[PARENTS[j]] @ L
    Gs = G.copy()
    Gs[:, :3, 3] -= np.einsum("jab,jb->ja", G[:, :3, :3], J)  # G_j [I | -J_j]
    Rs = [np.eye(3)] * 24
    for k in range(24):
        Rs[CORRESP[k]] = R_loc[k]
    pf = np.concatenate([(R - np.eye(3)).ravel() for R in Rs[1:]])
    v_pd = v_shaped + (dense(d["posedirs"]).reshape(V * 3, 207) @ pf).reshape(V, 3) * correctives
    T = np.einsum("vj,jab->vab", dense(d["skin_weights"]), Gs)
    skin = np.einsum("vab,vb->va", T[:, :3, :3], v_pd) + T[:, :3, 3] + trans
    # bone scale (§6)
    r = np.linalg.norm(Jl, axis=1) / np.maximum(np.linalg.norm(off, axis=1), 1e-12)
    S = np.ones((24, 3))
    for j in range(24):
        if CHILD[j]:
            S[j] = r[CHILD[j]]
    S[16], S[21] = S[17], S[22]
    S[12] = S[11]
    S[11] = abs(Jl[11, 1]) / abs(off[11, 1])
    ratio = lambda a, b, ax: (v_shaped[a, ax] - v_shaped[b, ax]) / (v_t[a, ax] - v_t[b, ax])  # noqa: E731
    for bone, bax, a, b, ax in SCALE_PAIRS:
        S[bone, bax] = ratio(a, b, ax)
    S[12, 0] = min(ratio(3027, 3495, 2), ratio(3027, 3506, 2))
    S[11, 0] = S[12, 0]
    v0 = dense(d["skel_template_v"])
    Wr, Ws = dense(d["skel_weights_rigid"]), dense(d["skel_weights"])
    place = np.einsum("jab,jb,vb->vja", Rk01, S, v0) + J[None]
    v_align = np.einsum("vj,vja->va", Wr, place)
    Tb = np.einsum("vj,jab->vab", Ws, Gs)
    bone = np.einsum("vab,vb->va", Tb[:, :3, :3], v_align) + Tb[:, :3, 3] + trans
    return dict(skin=skin, joints=G[:, :3, 3] + trans, joints_ori=G[:, :3, :3] @ Rk01, bone=bone, pf=pf, J=J,
                G=G, Rk01=Rk01, S=S, delta=delta, v_shaped=v_shaped)  # fmt: skip


@pytest.fixture(scope="module")
def fake_dict():
    return build_fake_skel_dict()


@pytest.fixture(scope="module")
def model(tmp_path_factory, fake_dict):
    path = write_fake_skel_pkl(tmp_path_factory.mktemp("skel") / "skel_male.pkl")
    return SKEL.from_file(path)


def rand_pose(rng, B, scale=0.5):
    return torch.as_tensor(rng.uniform(-scale, scale, size=(B, 46)), dtype=torch.float32)


def test_matches_reference_transcription(model, fake_dict):
    rng = np.random.default_rng(3)
    B = 3
    q = rand_pose(rng, B, 0.8)
    q[0, [17, 20, 23]] = 0.0  # exercise the spine's small-angle branch too
    betas = torch.as_tensor(rng.normal(0, 1.5, (B, 10)), dtype=torch.float32)
    trans = torch.as_tensor(rng.normal(0, 1, (B, 3)), dtype=torch.float32)
    out = model(q, betas, trans, bone_mesh=True)
    rest = model.rest_state(betas)
    for i in range(B):
        ref = reference(fake_dict, q[i].double().numpy(), betas[i].double().numpy(), trans[i].double().numpy())
        np.testing.assert_allclose(out.skin_verts[i].numpy(), ref["skin"], atol=2e-5)
        np.testing.assert_allclose(out.joints[i].numpy(), ref["joints"], atol=1e-5)
        np.testing.assert_allclose(out.joints_ori[i].numpy(), ref["joints_ori"], atol=2e-5)
        np.testing.assert_allclose(out.bone_verts[i].numpy(), ref["bone"], atol=2e-5)
        np.testing.assert_allclose(out.pose_features[i].numpy(), ref["pf"], atol=2e-5)
        np.testing.assert_allclose(out.global_transforms[i].numpy(), ref["G"], atol=2e-5)
        np.testing.assert_allclose(out.joint_offsets[i].numpy(), ref["delta"], atol=1e-6)
        np.testing.assert_allclose(rest.bone_scale[i].numpy(), ref["S"], rtol=1e-5)
        np.testing.assert_allclose(rest.bone_orient[i].numpy(), ref["Rk01"], atol=5e-6)
    assert out.skin_faces.shape == (len(fake_dict["skin_template_f"]), 3)


def test_zero_pose_zero_shape_is_the_template_t_pose(model, fake_dict):
    out = model(torch.zeros(2, 46), torch.zeros(2, 10), torch.zeros(2, 3), bone_mesh=True)
    v_t = dense(fake_dict["skin_template_v"])
    np.testing.assert_allclose(out.skin_verts[1].numpy(), v_t, atol=1e-6)
    J = dense(fake_dict["J_regressor_osim"]) @ v_t
    np.testing.assert_allclose(out.joints[0].numpy(), J, atol=1e-6)
    np.testing.assert_allclose(out.joints_tpose[0].numpy(), J, atol=1e-6)
    assert torch.allclose(out.global_transforms[0, :, :3, :3], torch.eye(3).expand(24, 3, 3), atol=1e-6)
    assert out.pose_features.abs().max() < 1e-6 and out.joint_offsets.abs().max() < 1e-7
    # bones sit at their T-pose placement [Rk01 | J] diag(S) v0 (no posing); joints_ori = Rk01
    rest = model.rest_state(torch.zeros(1, 10))
    v0 = dense(fake_dict["skel_template_v"])
    bone = np.argmax(dense(fake_dict["skel_weights_rigid"]), 1)
    Rk, S = rest.bone_orient[0].double().numpy(), rest.bone_scale[0].double().numpy()
    expect = np.einsum("vab,vb->va", Rk[bone], S[bone] * v0) + J[bone]
    np.testing.assert_allclose(out.bone_verts[0].numpy(), expect, atol=1e-6)
    np.testing.assert_allclose(out.joints_ori[0].numpy(), Rk, atol=1e-5)


def test_trans_is_a_plain_offset(model):
    rng = np.random.default_rng(0)
    q, b = rand_pose(rng, 2), torch.randn(2, 10)
    t = torch.tensor([[0.3, -1.0, 2.0], [0.0, 0.5, -0.2]])
    a, o = model(q, b, t, bone_mesh=True), model(q, b, torch.zeros(2, 3), bone_mesh=True)
    for x, y in ((a.skin_verts, o.skin_verts), (a.joints, o.joints), (a.bone_verts, o.bone_verts)):
        torch.testing.assert_close(x - y, t[:, None].expand_as(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dof", range(46))
def test_single_dof_moves_only_descendants_about_its_axis(model, dof):
    """q_d alone rotates the subtree of its joint about M_j a_d by flip*q*|a_d| (right-handed), pivoting
    at the joint (plus the joint's own translation delta for spine/scapula), and moves nothing else."""
    d = dofs.DOFS[dof]
    j = d.joint
    betas = torch.zeros(1, 10)
    betas[0, 0], betas[0, 3] = 0.7, -0.4
    q = torch.zeros(1, 46)
    q[0, dof] = 0.4
    out = model(q, betas, pose_correctives=False)
    rest = model.rest_state(betas)
    J = rest.joints[0].double().numpy()
    M = rest.rest_frames[0, j].double().numpy()
    R = Rotation.from_rotvec(M @ (d.flip * 0.4 * np.array(d.axis))).as_matrix()
    delta = ref_offsets(q[0].double().numpy(), J)[j]
    sub = descendants(j)
    got = out.joints[0].double().numpy()
    for k in range(24):
        expect = J[j] + delta + R @ (J[k] - J[j]) if k in sub else J[k]
        np.testing.assert_allclose(got[k], expect, atol=2e-6, err_msg=f"joint {k}")
    # skin vertices with no weight on the subtree do not move
    W = model.skin_weights.numpy()
    still = W[:, sorted(sub)].sum(1) == 0
    v0 = rest.v_shaped[0].numpy()
    np.testing.assert_allclose(out.skin_verts[0].numpy()[still], v0[still], atol=1e-6)
    assert np.abs(out.skin_verts[0].numpy()[~still] - v0[~still]).max() > 1e-3


def test_joint_composition_order_first_dof_applied_first(model):
    """Rp = R_last ... R_first (pitfall 1): the hip's global rotation with all three DoFs set."""
    q = torch.zeros(1, 46)
    q[0, 3:6] = torch.tensor([0.5, -0.3, 0.7])
    out = model(q, torch.zeros(1, 10))
    M = out.rest_frames[0, 1].double().numpy()
    Rs = [Rotation.from_rotvec(M @ (d.flip * float(q[0, d.index]) * np.array(d.axis))).as_matrix() for d in
          dofs.dofs_of_joint(1)]  # fmt: skip
    np.testing.assert_allclose(out.global_transforms[0, 1, :3, :3].numpy(), Rs[2] @ Rs[1] @ Rs[0], atol=2e-6)
    assert not np.allclose(Rs[0] @ Rs[1] @ Rs[2], Rs[2] @ Rs[1] @ Rs[0], atol=1e-2)


def test_knee_and_elbow_signs(model):
    """Pitfall 2: knee_angle = rotation about -z (flexion positive moves the ankle backwards, -z in the
    model frame for this body whose BSM x axis faces +z); elbow flexion positive moves the wrist forward."""
    for dof, tip, sign in (("knee_angle_r", 3, -1), ("knee_angle_l", 8, -1), ("elbow_flexion_r", 18, 1),
                           ("elbow_flexion_l", 23, 1)):  # fmt: skip
        q = torch.zeros(1, 46)
        q[0, dofs.dof_index(dof)] = 0.5
        moved = (
            model(q, torch.zeros(1, 10)).joints[0, tip] - model(torch.zeros(1, 46), torch.zeros(1, 10)).joints[0, tip]
        )
        assert sign * moved[2] > 0.02, (dof, moved)


def test_rest_chain_identity(model):
    """G_j = G_parent [M_j Rp_j(q) M_j^T | J_j - J_parent + delta_j]; root [M_0 Rp_0 M_0^T | J_0] (the rig)."""
    rng = np.random.default_rng(5)
    q, b = rand_pose(rng, 2, 1.0), torch.randn(2, 10)
    out = model(q, b)
    for i in range(2):
        M = out.rest_frames[i].double().numpy()
        J = out.joints_tpose[i].double().numpy()
        delta = out.joint_offsets[i].double().numpy()
        G = np.zeros((24, 4, 4))
        for j in range(24):
            Rp = np.eye(3)
            for d in dofs.dofs_of_joint(j):
                Rp = Rotation.from_rotvec(d.flip * float(q[i, d.index]) * np.array(d.axis)).as_matrix() @ Rp
            L = np.eye(4)
            L[:3, :3] = M[j] @ Rp @ M[j].T
            L[:3, 3] = J[j] + delta[j] - (J[PARENTS[j]] if j else 0)
            G[j] = L if j == 0 else G[PARENTS[j]] @ L
        np.testing.assert_allclose(out.global_transforms[i].numpy(), G, atol=5e-6)
        R_official = out.joints_ori[i].double().numpy()
        Rk01 = model.rest_state(b[i : i + 1]).bone_orient[0].double().numpy()
        np.testing.assert_allclose(R_official, G[:, :3, :3] @ Rk01, atol=5e-6)


def test_spine_and_scapula_translations_follow_the_formulas(model):
    q = torch.zeros(3, 46)
    q[0, [17, 18, 19]] = torch.tensor([0.3, -0.2, 0.5])  # lumbar (twist adds no translation)
    q[1, [23, 24, 26, 27, 28]] = torch.tensor([-0.25, 0.4, 0.3, -0.3, 0.2])  # head, right scapula
    q[2, [20, 21, 36, 37, 38]] = torch.tensor([1e-7, -0.6, -0.5, -0.2, 0.1])  # thorax tiny bend, left scapula
    betas = torch.randn(3, 10)
    out = model(q, betas)
    for i in range(3):
        J = out.joints_tpose[i].double().numpy()
        np.testing.assert_allclose(out.joint_offsets[i].numpy(), ref_offsets(q[i].double().numpy(), J), atol=1e-6)
    assert out.joint_offsets[0, 11].abs().max() > 1e-3 and out.joint_offsets[1, 14].abs().max() > 1e-3
    # twist only: no translation
    q = torch.zeros(1, 46)
    q[0, [19, 22, 25, 28, 38]] = 0.4
    assert model(q, torch.zeros(1, 10)).joint_offsets.abs().max() < 1e-7


def test_scapula_translation_left_is_mirror_of_right_at_negated_angles(model):
    """skel.md §5.5: left(a, e) = mirror_x(right(-a, -e)) — so mirrored postures need q_l = -q_r for
    abduction and elevation (see docs/skel.md on the left elevation limits)."""
    q = torch.zeros(2, 46)
    q[0, 26:28] = torch.tensor([0.3, -0.25])
    q[1, 36:38] = torch.tensor([-0.3, 0.25])
    off = model(q, torch.zeros(2, 10)).joint_offsets
    torch.testing.assert_close(off[1, 19], off[0, 14] * torch.tensor([-1.0, 1.0, 1.0]), atol=1e-7, rtol=0)


def mirror_pose_sign(d_right: dofs.Dof, d_left: dofs.Dof) -> float | None:
    """q_l / q_r that mirrors a right-side rotation, for bodies mirrored the OpenSim way (BSM z flipped):
    needs flip_l q_l a_l = -F_bsm flip_r q_r a_r; None when the axes are not mirror images (talus)."""
    target = -np.array(d_right.axis) * np.array([1, 1, -1]) * d_right.flip
    own = np.array(d_left.axis) * d_left.flip
    for s in (1.0, -1.0):
        if np.allclose(s * own, target, atol=1e-4):  # toes: SKEL's -3.14159 is not exactly pi
            return s
    return None


def test_left_right_symmetry(model):
    """The fake body is mirror-symmetric, so a mirrored pose gives the mirrored skin and skeleton.
    Central DoFs: bending and twist change sign, extension does not (pelvis: list and rotation change sign)."""
    rng = np.random.default_rng(11)
    q = rand_pose(rng, 1, 0.5)[0]
    q[[7, 14]] = 0.0  # talus pin axis is the same on both sides in SKEL: not mirror-symmetric
    qm = q.clone()
    pairs = [(dofs.DOFS[i], dofs.DOFS[i + 7]) for i in range(3, 10)] + [
        (dofs.DOFS[i], dofs.DOFS[i + 10]) for i in range(26, 36)
    ]
    for dr, dl in pairs:
        s = mirror_pose_sign(dr, dl)
        if dr.name.startswith("ankle"):
            assert s is None
            continue
        assert s is not None, dr.name
        qm[dl.index], qm[dr.index] = s * q[dr.index], s * q[dl.index]
    for i in (0, 17, 20, 23, 1, 19, 22, 25, 2):  # pelvis tilt/list/rotation; spine bending, twist
        d = dofs.DOFS[i]
        s = mirror_pose_sign(d, d)
        assert s is not None
        qm[i] = s * q[i]
    assert mirror_pose_sign(dofs.DOFS[26], dofs.DOFS[36]) == -1  # abduction, matches the translation
    assert mirror_pose_sign(dofs.DOFS[27], dofs.DOFS[37]) == -1  # elevation, idem
    betas = torch.as_tensor(rng.normal(0, 1, (1, 10)), dtype=torch.float32)
    a = model(q[None], betas, pose_correctives=False, bone_mesh=True)
    b = model(qm[None], betas, pose_correctives=False, bone_mesh=True)
    F = torch.as_tensor(F_MODEL, dtype=torch.float32)
    swap = [dofs.JOINT_NAMES.index(n.replace("_r", "_l") if n.endswith("_r") else n.replace("_l", "_r"))
            for n in dofs.JOINT_NAMES]  # fmt: skip
    torch.testing.assert_close(b.joints[0], (a.joints[0] @ F)[swap], atol=2e-5, rtol=0)
    v = model.skin_template_v.numpy()
    mirror_idx = cKDTree(v).query(v @ F_MODEL)[1]
    assert np.abs(v[mirror_idx] - v @ F_MODEL).max() < 1e-5
    torch.testing.assert_close(b.skin_verts[0], (a.skin_verts[0] @ F)[mirror_idx], atol=2e-5, rtol=0)
    vb = model.bone_template.numpy()  # bone-local; compare the posed bone meshes instead
    pb = a.bone_verts[0].numpy()
    mb = cKDTree(b.bone_verts[0].numpy()).query(pb @ F_MODEL)[0]
    assert mb.max() < 5e-5 and len(vb) == len(pb)


def test_pose_corrective_slots(model):
    """SMPL slot mapping: ankles (7, 8) come from calcn (the later joint wins); talus and radius feed nothing."""

    def pf_of(**kw):
        q = torch.zeros(1, 46)
        for k, v in kw.items():
            q[0, dofs.dof_index(k)] = v
        out = model(q, torch.randn(1, 10))
        return out.pose_features[0].view(23, 3, 3), out.local_rotations[0]

    for name in ("ankle_angle_r", "ankle_angle_l", "pro_sup_r", "pro_sup_l"):
        pf, _ = pf_of(**{name: 0.5})
        assert pf.abs().max() < 1e-6, name  # float noise of M M^T only
    pf, R = pf_of(subtalar_angle_r=0.5, subtalar_angle_l=-0.3, knee_angle_r=0.4)
    eye = torch.eye(3)
    torch.testing.assert_close(pf[8 - 1], R[4] - eye)  # SMPL 8 = right ankle <- calcn_r
    torch.testing.assert_close(pf[7 - 1], R[9] - eye)  # SMPL 7 = left ankle <- calcn_l
    torch.testing.assert_close(pf[5 - 1], R[2] - eye)  # SMPL 5 = right knee <- tibia_r
    # SMPL 9, 12, 22, 23 are never filled
    q = torch.as_tensor(np.random.default_rng(2).uniform(-1, 1, (1, 46)), dtype=torch.float32)
    pf = model(q, torch.zeros(1, 10)).pose_features[0].view(23, 3, 3)
    for slot in (9, 12, 22, 23):
        assert pf[slot - 1].abs().max() < 1e-6
    # correctives change the skin only when on
    a = model(q, torch.zeros(1, 10), pose_correctives=True).skin_verts
    b = model(q, torch.zeros(1, 10), pose_correctives=False).skin_verts
    assert (a - b).abs().max() > 1e-4


def test_rest_state_reuse_subset_and_broadcast(model):
    rng = np.random.default_rng(7)
    B = 5
    q, t = rand_pose(rng, B), torch.randn(B, 3)
    beta = torch.randn(1, 10)
    full = model(q, beta.expand(B, 10), t, bone_mesh=True)
    rest = model.rest_state(beta)
    shared = model.pose(rest, q, t, bone_mesh=True)
    for name in ("skin_verts", "joints", "joints_ori", "bone_verts", "global_transforms", "v_shaped"):
        torch.testing.assert_close(getattr(shared, name), getattr(full, name), atol=5e-6, rtol=0)
    ids = torch.tensor([3027, 5, 410, 6890 - 1, 5])
    sub = model.pose(rest, q, t, skin_vertex_ids=ids)
    torch.testing.assert_close(sub.skin_verts, full.skin_verts[:, ids], atol=1e-6, rtol=0)
    sub = model.pose(rest, q, t, skin_vertex_ids=ids, pose_correctives=False)
    ref = model(q, beta.expand(B, 10), t, pose_correctives=False)
    torch.testing.assert_close(sub.skin_verts, ref.skin_verts[:, ids], atol=1e-6, rtol=0)
    assert model.pose(rest, q, t, skin=False).skin_verts.shape == (B, 0, 3)


def test_betas_shorter_or_longer_than_the_model(model):
    b = torch.randn(2, 10)
    ref = model(torch.zeros(2, 46), b).skin_verts
    longer = model(torch.zeros(2, 46), torch.cat([b, torch.randn(2, 6)], 1)).skin_verts
    torch.testing.assert_close(longer, ref)
    short = model(torch.zeros(2, 46), b[:, :3]).skin_verts
    b0 = b.clone()
    b0[:, 3:] = 0
    torch.testing.assert_close(short, model(torch.zeros(2, 46), b0).skin_verts)


def test_soft_and_unsorted_bone_weights(fake_dict):
    """The general bone-mesh paths (soft posing weights; vertices not grouped by bone) agree with the
    reference transcription."""
    d = dict(fake_dict)
    Vb = d["skel_template_v"].shape[0]
    rigid = dense(d["skel_weights_rigid"])
    soft = 0.7 * rigid + 0.3 * rigid[:, [max(p, 0) for p in PARENTS]]
    perm = np.random.default_rng(0).permutation(Vb)
    inv = np.argsort(perm)
    for weights, order in ((soft, np.arange(Vb)), (rigid, perm)):
        dd = dict(d, skel_weights=weights[order], skel_weights_rigid=rigid[order])
        dd.update(skel_template_v=dense(d["skel_template_v"])[order], skel_template_f=inv[d["skel_template_f"]])
        data = _data_from_dict(dd)
        m = SKEL(data)
        assert m.bone_one_hot == (weights is rigid)
        rng = np.random.default_rng(1)
        q, b = rand_pose(rng, 1, 0.6), torch.randn(1, 10)
        got = m(q, b, bone_mesh=True).bone_verts[0].numpy()
        ref = reference(dd, q[0].double().numpy(), b[0].double().numpy(), np.zeros(3))
        np.testing.assert_allclose(got, ref["bone"], atol=2e-5)


def _data_from_dict(d: dict) -> SkelData:
    import pickle
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        pickle.dump(d, fh)
    return SkelData.from_official_pkl(fh.name)


def test_bad_inputs_give_one_line_errors(model):
    with pytest.raises(ValueError, match=r"poses must have shape \(B, 46\)"):
        model(torch.zeros(2, 45), torch.zeros(2, 10))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(torch.zeros(2, 46), torch.zeros(3, 10))
    with pytest.raises(ValueError, match="trans"):
        model(torch.zeros(2, 46), torch.zeros(2, 10), torch.zeros(2, 2))


def test_bone_orientation_aligns_bsm_segments_with_the_shaped_skeleton(model, fake_dict):
    """§5.3 / pitfall 14: Rk01_j maps the BSM child offset onto the shaped segment; the thorax targets the
    lumbar segment but keeps its own source (off_13); the ulna aligns elbow->wrist; root and leaves keep
    per_joint_rot. Rk01 changes with the shape."""
    betas = torch.randn(2, 10)
    rest = model.rest_state(betas)
    apose = dense(fake_dict["apose_rel_transfo"])
    off, per = apose[:, :3, 3], dense(fake_dict["per_joint_rot"])
    for i in range(2):
        Rk = rest.bone_orient[i].double().numpy()
        Jl = rest.joints_local[i].double().numpy()
        for j in range(24):
            if j in (0, 5, 10, 13, 18, 23):
                np.testing.assert_allclose(Rk[j], per[j], atol=1e-6)
                continue
            src, tgt = off[CHILD[j]], Jl[CHILD[j]]
            if j == 12:
                tgt = Jl[12]  # b_12 = b_11 = J_[child 11]; the source stays off[13]
            if j in (16, 21):
                src, tgt = off[j + 1] + off[j + 2], Jl[j + 1] + Jl[j + 2]
            got = Rk[j] @ src
            np.testing.assert_allclose(got / np.linalg.norm(got), tgt / np.linalg.norm(tgt), atol=2e-6, err_msg=str(j))
    assert (rest.bone_orient[0] - rest.bone_orient[1]).abs().max() > 1e-3


def test_joints_come_from_the_shaped_template_not_the_correctives(model, fake_dict):
    """Pitfall 7: J = J_regressor_osim v_shaped; pose correctives move the skin only."""
    q = torch.as_tensor(np.random.default_rng(4).uniform(-1, 1, (2, 46)), dtype=torch.float32)
    b = torch.randn(2, 10)
    a, o = model(q, b, pose_correctives=True), model(q, b, pose_correctives=False)
    torch.testing.assert_close(a.joints, o.joints, atol=0, rtol=0)
    vs = dense(fake_dict["skin_template_v"]) + dense(fake_dict["shapedirs"]) @ b[0].double().numpy()
    np.testing.assert_allclose(a.joints_tpose[0].numpy(), dense(fake_dict["J_regressor_osim"]) @ vs, atol=2e-6)
    np.testing.assert_allclose(a.v_shaped[0].numpy(), vs, atol=2e-6)


def test_plain_dense_float32_module_without_traps(model):
    """Pitfalls 9, 11, 12, 13: dense buffers; float32 results even for float64 input; huge values pass
    through (no debugger trap); angles are used as given (not wrapped)."""
    assert all(not b.is_sparse for b in model.buffers())
    out = model(torch.zeros(1, 46, dtype=torch.float64), torch.zeros(1, 10), torch.full((1, 3), 1e4))
    assert out.skin_verts.dtype == torch.float32 and out.skin_verts.max() > 1e3
    q = torch.zeros(2, 46)
    q[0, 6], q[1, 6] = 0.5, 0.5 + 2 * np.pi  # knee: a pure rotation, periodic
    j = model(q, torch.zeros(2, 10)).joints
    torch.testing.assert_close(j[0], j[1], atol=2e-5, rtol=0)
    q = torch.zeros(2, 46)
    q[0, 18], q[1, 18] = 0.5, 0.5 + 2 * np.pi  # lumbar extension: the arc translation is not periodic
    off = model(q, torch.zeros(2, 10)).joint_offsets[:, 11]
    assert (off[0] - off[1]).abs().max() > 1e-3


def test_pelvis_is_yxz_euler_on_reversed_q(model):
    """skel.md §4: the root rotation is R_y(q2) R_x(q1) R_z(q0) in the pelvis' BSM frame (HSMR relies on it)."""
    q = torch.zeros(1, 46)
    q[0, :3] = torch.tensor([0.4, -0.7, 1.1])
    out = model(q, torch.zeros(1, 10))
    M = out.rest_frames[0, 0].double().numpy()
    Rp = Rotation.from_euler("YXZ", [1.1, -0.7, 0.4]).as_matrix()  # intrinsic Y, X, Z = R_y R_x R_z
    np.testing.assert_allclose(out.global_transforms[0, 0, :3, :3].numpy(), M @ Rp @ M.T, atol=2e-6)
    np.testing.assert_allclose(out.joints[0, 0].numpy(), out.joints_tpose[0, 0].numpy(), atol=1e-6)  # pivots at J0
