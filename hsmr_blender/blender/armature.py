"""The SKEL armature: 24 bones whose Euler channels are the 46 DoFs, limits as LIMIT_ROTATION (local space)."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..io.rig_math import BoneLayout, Channels
from .keyframes import ActionWriter

BONE_SHAPE_NAME = "HSMR bone shape"


def _bone_shape(name: str, collection: bpy.types.Collection, direction: np.ndarray, length: float) -> bpy.types.Object:
    """An octahedral bone from the bone's head toward ``direction`` (bone-local), ``length`` long.

    The bone's own Y axis is fixed by its DoF axes; its custom shape shows where the child joint is. The shape
    is baked into the mesh (no custom-shape rotation: Blender reads that Euler in the bone's rotation mode).
    """
    w = 0.1
    base = np.array([(0, 0, 0), (w, w, 0), (-w, w, 0), (0, w, w), (0, w, -w), (0, 1, 0)], dtype=np.float64)
    rot = np.array(Vector((0.0, 1.0, 0.0)).rotation_difference(Vector(direction.tolist())).to_matrix())
    verts = (base * length) @ rot.T
    edges = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 3), (3, 2), (2, 4), (4, 1), (5, 1), (5, 2), (5, 3), (5, 4)]
    me = bpy.data.meshes.new(name)
    me.from_pydata(verts.tolist(), edges, [])
    ob = bpy.data.objects.new(name, me)
    collection.objects.link(ob)
    ob.hide_viewport = True
    ob.hide_render = True
    return ob


def build_armature(
    name: str,
    collection: bpy.types.Collection,
    layout: list[BoneLayout],
    dof_names: list[str],
    limits: np.ndarray,
    model_to_world: np.ndarray,
    view_layer: bpy.types.ViewLayer,
    location_bones: set[int],
) -> bpy.types.Object:
    """Create the armature object (rest pose = the subject's T-pose) with channel modes, locks and limits."""
    arm_data = bpy.data.armatures.new(name)
    arm = bpy.data.objects.new(name, arm_data)
    collection.objects.link(arm)
    arm.matrix_world = Matrix(model_to_world.tolist())
    arm_data.display_type = "OCTAHEDRAL"
    arm.show_in_front = True

    prev_active = view_layer.objects.active
    if prev_active is not None and prev_active.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")  # edit bones need object mode to start from
    view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebs = []
        for b in layout:
            eb = arm_data.edit_bones.new(b.name)
            eb.head = (0.0, 0.0, 0.0)
            eb.tail = (0.0, b.length, 0.0)
            eb.matrix = Matrix(b.rest.tolist())
            ebs.append(eb)
        for b in layout:
            if b.parent >= 0:
                ebs[b.index].parent = ebs[b.parent]
                ebs[b.index].use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev_active

    shapes = bpy.data.collections.new(f"{name} bone shapes")
    collection.children.link(shapes)
    shapes.hide_viewport = True
    shapes.hide_render = True
    for b in layout:
        pb = arm.pose.bones[b.name]
        pb.rotation_mode = b.euler_order
        used = set(b.channels)
        pb.lock_rotation = [i not in used for i in range(3)]
        pb.lock_location = [b.index not in location_bones] * 3
        pb.lock_scale = [True, True, True]
        # which SKEL DoF each unlocked channel is (Bone properties > Custom Properties; Graph Editor shows X/Y/Z)
        pb["SKEL DoFs"] = ", ".join(f"{'XYZ'[ch]}: {dof_names[d]}" for d, ch in zip(b.dofs, b.channels, strict=True))
        # draw the bone toward its child joint even where the DoF axes fix the bone's Y elsewhere
        pb.custom_shape = _bone_shape(f"{BONE_SHAPE_NAME} {b.name}", shapes, b.display_dir, b.display_length)
        pb.use_custom_shape_bone_size = False
        limited = [(dof, ch) for dof, ch in zip(b.dofs, b.channels, strict=True) if np.all(np.isfinite(limits[dof]))]
        if not limited:
            continue
        con = pb.constraints.new("LIMIT_ROTATION")
        con.name = "SKEL limits"
        con.owner_space = "LOCAL"
        con.euler_order = b.euler_order
        con.use_transform_limit = True  # interactive rotation stops at the limit too
        for dof, ch in limited:
            axis = "xyz"[ch]
            setattr(con, f"use_limit_{axis}", True)
            setattr(con, f"min_{axis}", float(limits[dof, 0]))
            setattr(con, f"max_{axis}", float(limits[dof, 1]))
    return arm


def key_armature(
    arm: bpy.types.Object,
    layout: list[BoneLayout],
    channels: Channels,
    frames: np.ndarray,
    location_bones: set[int],
    action_name: str,
) -> ActionWriter:
    """Key every DoF channel (and the location channels that move) as whole F-curves."""
    writer = ActionWriter.create(arm, action_name)
    for b in layout:
        path = f'pose.bones["{b.name}"]'
        for ch in b.channels:
            writer.curve(f"{path}.rotation_euler", ch, frames, channels.rotation[:, b.index, ch], group=b.name)
        if b.index in location_bones:
            for i in range(3):
                writer.curve(f"{path}.location", i, frames, channels.location[:, b.index, i], group=b.name)
    return writer

