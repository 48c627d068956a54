"""The stages of a window's fit: the first per-frame stages (root, then pose with the root rotation held),
the shape stage on frames sampled over the clip, and the temporal rounds (half-quadratic splitting)."""

from __future__ import annotations

import numpy as np
import torch

from ..camera import Camera
from ..smoothing import smooth, smooth_points
from .body import Body
from .contacts import FOOT_CONTACT_LANDMARKS, resting_places
from .inputs import FitData
from .options import EARLY_SIGMA, Q_UNIT, FitOptions
from .problem import Problem
from .terms import LENGTH_UNIT_M, Weights


def first_stages(prob: Problem, options: FitOptions, held: np.ndarray) -> None:
    """The per-frame stages before the final one: root position, then the body's pose (depth prior x10,
    a wider robust scale), both with the root rotation held in the frames (``held``) where it was measured
    (the torso's world landmarks, or HSMR); elsewhere it is free.

    Held because rotating the root is the cheapest way to swing both thighs at once: a free root tilts the
    pelvis towards the thighs' flexion, the spine bends back to keep the trunk, and the final stage hardly
    leaves that valley (pelvis tilt and lumbar extension trade off; the landmarks barely see the pelvis).
    """
    prob.optimise_frames(options.root_iterations, root_only=True, hold_rotation=held, sigma=EARLY_SIGMA)
    prob.optimise_frames(options.pose_iterations, hold_rotation=held, depth_scale=10.0, sigma=EARLY_SIGMA)


def shape_stage(prob: Problem, body: Body, data: FitData, camera: Camera, weights: Weights, betas: torch.Tensor,
                u_all: np.ndarray, rots: np.ndarray, pos: np.ndarray, j0: np.ndarray, q_prior: np.ndarray | None,
                options: FitOptions, win: tuple[int, int], rot_known: np.ndarray,
                ) -> tuple[Problem, torch.Tensor, np.ndarray, np.ndarray]:
    """Shape on up to ``shape_frames`` frames spread over the clip, all of them and the betas together.

    Sampled frames inside the first window (``prob``, already fitted per frame) start from its fits; the
    others get the per-frame stages first. Returns the first window's problem re-made on the new shape
    (the refined sampled frames written back), the betas, and the starting root positions and pivot moved
    with the shape (so the starting root positions stay where they were).
    """
    s, e = win
    vidx = np.flatnonzero(data.valid)
    pick = vidx[np.unique(np.linspace(0, len(vidx) - 1, min(options.shape_frames, len(vidx))).round().astype(int))]
    inside = (pick >= s) & (pick < e)
    with torch.no_grad():
        w_u, w_r, w_p = (prob.u.double().cpu().numpy(), prob.rotations().double().cpu().numpy(),
                         prob.p.double().cpu().numpy())
    u_s, r_s, p_s = u_all[pick].copy(), rots[pick].copy(), pos[pick].copy()
    u_s[inside], r_s[inside], p_s[inside] = w_u[pick[inside] - s], w_r[pick[inside] - s], w_p[pick[inside] - s]
    sp = Problem(body, data, slice(0, 0), camera, weights, betas, u_s, r_s, p_s,
                  None if q_prior is None else q_prior[pick], frame_ids=pick)
    if not inside.all():  # frames of later windows: per-frame fits first (the whole sample, batched)
        first_stages(sp, options, rot_known[pick] | inside)
        sp.optimise_frames(options.iterations // 2)
    sp.optimise_shape(options.shape_iterations)
    new_betas = sp.betas.detach().clone()
    with torch.no_grad():
        j0_new = body.rest(new_betas)[0].double().cpu().numpy()
        s_u, s_r, s_p = sp.u.double().cpu().numpy(), sp.rotations().double().cpu().numpy(), sp.p.double().cpu().numpy()
    shift = j0_new - j0
    w_p = w_p + shift
    w_u[pick[inside] - s], w_r[pick[inside] - s], w_p[pick[inside] - s] = s_u[inside], s_r[inside], s_p[inside]
    new_prob = Problem(body, data, slice(s, e), camera, weights, new_betas, w_u, w_r, w_p,
                        None if q_prior is None else q_prior[s:e])
    new_prob.memory = prob.memory  # the curvature pairs still describe these frames well
    return new_prob, new_betas, pos + shift, j0_new


def temporal_steps(prob: Problem, w: Weights, options: FitOptions, valid: np.ndarray) -> None:
    """Temporal terms by half-quadratic splitting, so every step stays per-frame or linear.

    The coupled objective  sum_t data_t(x_t) + lam * acc(J(x))  is replaced by
    sum_t data_t(x_t) + mu |J(x_t) - S_t|^2 + lam' * acc(S), minimised alternately: S by a banded linear
    solve (robust, IRLS; :mod:`hsmr_backend.smoothing`), x by the batched per-frame L-BFGS. With
    lam' = lam * mu / (1 + mu) the two objectives have the same minimiser in the linear-Gaussian case.
    The body q get the same treatment with a small weight (it steadies DoFs the landmarks barely see).
    """
    mu = 1.0
    lam_j = w.acc * mu / (1 + mu)
    mu_q = w.q_acc / max(w.acc, 1e-12) * 0.1
    prob.mu, prob.mu_q = mu, mu_q
    unit = LENGTH_UNIT_M
    weight = valid.astype(np.float64)
    for _ in range(options.temporal_rounds):
        with torch.no_grad():
            _, out = prob.forward(temporal=False)
        joints = out["joints"].double().cpu().numpy() / unit
        qb = out["q"][:, 3:].double().cpu().numpy() / Q_UNIT
        sj = smooth_points(joints, lam_j, weight, delta=w.acc_delta) * unit
        sq = smooth(qb, lam_j, weight) * Q_UNIT
        prob.anchor_j = torch.as_tensor(sj, dtype=prob.u.dtype, device=prob.u.device)
        prob.anchor_q = torch.as_tensor(sq, dtype=prob.u.dtype, device=prob.u.device)
        if prob.contact is not None:
            place = resting_places(out["lm"][:, FOOT_CONTACT_LANDMARKS].double().cpu().numpy(),
                                    prob.contact.mask.cpu().numpy() > 0, valid)
            prob.contact_place = torch.as_tensor(place, dtype=prob.u.dtype, device=prob.u.device)
        prob.optimise_frames(options.temporal_iterations)
    prob.anchor_j = prob.anchor_q = prob.contact_place = None
