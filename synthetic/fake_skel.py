"""Official-format SKEL files built from scratch, for tests (no SKEL data: shapes and layout only).

``write_fake_skel_pkl`` writes a pickle with the same keys, dtypes and containers (numpy arrays,
``scipy.sparse.coo_matrix``) as SKEL v1.1.1's ``skel_male.pkl``, holding a plausible, left/right
mirror-symmetric human: 6890 skin vertices on tubes around a T-pose skeleton (metres, y up, facing +z,
+x = the subject's left), so the SMPL vertex ids used by SKEL's bone scaling exist and sit on the head,
right hand and chest; smooth skin weights; shape directions that change stature, girth and bone lengths;
small random pose correctives; a joint regressor averaging a ring of vertices around each joint; BSM-like
joint frames (``per_joint_rot``, ``apose_rel_transfo``) mirrored the OpenSim way (BSM z = subject's right);
and a small bone mesh (a thin tube per bone, stored in bone-local frames).

Other test modules (pipeline, Blender) use it for the ``--body PATH`` route; keep the signatures stable.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

N_VERTS = 6890
PARENTS = [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 12, 14, 15, 16, 17, 12, 19, 20, 21, 22]
RIGHT = [1, 2, 3, 4, 5, 14, 15, 16, 17, 18]
LEFT = [6, 7, 8, 9, 10, 19, 20, 21, 22, 23]
CENTRAL = [0, 11, 12, 13]
MIRROR_JOINT = list(range(24))
for _r, _l in zip(RIGHT, LEFT, strict=True):
    MIRROR_JOINT[_r], MIRROR_JOINT[_l] = _l, _r
F_MODEL = np.diag([-1.0, 1.0, 1.0])  # mirror in the model frame (x = subject's left)
F_BSM = np.diag([1.0, 1.0, -1.0])  # mirror in the BSM / OpenSim frame (z = subject's right)
JOINT_NAMES = [
    "pelvis", "femur_r", "tibia_r", "talus_r", "calcn_r", "toes_r", "femur_l", "tibia_l", "talus_l", "calcn_l",
    "toes_l", "lumbar_body", "thorax", "head", "scapula_r", "humerus_r", "ulna_r", "radius_r", "hand_r",
    "scapula_l", "humerus_l", "ulna_l", "radius_l", "hand_l",
]  # fmt: skip

# design joint centres, right side (x < 0) and centre; the left side is mirrored
_J = {
    0: (0.0, 0.0, 0.0),
    1: (-0.085, -0.07, 0.01),
    2: (-0.095, -0.48, 0.01),
    3: (-0.10, -0.88, -0.02),
    4: (-0.10, -0.91, -0.045),
    5: (-0.10, -0.94, 0.12),
    11: (0.0, 0.10, -0.03),
    12: (0.0, 0.30, -0.03),
    13: (0.0, 0.52, -0.02),
    14: (-0.04, 0.44, -0.02),
    15: (-0.17, 0.44, -0.03),
    16: (-0.44, 0.44, -0.04),
    17: (-0.47, 0.44, -0.035),
    18: (-0.70, 0.44, -0.03),
}


def design_joints() -> np.ndarray:
    J = np.zeros((24, 3))
    for j, p in _J.items():
        J[j] = p
    for r, l in zip(RIGHT, LEFT, strict=True):
        J[l] = F_MODEL @ J[r]
    return J


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _rand_rot(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    return _rot(rng.normal(size=3), rng.uniform(-max_angle, max_angle))


def _rot_align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    K = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + K + K @ K / (1 + c)


# ------------------------------------------------------------------ skin mesh
def _tube(centres: list, radii: list, u: np.ndarray, w: np.ndarray, n_seg: int):
    """Rings around a polyline; ring k: c_k + ra cos(phi) u + rb sin(phi) w. Returns verts, faces, ring ids."""
    phi = 2 * np.pi * np.arange(n_seg) / n_seg
    verts, faces, rings = [], [], []
    for k, (c, (ra, rb)) in enumerate(zip(centres, radii, strict=True)):
        ring = np.asarray(c) + ra * np.cos(phi)[:, None] * u + rb * np.sin(phi)[:, None] * w
        rings.append(np.arange(k * n_seg, (k + 1) * n_seg))
        verts.append(ring)
        if k:
            a, b = (k - 1) * n_seg, k * n_seg
            for i in range(n_seg):
                i2 = (i + 1) % n_seg
                faces += [(a + i, b + i, b + i2), (a + i, b + i2, a + i2)]
    return np.concatenate(verts), np.array(faces, np.int64).reshape(-1, 3), rings


def _lerp_path(points: list[tuple[float, tuple]], step: float) -> tuple[list, list, dict]:
    """points: (key or None, (x,y,z,ra,rb)) knots; rings every ~step plus exactly at every knot.
    Returns centres, radii and {key: ring index}."""
    centres, radii, at = [], [], {}
    for i in range(len(points) - 1):
        (k0, p0), (_, p1) = points[i], points[i + 1]
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        n = max(1, int(round(np.linalg.norm(p1[:3] - p0[:3]) / step)))
        for t in np.arange(n) / n:
            if t == 0 and k0 is not None:
                at[k0] = len(centres)
            q = p0 + t * (p1 - p0)
            centres.append(q[:3])
            radii.append((q[3], q[4]))
    k_last, p_last = points[-1]
    if k_last is not None:
        at[k_last] = len(centres)
    centres.append(np.asarray(p_last[:3], float))
    radii.append(tuple(p_last[3:5]))
    return centres, radii, at


def _skin_mesh(J: np.ndarray):
    """Vertices (6890, 3), faces, and for each joint the vertex ring whose centroid is that joint."""
    X, Y, Z = np.eye(3)
    parts = []  # (verts, faces, {joint: ring vertex ids}, side) side: 'c' central, 'r' right

    def add(points, step, u, w, n_seg, side):
        c, r, at = _lerp_path(points, step)
        v, f, rings = _tube(c, r, u, w, n_seg)
        parts.append((v, f, {k: rings[i] for k, i in at.items()}, side))

    j = {k: tuple(J[k]) for k in range(24)}
    # torso (pelvis floor -> neck), head
    add([(None, (0, -0.13, 0.0, 0.13, 0.10)), (0, j[0] + (0.16, 0.11)), (11, j[11] + (0.15, 0.10)),
         (12, j[12] + (0.17, 0.12)), (None, (0, 0.48, -0.025, 0.12, 0.09)), (None, (0, 0.50, -0.02, 0.06, 0.06))],
        0.02, X, Z, 40, "c")  # fmt: skip
    add([(13, j[13] + (0.055, 0.055)), (None, (0, 0.58, -0.02, 0.06, 0.06)), (None, (0, 0.66, -0.02, 0.09, 0.09)),
         (None, (0, 0.76, -0.02, 0.06, 0.06))], 0.02, X, Z, 32, "c")  # fmt: skip
    # right leg and foot
    add([(1, j[1] + (0.085, 0.085)), (2, j[2] + (0.055, 0.055)), (3, j[3] + (0.035, 0.035))], 0.02, X, Z, 24, "r")
    add([(None, (-0.10, -0.91, -0.08, 0.035, 0.025)), (4, j[4] + (0.04, 0.03)),
         (None, (-0.10, -0.925, 0.04, 0.045, 0.02)), (5, j[5] + (0.045, 0.015)),
         (None, (-0.10, -0.945, 0.19, 0.03, 0.01))], 0.015, X, Y, 16, "r")  # fmt: skip
    # right arm: clavicle, upper arm, forearm, hand (flat: thin along y, wide along z)
    add([(None, (-0.01, 0.44, -0.02, 0.045, 0.045)), (14, j[14] + (0.05, 0.05)), (15, j[15] + (0.055, 0.05)),
         (16, j[16] + (0.04, 0.04)), (17, j[17] + (0.04, 0.04)), (18, j[18] + (0.03, 0.03)),
         (None, (-0.80, 0.44, -0.03, 0.015, 0.045)), (None, (-0.88, 0.44, -0.03, 0.008, 0.02))],
        0.02, Y, Z, 24, "r")  # fmt: skip

    # right + central, then mirrored left
    verts, faces, rings, side_of = [], [], {}, []
    n = 0
    for v, f, at, side in parts:
        verts.append(v)
        faces.append(f + n)
        rings.update({k: ids + n for k, ids in at.items()})
        side_of += [side] * len(v)
        n += len(v)
    right = np.concatenate(verts)
    side_of = np.array(side_of)
    r_ids = np.nonzero(side_of == "r")[0]
    mirror_of = {int(i): n + k for k, i in enumerate(r_ids)}
    left_v = right[r_ids] @ F_MODEL.T
    all_v = np.concatenate([right, left_v])
    fr = np.concatenate([faces[i] for i, p in enumerate(parts) if p[3] == "r"])
    remap = np.vectorize(lambda i: mirror_of[int(i)])
    all_f = np.concatenate(faces + [remap(fr)[:, ::-1]])
    for r, l in zip(RIGHT, LEFT, strict=True):
        rings[l] = np.array([mirror_of[int(i)] for i in rings[r]])
    # pad to exactly 6890 with points on the mid-sagittal plane (their own mirror images)
    pad = N_VERTS - len(all_v)
    assert pad >= 0, len(all_v)
    t = np.linspace(0, 1, pad)
    extra = np.stack([np.zeros(pad), -0.10 + 0.55 * t, np.where(np.arange(pad) % 2 == 0, 0.115, -0.125)], 1)
    return np.concatenate([all_v, extra]), all_f, rings


# SMPL vertex ids used by SKEL's bone scaling, and where they sit on this body
_SPECIAL = {
    410: (0.0, 0.66, 0.07), 384: (0.0, 0.66, -0.11), 414: (0.0, 0.76, -0.02),
    196: (0.09, 0.66, -0.02), 3708: (-0.09, 0.66, -0.02),
    6179: (-0.80, 0.455, -0.03), 6137: (-0.80, 0.425, -0.03), 5670: (-0.72, 0.44, 0.0), 5906: (-0.86, 0.44, 0.0),
    3027: (0.0, 0.38, 0.10), 3495: (-0.06, 0.38, -0.14), 3506: (0.06, 0.38, -0.14),
    # the smplx vertex ids of assets/landmarks_skel.json (MediaPipe's face, finger and foot points), so that
    # the "skel" landmark regressor reads the right places of this body too
    332: (0.0, 0.64, 0.07), 6260: (-0.03, 0.68, 0.06), 2800: (0.03, 0.68, 0.06),
    4071: (-0.09, 0.68, -0.03), 583: (0.09, 0.68, -0.03),
    3216: (0.08, -0.94, 0.18), 3226: (0.13, -0.94, 0.16), 3387: (0.10, -0.92, -0.10),
    6617: (-0.08, -0.94, 0.18), 6624: (-0.13, -0.94, 0.16), 6787: (-0.10, -0.92, -0.10),
    2746: (0.76, 0.44, 0.04), 2319: (0.84, 0.44, 0.02), 2673: (0.82, 0.44, -0.05),
    6191: (-0.76, 0.44, 0.04), 5782: (-0.84, 0.44, 0.02), 6133: (-0.82, 0.44, -0.05),
}  # fmt: skip


def _place_special(verts: np.ndarray, faces: np.ndarray, rings: dict) -> tuple:
    """Renumber vertices so the SMPL ids of _SPECIAL land nearest to their body locations."""
    order = np.arange(len(verts))  # new index -> old index
    fixed: set[int] = set()
    for vid, target in _SPECIAL.items():
        d = np.linalg.norm(verts[order] - np.asarray(target), axis=1)
        d[list(fixed)] = np.inf
        k = int(np.argmin(d))  # new position of the closest free vertex
        order[[vid, k]] = order[[k, vid]]
        fixed.add(vid)
    new_of_old = np.argsort(order)
    return verts[order], new_of_old[faces], {j: new_of_old[ids] for j, ids in rings.items()}


def _segments(J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bone segment (start, end) per joint, for skin weights and the bone mesh."""
    end = np.zeros_like(J)
    child = {}
    for j in range(23, 0, -1):
        child[PARENTS[j]] = j
    for j in range(24):
        end[j] = J[child[j]] if j in child else J[j]
    end[0] = J[0] + (0, -0.10, 0)
    end[12] = J[13]
    end[5] = J[5] + (0, 0, 0.07)
    end[13] = J[13] + (0, 0.22, 0)
    end[18] = J[18] + (-0.15, 0, 0)
    for r, l in zip(RIGHT, LEFT, strict=True):
        end[l] = F_MODEL @ end[r]
    return J.copy(), end


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(p[:, None] - (a + t[..., None] * ab), axis=-1)


def _skin_weights(v: np.ndarray, J: np.ndarray, sigma: float = 0.035) -> np.ndarray:
    a, b = _segments(J)
    d = _seg_dist(v, a, b)
    w = np.exp(-((d / sigma) ** 2) + (d.min(1, keepdims=True) / sigma) ** 2)
    keep = np.argsort(-w, axis=1)[:, :4]
    out = np.zeros_like(w)
    np.put_along_axis(out, keep, np.take_along_axis(w, keep, 1), 1)
    out[out < 1e-3] = 0
    return out / out.sum(1, keepdims=True)


# ------------------------------------------------------------------ the model dict
def build_fake_skel_dict(
    *,
    version: str | None = "1.1.1",
    dtype: type = np.float32,
    n_shapedirs: int = 10,
    root_parent: int = -1,
    bone_verts_per_bone: int = 48,
    seed: int = 0,
) -> dict:
    """The dict an official SKEL v1.1.1 pkl holds, filled with a fake but plausible body."""
    rng = np.random.default_rng(seed)
    Jd = design_joints()
    v, f, rings = _skin_mesh(Jd)
    v, f, rings = _place_special(v, f, rings)
    V = len(v)
    # joint regressor: the mean of the ring around each joint (so J(template) == design joints)
    reg = np.zeros((24, V))
    for j in range(24):
        reg[j, rings[j]] = 1.0 / len(rings[j])
    J = reg @ v
    W = _skin_weights(v, J)

    # shape directions: 0 stature (about the floor), 1 girth (away from the bones), rest bone-wise scalings
    K = n_shapedirs
    sd = np.zeros((V, 3, K))
    floor = v[:, 1].min()
    sd[:, 1, 0] = 0.05 * (v[:, 1] - floor)
    a, b = _segments(J)
    ab = b - a
    t = np.clip(((v[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    closest = a + t[..., None] * ab  # (V, 24, 3)
    sd[:, :, 1] = 0.08 * np.einsum("vj,vjc->vc", W, v[:, None] - closest)
    rng_sd = np.random.default_rng(seed + 2)  # own stream: the first 10 directions do not depend on K
    for k in range(2, K):
        D = rng_sd.uniform(-0.03, 0.03, size=(24, 3))
        D[LEFT] = D[RIGHT]  # symmetric
        sd[:, :, k] = np.einsum("vj,jc,vjc->vc", W, D, v[:, None] - J[None])
    posedirs = np.random.default_rng(seed + 1).normal(0.0, 4e-4, size=(V, 3, 207))

    # BSM-like frames, mirrored the OpenSim way (left = F_MODEL . right . F_BSM)
    Ry = _rot((0, 1, 0), -np.pi / 2)  # BSM (x front, y up, z right) -> model (x left, y up, z front)
    per = np.zeros((24, 3, 3))
    Ra = np.zeros((24, 3, 3))
    small = np.zeros((24, 3, 3))
    for j in CENTRAL:
        per[j] = Ry @ _rot((0, 0, 1), rng.uniform(-0.15, 0.15))
        Ra[j] = _rot((0, 0, 1), rng.uniform(-0.3, 0.3))
        small[j] = _rot((1, 0, 0), rng.uniform(-0.15, 0.15))
    Rz = _rot((0, 0, 1), -np.pi / 2)  # right arm: hanging (BSM y along the bone) -> T-pose, pointing -x
    for r, l in zip(RIGHT, LEFT, strict=True):
        per[r] = (Rz if r in (15, 16, 17, 18) else np.eye(3)) @ Ry @ _rand_rot(rng, 0.25)
        Ra[r] = _rand_rot(rng, 0.5)
        small[r] = _rand_rot(rng, 0.3)
        per[l] = F_MODEL @ per[r] @ F_BSM
        Ra[l] = F_BSM @ Ra[r] @ F_BSM
        small[l] = F_MODEL @ small[r] @ F_MODEL
    J_ = J - J[[max(p, 0) for p in PARENTS]]
    J_[0] = J[0]
    seg_scale = rng.uniform(0.93, 1.07, size=24)
    seg_scale[LEFT] = seg_scale[RIGHT]
    off = np.zeros((24, 3))
    for c in range(1, 24):
        off[c] = seg_scale[c] * per[PARENTS[c]].T @ small[c] @ J_[c]
    apose = np.tile(np.eye(4), (24, 1, 1))
    apose[:, :3, :3] = Ra
    apose[:, :3, 3] = off

    # bone mesh: a thin tube per bone, placed with the T-pose bone orientation, stored bone-locally
    child = [0] * 24
    for j in range(23, 0, -1):
        child[PARENTS[j]] = j
    src = off[child].copy()
    src[16], src[21] = off[17] + off[18], off[22] + off[23]
    tgt = J_[child].copy()
    tgt[12] = J_[child[11]]
    tgt[16], tgt[21] = J_[17] + J_[18], J_[22] + J_[23]
    Rk01 = per.copy()
    for j in range(24):
        if j not in (0, 5, 10, 13, 18, 23):
            Rk01[j] = _rot_align(per[j] @ src[j], tgt[j]) @ per[j]
    n_b = bone_verts_per_bone
    n_seg = 6
    bone_v, bone_f, bone_of = [], [], []
    bone_v_model: dict[int, np.ndarray] = {}
    bone_f_local: dict[int, np.ndarray] = {}
    for j in range(24):
        if j in LEFT:  # mirror image of the right bone (keeps the body exactly symmetric)
            bone_v_model[j] = bone_v_model[MIRROR_JOINT[j]] @ F_MODEL.T
            bone_f_local[j] = bone_f_local[MIRROR_JOINT[j]][:, ::-1]
            continue
        p0, p1 = a[j], b[j]
        d = (p1 - p0) / np.linalg.norm(p1 - p0)
        u = np.array([1.0, 0.0, 0.0]) if j in CENTRAL else np.cross(d, [0.3, 0.5, 0.8])  # central: symmetric
        u -= (u @ d) * d
        u /= np.linalg.norm(u)
        w = np.cross(d, u)
        rings_n = max(2, n_b // n_seg)
        centres = [p0 + (p1 - p0) * s for s in np.linspace(0.1, 0.9, rings_n)]
        bone_v_model[j], bone_f_local[j], _ = _tube(centres, [(0.012, 0.012)] * rings_n, u, w, n_seg)
    offset = 0
    for j in range(24):
        tv, tf = bone_v_model[j], bone_f_local[j]
        bone_v.append((tv - J[j]) @ Rk01[j])  # Rk01^T (x - J): bone-local
        bone_f.append(tf + offset)
        bone_of += [j] * len(tv)
        offset += len(tv)
    bone_v = np.concatenate(bone_v)
    bone_f = np.concatenate(bone_f)
    Vb = len(bone_v)
    rigid = np.zeros((Vb, 24))
    rigid[np.arange(Vb), bone_of] = 1.0

    kin = np.array([[root_parent] + PARENTS[1:], list(range(24))])
    kin = kin.astype(np.uint32 if root_parent == 4294967295 else np.int64)
    fl = lambda x: np.asarray(x, dtype=dtype)  # noqa: E731
    coo = lambda x: sp.coo_matrix(np.asarray(x, dtype=dtype))  # noqa: E731
    d = {
        "skin_template_v": fl(v),
        "skin_template_f": f.astype(np.int64),
        "shapedirs": fl(sd),
        "posedirs": fl(posedirs),
        "J_regressor": coo(reg),
        "J_regressor_osim": coo(reg),
        "skin_weights": coo(W),
        "skel_template_v": fl(bone_v),
        "skel_template_f": bone_f.astype(np.int64),
        "skel_weights": coo(rigid),
        "skel_weights_rigid": coo(rigid),
        "osim_kintree_table": kin,
        "per_joint_rot": fl(per),
        "apose_rel_transfo": fl(apose),
        "apose_transfo": fl(np.tile(np.eye(4), (24, 1, 1))),
        "tpose_transfo": fl(np.tile(np.eye(4), (24, 1, 1))),
        "parameter_mapping": np.arange(46, dtype=np.int64),
        "bone_names": list(JOINT_NAMES),
        "joints_name": list(JOINT_NAMES),
        "pose_params_name": [f"q{i}" for i in range(46)],
    }
    if version is not None:
        d["version"] = version
    return d


def write_fake_skel_pkl(
    path: str | Path,
    *,
    version: str | None = "1.1.1",
    dtype: type = np.float32,
    n_shapedirs: int = 10,
    root_parent: int = -1,
    bone_verts_per_bone: int = 48,
    seed: int = 0,
    protocol: int = pickle.DEFAULT_PROTOCOL,
) -> Path:
    """Write an official-format SKEL pkl (see module doc). ``version=None`` omits the key (pre-1.1.1 file)."""
    d = build_fake_skel_dict(
        version=version, dtype=dtype, n_shapedirs=n_shapedirs, root_parent=root_parent,
        bone_verts_per_bone=bone_verts_per_bone, seed=seed,
    )  # fmt: skip
    path = Path(path)
    with path.open("wb") as fh:
        pickle.dump(d, fh, protocol=protocol)
    return path


def write_fake_smpl_pkl(path: str | Path) -> Path:
    """An SMPL-format pkl (numpy/scipy only, no chumpy): the loader must refuse it as 'SMPL, not SKEL'."""
    rng = np.random.default_rng(1)
    v = rng.normal(size=(N_VERTS, 3)).astype(np.float32)
    d = {
        "v_template": v,
        "f": rng.integers(0, N_VERTS, size=(13776, 3)).astype(np.uint32),
        "weights": rng.dirichlet(np.ones(24), size=N_VERTS).astype(np.float32),
        "kintree_table": np.array([[4294967295] + list(range(23)), list(range(24))], np.uint32),
        "J_regressor": sp.coo_matrix(rng.random((24, N_VERTS)) > 0.99, dtype=np.float32),
        "shapedirs": rng.normal(size=(N_VERTS, 3, 10)).astype(np.float32),
    }
    path = Path(path)
    with path.open("wb") as fh:
        pickle.dump(d, fh, protocol=2)
    return path
