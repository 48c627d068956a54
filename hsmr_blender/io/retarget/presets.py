"""Roles (what a target bone does) and the bone names of common rig families, as plain data.

A *mapping* is an ordered list of ``(role, bone)`` pairs. A role may hold several bones: the spine and neck
chains (bottom to top), and two-segment limbs such as MakeHuman's ``upperarm01``/``upperarm02``. ``.L``/``.R``
in a role is the character's own left/right.
"""

from __future__ import annotations

SIDES = ("L", "R")
LIMB_ROLES = ("shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe")
CENTRE_ROLES = ("root", "hips", "spine", "neck", "head")
ROLES: tuple[str, ...] = CENTRE_ROLES + tuple(f"{r}.{s}" for s in SIDES for r in LIMB_ROLES)
CHAIN_ROLES = ("spine", "neck")  # roles that take a chain of bones, ordered from the hips up

# Which SKEL motion drives a role: (joint whose rotation it takes, segment start joint, segment end joint).
# The segment's rest direction is what the target bone's rest direction is aligned to. Joint names carry
# SKEL's side (_l/_r); the character's left is SKEL's _l.
_LIMB_SOURCE = {
    "shoulder": ("scapula", "scapula", "humerus"),
    "upper_arm": ("humerus", "humerus", "ulna"),
    "forearm": ("radius", "radius", "hand"),  # the radius carries pro/supination: the forearm's twist
    "hand": ("hand", "radius", "hand"),
    "thigh": ("femur", "femur", "tibia"),
    "shin": ("tibia", "tibia", "talus"),
    "foot": ("calcn", "talus", "toes"),  # talus + calcaneus fold onto one foot bone: ankle -> ball
    "toe": ("toes", "calcn", "toes"),
}
SOURCE: dict[str, tuple[str, str, str]] = {
    "hips": ("pelvis", "pelvis", "lumbar_body"),
    "neck": ("head", "thorax", "head"),
    "head": ("head", "thorax", "head"),
    **{f"{role}.{side}": tuple(f"{j}_{side.lower()}" for j in joints)  # type: ignore[misc]
       for role, joints in _LIMB_SOURCE.items() for side in SIDES},
}
# roles whose segment ends at a child joint: the target bone is aimed at the source segment's actual direction
AIMED = ("shoulder", "upper_arm", "forearm", "thigh", "shin", "foot")
SPINE_SOURCE = ("lumbar_body", "thorax", "head")  # the source spine: lumbar + thorax, spread over the chain


def _sided(template: dict[str, list[str]]) -> dict[str, list[str]]:
    """Expand ``{L}``/``{R}``-style placeholders: ``{s}`` side letter, ``{side}`` Left/Right, ``{lr}`` l/r."""
    out: dict[str, list[str]] = {}
    for role, names in template.items():
        if role in CENTRE_ROLES:
            out[role] = list(names)
            continue
        for s in SIDES:
            words = {"s": s, "side": "Left" if s == "L" else "Right", "lr": s.lower(), "low": "left" if s == "L"
                     else "right"}
            out[f"{role}.{s}"] = [n.format(**words) for n in names]
    return out


PRESETS: dict[str, dict[str, list[str]]] = {
    "mixamo": _sided({
        "hips": ["Hips"], "spine": ["Spine", "Spine1", "Spine2"], "neck": ["Neck"], "head": ["Head"],
        "shoulder": ["{side}Shoulder"], "upper_arm": ["{side}Arm"], "forearm": ["{side}ForeArm"],
        "hand": ["{side}Hand"], "thigh": ["{side}UpLeg"], "shin": ["{side}Leg"], "foot": ["{side}Foot"],
        "toe": ["{side}ToeBase"],
    }),
    "rigify_metarig": _sided({
        "hips": ["spine"], "spine": ["spine.001", "spine.002", "spine.003"], "neck": ["spine.004", "spine.005"],
        "head": ["spine.006"], "shoulder": ["shoulder.{s}"], "upper_arm": ["upper_arm.{s}"],
        "forearm": ["forearm.{s}"], "hand": ["hand.{s}"], "thigh": ["thigh.{s}"], "shin": ["shin.{s}"],
        "foot": ["foot.{s}"], "toe": ["toe.{s}"],
    }),
    "rigify": _sided({  # a generated rig's FK controls (IK/FK switched to FK)
        "root": ["root"], "hips": ["torso"], "spine": ["spine_fk.001", "spine_fk.002", "spine_fk.003"],
        "neck": ["neck"], "head": ["head"], "shoulder": ["shoulder.{s}"], "upper_arm": ["upper_arm_fk.{s}"],
        "forearm": ["forearm_fk.{s}"], "hand": ["hand_fk.{s}"], "thigh": ["thigh_fk.{s}"], "shin": ["shin_fk.{s}"],
        "foot": ["foot_fk.{s}"], "toe": ["toe_fk.{s}"],
    }),
    "ue5": _sided({
        "root": ["root"], "hips": ["pelvis"], "spine": ["spine_01", "spine_02", "spine_03", "spine_04", "spine_05"],
        "neck": ["neck_01", "neck_02"], "head": ["head"], "shoulder": ["clavicle_{lr}"],
        "upper_arm": ["upperarm_{lr}"], "forearm": ["lowerarm_{lr}"], "hand": ["hand_{lr}"],
        "thigh": ["thigh_{lr}"], "shin": ["calf_{lr}"], "foot": ["foot_{lr}"], "toe": ["ball_{lr}"],
    }),
    "ue4": _sided({
        "root": ["root"], "hips": ["pelvis"], "spine": ["spine_01", "spine_02", "spine_03"], "neck": ["neck_01"],
        "head": ["head"], "shoulder": ["clavicle_{lr}"], "upper_arm": ["upperarm_{lr}"],
        "forearm": ["lowerarm_{lr}"], "hand": ["hand_{lr}"], "thigh": ["thigh_{lr}"], "shin": ["calf_{lr}"],
        "foot": ["foot_{lr}"], "toe": ["ball_{lr}"],
    }),
    "vrm": _sided({
        "hips": ["hips"], "spine": ["spine", "chest", "upperChest"], "neck": ["neck"], "head": ["head"],
        "shoulder": ["{low}Shoulder"], "upper_arm": ["{low}UpperArm"], "forearm": ["{low}LowerArm"],
        "hand": ["{low}Hand"], "thigh": ["{low}UpperLeg"], "shin": ["{low}LowerLeg"], "foot": ["{low}Foot"],
        "toe": ["{low}Toes"],
    }),
    "makehuman": _sided({  # MakeHuman / MPFB "default" rig: "root" is its hips; two segments per long bone
        "hips": ["root"], "spine": ["spine05", "spine04", "spine03", "spine02", "spine01"],
        "neck": ["neck01", "neck02", "neck03"], "head": ["head"], "shoulder": ["clavicle.{s}", "shoulder01.{s}"],
        "upper_arm": ["upperarm01.{s}", "upperarm02.{s}"], "forearm": ["lowerarm01.{s}", "lowerarm02.{s}"],
        "hand": ["wrist.{s}"], "thigh": ["upperleg01.{s}", "upperleg02.{s}"],
        "shin": ["lowerleg01.{s}", "lowerleg02.{s}"], "foot": ["foot.{s}"], "toe": ["toe1-1.{s}"],
    }),
}
PRESET_LABELS = {
    "mixamo": "Mixamo", "rigify_metarig": "Rigify metarig", "rigify": "Rigify (generated, FK)",
    "ue5": "Unreal Mannequin UE5", "ue4": "Unreal Mannequin UE4", "vrm": "VRM humanoid",
    "makehuman": "MakeHuman / MPFB",
}
# Rigify's IK/FK switches: custom property IK_FK on these pose bones, 1.0 = FK
RIGIFY_FK_SWITCHES = tuple(f"{b}_parent.{s}" for b in ("upper_arm", "thigh") for s in SIDES)
