"""The MediaPipe landmark regressors, written as ``assets/landmarks_<body>.json``.

One set of rules (``RULES``) over a few named anchor vertices per body and SKEL's joint centres:
- the official SKEL skin has SMPL topology, whose anchor vertex ids are public facts (smplx's
  ``vertex_ids``: nose, eyes, ears, toes, heels, fingertips);
- the open body's anchors are picked geometrically on its T-posed neutral mesh (``open_body_anchors``).
"""

from __future__ import annotations

import numpy as np

from ..landmarks import MEDIAPIPE_POSE_LANDMARKS
from .body import Rig

# SMPL-topology vertex ids (smplx vertex_ids['smplh']); public facts, no SMPL data involved.
SMPL_ANCHORS: dict[str, int] = {
    "nose": 332,
    "reye": 6260,
    "leye": 2800,
    "rear": 4071,
    "lear": 583,
    "LBigToe": 3216,
    "LSmallToe": 3226,
    "LHeel": 3387,
    "RBigToe": 6617,
    "RSmallToe": 6624,
    "RHeel": 6787,
    "LThumb": 2746,
    "LIndex": 2319,
    "LPinky": 2673,
    "RThumb": 6191,
    "RIndex": 5782,
    "RPinky": 6133,
}

# Inner / outer eye corners on the line between the eye centres: typical adult inner-canthal 3.2 cm,
# outer-canthal 9.0 cm and inter-pupillary 6.2 cm distances.
_IN = 0.5 + 0.5 * 3.2 / 6.2
_OUT = 0.5 + 0.5 * 9.0 / 6.2


def _mouth(side: str) -> tuple[list[tuple[str, float]], str]:
    # mouth corner = nose tip + 0.4 x (own eye - other eye) (half mouth width ~ 0.4 IPD)
    #   + 0.6 x (nose - eye midpoint) (down, as far again as 60 % of eyes-to-nose)
    #   + 0.2 x (ear midpoint - nose) (back, towards the ears)
    own, other = ("leye", "reye") if side == "l" else ("reye", "leye")
    terms = [("nose", 1.0 + 0.6 - 0.2), (own, 0.4 - 0.3), (other, -0.4 - 0.3), ("lear", 0.1), ("rear", 0.1)]
    return terms, ("nose tip + 0.4*(own eye - other eye) + 0.6*(nose - eye midpoint) + 0.2*(ear midpoint - nose)")


# name -> (vertex anchor terms, joint terms, definition)
def rules() -> dict[str, tuple[list[tuple[str, float]], list[tuple[int, float]], str]]:
    r: dict[str, tuple[list[tuple[str, float]], list[tuple[int, float]], str]] = {
        "nose": ([("nose", 1.0)], [], "nose tip vertex"),
    }
    for s, own, other, ear, sk in (("left", "leye", "reye", "lear", "l"), ("right", "reye", "leye", "rear", "r")):
        r[f"{s}_eye"] = ([(own, 1.0)], [], "eye centre vertex (on the closed eyelid)")
        r[f"{s}_eye_inner"] = (
            [(own, _IN), (other, 1 - _IN)],
            [],
            f"on the line between the eyes, {_IN:.3f} own eye + {1 - _IN:.3f} other eye",
        )
        r[f"{s}_eye_outer"] = (
            [(own, _OUT), (other, 1 - _OUT)],
            [],
            f"outside the eye on the same line, {_OUT:.3f} own eye {1 - _OUT:+.3f} other eye",
        )
        r[f"{s}_ear"] = ([(ear, 1.0)], [], "outer ear vertex")
        terms, text = _mouth(sk)
        r[f"mouth_{s}"] = (terms, [], text)
        side = 0 if s == "right" else 5  # leg joint offset
        arm = 15 if s == "right" else 20
        cap = s[0].upper()
        r[f"{s}_shoulder"] = ([], [(arm, 1.0)], "gleno-humeral joint centre (SKEL humerus joint)")
        r[f"{s}_elbow"] = ([], [(arm + 1, 1.0)], "elbow joint centre (SKEL ulna joint)")
        r[f"{s}_wrist"] = ([], [(arm + 3, 1.0)], "wrist joint centre (SKEL hand joint)")
        r[f"{s}_pinky"] = (
            [(f"{cap}Pinky", 0.55)],
            [(arm + 3, 0.45)],
            "little-finger knuckle: 0.45 wrist joint + 0.55 little-finger tip",
        )
        r[f"{s}_index"] = (
            [(f"{cap}Index", 0.53)],
            [(arm + 3, 0.47)],
            "index knuckle: 0.47 wrist joint + 0.53 index-finger tip",
        )
        r[f"{s}_thumb"] = (
            [(f"{cap}Thumb", 0.7)],
            [(arm + 3, 0.3)],
            "thumb second knuckle: 0.3 wrist joint + 0.7 thumb tip",
        )
        r[f"{s}_hip"] = ([], [(1 + side, 1.0)], "hip joint centre (SKEL femur joint)")
        r[f"{s}_knee"] = ([], [(2 + side, 1.0)], "knee joint centre (SKEL tibia joint)")
        r[f"{s}_ankle"] = ([], [(3 + side, 1.0)], "ankle joint centre (SKEL talus joint)")
        r[f"{s}_heel"] = ([(f"{cap}Heel", 1.0)], [], "back of the heel vertex")
        r[f"{s}_foot_index"] = (
            [(f"{cap}BigToe", 0.75), (f"{cap}SmallToe", 0.25)],
            [],
            "tip of the foot: 0.75 big-toe tip + 0.25 little-toe tip (about the second toe)",
        )
    return r


def regressor_dict(body: str, anchors: dict[str, int], note: str) -> dict:
    rs = rules()
    rows = []
    for name in MEDIAPIPE_POSE_LANDMARKS:
        terms, joints, text = rs[name]
        merged: dict[int, float] = {}
        for a, w in terms:
            merged[anchors[a]] = merged.get(anchors[a], 0.0) + w
        rows.append(
            {
                "name": name,
                "vertices": [[int(v), round(float(w), 6)] for v, w in merged.items() if abs(w) > 1e-12],
                "joints": [[int(j), float(w)] for j, w in joints],
                "definition": text,
            }
        )
    return {"body": body, "format": "hsmr-landmarks-1", "note": note, "anchors": anchors, "landmarks": rows}


def open_body_anchors(
    v: np.ndarray, joints: np.ndarray, rig: Rig, heads: np.ndarray, vbi: np.ndarray, vbw: np.ndarray
) -> dict[str, int]:
    """Anchor vertices picked on the open body's T-posed neutral mesh (rules in docs/open-body.md)."""

    def bone_verts(*labels: str) -> np.ndarray:
        ids = [rig(lb) for lb in labels]
        w = np.zeros(len(v))
        for b in ids:
            w += np.where(vbi == b, vbw, 0.0).sum(1)
        return np.flatnonzero(w > 0.5)

    out: dict[str, int] = {}
    neck_y = joints[13, 1]
    head = np.flatnonzero(v[:, 1] > neck_y + 0.08)
    mid = head[np.abs(v[head, 0]) < 0.004]
    out["nose"] = int(mid[np.argmax(v[mid, 2])])
    for side, sgn in (("l", 1.0), ("r", -1.0)):
        eye = heads[rig(f"eye.{side.upper()}")]
        near = head[(np.abs(v[head, 0] - eye[0]) < 0.006) & (np.abs(v[head, 1] - eye[1]) < 0.006)]
        out[f"{side}eye"] = int(near[np.argmax(v[near, 2])])
        band = head[(np.abs(v[head, 1] - (eye[1] - 0.02)) < 0.015) & (v[head, 2] < eye[2] - 0.05)]
        out[f"{side}ear"] = int(band[np.argmax(sgn * v[band, 0])])
        cap = side.upper()
        foot = bone_verts(
            f"foot.{cap}",
            *[f"toe{k}-{n}.{cap}" for k in range(1, 6) for n in (1, 2, 3) if f"toe{k}-{n}.{cap}" in rig.index],
        )
        low = foot[v[foot, 1] < v[foot, 1].min() + 0.04]
        out[f"{cap}Heel"] = int(low[np.argmin(v[low, 2])])
        for name, toe in (("BigToe", 1), ("SmallToe", 5)):
            ids = bone_verts(*[f"toe{toe}-{n}.{cap}" for n in (1, 2, 3) if f"toe{toe}-{n}.{cap}" in rig.index])
            out[f"{cap}{name}"] = int(ids[np.argmax(v[ids, 2])])
        for name, finger in (("Thumb", 1), ("Index", 2), ("Pinky", 5)):
            ids = bone_verts(f"finger{finger}-3.{cap}")
            base = heads[rig(f"finger{finger}-3.{cap}")]
            direction = base - heads[rig(f"finger{finger}-2.{cap}")]
            out[f"{cap}{name}"] = int(ids[np.argmax((v[ids] - base) @ direction)])
    return out
