"""The SKEL-CF network: HSMR's ViT backbone + a coarse-to-fine decoder conditioned on the box (reference/skelcf.md).

Written from the facts, not from the SKEL-CF code. Module names follow the release's ``ema_model`` keys (without
the ``model.`` prefix): ``backbone.*`` as HSMR's ViT, ``decoder.{poses,betas,cam}_decoder.{0,2}``,
``decoder.to_{pose,betas,cam}_embedding``, ``decoder.transformer.pos_embedding``,
``decoder.transformer.layers.{i}.{0,1,2}...`` and the ``decoder.mean_{poses,betas,cam}`` buffers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .config import BackboneConfig, DecoderConfig, HSMRConfigError, _Resolver, sizes_from_dict
from .head import CrossTransformer
from .mean import MEAN_BETAS, MEAN_CAM, MEAN_POSES
from .network import backbone_margin, central_columns
from .rep import q_to_rep, rep_to_q
from .vit import ViT

N_POSE_REP, N_BETAS, N_CAM, N_BOX = 144, 10, 3, 3
READOUT_HIDDEN = 256  # the width of the three parameter MLPs (fixed in SKEL-CF's head)


@dataclass(frozen=True)
class SKELCFConfig:
    """Sizes of a SKEL-CF network. The decoder's width is the backbone's (``context_dim``) unless ``dim`` is set."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(dim=1280))
    img_patch_size: int = 256
    img_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    img_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    pd_poses_repr: str = "rotation_6d"

    @property
    def n_pose_outputs(self) -> int:
        return N_POSE_REP

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SKELCFConfig:
        backbone, decoder = sizes_from_dict(d)
        return cls(backbone=backbone, decoder=decoder,
                   img_patch_size=int(d.get("img_patch_size", 256)),
                   img_mean=tuple(d.get("img_mean", (0.485, 0.456, 0.406))),
                   img_std=tuple(d.get("img_std", (0.229, 0.224, 0.225))))  # fmt: skip

    @classmethod
    def from_training_config(cls, root: Any) -> SKELCFConfig:
        """From the checkpoint's ``cfg`` (as plain data): ``hub.backbones.vit_h`` and ``hub.skel_head``."""
        if not isinstance(root, dict):
            raise HSMRConfigError("its cfg is not a mapping")
        r = _Resolver(root)
        vit, head = r.get(("hub", "backbones", "vit_h")), r.get(("hub", "skel_head"))
        if not isinstance(vit, dict) or not isinstance(head, dict):
            raise HSMRConfigError("its cfg has no hub.backbones.vit_h and hub.skel_head")
        repr_ = r.get(("hub", "skel_head", "pd_poses_repr"))
        if repr_ != "rotation_6d":
            raise HSMRConfigError(f"pose representation {repr_!r} is not supported (SKEL-CF uses rotation_6d)")

        def get(path: tuple[str, ...], default: Any) -> Any:
            v = r.get(path)
            return default if v is None else v

        def bb(key: str, default: Any) -> Any:
            return get(("hub", "backbones", "vit_h", key), default)

        def td(key: str, default: Any) -> Any:
            return get(("hub", "skel_head", "transformer_decoder", key), default)

        backbone = BackboneConfig(img_size=tuple(int(v) for v in bb("img_size", (256, 192))),
                                  patch_size=int(bb("patch_size", 16)), embed_dim=int(bb("embed_dim", 1280)),
                                  depth=int(bb("depth", 32)), num_heads=int(bb("num_heads", 16)),
                                  mlp_ratio=float(bb("mlp_ratio", 4.0)), qkv_bias=bool(bb("qkv_bias", True)),
                                  ratio=int(bb("ratio", 1)))  # fmt: skip
        if backbone.ratio != 1:
            raise HSMRConfigError(f"backbone ratio {backbone.ratio} is not supported (SKEL-CF uses 1)")
        if td("norm", "layer") != "layer":
            raise HSMRConfigError(f"decoder norm {td('norm', 'layer')!r} is not supported (SKEL-CF uses 'layer')")
        context = int(td("context_dim", backbone.embed_dim))
        if context != backbone.embed_dim:
            raise HSMRConfigError(f"decoder context_dim {context} != backbone embed_dim {backbone.embed_dim}")
        decoder = DecoderConfig(dim=int(td("dim", context)), depth=int(td("depth", 6)), heads=int(td("heads", 8)),
                                dim_head=int(td("dim_head", 64)), mlp_dim=int(td("mlp_dim", 1024)),
                                context_dim=context)  # fmt: skip
        return cls(backbone=backbone, decoder=decoder)


def _readout(dim: int, n: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, READOUT_HIDDEN), nn.GELU(), nn.Linear(READOUT_HIDDEN, n))


class _DecoderLayers(CrossTransformer):
    """HSMR's cross-attention layers (same module names) plus SKEL-CF's one learned token position."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, context_dim: int) -> None:
        super().__init__(dim, depth, heads, dim_head, mlp_dim, context_dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, dim))


class SKELCFDecoder(nn.Module):
    """(B, N, C) backbone tokens + (B, 3) box conditioning -> (pose rep (B,144), betas (B,10), cam (B,3))."""

    def __init__(self, cfg: SKELCFConfig) -> None:
        super().__init__()
        d = cfg.decoder
        self.transformer = _DecoderLayers(d.dim, d.depth, d.heads, d.dim_head, d.mlp_dim, d.context_dim)
        self.poses_decoder = _readout(d.dim, N_POSE_REP)
        self.betas_decoder = _readout(d.dim, N_BETAS)
        self.cam_decoder = _readout(d.dim, N_CAM)
        self.to_pose_embedding = nn.Linear(N_POSE_REP + N_BOX, d.dim)
        self.to_betas_embedding = nn.Linear(N_BETAS + N_BOX, d.dim)
        self.to_cam_embedding = nn.Linear(N_CAM + N_BOX, d.dim)
        # seeds only: a checkpoint brings its own (trained) means
        self.register_buffer("mean_poses", q_to_rep(torch.tensor(MEAN_POSES, dtype=torch.float32)[None]))
        self.register_buffer("mean_betas", torch.tensor(MEAN_BETAS, dtype=torch.float32)[None])
        self.register_buffer("mean_cam", torch.tensor(MEAN_CAM, dtype=torch.float32)[None])

    def _tokens(self, pose: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        return torch.stack((self.to_pose_embedding(torch.cat((pose, box), -1)),
                            self.to_betas_embedding(torch.cat((betas, box), -1)),
                            self.to_cam_embedding(torch.cat((cam, box), -1))), dim=1)  # fmt: skip

    def forward(self, context: torch.Tensor, bbox_info: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = context.mean(dim=1)
        pose = self.poses_decoder(pooled) + self.mean_poses
        betas = self.betas_decoder(pooled) + self.mean_betas
        cam = self.cam_decoder(pooled) + self.mean_cam
        tokens = self._tokens(pose, betas, cam, bbox_info) + self.transformer.pos_embedding
        for self_attn, cross_attn, feed_forward in self.transformer.layers:
            tokens = self_attn(tokens) + tokens
            tokens = cross_attn(tokens, context) + tokens
            tokens = feed_forward(tokens) + tokens
            pose = pose + self.poses_decoder(tokens[:, 0])
            betas = betas + self.betas_decoder(tokens[:, 1])
            cam = cam + self.cam_decoder(tokens[:, 2])
            tokens = self._tokens(pose, betas, cam, bbox_info)  # rebuilt from the refined parameters
        return pose, betas, cam


class SKELCFNetwork(nn.Module):
    """``net(patches[B,3,256,256], bbox_info[B,3])`` -> dict ``poses`` (B,46) q, ``betas`` (B,10),
    ``cam`` (B,3) = (s,tx,ty), ``poses_rep`` (B,144). ``bbox_info`` = box centre offset and side over the focal
    (:func:`hsmr_backend.hsmr.skelcf_predictor.bbox_info`)."""

    def __init__(self, cfg: SKELCFConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or SKELCFConfig()
        self.backbone = ViT(self.cfg.backbone)
        self.decoder = SKELCFDecoder(self.cfg)
        self._margin = backbone_margin(self.cfg.backbone.img_size, self.cfg.img_patch_size)

    def raw(self, patches: torch.Tensor, bbox_info: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The exportable part: (pose rep, betas, cam), no pose conversion."""
        return self.decoder(self.backbone(central_columns(patches, self._margin)), bbox_info.to(patches.dtype))

    def forward(self, patches: torch.Tensor, bbox_info: torch.Tensor) -> dict[str, torch.Tensor]:
        rep, betas, cam = self.raw(patches, bbox_info)
        return {"poses": rep_to_q(rep.float()), "betas": betas, "cam": cam, "poses_rep": rep}
