"""Virtual markers for the ``.trc``: the 24 SKEL joint centres and skin landmarks, in the OpenSim ground.

Numpy only. The skin landmarks are chosen on the subject's rest skin by a geometric
rule that works for any mesh topology (the bundled open body and the official SKEL skins differ): among the
vertices bound mostly to the given joints and lying within ``radius`` of a reference joint centre, take the one
furthest along a direction (model frame at rest: +x = subject's left, +y up, +z anterior). The vertex is then
posed by linear blend skinning with the result's joint rotations and posed joint centres (pose correctives are
left out: they move the skin by millimetres).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..kinematics import (
    BLENDER_TO_OPENSIM,
    global_rotations,
    joint_rotations_bsm,
    local_rotations_model,
    to_homogeneous_apply,
)

# SKEL joint -> anatomical joint-centre marker name
JOINT_CENTRE_NAMES: dict[str, str] = {
    "pelvis": "pelvis_jc",
    "lumbar_body": "lumbar_jc",
    "thorax": "thorax_jc",
    "head": "neck_jc",
    **{
        k: v
        for s in "rl"
        for k, v in (
            (f"femur_{s}", f"hip_{s}_jc"),
            (f"tibia_{s}", f"knee_{s}_jc"),
            (f"talus_{s}", f"ankle_{s}_jc"),
            (f"calcn_{s}", f"subtalar_{s}_jc"),
            (f"toes_{s}", f"mtp_{s}_jc"),
            (f"scapula_{s}", f"scapula_{s}_jc"),
            (f"humerus_{s}", f"shoulder_{s}_jc"),
            (f"ulna_{s}", f"elbow_{s}_jc"),
            (f"radius_{s}", f"radioulnar_{s}_jc"),
            (f"hand_{s}", f"wrist_{s}_jc"),
        )
    },
}


@dataclass(frozen=True)
class Landmark:
    name: str
    ref_joint: str  # reference joint centre (SKEL joint name)
    bound_to: tuple[str, ...]  # candidate vertices are mostly skinned to one of these joints
    direction: tuple[float, float, float]  # model frame at rest (right side; the left mirrors x)
    radius: float  # metres for a 1.7 m subject; scaled by the subject's height
    midline: bool = False  # keep to within 2 cm of the body's mid-sagittal plane (x of the reference joint)
    slab: bool = False  # keep to within 2 cm of the reference joint along its bone (parent -> joint)


def _side(name: str, s: str) -> str:
    return name.replace("{s}", s)


_RIGHT: tuple[Landmark, ...] = (
    Landmark("asis_{s}", "pelvis", ("pelvis",), (-0.35, 0.0, 1.0), 0.25),
    Landmark("psis_{s}", "pelvis", ("pelvis",), (-0.35, 0.0, -1.0), 0.25),
    Landmark("knee_{s}_lat", "tibia_{s}", ("femur_{s}", "tibia_{s}"), (-1.0, 0.0, 0.0), 0.08, slab=True),
    Landmark("knee_{s}_med", "tibia_{s}", ("femur_{s}", "tibia_{s}"), (1.0, 0.0, 0.0), 0.08, slab=True),
    Landmark("ankle_{s}_lat", "talus_{s}", ("tibia_{s}", "talus_{s}", "calcn_{s}"), (-1.0, 0.0, 0.0), 0.07, slab=True),
    Landmark("ankle_{s}_med", "talus_{s}", ("tibia_{s}", "talus_{s}", "calcn_{s}"), (1.0, 0.0, 0.0), 0.07, slab=True),
    Landmark("heel_{s}", "calcn_{s}", ("talus_{s}", "calcn_{s}"), (0.0, -0.3, -1.0), 0.12),
    Landmark("toe_{s}", "toes_{s}", ("calcn_{s}", "toes_{s}"), (0.0, 0.0, 1.0), 0.12),
    Landmark("acromion_{s}", "humerus_{s}", ("scapula_{s}", "humerus_{s}"), (-0.3, 1.0, 0.0), 0.10),
    Landmark("elbow_{s}_up", "ulna_{s}", ("humerus_{s}", "ulna_{s}"), (0.0, 1.0, 0.0), 0.07, slab=True),
    Landmark("elbow_{s}_down", "ulna_{s}", ("humerus_{s}", "ulna_{s}"), (0.0, -1.0, 0.0), 0.07, slab=True),
    Landmark("wrist_{s}_front", "hand_{s}", ("radius_{s}", "ulna_{s}", "hand_{s}"), (0.0, 0.0, 1.0), 0.06, slab=True),
    Landmark("wrist_{s}_back", "hand_{s}", ("radius_{s}", "ulna_{s}", "hand_{s}"), (0.0, 0.0, -1.0), 0.06, slab=True),
)
_CENTRAL: tuple[Landmark, ...] = (
    Landmark("c7", "head", ("thorax",), (0.0, 0.2, -1.0), 0.10, True),  # back of the neck base
    Landmark("sternum", "thorax", ("thorax",), (0.0, 0.0, 1.0), 0.25, True),
    Landmark("head_top", "head", ("head",), (0.0, 1.0, 0.0), 0.35, True),
)


def landmarks() -> tuple[Landmark, ...]:
    out = list(_CENTRAL)
    for s, mirror in (("r", 1.0), ("l", -1.0)):
        for lm in _RIGHT:
            d = (mirror * lm.direction[0], lm.direction[1], lm.direction[2])
            out.append(
                Landmark(
                    _side(lm.name, s),
                    _side(lm.ref_joint, s),
                    tuple(_side(b, s) for b in lm.bound_to),
                    d,
                    lm.radius,
                    lm.midline,
                    lm.slab,
                )
            )
    return tuple(out)


def choose_landmark_vertices(result: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Names and rest-skin vertex indices of the landmarks that this skin has (a rule with no candidate is left out)."""
    verts = np.asarray(result["skin_rest_verts"], dtype=np.float64)
    weights = np.asarray(result["skin_weights"], dtype=np.float64)
    rest_j = np.asarray(result["rest_joints"], dtype=np.float64)
    jnames = [str(n) for n in result["joint_names"]]
    dominant = np.argmax(weights, axis=1)
    height = float(np.ptp(verts[:, 1])) if verts.shape[0] > 1 else 1.7
    scale = height / 1.7 if height > 0.5 else 1.0  # tiny test meshes keep the nominal radii
    names, idx = [], []
    for lm in landmarks():
        if lm.ref_joint not in jnames or any(b not in jnames for b in lm.bound_to):
            continue
        ref = rest_j[jnames.index(lm.ref_joint)]
        bound = np.isin(dominant, [jnames.index(b) for b in lm.bound_to])
        near = np.linalg.norm(verts - ref, axis=1) <= lm.radius * scale
        cand = np.flatnonzero(bound & near)
        if lm.slab:
            parent = int(np.asarray(result["joint_parents"])[jnames.index(lm.ref_joint)])
            bone = ref - rest_j[parent]
            if np.linalg.norm(bone) > 1e-6:
                along = np.abs((verts[cand] - ref) @ (bone / np.linalg.norm(bone)))
                in_slab = cand[along <= 0.02 * scale]
                cand = in_slab if in_slab.size else cand
        if lm.midline:
            mid = cand[np.abs(verts[cand, 0] - ref[0]) <= 0.02 * scale]
            cand = mid if mid.size else cand
        if cand.size == 0:
            continue
        d = np.asarray(lm.direction) / np.linalg.norm(lm.direction)
        names.append(lm.name)
        idx.append(int(cand[np.argmax((verts[cand] - ref) @ d)]))
    return names, np.asarray(idx, dtype=np.int64)


def pose_vertices(result: Mapping[str, np.ndarray], vertex_ids: np.ndarray) -> np.ndarray:
    """Linear-blend-skinned positions (T, n, 3) of rest-skin vertices, in the Blender world."""
    rp = joint_rotations_bsm(
        result["poses"], result["dof_joint"], result["dof_axis"], result["dof_flip"], len(result["joint_names"])
    )
    rglob = global_rotations(local_rotations_model(rp, result["rest_frames"]), np.asarray(result["joint_parents"]))
    m2w = np.asarray(result["model_to_world"], dtype=np.float64)
    joints_model = to_homogeneous_apply(np.linalg.inv(m2w), result["joints_world"])  # (T, 24, 3), after trans
    v = np.asarray(result["skin_rest_verts"], dtype=np.float64)[vertex_ids]  # (n, 3)
    w = np.asarray(result["skin_weights"], dtype=np.float64)[vertex_ids]  # (n, 24)
    rest_j = np.asarray(result["rest_joints"], dtype=np.float64)
    local = v[:, None, :] - rest_j[None, :, :]  # (n, 24, 3)
    # per frame and joint: R_j (v - J_j^rest) + J_j^posed, blended by the weights
    posed = np.einsum("tjab,njb->tnja", rglob, local) + joints_model[:, None, :, :]
    return to_homogeneous_apply(m2w, np.einsum("nj,tnja->tna", w, posed))


def virtual_markers(result: Mapping[str, np.ndarray], skin: bool = True) -> tuple[list[str], np.ndarray]:
    """Marker names and (T, M, 3) positions in the OpenSim ground (y up), metres."""
    jnames = [str(n) for n in result["joint_names"]]
    names = [JOINT_CENTRE_NAMES.get(n, f"{n}_jc") for n in jnames]
    xyz = np.asarray(result["joints_world"], dtype=np.float64)
    if skin and "skin_rest_verts" in result and "skin_weights" in result:
        lm_names, ids = choose_landmark_vertices(result)
        if ids.size:
            names += lm_names
            xyz = np.concatenate([xyz, pose_vertices(result, ids)], axis=1)
    return names, xyz @ BLENDER_TO_OPENSIM.T
