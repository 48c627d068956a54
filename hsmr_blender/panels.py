"""The sidebar panel (3D viewport, tab "HSMR")."""

from __future__ import annotations

import bpy

from . import api


class HSMR_PT_main(bpy.types.Panel):
    bl_label = "HSMR"
    bl_idname = "HSMR_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HSMR"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.hsmr
        layout = self.layout
        col = layout.column()
        col.prop(s, "use_active_clip")
        if not s.use_active_clip:
            col.prop(s, "footage")
        cams = col.box()
        cams.label(text="Several calibrated cameras")
        cams.prop(s, "calibration")
        cams.prop(s, "other_footage")
        row = col.row(align=True)
        row.prop(s, "use_range")
        sub = row.row(align=True)
        sub.enabled = s.use_range
        sub.prop(s, "frame_start")
        sub.prop(s, "frame_end")
        col.prop(s, "mode")
        col.prop(s, "body")
        col.prop(s, "device")
        col.prop(s, "smoothing")
        col.prop(s, "up")
        box = col.box()
        box.label(text="Options")
        grid = box.grid_flow(columns=2)
        for name in ("skin", "correctives", "bone_meshes", "camera"):
            grid.prop(s, name)
        col.prop(s, "result_dir")
        if s.running:
            if hasattr(col, "progress"):  # 4.0+
                col.progress(factor=s.progress / 100.0, text=s.status)
            else:
                col.label(text=f"{s.progress:.0f}% {s.status}")
            col.operator("hsmr.cancel", icon="CANCEL")
        else:
            col.operator("hsmr.run", icon="PLAY")
            if s.status:
                col.label(text=s.status)
        if s.log_path:
            row = col.row(align=True)
            row.label(text=f"Log: {s.log_path}")
            row.operator("hsmr.open_log", text="", icon="TEXT")
        col.separator()
        col.operator("hsmr.import_result", icon="IMPORT")
        ob = context.active_object
        if ob is not None and api.RIG_PROP in ob:
            box = col.box()
            box.label(text=f"Export {ob.name}")
            grid = box.grid_flow(columns=3, align=True)
            for fmt, label in (("csv", "CSV"), ("mot", ".mot"), ("fbx", "FBX"), ("bvh", "BVH"), ("glb", "glTF")):
                grid.operator("hsmr.export", text=label).format = fmt


CLASSES = (HSMR_PT_main,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
