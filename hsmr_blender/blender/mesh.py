"""Skin mesh (vertex group per bone + Armature modifier), corrective shape keys, bone meshes."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..io.rig_math import BoneLayout
from .keyframes import ActionWriter

SLIDER_RANGE = 2.0  # pose features are entries of R - I, inside [-2, 2]


def new_mesh(name: str, verts: np.ndarray, faces: np.ndarray) -> bpy.types.Mesh:
    """A triangle mesh built with foreach_set (no per-vertex Python)."""
    me = bpy.data.meshes.new(name)
    n_v, n_f = len(verts), len(faces)
    me.vertices.add(n_v)
    me.vertices.foreach_set("co", np.asarray(verts, dtype=np.float32).ravel())
    me.loops.add(3 * n_f)
    me.loops.foreach_set("vertex_index", np.asarray(faces, dtype=np.int32).ravel())
    me.polygons.add(n_f)
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * n_f, 3, dtype=np.int32))
    if bpy.app.version < (4, 0, 0):  # loop_total became derived in 4.0
        me.polygons.foreach_set("loop_total", np.full(n_f, 3, dtype=np.int32))
    me.update(calc_edges=True)
    me.validate(clean_customdata=False)
    return me


def _parent_to_armature(ob: bpy.types.Object, arm: bpy.types.Object) -> None:
    ob.parent = arm
    ob.matrix_parent_inverse = Matrix.Identity(4)
    ob.matrix_basis = Matrix.Identity(4)


def build_skin(
    name: str,
    collection: bpy.types.Collection,
    arm: bpy.types.Object,
    layout: list[BoneLayout],
    verts: np.ndarray,
    faces: np.ndarray,
    weights: np.ndarray,
) -> bpy.types.Object:
    """Skin in the model frame, child of the armature, one vertex group per bone, Armature modifier."""
    me = new_mesh(name, verts, faces)
    me.polygons.foreach_set("use_smooth", np.ones(len(me.polygons), dtype=bool))
    ob = bpy.data.objects.new(name, me)
    collection.objects.link(ob)
    _parent_to_armature(ob, arm)
    weights = np.asarray(weights, dtype=np.float64)
    for b in layout:
        vg = ob.vertex_groups.new(name=b.name)
        col = weights[:, b.index]
        nz = np.flatnonzero(col > 0.0)
        if nz.size == 0:
            continue
        # vertex_group.add takes one weight per call: batch the vertices that share a weight value
        vals, inverse = np.unique(col[nz].astype(np.float32), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(vals) + 1))
        idx_sorted = nz[order].tolist()
        for k, w in enumerate(vals.tolist()):
            vg.add(idx_sorted[bounds[k] : bounds[k + 1]], w, "REPLACE")
    mod = ob.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    mod.use_vertex_groups = True
    mod.use_bone_envelopes = False
    return ob


def add_correctives(
    ob: bpy.types.Object,
    rest: np.ndarray,
    posedirs: np.ndarray,
    features: np.ndarray,
    frames: np.ndarray,
    action_name: str,
) -> int:
    """One shape key per pose feature that is used, keyed with its per-frame value; returns the count."""
    ob.shape_key_add(name="Basis", from_mix=False)
    used = [
        k for k in range(posedirs.shape[0])
        if np.any(posedirs[k] != 0.0) and np.any(features[:, k] != 0.0)
    ]
    key = ob.data.shape_keys
    key.use_relative = True
    writer = ActionWriter.create(key, action_name)
    rest = np.asarray(rest, dtype=np.float64)
    for k in used:
        kb = ob.shape_key_add(name=f"pose_corrective_{k:03d}", from_mix=False)
        kb.slider_min, kb.slider_max = -SLIDER_RANGE, SLIDER_RANGE
        kb.data.foreach_set("co", (rest + posedirs[k]).astype(np.float32).ravel())
        writer.curve(f'key_blocks["{kb.name}"].value', 0, frames, features[:, k], group="Pose correctives")
    return len(used)


def build_bone_meshes(
    name: str,
    collection: bpy.types.Collection,
    arm: bpy.types.Object,
    layout: list[BoneLayout],
    verts: np.ndarray,
    faces: np.ndarray,
    vertex_joint: np.ndarray,
) -> list[bpy.types.Object]:
    """One mesh per bone, parented to its bone (rigid), from the rest-placed bone meshes."""
    out = []
    face_joint = vertex_joint[faces[:, 0]]
    for b in layout:
        vsel = np.flatnonzero(vertex_joint == b.index)
        if vsel.size == 0:
            continue
        remap = np.full(len(verts), -1, dtype=np.int64)
        remap[vsel] = np.arange(vsel.size)
        f = faces[face_joint == b.index]
        f = f[np.all(remap[f] >= 0, axis=1)]
        me = new_mesh(f"{name} {b.name}", verts[vsel], remap[f])
        ob = bpy.data.objects.new(f"{name} {b.name}", me)
        collection.objects.link(ob)
        ob.parent = arm
        ob.parent_type = "BONE"
        ob.parent_bone = b.name
        # bone parenting uses the bone's tail: undo the rest placement so the vertices stay in the model frame
        tail = Matrix.Translation((0.0, b.length, 0.0))
        ob.matrix_parent_inverse = (Matrix(b.rest.tolist()) @ tail).inverted()
        ob.matrix_basis = Matrix.Identity(4)
        out.append(ob)
    return out


def build_bone_sticks(
    name: str, collection: bpy.types.Collection, arm: bpy.types.Object, layout: list[BoneLayout]
) -> bpy.types.Object:
    """Renderable bones: one octahedron per bone (head → child joint), rigidly skinned to its bone.

    Armatures are overlays that renders never show; this mesh lets a render show the rig over the footage.
    """
    verts, faces, owner = [], [], []
    for b in layout:
        head = b.rest[:3, 3]
        d = b.rest[:3, :3] @ b.display_dir
        length = b.display_length
        ref = np.eye(3)[int(np.argmin(np.abs(d)))]
        u = np.cross(d, ref)
        u /= np.linalg.norm(u)
        v = np.cross(d, u)
        w = 0.12 * length
        mid = head + 0.2 * length * d
        base = len(verts)
        verts += [head, mid + w * u, mid + w * v, mid - w * u, mid - w * v, head + length * d]
        ring = [1, 2, 3, 4]
        for i in range(4):
            a, c = ring[i], ring[(i + 1) % 4]
            faces += [(base, base + a, base + c), (base + 5, base + c, base + a)]
        owner += [b.index] * 6
    me = new_mesh(name, np.asarray(verts), np.asarray(faces))
    ob = bpy.data.objects.new(name, me)
    collection.objects.link(ob)
    _parent_to_armature(ob, arm)
    owner_arr = np.asarray(owner)
    for b in layout:
        vg = ob.vertex_groups.new(name=b.name)
        vg.add(np.flatnonzero(owner_arr == b.index).tolist(), 1.0, "REPLACE")
    mod = ob.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    return ob
