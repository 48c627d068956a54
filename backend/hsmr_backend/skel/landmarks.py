"""MediaPipe's 33 pose landmarks regressed from a SKEL-family body, so the fitter compares like with like.

A landmark is an affine combination of skin vertices and SKEL joint centres:
``L_i = sum_k vertex_weights[i,k] * skin_verts[vertex_ids[i,k]] + sum_j joint_weights[i,j] * joints[j]``,
with every row's weights summing to one (some weights are negative: e.g. an outer eye corner is
extrapolated past the eye along the line between the eyes). The definitions are the same rules on
both bodies, only the anchor vertices differ; they are listed in ``docs/open-body.md`` and stored
with a one-line description each in ``assets/landmarks_<body>.json``.

Bodies: ``"open"`` (the open default body) and ``"skel"`` (any official SKEL file: SMPL topology).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_PKG = Path(__file__).resolve().parent
# inside an installed package (hsmr_backend/assets) or in the source checkout's assets/
ASSET_DIRS: tuple[Path, ...] = (_PKG.parent / "assets", _PKG.parents[2] / "assets")

MEDIAPIPE_POSE_LANDMARKS: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)  # mediapipe.solutions.pose.PoseLandmark order


@dataclass(frozen=True)
class LandmarkRegressor:
    body: str
    names: tuple[str, ...]  # (33,) MediaPipe landmark names, in PoseLandmark order
    vertex_ids: np.ndarray  # (33, k) int64 (padding entries have weight 0)
    vertex_weights: np.ndarray  # (33, k) float32
    joint_weights: np.ndarray  # (33, 24) float32
    definitions: tuple[str, ...]  # one line per landmark: how it is defined

    def apply(self, skin_verts, joints):
        """Landmarks (..., 33, 3) from skin vertices (..., V, 3) and joints (..., 24, 3).

        Works on numpy arrays and on torch tensors (differentiable); batch dimensions broadcast."""
        if type(skin_verts).__module__.startswith("torch"):
            import torch  # noqa: PLC0415 - only when given tensors

            ids = torch.as_tensor(self.vertex_ids, device=skin_verts.device)
            vw = torch.as_tensor(self.vertex_weights, device=skin_verts.device, dtype=skin_verts.dtype)
            jw = torch.as_tensor(self.joint_weights, device=skin_verts.device, dtype=skin_verts.dtype)
            picked = skin_verts[..., ids.reshape(-1), :].reshape(*skin_verts.shape[:-2], *ids.shape, 3)
            return (picked * vw[..., None]).sum(-2) + torch.einsum("lj,...jc->...lc", jw, joints)
        v = np.asarray(skin_verts)
        picked = v[..., self.vertex_ids, :]
        return (picked * self.vertex_weights[..., None]).sum(-2) + np.einsum(
            "lj,...jc->...lc", self.joint_weights, np.asarray(joints)
        )

    def __call__(self, output):
        """Landmarks from a ``SKELOutput`` (uses its ``skin_verts`` and ``joints``)."""
        return self.apply(output.skin_verts, output.joints)


def landmark_file(body_name: str) -> Path:
    for d in ASSET_DIRS:
        if (d / f"landmarks_{body_name}.json").is_file():
            return d / f"landmarks_{body_name}.json"
    return ASSET_DIRS[-1] / f"landmarks_{body_name}.json"


def load_landmark_regressor(body_name: str) -> LandmarkRegressor:
    """The regressor for ``"open"`` or ``"skel"`` (official SKEL files: SMPL-topology vertex ids)."""
    path = landmark_file(body_name)
    if not path.exists():
        raise FileNotFoundError(
            f"no landmark regressor for body {body_name!r} ({path} missing); use 'open' or 'skel', "
            "or regenerate assets with `python build.py assets`"
        )
    return regressor_from_dict(json.loads(path.read_text()))


def regressor_from_dict(d: dict) -> LandmarkRegressor:
    rows = d["landmarks"]
    if [r["name"] for r in rows] != list(MEDIAPIPE_POSE_LANDMARKS):
        raise ValueError(f"landmark file for {d.get('body')!r} does not list MediaPipe's 33 pose landmarks in order")
    k = max(1, max(len(r["vertices"]) for r in rows))
    ids = np.zeros((len(rows), k), dtype=np.int64)
    vw = np.zeros((len(rows), k), dtype=np.float32)
    jw = np.zeros((len(rows), 24), dtype=np.float32)
    for i, r in enumerate(rows):
        for n, (vid, w) in enumerate(r["vertices"]):
            ids[i, n], vw[i, n] = vid, w
        for j, w in r["joints"]:
            jw[i, j] += w
        total = vw[i].sum() + jw[i].sum()
        if abs(total - 1.0) > 1e-4:
            raise ValueError(f"landmark {r['name']!r} weights sum to {total}, not 1")
    return LandmarkRegressor(
        body=str(d["body"]),
        names=MEDIAPIPE_POSE_LANDMARKS,
        vertex_ids=ids,
        vertex_weights=vw,
        joint_weights=jw,
        definitions=tuple(r["definition"] for r in rows),
    )
