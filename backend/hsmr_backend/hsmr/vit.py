"""ViTPose-style ViT backbone as HSMR uses it (reference/hsmr.md §1), written from the facts.

Module names follow the release's state-dict keys: ``patch_embed.proj``, ``pos_embed``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``last_norm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BackboneConfig

LN_EPS = 1e-6
PATCH_PADDING = 2  # ViTPose's patch conv pads by 2 (ratio 1): 256x192 -> 16x12 tokens


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size, padding=PATCH_PADDING)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, Hp*Wp, C), row-major over the token grid


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # scale 1/sqrt(head_dim)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def token_grid(img_size: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """(rows, columns) of patch tokens the padded patch conv makes from an ``img_size`` (H, W) image."""
    h, w = img_size
    return ((h + 2 * PATCH_PADDING - patch_size) // patch_size + 1,
            (w + 2 * PATCH_PADDING - patch_size) // patch_size + 1)  # fmt: skip


class ViT(nn.Module):
    """(B, 3, H, W) image (H x W = ``img_size``) -> (B, Hp*Wp, embed_dim) tokens after the final norm."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, w = cfg.img_size
        self.grid = token_grid(cfg.img_size, cfg.patch_size)
        n_pos = (h // cfg.patch_size) * (w // cfg.patch_size)
        if n_pos != self.grid[0] * self.grid[1]:
            raise ValueError(f"img_size {cfg.img_size} with patch {cfg.patch_size} gives a ragged token grid")
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim)
        # One slot more than tokens (a class-token slot ViTPose never uses except in the quirk below).
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos + 1, cfg.embed_dim))
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias) for _ in range(cfg.depth)
        )
        self.last_norm = nn.LayerNorm(cfg.embed_dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]  # the released pos-embed quirk
        for blk in self.blocks:
            x = blk(x)
        return self.last_norm(x)
