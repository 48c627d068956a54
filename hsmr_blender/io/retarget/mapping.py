"""Which target bone plays which role: presets by name, else a guess from names and the hierarchy; JSON I/O."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .presets import CHAIN_ROLES, PRESETS, ROLES, SIDES

MAPPING_FORMAT = "hsmr-retarget-mapping"
REQUIRED_ROLES = ("hips",) + tuple(f"{r}.{s}" for r in ("upper_arm", "forearm", "thigh", "shin") for s in SIDES)
_PREFIX = re.compile(r"^(mixamorig\d*[:_]|bip\d*[ _]|[^:]*:)", re.IGNORECASE)
_SKIP = ("twist", "roll", "ik", "pole", "end", "nub", "target", "mch", "org", "tweak", "finger", "thumb", "index",
         "middle", "ring", "pinky", "little", "metacarpal", "palm", "eye", "jaw", "breast", "heel", "corrective",
         "helper", "tip", "top")
# first match wins; every keyword is tested against the side-free, separator-free lower-case name
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("toe", ("toe", "ball")),
    ("foot", ("foot", "ankle")),
    ("thigh", ("thigh", "upleg", "upperleg", "femur")),
    ("shin", ("shin", "calf", "lowerleg", "knee", "leg", "tibia")),
    ("hand", ("hand", "wrist")),
    ("forearm", ("forearm", "lowerarm", "elbow", "radius", "ulna")),
    ("upper_arm", ("upperarm", "humerus", "arm")),
    ("shoulder", ("shoulder", "clavicle", "collar", "scapula")),
    ("hips", ("hips", "pelvis", "hip")),
    ("root", ("root",)),
    ("neck", ("neck",)),
    ("head", ("head",)),
    ("spine", ("spine", "chest", "torso", "abdomen", "back")),
)


class MappingError(ValueError):
    """A mapping that cannot drive the target; the message says what is missing and what to do."""


@dataclass
class Mapping:
    """Ordered (role, bone) pairs; ``guessed`` holds the bones the name/hierarchy guess chose."""

    pairs: list[tuple[str, str]]
    preset: str = "custom"
    guessed: set[str] = field(default_factory=set)

    def bones(self, role: str) -> list[str]:
        return [b for r, b in self.pairs if r == role]

    def roles(self) -> set[str]:
        return {r for r, _ in self.pairs}


def strip_prefix(name: str) -> str:
    return _PREFIX.sub("", name)


def _norm(name: str) -> str:
    return re.sub(r"[\s._\-:]", "", strip_prefix(name)).lower()


_SIDE_WORD = re.compile(r"(?i)^(left|right)|(left|right)$|(left|right)(?=[A-Z0-9_.\-])")
_SIDE_LETTER = re.compile(r"[._\-\s]([LlRr])$|^([LlRr])[._\-\s]|[._\-\s]([LlRr])[._\-\s]")


def split_side(name: str) -> tuple[str | None, str]:
    """(side 'L'/'R' or None, the name without its side marker): Left/Right or a separated L/R, any position."""
    base = strip_prefix(name)
    for pattern in (_SIDE_WORD, _SIDE_LETTER):
        m = pattern.search(base)
        if m:
            letter = next(g for g in m.groups() if g)[0].upper()
            return letter, base[:m.start()] + base[m.end():]
    return None, base


def preset_mapping(preset: str, bone_names: Sequence[str]) -> Mapping:
    """The preset's pairs for the bones the armature has (prefixes such as ``mixamorig:`` tolerated)."""
    by_norm: dict[str, str] = {}
    for n in bone_names:
        by_norm.setdefault(_norm(n), n)
    exact = set(bone_names)
    pairs = []
    for role, names in PRESETS[preset].items():
        for n in names:
            real = n if n in exact else by_norm.get(_norm(n))
            if real is not None:
                pairs.append((role, real))
    return Mapping(pairs, preset)


def detect_preset(bone_names: Sequence[str]) -> tuple[str | None, float]:
    """The preset whose names the armature carries best, and the share of that preset's bones found."""
    best: tuple[str | None, float] = (None, 0.0)
    for preset, table in PRESETS.items():
        wanted = [n for names in table.values() for n in names]
        found = len(preset_mapping(preset, bone_names).pairs)
        share = found / len(wanted)
        if share > best[1] + 1e-9:
            best = (preset, share)
    return best


def _role_of(name: str) -> str | None:
    side, base = split_side(name)
    key = re.sub(r"[\s._\-:\d]", "", base).lower()
    if any(s in key for s in _SKIP):
        return None
    for role, words in _KEYWORDS:
        if any(w in key for w in words):
            if role in ("root", "hips", "neck", "head", "spine"):
                # a sided "hip" bone (Hip_L) is that side's thigh in many rigs
                return role if side is None else ("thigh." + side if role == "hips" else None)
            return f"{role}.{side}" if side else None
    return None


def _depths(parents: dict[str, str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in parents:
        d, p = 0, parents[n]
        while p is not None:
            d, p = d + 1, parents.get(p)
        out[n] = d
    return out


def _path_between(parents: dict[str, str | None], low: str, high: str) -> list[str] | None:
    """Bones strictly between ``low`` and its descendant ``high``, bottom up; None if ``high`` is not below."""
    chain, p = [], parents.get(high)
    while p is not None and p != low:
        chain.append(p)
        p = parents.get(p)
    return list(reversed(chain)) if p == low else None


def guess_mapping(parents: dict[str, str | None]) -> Mapping:
    """Map by names (sides in any position, prefixes, separators) and fill the spine/neck from the hierarchy."""
    depth = _depths(parents)
    found: dict[str, list[str]] = {}
    for name in sorted(parents, key=lambda n: depth[n]):
        role = _role_of(name)
        if role is not None:
            found.setdefault(role, []).append(name)
    pairs: list[tuple[str, str]] = []
    for role in ROLES:
        names = found.get(role, [])
        if not names:
            continue
        if role in CHAIN_ROLES:
            pairs.extend((role, n) for n in names)
        else:  # the top candidate and those of its descendants that share its role (two-segment limbs)
            keep = [names[0]] + [n for n in names[1:] if parents.get(n) in names]
            pairs.extend((role, n) for n in keep)
    mapping = Mapping(pairs, "guessed", {b for _, b in pairs})
    _fill_chains(mapping, parents)
    return mapping


def _fill_chains(mapping: Mapping, parents: dict[str, str | None]) -> None:
    """Spine = the bones between the hips and the neck (or head) when names did not say."""
    hips, neck, head = mapping.bones("hips"), mapping.bones("neck"), mapping.bones("head")
    top = (neck or head or [None])[0]
    if hips and top and not mapping.bones("spine"):
        between = _path_between(parents, hips[0], top) or []
        for b in between:
            mapping.pairs.append(("spine", b))
            mapping.guessed.add(b)


def auto_mapping(parents: dict[str, str | None], min_share: float = 0.6) -> Mapping:
    """A preset when the armature's names say which (share of its names found ≥ ``min_share``), else a guess."""
    preset, share = detect_preset(list(parents))
    if preset is not None and share >= min_share:
        return preset_mapping(preset, list(parents))
    return guess_mapping(parents)


def check_mapping(mapping: Mapping, bone_names: Sequence[str]) -> None:
    """Raise MappingError naming what is missing or wrong, with what to do."""
    names = set(bone_names)
    unknown_roles = sorted({r for r, _ in mapping.pairs if r not in ROLES})
    if unknown_roles:
        raise MappingError(f"unknown role(s) {', '.join(unknown_roles)}: use one of {', '.join(ROLES)}")
    absent = sorted({b for _, b in mapping.pairs if b not in names})
    if absent:
        raise MappingError(f"the target has no bone(s) {', '.join(absent[:6])}: fix the mapping or pick another "
                           "armature")
    bones = [b for _, b in mapping.pairs]
    twice = sorted({b for b in bones if bones.count(b) > 1})
    if twice:
        raise MappingError(f"bone(s) {', '.join(twice)} mapped to more than one role: keep one")
    missing = [r for r in REQUIRED_ROLES if r not in mapping.roles()]
    if missing:
        raise MappingError(f"could not map {', '.join(missing)} (not a humanoid rig, or names this add-on does not "
                           "know): pick a preset or set these bones in the mapping list")


def save_mapping(mapping: Mapping, path: str | Path) -> Path:
    path = Path(path)
    data = {"format": MAPPING_FORMAT, "version": 1, "preset": mapping.preset,
            "bones": [[r, b] for r, b in mapping.pairs]}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise MappingError(f"cannot read mapping {path.name} ({e}): choose a JSON saved by this add-on") from None
    if not isinstance(data, dict) or data.get("format") != MAPPING_FORMAT or not isinstance(data.get("bones"), list):
        raise MappingError(f"{path.name} is not a retarget mapping: choose a JSON saved by this add-on")
    pairs = [(str(r), str(b)) for r, b in data["bones"]]
    return Mapping(pairs, str(data.get("preset", "custom")))
