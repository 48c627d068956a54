"""One window of frames as an optimisation problem: its parameters (body DoFs through the sine map, root
rotation and position per frame, the shared shape), the objective as the weighted sum of the terms of
:mod:`.terms`, and its per-frame and shape optimisations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..camera import Camera
from .body import Body
from .inputs import SEGMENTS, FitData
from .lbfgs import batched_lbfgs
from .options import UNIT
from .params import PRIOR_SCALE, q_from_u, so3_exp
from .terms import (
    GroundHold,
    ImageView,
    SegmentDirections,
    Weights,
    ground_contact,
    init_prior,
    joint_acceleration,
    joint_anchor,
    pose_prior,
    q_acceleration,
    q_anchor,
    reprojection,
    resting_place,
    segment_depth,
    shape_prior,
)


@dataclass
class Posed:
    """The window's body at some parameters: body DoFs, full q (pelvis zero), root rotations, joints and
    landmarks in the camera frame, and the betas used."""

    qb: torch.Tensor  # (T,43)
    q: torch.Tensor  # (T,46)
    rot: torch.Tensor  # (T,3,3)
    joints: torch.Tensor  # (T,24,3)
    lm: torch.Tensor  # (T,33,3)
    betas: torch.Tensor  # (K,)


class Problem:
    """One window of frames: parameters, objective, and the final per-frame values."""

    def __init__(self, body: Body, data: FitData, sl: slice, camera: Camera, weights: Weights, betas: torch.Tensor,
                 u0: np.ndarray, r0: np.ndarray, p0: np.ndarray, q_init: np.ndarray | None,
                 frame_ids: np.ndarray | None = None) -> None:
        dt, dev = body.dtype, body.device
        tt = lambda x: torch.as_tensor(np.asarray(x), dtype=dt, device=dev)  # noqa: E731
        self.body, self.cam, self.w = body, camera, weights
        ids = np.arange(sl.start, sl.stop) if frame_ids is None else frame_ids
        k = torch.tensor([camera.fx, camera.fy, camera.cx, camera.cy], dtype=dt, device=dev)
        self.views = [ImageView(k, data.kp2d[ids], data.conf[ids], data.scale_px)] + [  # more calibrated cameras
            ImageView(v.k, v.kp2d[ids], v.conf[ids], v.scale_px, v.rotation, v.translation) for v in data.views]
        seg_a, seg_b = torch.as_tensor(np.array(SEGMENTS).T, device=dev)
        self.seen = SegmentDirections(seg_a, seg_b, data.dirs[ids], data.dir_w[ids], data.dir_xy[ids])
        self.u = torch.nn.Parameter(tt(u0))
        self.r = torch.nn.Parameter(torch.zeros(len(ids), 3, dtype=dt, device=dev))
        self.r_base = tt(r0)
        self.p = torch.nn.Parameter(tt(p0))
        self.betas = torch.nn.Parameter(betas.detach().clone())
        self._j0: torch.Tensor | None = None
        self.prior_scale = tt(PRIOR_SCALE)
        self.anchor_j: torch.Tensor | None = None  # (T,24,3) smoothed joints, set by the temporal step
        self.anchor_q: torch.Tensor | None = None  # (T,43) smoothed body q
        self.mu, self.mu_q = 1.0, 0.0
        self.q_init = None if q_init is None else tt(q_init)
        self.memory: dict = {}  # L-BFGS curvature pairs carried from one per-frame stage to the next
        self.contact: GroundHold | None = None  # resting feet held on the ground (refine_with_contacts)
        self.contact_place: torch.Tensor | None = None  # (T,4,3) where each resting point stays (temporal step)

    def rotations(self) -> torch.Tensor:
        return so3_exp(self.r) @ self.r_base

    def pose(self, x: torch.Tensor | None = None, shape: bool = False, betas: torch.Tensor | None = None,
             posed: tuple[torch.Tensor, torch.Tensor] | None = None) -> Posed:
        """The body at the parameters, or at ``x`` (T,49) = [u, r, p] and ``betas``; ``posed`` = (joints,
        landmarks) of the body at the current u, when only the root moves."""
        u, r, p = (self.u, self.r, self.p) if x is None else (x[:, :-6], x[:, -6:-3], x[:, -3:])
        qb = q_from_u(u)
        q = torch.cat([qb.new_zeros(u.shape[0], 3), qb], 1)
        if shape:
            betas = self.betas if betas is None else betas
            j0, _ = self.body.rest(betas)
        else:  # shape fixed: its rest state is computed once
            betas = self.betas.detach()
            if self._j0 is None:
                with torch.no_grad():
                    self._j0 = self.body.rest(betas)[0]
            j0 = self._j0
        joints0, lm0 = self.body(q, betas)[:2] if posed is None else posed
        rot = so3_exp(r) @ self.r_base
        joints = torch.einsum("tij,tkj->tki", rot, joints0 - j0) + p[:, None]
        lm = torch.einsum("tij,tkj->tki", rot, lm0 - j0) + p[:, None]
        return Posed(qb, q, rot, joints, lm, betas)

    def forward(self, temporal: bool = True, depth_scale: float = 1.0, sigma: float | None = None,
                shape: bool = False, x: torch.Tensor | None = None, betas: torch.Tensor | None = None,
                posed: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
        """Objective: the weighted terms per frame, averaged (plus the shape prior when ``shape``); ``x``,
        ``betas`` and ``posed`` as in :meth:`pose` (used by the optimisers)."""
        b = self.pose(x, shape, betas, posed)
        w = self.w
        reproj = reprojection(b.lm, self.views, w.sigma if sigma is None else sigma / UNIT)
        per_frame = w.reproj * reproj
        if w.depth > 0:
            per_frame = per_frame + w.depth * depth_scale * segment_depth(b.lm, self.seen)
        if w.pose > 0:
            per_frame = per_frame + w.pose * pose_prior(b.qb, self.prior_scale)
        if self.q_init is not None and w.init > 0:
            per_frame = per_frame + w.init * init_prior(b.qb, self.q_init)
        if self.contact is not None and w.contact > 0:
            per_frame = per_frame + w.contact * ground_contact(b.lm, self.contact)
            if self.contact_place is not None:  # and a resting point stays put for its whole spell
                per_frame = per_frame + w.contact * resting_place(b.lm, self.contact.mask, self.contact_place)
        if self.anchor_j is not None:  # temporal step of the splitting: stay near the smoothed trajectory
            assert self.anchor_q is not None
            per_frame = per_frame + self.mu * joint_anchor(b.joints, self.anchor_j)
            per_frame = per_frame + self.mu_q * q_anchor(b.qb, self.anchor_q)
        if temporal and b.qb.shape[0] >= 3 and w.acc > 0:
            tmp = w.acc * joint_acceleration(b.joints, w.acc_delta) + w.q_acc * q_acceleration(b.qb, b.rot)
            per_frame = per_frame + torch.nn.functional.pad(tmp, (1, 1))
        total = per_frame.mean() + (w.shape * shape_prior(b.betas) if shape else 0.0)
        return total, {"per_frame": per_frame, "q": b.q, "rot": b.rot, "joints": b.joints, "lm": b.lm}

    def optimise_shape(self, iterations: int) -> None:
        """All frames and the shared betas together (one L-BFGS row; torch.optim is avoided: its first use
        imports torch._dynamo, ~2 s)."""
        if iterations <= 0:
            return
        t, n = self.u.shape[0], self.u.shape[1] + 6  # per frame [u, r, p], as optimise_frames lays them out
        x0 = torch.cat([self.u, self.r, self.p], 1).reshape(-1)
        x0 = torch.cat([x0, self.betas]).detach()[None]

        def fun(x: torch.Tensor) -> torch.Tensor:
            frames, betas = x[0, : t * n].reshape(t, n), x[0, t * n :]
            return self.forward(temporal=False, shape=True, x=frames, betas=betas)[0][None]

        x = batched_lbfgs(fun, x0, iterations)[0]
        with torch.no_grad():
            frames = x[: t * n].reshape(t, n)
            self.u.copy_(frames[:, :-6])
            self.r.copy_(frames[:, -6:-3])
            self.p.copy_(frames[:, -3:])
            self.betas.copy_(x[t * n :])

    def optimise_frames(self, iterations: int, root_only: bool = False, hold_rotation: np.ndarray | None = None,
                        hold_frames: np.ndarray | None = None, **kw: Any) -> None:
        """Per-frame fits (no temporal terms, shape fixed), batched: L-BFGS with a history and a step size of
        its own for every frame. One shared line search (torch's L-BFGS) is slow here because frames differ
        in curvature. ``root_only``: the body's pose stays; ``hold_rotation (T,)``: those frames' root
        rotation stays; ``hold_frames (T,)``: those frames stay as they are."""
        if iterations <= 0:
            return
        x0 = torch.cat([self.u, self.r, self.p], 1).detach()
        mask = torch.zeros_like(x0[0])
        mask[-6:] = 1.0
        if not root_only:
            mask[:] = 1.0
        if hold_rotation is not None and np.any(hold_rotation):
            mask = mask.repeat(len(x0), 1)
            mask[torch.as_tensor(np.asarray(hold_rotation, bool), device=mask.device), -6:-3] = 0.0
        if hold_frames is not None and np.any(hold_frames):
            mask = mask.repeat(len(x0), 1) if mask.dim() == 1 else mask
            mask[torch.as_tensor(np.asarray(hold_frames, bool), device=mask.device)] = 0.0

        if root_only:  # the body's pose is fixed: pose it once, only the rigid root moves in the objective
            with torch.no_grad():
                qb = q_from_u(self.u.detach())
                q = torch.cat([qb.new_zeros(len(qb), 3), qb], 1)
                kw["posed"] = self.body(q, self.betas.detach())[:2]

        def fun(x: torch.Tensor) -> torch.Tensor:
            return self.forward(temporal=False, x=x, **kw)[1]["per_frame"]

        x = batched_lbfgs(fun, x0, iterations, mask=mask, memory=None if root_only else self.memory)
        with torch.no_grad():
            self.u.copy_(x[:, :-6])
            self.r.copy_(x[:, -6:-3])
            self.p.copy_(x[:, -3:])
