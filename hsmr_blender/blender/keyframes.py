"""Whole F-curves at once (``keyframe_points.add`` + ``foreach_set``), on slotted (4.4+) and legacy actions."""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

SLOTTED = bpy.app.version >= (4, 4, 0)
_LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


@dataclass
class ActionWriter:
    """An action bound to one ID (object or shape-key block), ready to take whole curves."""

    id_data: bpy.types.ID
    action: bpy.types.Action
    _bag: object = None
    _groups: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, id_data: bpy.types.ID, name: str) -> ActionWriter:
        action = bpy.data.actions.new(name)
        ad = id_data.animation_data or id_data.animation_data_create()
        if SLOTTED:
            id_type = "KEY" if isinstance(id_data, bpy.types.Key) else "OBJECT"
            slot = action.slots.new(id_type=id_type, name=id_data.name)
            layer = action.layers.new("Layer")
            strip = layer.strips.new(type="KEYFRAME")
            bag = strip.channelbag(slot, ensure=True)
            ad.action = action
            ad.action_slot = slot
            return cls(id_data, action, bag)
        ad.action = action
        return cls(id_data, action, None)

    def _group(self, name: str) -> object:
        if name not in self._groups:
            groups = self._bag.groups if SLOTTED else self.action.groups  # type: ignore[union-attr]
            self._groups[name] = groups.new(name)
        return self._groups[name]

    def curve(self, data_path: str, index: int, frames: np.ndarray, values: np.ndarray, group: str = "") -> object:
        """Write one F-curve: n keys, linear interpolation (the data are dense samples)."""
        if SLOTTED:
            fc = self._bag.fcurves.new(data_path, index=index)  # type: ignore[union-attr]
        else:
            fc = self.action.fcurves.new(data_path, index=index)
        if group:
            fc.group = self._group(group)
        n = len(frames)
        co = np.empty(2 * n, dtype=np.float32)
        co[0::2] = frames
        co[1::2] = values
        fc.keyframe_points.add(n)
        fc.keyframe_points.foreach_set("co", co)
        fc.keyframe_points.foreach_set("interpolation", np.full(n, _LINEAR, dtype=np.int32))
        fc.update()
        return fc

    def fcurves(self) -> list:
        return list(self._bag.fcurves if SLOTTED else self.action.fcurves)  # type: ignore[union-attr]


def action_fcurves(action: bpy.types.Action) -> list:
    """All F-curves of an action on either API (first slot / strip on 4.4+)."""
    if SLOTTED:
        out = []
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    out.extend(bag.fcurves)
        return out
    return list(action.fcurves)
