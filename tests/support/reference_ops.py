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


def decoder_layer(y: torch.Tensor, ctx: torch.Tensor, sd: dict, p: str, heads: int) -> torch.Tensor:
    """One pre-norm transformer decoder layer under prefix ``p``: self-attention, cross-attention to ``ctx``, MLP
    (the layout HSMR's and SKEL-CF's decoders share)."""
    q, k, v = linear(layer_norm(y, sd, p + ".0.norm", 1e-5), sd, p + ".0.fn.to_qkv", bias=False).chunk(3, -1)
    y = y + linear(attend(q, k, v, heads), sd, p + ".0.fn.to_out.0")
    q = linear(layer_norm(y, sd, p + ".1.norm", 1e-5), sd, p + ".1.fn.to_q", bias=False)
    k, v = linear(ctx, sd, p + ".1.fn.to_kv", bias=False).chunk(2, -1)
    y = y + linear(attend(q, k, v, heads), sd, p + ".1.fn.to_out.0")
    h = F.gelu(linear(layer_norm(y, sd, p + ".2.norm", 1e-5), sd, p + ".2.fn.net.0"))
    return y + linear(h, sd, p + ".2.fn.net.3")
