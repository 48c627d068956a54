"""Retargeting SKEL motion onto other humanoid rigs, bpy-free: presets, mapping, rest offsets, root, feet.

``plan(source, target, mapping, root_motion=..., feet=...)`` computes, for all frames at once, the pose-bone
rotation (in each bone's rest frame) of every mapped target bone and the location of the hips (and root); the
bpy layer (``hsmr_blender/blender/retarget.py``) only reads the rests and writes the curves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .feet import plant_feet, settle_hips, standing_lift
from .mapping import Mapping
from .solve import (
    Rig,
    TargetRig,
    expand,
    forward,
    hips_path,
    local_channels,
    role_rotations,
    spine_rotations,
)
from .source import SourceMotion

FEET_MODES = ("keep", "fk")


@dataclass
class Plan:
    """Per target bone name: rotations (T, 3, 3) in its rest frame; locations (T, 3) for the located bones."""

    rotations: dict[str, np.ndarray]
    locations: dict[str, np.ndarray]
    world_rotations: dict[str, np.ndarray]  # (T, 3, 3) wanted world rotation relative to rest, mapped bones
    world_heads: dict[str, np.ndarray]  # (T, 3) wanted world heads of the located bones
    leg_ratio: float
    planted: dict[str, int] = field(default_factory=dict)  # frames with a planted foot, per side


def plan(source: SourceMotion, target: TargetRig, mapping: Mapping, *, root_motion: bool = True,
         feet: str = "keep") -> Plan:
    """Everything the target's keys need, for all of ``source``'s frames at once (see the module docstring)."""
    if feet not in FEET_MODES:
        raise ValueError(f"feet={feet!r}: use 'keep' or 'fk'")
    rig = Rig(target, mapping, source)
    deltas = {**role_rotations(rig), **spine_rotations(rig)}
    located = hips_path(rig, root_motion, standing_lift(rig))
    planted = {}
    if feet == "keep":
        settle_hips(rig, deltas, located)
        planted = plant_feet(rig, deltas, located)
    t_count = len(source.joints)
    rots = expand(rig, deltas, t_count)
    heads = forward(rig, rots, located)
    bones = sorted(set(deltas) | set(located), key=rig.order.index)
    for j in located:
        deltas.setdefault(j, rots[:, j])
    basis, locs = local_channels(rig, rots, heads, bones, list(located))
    names = target.names
    return Plan(
        rotations={names[j]: basis[j] for j in bones},
        locations={names[j]: locs[j] for j in locs},
        world_rotations={names[j]: deltas[j] for j in bones},
        world_heads={names[j]: located[j] for j in located},
        leg_ratio=rig.leg_ratio,
        planted=planted,
    )
