"""Retarget section of the HSMR panel: source rig, target armature, preset, the editable mapping, Retarget."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, PointerProperty, StringProperty

from . import api
from .blender.retarget import bone_parents
from .io.retarget import mapping as mp
from .io.retarget.presets import PRESET_LABELS, ROLES


def _is_armature(_self: object, ob: bpy.types.Object) -> bool:
    return ob.type == "ARMATURE"


class HsmrRetargetPair(bpy.types.PropertyGroup):
    role: EnumProperty(name="Role", items=[(r, r, "") for r in ROLES])  # type: ignore[valid-type]
    bone: StringProperty(name="Bone", default="")  # type: ignore[valid-type]


class HsmrRetargetSettings(bpy.types.PropertyGroup):
    source: PointerProperty(  # type: ignore[valid-type]
        name="Source", type=bpy.types.Object, poll=_is_armature, description="The HSMR rig made by Import Result")
    target: PointerProperty(  # type: ignore[valid-type]
        name="Target", type=bpy.types.Object, poll=_is_armature, description="The character's armature")
    preset: EnumProperty(  # type: ignore[valid-type]
        name="Preset", default="auto",
        items=[("auto", "Auto", "Recognise the rig family by its bone names, else guess by names and hierarchy")]
        + [(k, v, "") for k, v in PRESET_LABELS.items()])
    root_motion: BoolProperty(  # type: ignore[valid-type]
        name="Root motion", default=True, description="Off: the hips stay in place (game loops)")
    feet: EnumProperty(  # type: ignore[valid-type]
        name="Feet", default="keep",
        items=[("keep", "Keep planted", "Resting feet stay where they are, never below the floor"),
               ("fk", "Rotations only", "Plain rotation transfer")])
    pairs: CollectionProperty(type=HsmrRetargetPair)  # type: ignore[valid-type]
    active: IntProperty(default=0)  # type: ignore[valid-type]


def _listed_mapping(s: HsmrRetargetSettings) -> mp.Mapping:
    return mp.Mapping([(p.role, p.bone) for p in s.pairs], "custom")


def current_mapping(s: HsmrRetargetSettings) -> mp.Mapping | str:
    """The list as a mapping, or the preset name when the list is empty."""
    return _listed_mapping(s) if len(s.pairs) else s.preset


def _fill(s: HsmrRetargetSettings, mapping: mp.Mapping) -> None:
    s.pairs.clear()
    for role, bone in mapping.pairs:
        item = s.pairs.add()
        item.role, item.bone = role, bone
    s.active = 0


class HSMR_UL_retarget_pairs(bpy.types.UIList):
    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: object, item: HsmrRetargetPair,
                  icon: int, active_data: object, active_propname: str, index: int = 0) -> None:
        row = layout.row(align=True)
        row.prop(item, "role", text="")
        target = context.scene.hsmr_retarget.target
        if target is not None and target.type == "ARMATURE":
            row.prop_search(item, "bone", target.data, "bones", text="")
        else:
            row.prop(item, "bone", text="")


class HSMR_OT_retarget_detect(bpy.types.Operator):
    """Fill the mapping list from the preset (Auto: recognise the rig, else guess)"""

    bl_idname = "hsmr.retarget_detect"
    bl_label = "Detect Mapping"

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.hsmr_retarget
        if s.target is None:
            self.report({"ERROR"}, "choose the target armature first")
            return {"CANCELLED"}
        parents = bone_parents(s.target)
        mapping = mp.auto_mapping(parents) if s.preset == "auto" else mp.preset_mapping(s.preset, list(parents))
        _fill(s, mapping)
        self.report({"INFO"}, f"{len(mapping.pairs)} bones mapped ({mapping.preset}, {len(mapping.guessed)} guessed)")
        return {"FINISHED"}


class HSMR_OT_retarget_pair(bpy.types.Operator):
    """Add a row to the mapping, or remove the selected one"""

    bl_idname = "hsmr.retarget_pair"
    bl_label = "Edit Mapping"

    remove: BoolProperty(default=False)  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.hsmr_retarget
        if self.remove:
            if len(s.pairs):
                s.pairs.remove(s.active)
                s.active = max(0, min(s.active, len(s.pairs) - 1))
        else:
            s.pairs.add()
            s.active = len(s.pairs) - 1
        return {"FINISHED"}


class HSMR_OT_retarget_mapping_file(bpy.types.Operator):
    """Save the mapping list to JSON, or load one"""

    bl_idname = "hsmr.retarget_mapping_file"
    bl_label = "Mapping File"

    save: BoolProperty(default=True)  # type: ignore[valid-type]
    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.hsmr_retarget
        path = bpy.path.ensure_ext(bpy.path.abspath(self.filepath), ".json")
        try:
            if self.save:
                mp.save_mapping(_listed_mapping(s), path)
            else:
                _fill(s, mp.load_mapping(path))
        except (mp.MappingError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{'saved' if self.save else 'loaded'} {path}")
        return {"FINISHED"}


class HSMR_OT_retarget(bpy.types.Operator):
    """Drive the target armature with the HSMR rig's motion (keys on a new action of the target)"""

    bl_idname = "hsmr.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.hsmr_retarget
        if s.source is None or s.target is None:
            self.report({"ERROR"}, "choose the HSMR rig as source and the character's armature as target")
            return {"CANCELLED"}
        try:
            report = api.retarget(s.source, s.target, current_mapping(s), root_motion=s.root_motion, feet=s.feet,
                                  scene=context.scene)
        except (api.HsmrImportError, mp.MappingError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        for note in report.notes:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, report.summary().splitlines()[0])
        return {"FINISHED"}


class HSMR_PT_retarget(bpy.types.Panel):
    bl_label = "Retarget"
    bl_idname = "HSMR_PT_retarget"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HSMR"
    bl_parent_id = "HSMR_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.hsmr_retarget
        col = self.layout.column()
        col.prop(s, "source")
        col.prop(s, "target")
        row = col.row(align=True)
        row.prop(s, "preset")
        row.operator("hsmr.retarget_detect", text="", icon="VIEWZOOM")
        row = col.row()
        row.template_list("HSMR_UL_retarget_pairs", "", s, "pairs", s, "active", rows=5)
        side = row.column(align=True)
        side.operator("hsmr.retarget_pair", text="", icon="ADD").remove = False
        side.operator("hsmr.retarget_pair", text="", icon="REMOVE").remove = True
        side.separator()
        side.operator("hsmr.retarget_mapping_file", text="", icon="EXPORT").save = True
        side.operator("hsmr.retarget_mapping_file", text="", icon="IMPORT").save = False
        if not len(s.pairs):
            col.label(text="Empty list: the preset decides", icon="INFO")
        col.prop(s, "root_motion")
        col.prop(s, "feet")
        col.operator("hsmr.retarget", icon="ARMATURE_DATA")


CLASSES = (HsmrRetargetPair, HsmrRetargetSettings, HSMR_UL_retarget_pairs, HSMR_OT_retarget_detect,
           HSMR_OT_retarget_pair, HSMR_OT_retarget_mapping_file, HSMR_OT_retarget, HSMR_PT_retarget)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.Scene.hsmr_retarget = PointerProperty(type=HsmrRetargetSettings)


def unregister() -> None:
    del bpy.types.Scene.hsmr_retarget
    _unregister_classes()
