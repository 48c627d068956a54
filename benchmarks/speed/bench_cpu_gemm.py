"""The fp32 ceiling behind the HSMR CPU figures: how fast can ViT-H possibly run on this CPU?

ViT-H's cost is its matrix products (the attention scores and everything else are a few per cent). This script
counts the multiply-adds of one crop at the release sizes (``hsmr_backend.hsmr.config``), times torch's fp32
and bf16 matrix products at exactly the backbone's shapes (tokens x batch rows), and prints the fastest
possible ms per crop: no runtime, graph optimiser or fusion can run an fp32 crop faster than the fp32 GEMMs
alone. Dividing ``bench_hsmr.py``'s torch fp32 time by that floor bounds the speed-up any fp32 path can reach.

    python build.py bench bench_cpu_gemm -- [--batches 1,8] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.common import run_recorded


def backbone_shapes(cfg, batch: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(tokens, [(M, K, N, count)]) of the backbone's linear layers for one batch; count = per forward."""
    from hsmr_backend.hsmr.vit import token_grid

    bb = cfg.backbone
    gh, gw = token_grid(bb.img_size, bb.patch_size)
    tokens = gh * gw
    d, hidden, m = bb.embed_dim, int(bb.embed_dim * bb.mlp_ratio), tokens * batch
    shapes = [(m, d, 3 * d, bb.depth), (m, d, d, bb.depth), (m, d, hidden, bb.depth), (m, hidden, d, bb.depth)]
    shapes.append((m, 3 * bb.patch_size**2, d, 1))  # patch embedding as a product
    return tokens, shapes


def crop_flops(cfg) -> tuple[float, float]:
    """(GEMM FLOPs, attention-score FLOPs) of one crop's backbone (2 per multiply-add)."""
    tokens, shapes = backbone_shapes(cfg, 1)
    gemm = sum(2.0 * m * k * n * c for m, k, n, c in shapes)
    attn = cfg.backbone.depth * 2 * (2.0 * tokens * tokens * cfg.backbone.embed_dim)  # QK^T and AV
    return gemm, attn


def time_matmul(m: int, k: int, n: int, dtype, reps: int) -> float:
    """Seconds per product, fastest of ``reps`` after a warm-up."""
    import torch

    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    import torch

    from hsmr_backend.hsmr.config import HSMRConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8])
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    cfg = HSMRConfig()
    gemm, attn = crop_flops(cfg)
    print(f"# ViT-H backbone, one crop: {gemm / 1e9:.1f} GFLOP in linear layers + {attn / 1e9:.1f} GFLOP attention "
          f"scores; torch {torch.__version__}, {threads} threads, load average {os.getloadavg()[0]:.1f}")
    for batch in args.batches:
        tokens, shapes = backbone_shapes(cfg, batch)
        for dtype in (torch.float32, torch.bfloat16):
            secs = 0.0
            for m, k, n, count in shapes:
                secs += count * time_matmul(m, k, n, dtype, args.reps)
            flops = 2.0 * sum(m * k * n * c for m, k, n, c in shapes)
            name = str(dtype).replace("torch.", "")
            print(f"batch {batch}: {name} GEMMs at the backbone's shapes ({tokens * batch} rows) "
                  f"{flops / secs / 1e9:.0f} GFLOP/s -> floor {1000 * secs / batch:.0f} ms/crop", flush=True)
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
