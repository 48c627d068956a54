"""Operators: run the backend on footage (modal, never freezes the UI), import a result, exports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import api, preferences
from .io import backend


class HsmrSettings(bpy.types.PropertyGroup):
    footage: StringProperty(name="Footage", subtype="FILE_PATH", default="")  # type: ignore[valid-type]
    calibration: StringProperty(  # type: ignore[valid-type]
        name="Calibration", subtype="FILE_PATH", default="",
        description="Several calibrated cameras: their calibration (Pose2Sim .toml or Qualisys .qca.txt)")
    other_footage: StringProperty(  # type: ignore[valid-type]
        name="Other views", default="",
        description="With a calibration: the other cameras' clips, separated by ';' (the footage above is the first)")
    use_active_clip: BoolProperty(  # type: ignore[valid-type]
        name="Use active Movie Clip", default=False, description="Convert the scene's active Movie Clip")
    use_range: BoolProperty(name="Frame range", default=False)  # type: ignore[valid-type]
    frame_start: IntProperty(name="Start", default=0, min=0)  # type: ignore[valid-type]
    frame_end: IntProperty(name="End", default=0, min=0)  # type: ignore[valid-type]
    mode: EnumProperty(  # type: ignore[valid-type]
        name="Mode",
        items=[("auto", "Auto", "The network whose weights are found (HSMR or SKEL-CF), else keypoints"),
               ("hsmr", "HSMR", "HSMR network + SKELify refinement"),
               ("skelcf", "SKEL-CF", "SKEL-CF network + SKELify refinement (its checkpoint set in the preferences)"),
               ("keypoints", "Keypoints", "MediaPipe keypoints + SKELify (offline, no weights)")],
        default="auto")
    body: EnumProperty(  # type: ignore[valid-type]
        name="Body",
        items=[("open", "Open body", "The bundled open default body"),
               ("skel", "SKEL file", "Your own SKEL pkl set in the preferences")],
        default="open")
    device: EnumProperty(  # type: ignore[valid-type]
        name="Device", items=[("auto", "Auto", ""), ("cuda", "CUDA", ""), ("cpu", "CPU", "")], default="auto")
    smoothing: FloatProperty(name="Smoothing", default=1.0, min=0.0, max=10.0)  # type: ignore[valid-type]
    up: EnumProperty(  # type: ignore[valid-type]
        name="Up from",
        items=[("auto", "Scene, else body", "The scene's vertical edges (door frames, walls) when there are enough, "
                "else the body's balance and resting feet"),
               ("body", "Body", "The body alone (a scene whose straight edges are not upright)")],
        default="auto")
    skin: BoolProperty(name="Skin", default=True)  # type: ignore[valid-type]
    correctives: BoolProperty(name="Pose correctives", default=True)  # type: ignore[valid-type]
    bone_meshes: BoolProperty(name="Bone meshes", default=True)  # type: ignore[valid-type]
    camera: BoolProperty(name="Camera + footage", default=True)  # type: ignore[valid-type]
    result_dir: StringProperty(  # type: ignore[valid-type]
        name="Results", subtype="DIR_PATH", default="", description="Where result files go (empty: temp folder)")
    # run state shown by the panel
    running: BoolProperty(default=False)  # type: ignore[valid-type]
    progress: FloatProperty(default=0.0, subtype="PERCENTAGE", min=0, max=100)  # type: ignore[valid-type]
    status: StringProperty(default="")  # type: ignore[valid-type]
    log_path: StringProperty(default="")  # type: ignore[valid-type]  # the last run's backend log


def import_options(s: HsmrSettings) -> dict[str, bool]:
    return {"skin": s.skin, "correctives": s.correctives, "bone_meshes": s.bone_meshes, "camera": s.camera}


class HSMR_OT_run(bpy.types.Operator):
    """Convert the footage with the backend (separate process) and import the result. Esc cancels"""

    bl_idname = "hsmr.run"
    bl_label = "Run"

    _proc: backend.BackendProcess | None = None
    _timer = None
    _footage: str = ""

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        s = context.scene.hsmr
        if s.running:
            self.report({"WARNING"}, "a conversion is already running")
            return {"CANCELLED"}
        if s.use_active_clip:
            clip = context.scene.active_clip
            if clip is None:
                self.report({"ERROR"}, "no active Movie Clip: open one in the Movie Clip editor or choose a file")
                return {"CANCELLED"}
            footage = bpy.path.abspath(clip.filepath)
        else:
            footage = bpy.path.abspath(s.footage)
        if not footage or not os.path.exists(footage):
            self.report({"ERROR"}, f"footage not found: {footage or '(none)'}: choose a video file")
            return {"CANCELLED"}
        others = [bpy.path.abspath(p.strip()) for p in s.other_footage.split(";") if p.strip()]
        calibration = bpy.path.abspath(s.calibration) if s.calibration else None
        missing = [p for p in [*others, *([calibration] if calibration else [])] if not os.path.exists(p)]
        if missing or (others and not calibration):
            why = f"not found: {missing[0]}" if missing else "other views need the cameras' calibration file"
            self.report({"ERROR"}, f"several cameras: {why}")
            return {"CANCELLED"}
        out_dir = Path(bpy.path.abspath(s.result_dir)) if s.result_dir else Path(tempfile.gettempdir())
        result = out_dir / (Path(footage).stem + ".hsmr.npz")
        p = preferences.prefs(context)
        body = s.body
        if body == "skel":
            if p is None or not p.skel_path:
                self.report({"ERROR"}, "no SKEL file set: choose your skel_male.pkl in the add-on preferences")
                return {"CANCELLED"}
            body = bpy.path.abspath(p.skel_path)
        try:
            cmd = backend.convert_command(
                footage, result, python=preferences.backend_python(context), mode=s.mode, body=body,
                device=s.device, start=s.frame_start if s.use_range else None,
                end=s.frame_end if s.use_range else None, smoothing=s.smoothing, up=s.up,
                weights=bpy.path.abspath(p.weights_path) if p is not None and p.weights_path else None,
                more_videos=others, calibration=calibration)
            log = result.with_suffix(".log")
            self._proc = backend.BackendProcess(cmd, stall_s=preferences.stall_seconds(context), log_path=log)
            s.log_path = str(self._proc.log_path)
        except backend.BackendError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self._footage = footage
        s.running, s.progress, s.status = True, 0.0, "starting the backend"
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        s = context.scene.hsmr
        assert self._proc is not None
        if event.type == "ESC" or not s.running:  # Esc, or the panel's Cancel button
            self._proc.cancel()
            return self._end(context, {"WARNING"}, "conversion cancelled")
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        for ev in self._proc.poll():
            if ev.message is not None and ev.message.type == "log" and ev.message["level"] == "warning":
                self.report({"WARNING"}, ev.message["message"])
        stage, frame, total = self._proc.progress
        s.progress = 100.0 * self._proc.fraction()
        s.status = f"{stage} {frame}/{total}" if total else stage
        context.window_manager.progress_update(int(s.progress))
        context.workspace.status_text_set(f"HSMR: {s.status} (Esc cancels)")
        for area in context.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not self._proc.finished():
            return {"PASS_THROUGH"}
        try:
            result = self._proc.outcome()
            imported = api.import_result(result, footage=self._footage, **import_options(s))
        except (backend.BackendError, api.HsmrImportError) as e:
            return self._end(context, {"ERROR"}, str(e))
        for note in imported.notes:
            self.report({"WARNING"}, note)
        return self._end(context, {"INFO"}, f"imported {len(imported.frames)} frames into {imported.collection.name}")

    def _end(self, context: bpy.types.Context, level: set[str], msg: str) -> set[str]:
        s = context.scene.hsmr
        s.running = False
        s.status = msg
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        self.report(level, msg)
        return {"FINISHED"} if "INFO" in level else {"CANCELLED"}


class HSMR_OT_cancel(bpy.types.Operator):
    """Stop the running conversion"""

    bl_idname = "hsmr.cancel"
    bl_label = "Cancel"

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.scene.hsmr.running = False  # the modal operator sees it on its next tick and stops the process
        return {"FINISHED"}


class HSMR_OT_open_log(bpy.types.Operator):
    """Open the backend's log (its stderr) of the last run"""

    bl_idname = "hsmr.open_log"
    bl_label = "Open log"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return bool(context.scene.hsmr.log_path)

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = context.scene.hsmr.log_path
        if not os.path.isfile(path):
            self.report({"ERROR"}, f"no log at {path}: run a conversion first")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=path)
        return {"FINISHED"}


class HSMR_OT_import_result(bpy.types.Operator):
    """Import an HSMR result file (.npz): rig, motion, skin, camera"""

    bl_idname = "hsmr.import_result"
    bl_label = "Import Result"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            imported = api.import_result(self.filepath, **import_options(context.scene.hsmr))
        except api.HsmrImportError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        for note in imported.notes:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"imported {len(imported.frames)} frames")
        return {"FINISHED"}


class HSMR_OT_export(bpy.types.Operator):
    """Export the active HSMR rig: DoF CSV, OpenSim .mot, or FBX/BVH/glTF (constrained motion baked)"""

    bl_idname = "hsmr.export"
    bl_label = "Export"

    format: EnumProperty(  # type: ignore[valid-type]
        items=[("csv", "CSV (46 DoFs)", ""), ("mot", "OpenSim .mot", ""), ("fbx", "FBX", ""), ("bvh", "BVH", ""),
               ("glb", "glTF (.glb)", "")], default="csv")
    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        ob = context.active_object
        return ob is not None and api.RIG_PROP in ob

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        self.filepath = bpy.path.ensure_ext(context.active_object.name.replace(" ", "_"), "." + self.format)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        rig = context.active_object
        path = bpy.path.ensure_ext(self.filepath, "." + self.format)
        try:
            if self.format == "csv":
                api.export_csv(rig, path)
            elif self.format == "mot":
                api.export_mot(rig, path)
            else:
                api.export_animation(rig, path, self.format)
        except (api.HsmrImportError, OSError, ValueError) as e:
            self.report({"ERROR"}, f"export failed: {e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {path}")
        return {"FINISHED"}


CLASSES = (HsmrSettings, HSMR_OT_run, HSMR_OT_cancel, HSMR_OT_open_log, HSMR_OT_import_result, HSMR_OT_export)

_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.Scene.hsmr = PointerProperty(type=HsmrSettings)


def unregister() -> None:
    del bpy.types.Scene.hsmr
    _unregister_classes()
