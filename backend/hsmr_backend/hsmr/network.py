"""The HSMR network: ViT backbone + SKEL decoder head, and its camera convention (reference/hsmr.md §1)."""

from __future__ import annotations

import torch
from torch import nn

from .config import HSMRConfig
from .head import SKELHead
from .rep import rep_to_q
from .vit import ViT


def backbone_margin(img_size: tuple[int, int], patch: int) -> int:
    """Columns cut from each side of a ``patch`` x ``patch`` crop so the backbone sees its ``img_size`` (h, w)."""
    h, w = img_size
    if h != patch or w > patch or (patch - w) % 2:
        raise ValueError(f"backbone img_size {img_size} does not fit a {patch}x{patch} patch")
    return (patch - w) // 2


def central_columns(patches: torch.Tensor, margin: int) -> torch.Tensor:
    """(B,C,H,W) patches without ``margin`` columns on each side (what the backbone sees)."""
    return patches[:, :, :, margin : patches.shape[-1] - margin] if margin else patches


class HSMRNetwork(nn.Module):
    """``net(patches[B,3,256,256])`` -> dict ``poses`` (B,46) q, ``betas`` (B,10), ``cam`` (B,3) = (s,tx,ty),
    ``poses_rep`` (B,144) (or (B,46) for an euler_angle release).

    Patches are normalised 256x256 crops (``crop.py``); the backbone sees the central columns
    (256 x 192 by default), as the release does.
    """

    def __init__(self, cfg: HSMRConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or HSMRConfig()
        self.backbone = ViT(self.cfg.backbone)
        self.head = SKELHead(self.cfg)
        self._margin = backbone_margin(self.cfg.backbone.img_size, self.cfg.img_patch_size)

    def raw(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The exportable part: (pose outputs, betas, cam), no pose conversion."""
        return self.head(self.backbone(central_columns(patches, self._margin)))

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        pose_out, betas, cam = self.raw(patches)
        poses = rep_to_q(pose_out.float()) if self.cfg.pd_poses_repr == "rotation_6d" else pose_out
        return {"poses": poses, "betas": betas, "cam": cam, "poses_rep": pose_out}


class RawOutputs(nn.Module):
    """Wrapper for export/benchmarks: the tuple of ``net.raw`` (HSMR: patches; SKEL-CF: patches, bbox_info)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.raw(*inputs)


def cam_to_translation(cam: torch.Tensor, focal: float = 5000.0, patch: int = 256) -> torch.Tensor:
    """(s, tx, ty) -> translation (tx, ty, 2 f / (patch s)) in the patch camera (focal ``focal`` px)."""
    s, tx, ty = cam.unbind(-1)
    return torch.stack((tx, ty, 2.0 * focal / (patch * s + 1e-9)), dim=-1)
