#!/usr/bin/env python3
"""HSMR network speed on this machine: ms per crop for torch fp32, torch bf16 and ONNX Runtime (fp32).

ViT-H at the release's real size (reference/hsmr.md §1) with random weights (speed does not depend on the
values). Each variant runs in its own process so its peak resident memory (VmHWM) is its own.

    PYTHONPATH=backend:. .venv/bin/python benchmarks/bench_hsmr.py            # batch 1 and 8, 2 repetitions
    PYTHONPATH=backend:. .venv/bin/python benchmarks/bench_hsmr.py --quick    # 1 repetition
    ... --tiny                                                                # a small network (smoke test)

No GPU figure here: the GPU target (batch 64 < 100 ms fp16) needs a CUDA machine; run
``--variants ort --device cuda --batches 64 --fp16`` there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT)]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_config(tiny: bool):
    from hsmr_backend.hsmr.config import BackboneConfig, DecoderConfig, HSMRConfig

    if tiny:
        return HSMRConfig(backbone=BackboneConfig(embed_dim=128, depth=2, num_heads=4),
                          decoder=DecoderConfig(dim=128, depth=1, context_dim=128))  # fmt: skip
    return HSMRConfig()  # the release's ViT-H sizes


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    result: dict = {"variant": args.worker}
    if args.worker == "export":
        from hsmr_backend.hsmr.export import export_onnx
        from hsmr_backend.hsmr.network import HSMRNetwork

        torch.manual_seed(0)
        net = HSMRNetwork(build_config(args.tiny)).eval()
        t0 = time.perf_counter()
        export_onnx(net, args.onnx, fp16=args.fp16)
        result["export_s"] = time.perf_counter() - t0
        result["params_m"] = sum(p.numel() for p in net.parameters()) / 1e6
    else:
        x_all = torch.randn(max(args.batches), 3, 256, 256)
        if args.worker == "ort":
            from hsmr_backend.hsmr.runtime import OnnxHSMR

            sess = OnnxHSMR(args.onnx, device=args.device, threads=threads, batch_size=max(args.batches))
            result["provider"] = sess.provider
            run = lambda x: sess.run(x.numpy())  # noqa: E731
        else:
            from hsmr_backend.hsmr.network import HSMRNetwork

            torch.manual_seed(0)
            net = HSMRNetwork(build_config(args.tiny)).eval()
            if args.worker == "torch-bf16":
                net = net.to(torch.bfloat16)

            def run(x):
                with torch.inference_mode():
                    return net.raw(x.to(torch.bfloat16) if args.worker == "torch-bf16" else x)

        t0 = time.perf_counter()
        run(x_all[:1])  # warm-up (allocations, kernel selection)
        result["warmup_s"] = time.perf_counter() - t0
        for b in args.batches:
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                run(x_all[:b])
                times.append(time.perf_counter() - t0)
            result[f"b{b}_ms_per_crop"] = float(np.median(times)) * 1000 / b
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one repetition per batch size")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8])
    ap.add_argument("--variants", default="torch-fp32,torch-bf16,ort")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    ap.add_argument("--device", default="cpu", help="ONNX Runtime device: cpu | cuda | auto")
    ap.add_argument("--fp16", action="store_true", help="export the ONNX model in fp16 (GPU)")
    ap.add_argument("--tiny", action="store_true", help="small network instead of ViT-H (smoke test)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.reps = 1
    if args.worker:
        worker(args)
        return 0

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "backend"), str(ROOT), env.get("PYTHONPATH", "")])
    base = [sys.executable, __file__, "--reps", str(args.reps), "--batches", ",".join(map(str, args.batches)),
            "--threads", str(args.threads), "--device", args.device]  # fmt: skip
    if args.tiny:
        base.append("--tiny")
    if args.fp16:
        base.append("--fp16")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-hsmr-") as tmp:
        onnx_path = str(Path(tmp) / "hsmr.onnx")
        todo = (["export"] if "ort" in variants else []) + variants
        for v in todo:
            print(f"... {v}", file=sys.stderr, flush=True)
            proc = subprocess.run([*base, "--worker", v, "--onnx", onnx_path], env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{v}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append(json.loads(lines[-1][len("RESULT ") :]))

    import platform

    print(f"HSMR network benchmark ({'tiny' if args.tiny else 'ViT-H, release sizes'}, random weights), "
          f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"threads={args.threads or os.cpu_count()}, reps={args.reps}")  # fmt: skip
    header = ["variant", *[f"b{b} ms/crop" for b in args.batches], "peak RSS MB", "notes"]
    print(" | ".join(header))
    fp32 = {}
    for r in results:
        if r["variant"] == "export":
            print(f"export | {'| '.join('-' for _ in args.batches)} | {r['peak_rss_mb']:.0f} | "
                  f"{r['export_s']:.1f} s, {r['params_m']:.0f} M params")  # fmt: skip
            continue
        cells = [f"{r.get(f'b{b}_ms_per_crop', float('nan')):.0f}" for b in args.batches]
        if r["variant"] == "torch-fp32":
            fp32 = r
        notes = r.get("provider", "")
        print(" | ".join([r["variant"], *cells, f"{r['peak_rss_mb']:.0f}", notes]))
    if fp32:
        for r in results:
            if r["variant"] in ("export", "torch-fp32"):
                continue
            ratios = [fp32[f"b{b}_ms_per_crop"] / r[f"b{b}_ms_per_crop"] for b in args.batches]
            print(f"speed-up of {r['variant']} over torch fp32: " + ", ".join(
                f"b{b} {x:.2f}x" for b, x in zip(args.batches, ratios, strict=True)))  # fmt: skip
    if args.device == "cpu":
        print("GPU (batch 64 fp16 < 100 ms target): not measured, no GPU on this machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
