"""Plain functions for scripts, operators and the command line: one code path for UI and batch use.

    import hsmr_blender.api as api
    scene = api.import_result("clip.npz")           # rig + keys + skin + camera + footage, own collection
    api.export_csv(scene.armature, "dofs.csv")       # 46 DoFs per frame, radians

Everything is synchronous; the UI's modal operator only wraps the backend process around ``import_result``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from hsmr_contract import result_format
from hsmr_contract.export import csv as csv_export
from hsmr_contract.export import mot as mot_export
from hsmr_contract.meta import Meta, MetaError

from .blender import armature as arm_build
from .blender import camera as cam_build
from .blender import mesh as mesh_build
from .io import rig_math

_DATA_KINDS = ("objects", "meshes", "armatures", "actions", "cameras", "movieclips", "images", "collections")
RIG_PROP = "hsmr_result"  # custom property on the armature: the result file it came from


class HsmrImportError(RuntimeError):
    """An import that could not be done; the message says what to do."""


@dataclass
class ImportedScene:
    collection: bpy.types.Collection
    armature: bpy.types.Object
    skin: bpy.types.Object | None
    camera: bpy.types.Object | None
    bone_objects: list[bpy.types.Object]
    frames: np.ndarray  # scene frame of each result frame
    fps: float  # scene (source) frames per second
    n_correctives: int = 0
    sticks: bpy.types.Object | None = None
    footage: Path | None = None
    notes: list[str] = field(default_factory=list)


def scene_frames(frame_index: np.ndarray) -> np.ndarray:
    """Scene frame of each fitted frame: source frame n is shown at scene frame n + 1 (as the footage is)."""
    return np.asarray(frame_index, dtype=np.float64) + 1.0


def source_fps(result: dict[str, np.ndarray]) -> float:
    """The footage's frame rate: the backend's ``source_fps`` note, else the fitted fps times the frame stride."""
    meta = _meta(result)
    if isinstance(meta.source_fps, (int, float)) and meta.source_fps > 0:
        return float(meta.source_fps)
    fi = np.asarray(result["frame_index"])
    stride = float(np.median(np.diff(fi))) if fi.size > 1 else 1.0
    return float(result["fps"]) * max(stride, 1.0)


def footage_path(result: dict[str, np.ndarray], result_path: Path, footage: str | os.PathLike | None) -> Path | None:
    if footage:
        return Path(footage)
    source = _meta(result).source
    if not source:
        return None
    p = Path(source)
    return p if p.is_absolute() else (result_path.parent / p)


def _meta(result: dict[str, np.ndarray]) -> Meta:
    """The result's notes; a meta_json this reader cannot type counts as no notes (the rig does not need them)."""
    try:
        return Meta.from_json(str(result["meta_json"]))
    except MetaError:
        return Meta()


def _snapshot() -> dict[str, set[int]]:
    return {k: {id(x) for x in getattr(bpy.data, k)} for k in _DATA_KINDS}


def _remove_new(before: dict[str, set[int]]) -> None:
    # objects first (they use the rest), then data blocks; collections last
    for kind in ("objects", "meshes", "armatures", "cameras", "actions", "movieclips", "images", "collections"):
        coll = getattr(bpy.data, kind)
        for x in [x for x in coll if id(x) not in before[kind]]:
            coll.remove(x)


@contextmanager
def _scene_state(scene: bpy.types.Scene) -> Iterator[None]:
    """Put the scene back exactly as it was if anything inside fails."""
    r = scene.render
    saved = (scene.frame_start, scene.frame_end, scene.frame_current, r.fps, r.fps_base, r.resolution_x,
             r.resolution_y, r.resolution_percentage, scene.camera, scene.active_clip)
    before = _snapshot()
    try:
        yield
    except BaseException:
        _remove_new(before)
        (scene.frame_start, scene.frame_end, fc, r.fps, r.fps_base, r.resolution_x, r.resolution_y,
         r.resolution_percentage, scene.camera, scene.active_clip) = saved
        scene.frame_set(fc)
        raise


def set_scene_fps(scene: bpy.types.Scene, fps: float) -> None:
    n = max(1, round(fps))
    scene.render.fps = n
    scene.render.fps_base = n / fps


def load_result(path: Path) -> dict[str, np.ndarray]:
    """The validated result file, or HsmrImportError with one line that says what to do."""
    try:
        return result_format.load(path)
    except result_format.ResultFileError as e:
        msg = str(e) if len(str(e)) < 160 else str(e)[:150] + "…"
        if "update the add-on" in msg or "convert the clip again" in msg or "not found" in msg:
            raise HsmrImportError(msg) from None
        raise HsmrImportError(f"{path.name}: {msg}; the file is damaged or not a result file: convert the "
                              "footage again") from None


def import_result(
    path: str | os.PathLike,
    *,
    scene: bpy.types.Scene | None = None,
    name: str | None = None,
    skin: bool = True,
    correctives: bool = True,
    bone_meshes: bool = True,
    camera: bool = True,
    footage: str | os.PathLike | None = None,
    set_scene: bool = True,
    sticks: bool = False,
    _fail_after: str | None = None,
) -> ImportedScene:
    """Build the SKEL rig, its motion, the skinned body and the camera from a result file.

    Everything goes into a new collection; on any error nothing is left behind and the scene settings are
    restored. ``sticks`` adds a renderable bone mesh (armatures never render). ``_fail_after`` (tests only)
    raises after the named step to check that.
    """
    path = Path(path)
    res = load_result(path)
    scene = scene or bpy.context.scene
    name = name or f"HSMR {path.stem}"
    view_layer = bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0]

    def step(label: str) -> None:
        if _fail_after == label:
            raise HsmrImportError(f"test failure after {label}")

    with _scene_state(scene):
        layout = rig_math.build_layout(res)
        ch = rig_math.channels_from_result(layout, res)
        frames = scene_frames(res["frame_index"])
        offsets = np.asarray(res["joint_offsets"])
        moving = {0} | {j for j in range(len(layout)) if np.any(np.abs(offsets[:, j]) > 0.0)}

        coll = bpy.data.collections.new(name)
        scene.collection.children.link(coll)
        rig = arm_build.build_armature(name, coll, layout, [str(n) for n in res["dof_names"]],
                                       np.asarray(res["dof_limits"]),
                                       np.asarray(res["model_to_world"]), view_layer, moving)
        rig[RIG_PROP] = str(path)
        arm_build.key_armature(rig, layout, ch, frames, moving, f"{name} motion")
        step("armature")

        out = ImportedScene(coll, rig, None, None, [], frames, source_fps(res))
        if skin:
            out.skin = mesh_build.build_skin(f"{name} skin", coll, rig, layout, res["skin_rest_verts"],
                                             res["skin_faces"], res["skin_weights"])
            if correctives and "skin_posedirs" in res and "pose_features" in res:
                out.n_correctives = mesh_build.add_correctives(out.skin, res["skin_rest_verts"],
                                                               res["skin_posedirs"], res["pose_features"],
                                                               frames, f"{name} correctives")
        if sticks:
            out.sticks = mesh_build.build_bone_sticks(f"{name} bones", coll, rig, layout)
        step("skin")
        if bone_meshes and all(k in res for k in ("bone_rest_verts", "bone_faces", "bone_vertex_joint")):
            out.bone_objects = mesh_build.build_bone_meshes(f"{name} bone", coll, rig, layout,
                                                            res["bone_rest_verts"], res["bone_faces"],
                                                            res["bone_vertex_joint"])
        if camera:
            out.camera = cam_build.build_camera(f"{name} camera", coll, res["camera_K"], res["image_size"],
                                                res["camera_to_world"])
            src = footage_path(res, path, footage)
            if src is None:
                out.notes.append("the result names no footage: camera without background")
            elif not src.exists():
                out.notes.append(f"footage not found ({src}): camera without background; pass footage=PATH")
            else:
                out.footage = src
                clip = cam_build.attach_footage(out.camera, src, frame_start=1)
                if isinstance(clip, bpy.types.MovieClip) and set_scene:
                    scene.active_clip = clip
        step("camera")
        if set_scene:
            set_scene_fps(scene, out.fps)
            scene.frame_start = int(frames[0])
            scene.frame_end = int(frames[-1])
            if out.camera is not None:
                scene.camera = out.camera
                cam_build.apply_render_size(scene, res["image_size"])
            scene.frame_set(int(frames[0]))
        step("scene")
    return out


# ---------------------------------------------------------------- reading the rig back, exports


def rig_dof_table(rig: bpy.types.Object) -> dict[str, tuple[str, int, float, float]]:
    """What the rig in Blender carries per DoF: (bone, channel, limit min, limit max), read from Blender."""
    res = result_format.load(rig[RIG_PROP])
    layout = rig_math.build_layout(res)
    names = [str(n) for n in res["dof_names"]]
    out = {}
    for b in layout:
        pb = rig.pose.bones[b.name]
        con = next((c for c in pb.constraints if c.type == "LIMIT_ROTATION"), None)
        for dof, chn in zip(b.dofs, b.channels, strict=True):
            axis = "xyz"[chn]
            if con is not None and getattr(con, f"use_limit_{axis}"):
                lo, hi = getattr(con, f"min_{axis}"), getattr(con, f"max_{axis}")
            else:
                lo, hi = -np.inf, np.inf
            out[names[dof]] = (b.name, chn, lo, hi)
    return out


def _curve_values(rig: bpy.types.Object, frames: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    from .blender.keyframes import action_fcurves

    if rig.animation_data is None or rig.animation_data.action is None:
        raise HsmrImportError(f"{rig.name} has no action: re-import the result")
    return {(fc.data_path, fc.array_index): np.array([fc.evaluate(f) for f in frames])
            for fc in action_fcurves(rig.animation_data.action)}


def sample_dofs(rig: bpy.types.Object) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scene frames (T,) and the 46 DoF values (T, 46) read from the rig's F-curves (what the user sees)."""
    res = result_format.load(rig[RIG_PROP])
    layout = rig_math.build_layout(res)
    names = [str(n) for n in res["dof_names"]]
    frames = scene_frames(res["frame_index"])
    curves = _curve_values(rig, frames)
    values = np.zeros((len(frames), len(names)))
    for b in layout:
        for dof, chn in zip(b.dofs, b.channels, strict=True):
            key = (f'pose.bones["{b.name}"].rotation_euler', chn)
            if key not in curves:
                raise HsmrImportError(f"the rig has no curve for {names[dof]}: re-import the result")
            values[:, dof] = curves[key]
    return frames, values, names


def rig_result(rig: bpy.types.Object) -> dict[str, np.ndarray]:
    """The rig's result file with ``poses`` and the pelvis path replaced by what the rig's curves say now."""
    res = dict(result_format.load(rig[RIG_PROP]))
    frames, values, _ = sample_dofs(rig)
    res["poses"] = values
    root = rig_math.build_layout(res)[0]
    curves = _curve_values(rig, frames)
    loc = np.stack([curves.get((f'pose.bones["{root.name}"].location', i), np.zeros(len(frames))) for i in range(3)],
                   axis=1)
    trans = loc @ root.rest[:3, :3].T  # location channel = (M A)ᵀ trans
    m2w = np.asarray(res["model_to_world"], dtype=np.float64)
    jw = np.array(res["joints_world"], dtype=np.float64)
    jw[:, 0] = (np.asarray(res["rest_joints"])[0] + trans) @ m2w[:3, :3].T + m2w[:3, 3]
    res["joints_world"] = jw
    return res


def export_csv(rig: bpy.types.Object, path: str | os.PathLike, radians: bool = False) -> Path:
    """The 46 DoFs per frame (time_s, then <dof>_deg or <dof>_rad), from the rig's curves."""
    return csv_export.write_angles_csv(rig_result(rig), path, radians=radians)


def export_mot(rig: bpy.types.Object, path: str | os.PathLike, model: str = "skel") -> Path:
    """OpenSim .mot: SKEL's coordinates in degrees + pelvis translation (``model="rajagopal"``: Rajagopal-style)."""
    res = rig_result(rig)
    if model == "rajagopal":
        return mot_export.write_rajagopal_mot(res, path)
    return mot_export.write_skel_mot(res, path)


def bake_constrained(rig: bpy.types.Object, scene: bpy.types.Scene | None = None) -> bpy.types.Action:
    """A new action with the visual (constrained) pose keyed on every frame: what exporters need."""
    from bpy_extras import anim_utils

    scene = scene or bpy.context.scene
    frames = range(scene.frame_start, scene.frame_end + 1)
    kw: dict[str, Any] = dict(only_selected=False, do_pose=True, do_object=False, do_visual_keying=True,
                              do_constraint_clear=False, do_parents_clear=False, do_clean=False)
    bake_options = anim_utils.BakeOptions(**kw, do_location=True, do_rotation=True, do_scale=False, do_bbone=False,
                                          do_custom_props=False)
    old = rig.animation_data.action
    slot = getattr(rig.animation_data, "action_slot", None)
    [action] = anim_utils.bake_action_objects([(rig, None)], frames=frames, bake_options=bake_options)
    action.name = f"{old.name} baked"
    rig.animation_data.action = old
    if slot is not None:
        rig.animation_data.action_slot = slot
    return action


def export_animation(rig: bpy.types.Object, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """FBX / BVH / glTF of the rig (and its skin for FBX/glTF) after baking the constrained motion."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    scene = bpy.context.scene
    baked = bake_constrained(rig, scene)
    ad = rig.animation_data
    old, old_slot = ad.action, getattr(ad, "action_slot", None)
    ad.action = baked
    if hasattr(ad, "action_slot") and len(baked.slots):
        ad.action_slot = baked.slots[0]
    prev_active = bpy.context.view_layer.objects.active
    try:
        for ob in bpy.context.view_layer.objects:
            ob.select_set(False)
        rig.select_set(True)
        for child in rig.children:
            if child.type == "MESH":
                child.select_set(True)
        bpy.context.view_layer.objects.active = rig
        if fmt == "fbx":
            bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True, bake_anim=True,
                                     add_leaf_bones=False, object_types={"ARMATURE", "MESH"})
        elif fmt == "bvh":
            bpy.ops.export_anim.bvh(filepath=str(path), frame_start=scene.frame_start, frame_end=scene.frame_end,
                                    rotate_mode="NATIVE", root_transform_only=False)
        elif fmt in ("glb", "gltf"):
            bpy.ops.export_scene.gltf(filepath=str(path), use_selection=True,
                                      export_format="GLB" if fmt == "glb" else "GLTF_SEPARATE")
        else:
            raise HsmrImportError(f"unknown export format {fmt!r}: use fbx, bvh, glb or gltf")
    finally:
        ad.action = old
        if old_slot is not None:
            ad.action_slot = old_slot
        bpy.context.view_layer.objects.active = prev_active
    return path


def save_blend(path: str | os.PathLike) -> Path:
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    return path


def convert(video: str | os.PathLike, result_path: str | os.PathLike, *, python: str | None = None,
            options: dict[str, Any] | None = None, on_progress: Any = None, **import_kw: Any) -> ImportedScene:
    """Run the backend on ``video`` (blocking; prints progress) and import the result."""
    from .io import backend

    cmd = backend.convert_command(video, result_path, python=python, **(options or {}))
    backend.run_blocking(cmd, on_event=on_progress, log_path=Path(result_path).with_suffix(".log"))
    return import_result(result_path, footage=video, **import_kw)
