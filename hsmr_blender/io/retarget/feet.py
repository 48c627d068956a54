"""Feet: keep resting target feet planted (a light two-bone IK on the legs) and above the floor."""

from __future__ import annotations

import numpy as np

from hsmr_contract.runs import true_runs

from . import rot
from .presets import SOURCE
from .solve import Rig, expand, forward, role_offset
from .source import FOOT_POINTS

_FADE = 4  # frames over which a plant's correction fades in and out around a spell
_HIPS_SETTLE = 0.025  # m: the most the hips move up or down to put resting soles on the floor
_SETTLE_SMOOTH = 5  # frames: moving average of that move
_COLUMNS = {"L": (0, 2), "R": (1, 3)}  # (heel, foot tip) columns of foot_resting per character side


def _fade(offset: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Extend the held frames' offsets to their neighbours, fading linearly to zero over ``_FADE`` frames."""
    out = np.where(held[:, None], offset, 0.0)
    t_count = len(held)
    for start, end in true_runs(held):
        for k in range(1, _FADE + 1):
            w = 1.0 - k / (_FADE + 1)
            for f, src in ((start - k, start), (end - 1 + k, end - 1)):
                if 0 <= f < t_count and not held[f]:
                    cand = w * offset[src]
                    if np.linalg.norm(cand) > np.linalg.norm(out[f]):
                        out[f] = cand
    return out


class Feet:
    """The target's foot geometry: ankle, ball and toe tip, and the sole points under them at rest."""

    def __init__(self, rig: Rig, side: str) -> None:
        self.rig = rig
        self.thigh, self.shin = rig.bones(f"thigh.{side}"), rig.bones(f"shin.{side}")
        self.foot, toe = rig.bone(f"foot.{side}"), rig.bone(f"toe.{side}")
        self.toe = toe
        self.ok = bool(self.thigh and self.shin and self.foot is not None)
        if not self.ok:
            return
        h = rig.heads
        ball = h[toe] if toe is not None else rig.tails_w[self.foot]
        tip = rig.tails_w[toe] if toe is not None else ball
        self.points = np.array([h[self.foot], ball, tip])  # rest: ankle, ball, tip (world)
        # the heel: behind the ankle as far as SKEL's calcaneus is behind its talus (scaled, target's facing)
        src, s = rig.src, side.lower()
        back = (src.rest_joints[src.index(f"calcn_{s}")] - src.rest_joints[src.index(f"talus_{s}")]) @ rig.yaw
        self.heel = h[self.foot] + rig.leg_ratio * back * np.array([1.0, 1.0, 0.0])

    def sole(self, floor: float) -> np.ndarray:
        """Rest sole points on the floor: under the heel, the ball and the toe tip."""
        out = np.array([self.heel, self.points[1], self.points[2]])
        out[:, 2] = floor
        return out


def floor_height(rig: Rig) -> float:
    """The target's floor: the lowest point of its feet at rest."""
    pts = []
    for side in ("L", "R"):
        f = Feet(rig, side)
        if f.ok:
            pts.append(f.points[:, 2].min())
    return float(min(pts)) if pts else 0.0


def standing_lift(rig: Rig) -> float:
    """How far the hips must rise so that, in SKEL's rest pose, the target's lowest sole point is on its floor."""
    floor = floor_height(rig)
    hips = rig.bone("hips")
    deltas = {j: role_offset(rig, role)[None] for role in rig.mapping.roles() if role in SOURCE and role != "hips"
              for j in rig.bones(role)}
    located = {hips: rig.heads[hips][None]}
    rots = expand(rig, deltas, 1)
    heads = forward(rig, rots, located)
    lows = [_sole_paths(f, rots, heads, floor)[0, :, 2].min() for f in (Feet(rig, "L"), Feet(rig, "R")) if f.ok]
    return float(floor - min(lows)) if lows else 0.0


def _sole_paths(feet: Feet, rots: np.ndarray, heads: np.ndarray, floor: float) -> np.ndarray:
    """(T, 3, 3): heel, ball and tip sole points over time (heel and ball move with the foot, tip with the toe)."""
    rig = feet.rig
    ankle = heads[:, feet.foot]
    sole = feet.sole(floor)
    rest_ankle = feet.points[0]
    out = np.empty((len(heads), 3, 3))
    out[:, 0] = ankle + rots[:, feet.foot] @ (sole[0] - rest_ankle)
    out[:, 1] = ankle + rots[:, feet.foot] @ (sole[1] - rest_ankle)
    if feet.toe is not None:
        out[:, 2] = heads[:, feet.toe] + rots[:, feet.toe] @ (sole[2] - rig.heads[feet.toe])
    else:
        out[:, 2] = out[:, 1]
    return out


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, goal: np.ndarray,
                forward_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, 3, 3) for the thigh and the shin that bring the ankle to ``goal``, knee in its plane."""
    l1 = np.linalg.norm(knee - hip, axis=-1)
    l2 = np.linalg.norm(ankle - knee, axis=-1)
    v = goal - hip
    d = np.clip(np.linalg.norm(v, axis=-1), np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    u = rot.unit(v)
    bend = knee - hip
    pole = bend - np.sum(bend * u, axis=-1, keepdims=True) * u
    straight = np.linalg.norm(pole, axis=-1) < 1e-4 * np.maximum(l1, 1e-9)
    fwd = forward_dir - np.sum(forward_dir * u, axis=-1, keepdims=True) * u
    pole = rot.unit(np.where(straight[:, None], fwd, pole))
    a = (l1**2 - l2**2 + d**2) / (2 * d)
    knee_new = hip + a[:, None] * u + np.sqrt(np.maximum(l1**2 - a**2, 0.0))[:, None] * pole
    ankle_new = hip + d[:, None] * u
    r_thigh = rot.min_rotation(knee - hip, knee_new - hip)
    turned = np.einsum("tab,tb->ta", r_thigh, ankle - knee)
    r_shin = rot.min_rotation(turned, ankle_new - knee_new) @ r_thigh
    return r_thigh, r_shin


def _ankle_goals(resting: np.ndarray, soles: np.ndarray, drift: np.ndarray, floor: float) -> tuple[np.ndarray, int]:
    """Ankle offsets (T, 3) that hold the resting sole point (heel, else ball) on the floor and keep every sole
    above it. ``drift`` (T, 2, 3): how far SKEL's heel and tip have moved (scaled, in the target's facing): a
    target foot moves only as much as SKEL's resting foot does, whatever the two bodies' proportions."""
    heel, tip = resting[:, 0], resting[:, 1] & ~resting[:, 0]
    offset = np.zeros((len(soles), 3))
    held = heel | tip
    for mask, k in ((heel, 0), (tip, 1)):
        for start, end in true_runs(mask):
            span = slice(start, end)
            goal = (soles[span, k] - drift[span, k]).mean(axis=0) + drift[span, k]
            goal[:, 2] = floor + soles[span, k, 2] - soles[span, :, 2].min(axis=1)  # lowest sole point on the floor
            offset[span] = goal - soles[span, k]
    offset = _fade(offset, held)
    low = (soles[..., 2] + offset[:, None, 2]).min(axis=1)
    offset[:, 2] += np.maximum(floor - low, 0.0)
    return offset, int(held.sum())


def settle_hips(rig: Rig, deltas: dict[int, np.ndarray], located: dict[int, np.ndarray]) -> np.ndarray:
    """Raise or lower the hips (at most ``_HIPS_SETTLE``, smoothly) so that the resting soles meet the floor with
    the legs as they are: a small height mismatch on a nearly straight leg would otherwise need a large knee bend.
    Changes ``located`` in place; returns the vertical move (T,)."""
    hips = rig.bone("hips")
    t_count = len(located[hips])
    floor = floor_height(rig)
    rots = expand(rig, deltas, t_count)
    heads = forward(rig, rots, located)
    gaps = np.full((t_count, 2), np.nan)
    for i, side in enumerate(("L", "R")):
        feet = Feet(rig, side)
        if not feet.ok:
            continue
        soles = _sole_paths(feet, rots, heads, floor)
        rest = rig.src.resting[:, list(_COLUMNS[side])]
        z = soles[:, :, 2].min(axis=1)
        gaps[rest.any(axis=1), i] = floor - z[rest.any(axis=1)]
    have = ~np.all(np.isnan(gaps), axis=1)
    if not have.any():
        return np.zeros(t_count)
    move = np.interp(np.arange(t_count), np.flatnonzero(have), np.nanmean(gaps[have], axis=1))
    pad = _SETTLE_SMOOTH // 2
    move = np.convolve(np.pad(move, pad, mode="edge"), np.full(_SETTLE_SMOOTH, 1 / _SETTLE_SMOOTH), mode="valid")
    move = np.clip(move, -_HIPS_SETTLE, _HIPS_SETTLE)
    located[hips] = located[hips] + move[:, None] * np.array([0.0, 0.0, 1.0])
    return move


def plant_feet(rig: Rig, deltas: dict[int, np.ndarray], located: dict[int, np.ndarray]) -> dict[str, int]:
    """Adjust the legs' rotations in ``deltas`` in place; returns planted frames per side."""
    t_count = len(next(iter(located.values())))
    floor = floor_height(rig)
    rots = expand(rig, deltas, t_count)
    heads = forward(rig, rots, located)
    hips = rig.bone("hips")
    lr = rig.heads[rig.bone("thigh.L")] - rig.heads[rig.bone("thigh.R")]
    fwd_rest = rot.unit(np.cross(lr, [0.0, 0.0, 1.0]))
    fwd = rots[:, hips] @ fwd_rest  # the hips are always mapped (REQUIRED_ROLES)
    planted = {}
    for side in ("L", "R"):
        feet = Feet(rig, side)
        if not feet.ok:
            continue
        soles = _sole_paths(feet, rots, heads, floor)
        cols = list(_COLUMNS[side])
        points = rig.src.joints[:, [rig.src.index(FOOT_POINTS[c]) for c in cols]]  # SKEL's heel and foot tip
        drift = (points - points.mean(axis=0)) @ rig.yaw * rig.leg_ratio
        offset, planted[side] = _ankle_goals(rig.src.resting[:, cols], soles, drift, floor)
        move = np.linalg.norm(offset, axis=1) > 1e-6
        if not move.any():
            continue
        hip, knee, ankle = heads[:, feet.thigh[0]], heads[:, feet.shin[0]], heads[:, feet.foot]
        r_thigh, r_shin = two_bone_ik(hip[move], knee[move], ankle[move], ankle[move] + offset[move], fwd[move])
        for bones, r in ((feet.thigh, r_thigh), (feet.shin, r_shin)):
            for j in bones:
                d = deltas[j].copy()
                d[move] = r @ d[move]
                deltas[j] = d
    return planted
