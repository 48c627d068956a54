"""The body the fit poses: a body model and a landmark regressor behind one call.

:class:`BodyModel` is what the fit needs of a body model; ``hsmr_backend.skel.SKEL`` (and so the open body)
and the fitter tests' stand-in (synthetic/fit_toy.py) implement it. Poses are evaluated with the pelvis at q = 0
(root rotation = identity); the fit applies the root itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from hsmr_contract.dofs import N_DOFS

from .options import FitOptions


class RestPose(Protocol):
    """What the fit reads of a body's shape-dependent rest state (batch Br of shapes)."""

    joints: torch.Tensor  # (Br,24,3) joint centres at rest
    rest_frames: torch.Tensor  # (Br,24,3,3) joint frames -> model frame at rest


class PosedBody(Protocol):
    """What the fit reads of a posed body (B frames); ``joint_offsets`` (B,24,3) is read when present."""

    joints: torch.Tensor  # (B,24,3)
    skin_verts: torch.Tensor  # (B,V,3), or only the vertices asked for


@runtime_checkable
class BodyModel(Protocol):
    """A SKEL-family body: a rest state per shape, then B poses of it (46 SKEL DoFs, model frame y up)."""

    def rest_state(self, betas: torch.Tensor) -> RestPose:
        """``betas`` (Br,K) -> the rest state of those shapes."""
        ...

    def pose(self, rest: Any, poses: torch.Tensor, trans: torch.Tensor | None = None, pose_correctives: bool = True,
             bone_mesh: bool = False, skin_vertex_ids: torch.Tensor | None = None) -> PosedBody:
        """Pose B frames ``poses`` (B,46) of ``rest`` (batch 1 or B), ``trans`` (B,3) added; only the skin
        vertices ``skin_vertex_ids`` when given."""
        ...


@runtime_checkable
class LandmarkRegressor(Protocol):
    """33 MediaPipe landmarks as weighted skin vertices plus weighted joints (a dataclass: the fit makes a
    copy that reads only the vertices it uses); ``hsmr_backend.skel.landmarks.LandmarkRegressor``."""

    vertex_ids: Any  # (33,k) int
    vertex_weights: Any  # (33,k)
    joint_weights: Any  # (33,24)

    def apply(self, skin_verts: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        ...


class Body:
    """The body model and the landmark regressor behind one call: ``model.rest_state(betas)`` once per
    shape, ``model.pose(rest, ..., skin_vertex_ids=...)`` skinning only the vertices the regressor reads."""

    def __init__(self, model: BodyModel, regressor: LandmarkRegressor, options: FitOptions) -> None:
        if not isinstance(model, BodyModel):
            raise TypeError(f"the body model {type(model).__name__} has no rest_state()/pose(); pass a SKEL body "
                            "(hsmr_backend.skel.load_body)")
        if not (isinstance(regressor, LandmarkRegressor) and dataclasses.is_dataclass(regressor)):
            raise TypeError(f"the landmark regressor {type(regressor).__name__} is not a LandmarkRegressor; pass "
                            "hsmr_backend.skel.landmarks.load_landmark_regressor(...)")
        self.model = model
        self.dtype, self.device = options.dtype, options.device
        self.correctives = options.pose_correctives
        ids = regressor.vertex_ids
        uniq, inv = np.unique(np.asarray(ids), return_inverse=True)
        self.skin_ids = torch.as_tensor(uniq, dtype=torch.long)
        # stored as tensors: apply() then converts nothing per call
        dev, dt = options.device, options.dtype
        self.sub_regressor = dataclasses.replace(
            regressor, vertex_ids=torch.as_tensor(inv.reshape(np.shape(ids)), device=dev),
            vertex_weights=torch.as_tensor(np.asarray(regressor.vertex_weights), dtype=dt, device=dev),
            joint_weights=torch.as_tensor(np.asarray(regressor.joint_weights), dtype=dt, device=dev))
        self._rest_cache: tuple[torch.Tensor, Any] | None = None

    def landmarks(self, out: PosedBody) -> torch.Tensor:
        """(B,33,3) landmarks of a posed body from this body's :meth:`run`."""
        return self.sub_regressor.apply(out.skin_verts, out.joints)

    def _rest(self, betas: torch.Tensor) -> Any:
        if betas.requires_grad:
            return self.model.rest_state(betas[None])
        hit = self._rest_cache
        if hit is None or hit[0].shape != betas.shape or not torch.equal(hit[0], betas):
            with torch.no_grad():
                self._rest_cache = hit = (betas.detach().clone(), self.model.rest_state(betas[None]))
        return hit[1]

    def run(self, q: torch.Tensor, betas: torch.Tensor, trans: torch.Tensor | None = None) -> PosedBody:
        """The posed body: q (B,46), betas (K,), trans (B,3) or zeros."""
        b = q.shape[0]
        trans = torch.zeros(b, 3, dtype=q.dtype, device=q.device) if trans is None else trans
        return self.model.pose(self._rest(betas), q, trans, pose_correctives=self.correctives, bone_mesh=False,
                               skin_vertex_ids=self.skin_ids)

    def __call__(self, q: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, PosedBody]:
        """q (B,46), betas (K,) -> joints (B,24,3), landmarks (B,33,3), raw output; trans = 0."""
        out = self.run(q, betas)
        return out.joints, self.landmarks(out), out

    def rest(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Root pivot J0 (3,) and root rest frame M_0 (3,3) for this shape."""
        r = self._rest(betas)
        return r.joints[0, 0], r.rest_frames[0, 0]

    def rest_pose(self, betas: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Root pivot J0 (3,), root rest frame M_0 (3,3) and the 33 landmarks at q = 0 (33,3), float64."""
        with torch.no_grad():
            j0, m0 = self.rest(betas)
            _, lm, _ = self(torch.zeros(1, N_DOFS, dtype=self.dtype, device=self.device), betas)
        return j0.double().cpu().numpy(), m0.double().cpu().numpy(), lm[0].double().cpu().numpy()
