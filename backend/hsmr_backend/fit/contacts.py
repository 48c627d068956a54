"""Resting feet: where they are held (:class:`FootContacts`, for ``refine_with_contacts``), how high each
foot point sits when its foot rests flat, and the spells a point rests for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hsmr_contract.dofs import N_DOFS
from hsmr_contract.runs import true_runs

from .body import Body, BodyModel, LandmarkRegressor
from .inputs import FOOT_LANDMARKS
from .options import FitOptions

FOOT_JOINTS = (3, 4, 5, 8, 9, 10)  # SKEL talus, calcaneus, toes on both sides
FOOT_CONTACT_LANDMARKS = (29, 30, 31, 32)  # heels and foot tips (MediaPipe order): the points held on the ground
CONTACT_DELTA_M = 0.05  # foot-height misses beyond this cost linearly (a wrong contact cannot pull hard)
FLOOR_SLACK_M = 0.02  # a foot that does not rest may dip this far below the ground plane freely (its error)


@dataclass
class FootContacts:
    """Where the feet rest, for :func:`refine_with_contacts`. Camera frame (OpenCV, metres)."""

    mask: np.ndarray  # (T,4) bool: FOOT_CONTACT_LANDMARKS on the ground in that frame
    normal: np.ndarray  # (3,) ground normal (up), camera frame
    offset: float  # ground plane: normal . x = offset
    heights: np.ndarray  # (4,) height of each point above the plane when its foot rests flat


def rest_foot_heights(model: BodyModel, regressor: LandmarkRegressor, betas: np.ndarray,
                      options: FitOptions | None = None) -> np.ndarray:
    """(4,) height of each of FOOT_CONTACT_LANDMARKS above the body's lowest foot point (foot joints, ankles,
    heels, foot tips) in the rest pose, whose feet stand flat: where each sits when its foot rests."""
    opts = options or FitOptions()
    body = Body(model, regressor, opts)
    b = torch.as_tensor(np.asarray(betas, dtype=np.float64), dtype=opts.dtype, device=opts.device)
    with torch.no_grad():
        joints, lm, _ = body(torch.zeros(1, N_DOFS, dtype=opts.dtype, device=opts.device), b)
    joints, lm = joints[0].double().cpu().numpy(), lm[0].double().cpu().numpy()
    low = min(joints[list(FOOT_JOINTS), 1].min(), lm[list(FOOT_LANDMARKS), 1].min())  # model y is up
    return lm[list(FOOT_CONTACT_LANDMARKS), 1] - low


def resting_places(points: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,P,3): for every spell of a resting point (a run of ``mask`` (T,P)), the median of its positions over
    the spell's valid frames, in every frame of the spell; elsewhere the point's own position."""
    out = points.copy()
    for p in range(mask.shape[1]):
        for a, b in true_runs(mask[:, p]):
            v = valid[a:b]
            if v.any():
                out[a:b, p] = np.median(points[a:b, p][v], axis=0)
    return out
