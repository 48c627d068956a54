"""The bpy side of retargeting: read the target's rests, write the plan as whole F-curves, and (for rigs whose
controls hang under constraint-driven bones, such as a generated Rigify rig) correct the keys against
Blender's own evaluation."""

from __future__ import annotations

import bpy
import numpy as np

from hsmr_contract.rotations import special_procrustes

from ..io.retarget import Plan
from ..io.retarget.rot import channels_for_mode
from ..io.retarget.solve import TargetRig
from .keyframes import ActionWriter

_PASSES = 6  # at most this many corrections: each settles at least one more level of constraint-driven parents


def read_target(ob: bpy.types.Object) -> TargetRig:
    bones = ob.data.bones
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones], dtype=np.int64)
    rest = np.array([np.array(b.matrix_local) for b in bones], dtype=np.float64).reshape(-1, 4, 4)
    tails = np.array([tuple(b.tail_local) for b in bones], dtype=np.float64).reshape(-1, 3)
    return TargetRig(names, parents, rest, tails, np.array(ob.matrix_world, dtype=np.float64))


def bone_parents(ob: bpy.types.Object) -> dict[str, str | None]:
    """Each bone's parent name (None for roots): what the name/hierarchy mapping reads."""
    return {b.name: (b.parent.name if b.parent else None) for b in ob.data.bones}


def active_constraints(ob: bpy.types.Object, names: list[str]) -> dict[str, list[str]]:
    """Working constraints on the named pose bones (muted or zero-influence ones do nothing and are ignored)."""
    out = {}
    for n in names:
        cons = [c.type for c in ob.pose.bones[n].constraints if not c.mute and c.influence > 0.0]
        if cons:
            out[n] = cons
    return out


def needs_evaluation(ob: bpy.types.Object, names: list[str]) -> bool:
    """True when the numpy chain cannot be trusted alone: constraints or drivers anywhere, or mapped bones that
    do not inherit their parent's rotation fully."""
    if any(len(pb.constraints) for pb in ob.pose.bones):
        return True
    if ob.animation_data is not None and len(ob.animation_data.drivers):
        return True
    bones = ob.data.bones
    return any(not bones[n].use_inherit_rotation or bones[n].inherit_scale != "FULL" for n in names)


def _bone_path(bone: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"]'


class PlanWriter:
    """Writes a plan onto a new action of the target and can rewrite the same curves in place."""

    def __init__(self, ob: bpy.types.Object, action_name: str, frames: np.ndarray) -> None:
        self.ob = ob
        self.frames = np.asarray(frames, dtype=np.float64)
        self.writer = ActionWriter.create(ob, action_name)
        self.curves: dict[tuple[str, int], object] = {}

    def _put(self, path: str, index: int, values: np.ndarray, group: str) -> None:
        key = (path, index)
        if key not in self.curves:
            self.curves[key] = self.writer.curve(path, index, self.frames, values, group=group)
            return
        fc = self.curves[key]
        co = np.empty(2 * len(self.frames), dtype=np.float32)
        co[0::2], co[1::2] = self.frames, values
        fc.keyframe_points.foreach_set("co", co)  # type: ignore[attr-defined]
        fc.update()  # type: ignore[attr-defined]

    def write(self, rotations: dict[str, np.ndarray], locations: dict[str, np.ndarray]) -> None:
        for name, mats in rotations.items():
            prop, values = channels_for_mode(mats, self.ob.pose.bones[name].rotation_mode)
            for i in range(values.shape[1]):
                self._put(f"{_bone_path(name)}.{prop}", i, values[:, i], name)
        for name, loc in locations.items():
            for i in range(3):
                self._put(f"{_bone_path(name)}.location", i, loc[:, i], name)

    def hold(self, bone: str, prop: str, value: float) -> None:
        """A constant custom-property curve (Rigify's IK_FK switch held at FK)."""
        self._put(f'{_bone_path(bone)}["{prop}"]', 0, np.full(len(self.frames), value), bone)


def wanted_armature_matrices(target: TargetRig, plan: Plan) -> dict[str, np.ndarray]:
    """(T, 4, 4) armature-space pose matrices the plan asks for (translation only meaningful when located)."""
    r_obj = target.obj_rotation
    inv_world = np.linalg.inv(target.matrix_world)
    out = {}
    for name, d in plan.world_rotations.items():
        j = target.index(name)
        m = np.zeros((len(d), 4, 4))
        m[:, 3, 3] = 1.0
        m[:, :3, :3] = r_obj.T @ d @ r_obj @ (target.rest[j, :3, :3])
        if name in plan.world_heads:
            m[:, :3, 3] = plan.world_heads[name] @ inv_world[:3, :3].T + inv_world[:3, 3]
        out[name] = m
    return out


def refine_by_evaluation(target: TargetRig, plan: Plan, writer: PlanWriter, scene: bpy.types.Scene) -> float:
    """Rewrite the writer's keys so Blender's evaluated pose (constraints, drivers included) is the planned one.

    Each pass reads, per frame, what sits above every keyed bone (``P · basis⁻¹``) and solves its basis again.
    Returns the worst remaining rotation error in degrees.
    """
    wanted = wanted_armature_matrices(target, plan)
    keep_frame = scene.frame_current
    worst = 0.0
    try:
        for done in range(_PASSES + 1):  # the last round only measures
            rotations, locations, worst = _solve_against_evaluation(wanted, set(plan.locations), writer, scene)
            if worst < 0.01 or done == _PASSES:
                break
            writer.write(rotations, locations)
    finally:
        scene.frame_set(keep_frame)
    return worst


def _solve_against_evaluation(wanted: dict[str, np.ndarray], located: set[str], writer: PlanWriter,
                              scene: bpy.types.Scene) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """One round: per frame, ``basis = (P · basis⁻¹)⁻¹ · wanted``; and the worst rotation error now (degrees)."""
    t_count = len(writer.frames)
    rotations = {n: np.empty((t_count, 3, 3)) for n in wanted}
    locations = {n: np.empty((t_count, 3)) for n in located}
    worst = 0.0
    for t, f in enumerate(writer.frames):
        scene.frame_set(int(f))
        for n, want in wanted.items():
            pb = writer.ob.pose.bones[n]
            pose, basis = np.array(pb.matrix), np.array(pb.matrix_basis)
            new = np.linalg.inv(pose @ np.linalg.inv(basis)) @ want[t]
            rotations[n][t] = special_procrustes(new[:3, :3])
            if n in locations:
                locations[n][t] = new[:3, 3]
            scale = np.cbrt(abs(np.linalg.det(pose[:3, :3])))
            cos = (np.trace(pose[:3, :3].T @ want[t][:3, :3]) / scale - 1.0) / 2.0
            worst = max(worst, float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return rotations, locations, worst
