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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .io.retarget import Plan
    from .io.retarget.mapping import Mapping
    from .io.retarget.solve import TargetRig
    from .io.retarget.source import SourceMotion

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
    view_cameras: list[bpy.types.Object] = field(default_factory=list)  # a multi-camera result's other cameras


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


def _beside_result(source: str | None, result_path: Path) -> Path | None:
    """A footage path the result's meta names: absolute as written, else relative to the result file."""
    if not source:
        return None
    p = Path(source)
    return p if p.is_absolute() else (result_path.parent / p)


def footage_path(result: dict[str, np.ndarray], result_path: Path, footage: str | os.PathLike | None) -> Path | None:
    if footage:
        return Path(footage)
    return _beside_result(_meta(result).source, result_path)


def _meta(result: dict[str, np.ndarray]) -> Meta:
    """The result's notes; a meta_json this reader cannot type counts as no notes (the rig does not need them)."""
    try:
        return Meta.from_json(str(result["meta_json"]))
    except MetaError:
        return Meta()


def view_footage(result: dict[str, np.ndarray], result_path: Path) -> list[Path | None]:
    """Every camera's footage of a multi-camera result (``sources`` in its meta), relative to the result."""
    return [_beside_result(s, result_path) for s in _meta(result).sources]


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
            if "camera_names" in res:
                out.view_cameras, more = cam_build.build_view_cameras(f"{name} camera", coll, res,
                                                                      view_footage(res, path))
                out.notes += more
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


# ---------------------------------------------------------------- retargeting onto other rigs


@dataclass
class RetargetReport:
    """What ``retarget`` did: which bones it drove and how, and anything the user should know."""

    target: str
    action: str
    frames: int
    preset: str
    mapped: list[tuple[str, str]]  # (role, bone) pairs that were driven
    guessed: list[str]  # bones the name/hierarchy guess chose (check them)
    unmapped: list[str]  # target bones left alone
    leg_ratio: float
    planted: dict[str, int]  # frames with a planted foot per side (feet="keep")
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"retargeted {self.frames} frames onto {self.target} (action {self.action!r}, mapping {self.preset})",
                 f"mapped {len(self.mapped)} bones, guessed {len(self.guessed)}, unmapped {len(self.unmapped)}; "
                 f"leg-length ratio {self.leg_ratio:.3f}"]
        if self.guessed:
            lines.append("guessed: " + ", ".join(self.guessed))
        lines.extend(self.notes)
        return "\n".join(lines)


def _retarget_source(source: bpy.types.Object | str | os.PathLike) -> tuple[dict[str, np.ndarray], str]:
    if isinstance(source, bpy.types.Object):
        if source.type != "ARMATURE" or RIG_PROP not in source:
            raise HsmrImportError(f"{source.name} is not an HSMR rig: choose the armature made by Import Result "
                                  "(or pass the result file)")
        res = rig_result(source)  # the rig's curves: edits made in Blender carry over
        m2w = np.asarray(res["model_to_world"], dtype=np.float64)
        pelvis_model = (np.asarray(res["joints_world"])[:, 0] - m2w[:3, 3]) @ m2w[:3, :3]  # R⁻¹·(p − t), row form
        res["trans"] = pelvis_model - np.asarray(res["rest_joints"])[0]
        res["model_to_world"] = np.array(source.matrix_world)  # where the rig stands now
        return res, source.name
    return load_result(Path(source)), Path(source).name


def _retarget_mapping(target: bpy.types.Object, mapping: Any) -> Mapping:
    from .blender.retarget import bone_parents
    from .io.retarget import mapping as mp
    from .io.retarget.presets import PRESETS

    parents = bone_parents(target)
    if isinstance(mapping, mp.Mapping):
        out = mapping
    elif mapping == "auto":
        out = mp.auto_mapping(parents)
    elif isinstance(mapping, str) and mapping in PRESETS:
        out = mp.preset_mapping(mapping, list(parents))
    elif isinstance(mapping, (str, os.PathLike)):
        out = mp.load_mapping(mapping)
    elif isinstance(mapping, (list, tuple)):
        out = mp.Mapping([(str(r), str(b)) for r, b in mapping])
    else:
        raise HsmrImportError(f"mapping={mapping!r}: use 'auto', a preset ({', '.join(PRESETS)}), a JSON path or "
                              "(role, bone) pairs")
    mp.check_mapping(out, list(parents))
    return out


def _frame_selection(res: dict[str, np.ndarray], frame_range: tuple[int, int] | None) -> np.ndarray:
    frames = scene_frames(res["frame_index"])
    if frame_range is None:
        return np.arange(len(frames))
    sel = np.flatnonzero((frames >= frame_range[0]) & (frames <= frame_range[1]))
    if len(sel) == 0:
        raise HsmrImportError(f"frame_range {frame_range} holds none of the result's frames "
                              f"({int(frames[0])}-{int(frames[-1])}): choose a range inside them")
    return sel


def retarget(source: bpy.types.Object | str | os.PathLike, target: bpy.types.Object, mapping: Any = "auto", *,
             root_motion: bool = True, feet: str = "keep", frame_range: tuple[int, int] | None = None,
             scene: bpy.types.Scene | None = None) -> RetargetReport:
    """Drive ``target`` (any humanoid armature) with the motion of an HSMR rig or result file.

    Keys go onto a new action assigned to the target (its previous action is kept, with a fake user), in the
    target bones' own rotation modes; the target object's transform is never touched and nothing else is
    created. On any error the target is left as it was.
    """
    from .blender import retarget as rt_build
    from .io.retarget import FEET_MODES, plan
    from .io.retarget.mapping import MappingError
    from .io.retarget.presets import RIGIFY_FK_SWITCHES
    from .io.retarget.source import source_from_result

    if not isinstance(target, bpy.types.Object) or target.type != "ARMATURE":
        name = getattr(target, "name", repr(target))
        raise HsmrImportError(f"{name} is not an armature: choose the character's armature as the target")
    if RIG_PROP in target:
        raise HsmrImportError(f"{target.name} is an HSMR rig itself: choose another character as the target")
    stretch = np.linalg.svd(np.array(target.matrix_world)[:3, :3], compute_uv=False)
    if stretch.max() > 1.001 * stretch.min() or np.linalg.det(np.array(target.matrix_world)[:3, :3]) <= 0:
        raise HsmrImportError(f"{target.name} has a non-uniform or mirrored scale: apply it (Ctrl+A › Scale) first")
    if target.mode == "EDIT":
        raise HsmrImportError(f"{target.name} is in Edit Mode: leave it (Tab) so its bones are up to date")
    if feet not in FEET_MODES:
        raise HsmrImportError(f"feet={feet!r}: use 'keep' (planted feet) or 'fk' (rotations only)")
    res, src_name = _retarget_source(source)
    try:
        mapping = _retarget_mapping(target, mapping)
    except MappingError as e:
        raise HsmrImportError(f"{target.name}: {e}") from None
    bones = [b for _, b in mapping.pairs]
    busy = rt_build.active_constraints(target, bones)
    if busy:
        listed = "; ".join(f"{b} ({', '.join(c)})" for b, c in list(busy.items())[:4])
        raise HsmrImportError(f"{target.name} has constraints of its own on mapped bones: {listed}: mute them or "
                              "leave those bones out of the mapping (they were left as they are)")
    sel = _frame_selection(res, frame_range)
    try:
        src = source_from_result(res, sel)
    except ValueError as e:
        raise HsmrImportError(str(e)) from None
    rig = rt_build.read_target(target)
    result = plan(src, rig, mapping, root_motion=root_motion, feet=feet)
    return _write_retarget(target, rig, result, mapping, scene or bpy.context.scene,
                           scene_frames(res["frame_index"])[sel], src, src_name, RIGIFY_FK_SWITCHES)


def _write_retarget(target: bpy.types.Object, rig: TargetRig, result: Plan, mapping: Mapping, scene: bpy.types.Scene,
                    frames: np.ndarray, src: SourceMotion, src_name: str, fk_switches: tuple[str, ...]
                    ) -> RetargetReport:
    from .blender import retarget as rt_build

    ad = target.animation_data
    old_action = ad.action if ad is not None else None
    old_slot = getattr(ad, "action_slot", None) if ad is not None else None
    writer = None
    try:
        writer = rt_build.PlanWriter(target, f"{target.name} from {src_name}", frames)
        writer.write(result.rotations, result.locations)
        switches = [b for b in fk_switches if b in target.pose.bones and "IK_FK" in target.pose.bones[b]]
        for b in switches:
            writer.hold(b, "IK_FK", 1.0)
        residual = 0.0
        if rt_build.needs_evaluation(target, list(result.rotations)):
            residual = rt_build.refine_by_evaluation(rig, result, writer, scene)
    except BaseException:
        if writer is not None:
            bpy.data.actions.remove(writer.writer.action)
        if target.animation_data is not None:
            target.animation_data.action = old_action
            if old_slot is not None:
                target.animation_data.action_slot = old_slot
        raise
    if old_action is not None:
        old_action.use_fake_user = True  # kept for the user, not lost on save
    driven = set(result.rotations)
    notes = []
    if switches:
        notes.append(f"Rigify IK/FK switches held at FK (1.0) in the action: {', '.join(switches)}")
    if residual > 1.0:
        notes.append(f"the target's own rig mechanics leave up to {residual:.1f}° off the planned pose")
    if src.resting_derived:
        notes.append("the result has no foot_resting field: resting feet found from the feet's speed and height")
    if abs(rig.scale - 1.0) > 1e-6:
        notes.append(f"target object scale {rig.scale:g} taken into account")
    return RetargetReport(
        target=target.name, action=writer.writer.action.name, frames=len(frames), preset=mapping.preset,
        mapped=[(r, b) for r, b in mapping.pairs if b in driven], guessed=sorted(mapping.guessed & driven),
        unmapped=[b.name for b in target.data.bones if b.name not in driven], leg_ratio=result.leg_ratio,
        planted=dict(result.planted), notes=notes)


def find_target_armature(name: str | None = None) -> bpy.types.Object:
    """The named armature, or the one armature in the file that maps as a humanoid (not an HSMR rig)."""
    from .blender.retarget import bone_parents
    from .io.retarget import mapping as mp

    if name:
        ob = bpy.data.objects.get(name)
        if ob is None or ob.type != "ARMATURE":
            arms = ", ".join(o.name for o in bpy.data.objects if o.type == "ARMATURE") or "none"
            raise HsmrImportError(f"no armature named {name!r} (armatures: {arms}): pass --armature NAME")
        return ob
    found = []
    for ob in bpy.data.objects:
        if ob.type != "ARMATURE" or RIG_PROP in ob:
            continue
        parents = bone_parents(ob)
        try:
            mp.check_mapping(mp.auto_mapping(parents), list(parents))
        except mp.MappingError:
            continue
        found.append(ob)
    if len(found) != 1:
        names = ", ".join(o.name for o in found) or "none"
        raise HsmrImportError(f"{len(found)} humanoid armatures in the file ({names}): pass --armature NAME")
    return found[0]


def export_retargeted_fbx(target: bpy.types.Object, path: str | os.PathLike) -> Path:
    """FBX of the target armature, its meshes and its action (over the action's frame range)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = bpy.context.scene
    action = target.animation_data.action if target.animation_data else None
    if action is None:
        raise HsmrImportError(f"{target.name} has no action: retarget first")
    start, end = (int(round(x)) for x in action.frame_range)
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and (o.parent == target or any(
        m.type == "ARMATURE" and m.object == target for m in o.modifiers))]
    keep = (scene.frame_start, scene.frame_end, bpy.context.view_layer.objects.active)
    selected = [o for o in bpy.context.view_layer.objects if o.select_get()]
    try:
        scene.frame_start, scene.frame_end = start, end
        for ob in selected:
            ob.select_set(False)
        for ob in [target, *meshes]:
            ob.select_set(True)
        bpy.context.view_layer.objects.active = target
        bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True, bake_anim=True, add_leaf_bones=False,
                                 object_types={"ARMATURE", "MESH"}, bake_anim_use_nla_strips=False,
                                 bake_anim_use_all_actions=False)
    finally:
        for ob in [target, *meshes]:
            ob.select_set(False)
        for ob in selected:
            ob.select_set(True)
        scene.frame_start, scene.frame_end, bpy.context.view_layer.objects.active = keep
    return path
