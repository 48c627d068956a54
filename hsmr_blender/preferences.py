"""Add-on preferences: where the backend lives (own environment or an existing Python), SKEL file, Check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from .io import backend

PACKAGE = __package__ or "hsmr_blender"


def user_dir() -> Path:
    """The extension's writable folder (survives upgrades); a plain folder when run outside the extension system."""
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, create=True))
    except (ValueError, AttributeError):  # imported as a plain module (tests, bpy wheel): not an extension
        path = Path(bpy.utils.user_resource("SCRIPTS", path="hsmr_blender_data", create=True))
        return path


def prefs(context: bpy.types.Context | None = None) -> HsmrPreferences | None:
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return addon.preferences if addon else None  # type: ignore[return-value]


def stall_seconds(context: bpy.types.Context | None = None) -> float:
    p = prefs(context)
    return float(p.stall_seconds) if p is not None else backend.DEFAULT_STALL_S


def backend_python(context: bpy.types.Context | None = None) -> str:
    """The Python that runs the backend, per the preferences; raises BackendError with what to do."""
    p = prefs(context)
    if p is not None and p.backend_source == "EXISTING":
        if not p.python_path or not Path(bpy.path.abspath(p.python_path)).is_file():
            raise backend.BackendError("no backend Python set: choose one in Preferences > Add-ons > HSMR")
        return bpy.path.abspath(p.python_path)
    py = backend.venv_python(user_dir() / "backend-env")
    if not py.is_file():
        raise backend.BackendError("the backend is not set up: press 'Create environment' in the add-on preferences")
    return str(py)


class HsmrPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    backend_source: EnumProperty(  # type: ignore[valid-type]
        name="Backend",
        items=[("MANAGED", "Own environment", "A Python environment in the extension's user folder"),
               ("EXISTING", "Existing Python", "A Python 3.11 that already has hsmr_backend installed")],
        default="MANAGED",
    )
    python_path: StringProperty(name="Python", subtype="FILE_PATH", default="")  # type: ignore[valid-type]
    base_python: StringProperty(  # type: ignore[valid-type]
        name="Base Python 3.11", subtype="FILE_PATH", default="",
        description="Python 3.11 used to create the environment (empty: python3.11 on PATH)",
    )
    skel_path: StringProperty(  # type: ignore[valid-type]
        name="SKEL model", subtype="FILE_PATH", default="",
        description="Your own skel_male.pkl / skel_female.pkl (from skel.is.tue.mpg.de; never bundled)",
    )
    weights_path: StringProperty(  # type: ignore[valid-type]
        name="Network weights", subtype="FILE_PATH", default="",
        description="HSMR release (folder, tarball or .onnx) or SKEL-CF checkpoint (best.pth); empty: $HSMR_WEIGHTS "
                    "or the Hugging Face cache",
    )
    stall_seconds: FloatProperty(  # type: ignore[valid-type]
        name="Hung after (s)", default=backend.DEFAULT_STALL_S, min=10.0, max=3600.0,
        description="Stop the backend and report it as hung when it sends nothing for this long",
    )
    check_report: StringProperty(default="")  # type: ignore[valid-type]

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "backend_source", expand=True)
        if self.backend_source == "EXISTING":
            layout.prop(self, "python_path")
        else:
            layout.prop(self, "base_python")
            row = layout.row()
            row.operator("hsmr.setup_backend", icon="CONSOLE")
            row.label(text=str(user_dir() / "backend-env"))
        layout.prop(self, "skel_path")
        layout.prop(self, "weights_path")
        layout.prop(self, "stall_seconds")
        layout.operator("hsmr.check_backend", icon="CHECKMARK")
        for line in self.check_report.split("; "):
            if line:
                layout.label(text=line)


class HSMR_OT_check_backend(bpy.types.Operator):
    """Show the backend's package versions and whether CUDA is used"""

    bl_idname = "hsmr.check_backend"
    bl_label = "Check"

    def execute(self, context: bpy.types.Context) -> set[str]:
        p = prefs(context)
        try:
            info = backend.check_environment(backend_python(context))
        except backend.BackendError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        text = "; ".join(f"{k}: {v}" for k, v in info.items())
        if p is not None:
            p.check_report = text
        self.report({"INFO"}, text)
        return {"FINISHED"}


class HSMR_OT_setup_backend(bpy.types.Operator):
    """Create the backend environment in the extension's folder with the pinned packages (downloads ~3 GB)"""

    bl_idname = "hsmr.setup_backend"
    bl_label = "Create environment"

    _cmds: list[list[str]]
    _proc: subprocess.Popen | None = None
    _timer = None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not bpy.app.online_access:
            self.report({"ERROR"}, "online access is off: allow it in Preferences > System, or use an existing Python")
            return {"CANCELLED"}
        p = prefs(context)
        base = (p.base_python if p and p.base_python else "") or "python3.11"
        if sys.platform == "win32" and base == "python3.11":
            base = "py"
        try:
            self._cmds = backend.setup_commands(user_dir() / "backend-env", base, Path(__file__).parent)
        except backend.BackendError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self._proc = None
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            if self._proc is not None:
                self._proc.terminate()
            return self._end(context, "cancelled", {"WARNING"})
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._proc is not None and self._proc.poll() is None:
            return {"PASS_THROUGH"}
        if self._proc is not None and self._proc.returncode != 0:
            return self._end(context, f"set-up step failed: {' '.join(self._proc.args[:4])} (see the console)",
                             {"ERROR"})
        if not self._cmds:
            return self._end(context, "backend environment ready: press Check", {"INFO"})
        cmd = self._cmds.pop(0)
        context.workspace.status_text_set(f"HSMR set-up: {' '.join(cmd[1:4])}")
        self._proc = subprocess.Popen(cmd)  # noqa: S603 - fixed argv, no shell
        return {"PASS_THROUGH"}

    def _end(self, context: bpy.types.Context, msg: str, level: set[str]) -> set[str]:
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        self.report(level, msg)
        return {"FINISHED"} if "INFO" in level else {"CANCELLED"}


CLASSES = (HsmrPreferences, HSMR_OT_check_backend, HSMR_OT_setup_backend)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
