"""The FLOP count behind benchmarks/speed/bench_cpu_gemm.py matches the network it describes."""

from __future__ import annotations

import torch

from benchmarks.speed import bench_cpu_gemm as bench
from hsmr_backend.hsmr.config import BackboneConfig, DecoderConfig, HSMRConfig
from hsmr_backend.hsmr.network import HSMRNetwork


def test_backbone_shapes_are_the_networks_linear_layers():
    """Every backbone multiply-add is one weight used once per token: counting the products' K x N over the
    shapes must give the backbone's weight count (linear layers + patch conv), and M must be the token count
    the network really produces."""
    cfg = HSMRConfig(backbone=BackboneConfig(embed_dim=64, depth=3, num_heads=4),
                     decoder=DecoderConfig(dim=64, depth=1, context_dim=64))
    net = HSMRNetwork(cfg)
    backbone = net.backbone
    weights = sum(p.numel() for n, p in backbone.named_parameters() if p.dim() >= 2 and "pos" not in n)
    tokens, shapes = bench.backbone_shapes(cfg, batch=1)
    assert sum(k * n * c for _, k, n, c in shapes) == weights
    x = torch.zeros(1, 3, *cfg.backbone.img_size)
    with torch.no_grad():
        feats = backbone(x)  # (B, tokens, dim)
    assert feats.shape[1] == tokens == 192
    # the release sizes: 0.63 G backbone weights, 192 tokens -> ~242 GFLOP per crop
    gemm, attn = bench.crop_flops(HSMRConfig())
    assert 240e9 < gemm < 245e9 and 5e9 < attn < 7e9
