"""HSMR's SKEL transformer-decoder head (HMR2.0-style cross-attention decoder), from reference/hsmr.md §1.

One query token of zeros (B, 1, 1) -> Linear(1 -> dim) + learned position -> ``depth`` x [pre-norm
self-attention, pre-norm cross-attention to the backbone tokens, pre-norm feed-forward], each residual;
no final norm. Three linear read-outs add residuals to the stored mean (``init_*`` buffers).
Module names follow the release's keys (``transformer.transformer.layers.{i}.{0,1,2}...``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import HSMRConfig
from .mean import MEAN_BETAS, MEAN_CAM, MEAN_POSES
from .rep import q_to_rep


def _heads_split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, hd = x.shape
    return x.reshape(b, n, heads, hd // heads).transpose(1, 2)


def _heads_merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _out(inner: int, dim: int, heads: int, dim_head: int) -> nn.Module:
    # A lone head as wide as the model needs no output projection (lucidrains-style attention).
    if heads == 1 and dim_head == dim:
        return nn.Identity()
    return nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = _out(inner, dim, heads, dim_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_heads_split(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(_heads_merge(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, inner * 2, bias=False)
        self.to_out = _out(inner, dim, heads, dim_head)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (_heads_split(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = _heads_split(self.to_q(x), self.heads)
        return self.to_out(_heads_merge(F.scaled_dot_product_attention(q, k, v)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim),
                                 nn.Dropout(0.0))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    """LayerNorm (torch default eps) on the query stream only, then the wrapped block."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x), *args)


class CrossTransformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, context_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(dim, SelfAttention(dim, heads, dim_head)),
                PreNorm(dim, CrossAttention(dim, context_dim, heads, dim_head)),
                PreNorm(dim, FeedForward(dim, mlp_dim)),
            ])
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for sa, ca, ff in self.layers:
            x = sa(x) + x
            x = ca(x, context) + x
            x = ff(x) + x
        return x


class TokenDecoder(nn.Module):
    def __init__(self, cfg: HSMRConfig) -> None:
        super().__init__()
        d = cfg.decoder
        self.to_token_embedding = nn.Linear(1, d.dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, d.dim))
        self.transformer = CrossTransformer(d.dim, d.depth, d.heads, d.dim_head, d.mlp_dim, d.context_dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        token = context.new_zeros(context.shape[0], 1, 1)  # input_is_mean_shape = False: a zero token
        x = self.to_token_embedding(token) + self.pos_embedding
        return self.transformer(x, context)[:, 0]


class SKELHead(nn.Module):
    """(B, N, C) backbone tokens -> (pose outputs incl. mean, betas, cam) before any pose conversion."""

    def __init__(self, cfg: HSMRConfig) -> None:
        super().__init__()
        dim = cfg.decoder.dim
        self.transformer = TokenDecoder(cfg)
        self.poses_decoder = nn.Linear(dim, cfg.n_pose_outputs)
        self.betas_decoder = nn.Linear(dim, 10)
        self.cam_decoder = nn.Linear(dim, 3)
        mean_q = torch.tensor(MEAN_POSES, dtype=torch.float32)[None]
        init_poses = q_to_rep(mean_q) if cfg.pd_poses_repr == "rotation_6d" else mean_q
        self.register_buffer("init_poses", init_poses.to(torch.float32))
        self.register_buffer("init_betas", torch.tensor(MEAN_BETAS, dtype=torch.float32)[None])
        self.register_buffer("init_cam", torch.tensor(MEAN_CAM, dtype=torch.float32)[None])

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.transformer(tokens)
        return (self.poses_decoder(t) + self.init_poses, self.betas_decoder(t) + self.init_betas,
                self.cam_decoder(t) + self.init_cam)  # fmt: skip
