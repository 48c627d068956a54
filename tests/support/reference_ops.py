"""Plain tensor ops for re-deriving the networks' forward passes independently of the module code (state dict
``sd`` and a module prefix ``p``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def layer_norm(x: torch.Tensor, sd: dict, p: str, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)


def linear(x: torch.Tensor, sd: dict, p: str, bias: bool = True) -> torch.Tensor:
    return x @ sd[p + ".weight"].T + (sd[p + ".bias"] if bias else 0)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head softmax attention written out (scale 1/sqrt(head width))."""
    split = lambda t: t.reshape(t.shape[0], t.shape[1], heads, -1).permute(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return (a @ v).permute(0, 2, 1, 3).reshape(q.shape[0], q.shape[2], -1)
