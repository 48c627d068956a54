"""HSMR network speed on this machine: ms per crop for torch fp32, torch bf16, ONNX Runtime fp32 and
(opt-in, approximate) ONNX Runtime dynamic int8, at batch 1 and 8, with each variant's peak memory.

ViT-H at the release's real size (reference/hsmr.md §1) with random weights (speed does not depend on the
values). Timing runs all variants in ONE process, interleaved round by round, and reports the fastest round of
each, so load from other processes on a shared machine biases no variant in particular. Peak resident memory
(VmHWM) comes from a separate process per variant (model + one batch of the largest size).

    python build.py bench bench_hsmr               # 2 rounds + memory (~10-18 min)
    python build.py bench bench_hsmr -- --quick    # 1 round, no memory, no int8
    ... --tiny                                                                # small network (smoke test)

No GPU figure here: the GPU target (batch 64 < 100 ms, fp16) needs a CUDA machine; there run
``--variants ort --device cuda --batches 64 --fp16``.
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

from benchmarks.common import run_recorded, source_pythonpath

ALL_VARIANTS = ("torch-fp32", "torch-bf16", "ort", "ort-int8")


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


def make_runner(variant: str, args: argparse.Namespace, threads: int):
    """A callable running one batch (torch tensor in) for ``variant``."""
    import torch

    if variant.startswith("ort"):
        from hsmr_backend.hsmr.runtime import OnnxHSMR

        path = args.onnx_int8 if variant == "ort-int8" else args.onnx
        sess = OnnxHSMR(path, device=args.device, threads=threads, batch_size=max(args.batches))
        return lambda x: sess.run(x.numpy()), sess.provider
    from hsmr_backend.hsmr.network import HSMRNetwork

    torch.manual_seed(0)
    net = HSMRNetwork(build_config(args.tiny)).eval()
    dtype = torch.bfloat16 if variant == "torch-bf16" else torch.float32
    net = net.to(dtype)

    def run(x):
        with torch.inference_mode():
            return net.raw(x.to(dtype))

    return run, "torch " + str(dtype).replace("torch.", "")


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    result: dict = {"variant": args.worker}
    if args.worker.startswith("export"):
        from hsmr_backend.hsmr.export import export_onnx
        from hsmr_backend.hsmr.network import HSMRNetwork

        torch.manual_seed(0)
        net = HSMRNetwork(build_config(args.tiny)).eval()
        t0 = time.perf_counter()
        int8 = args.worker == "export-int8"
        export_onnx(net, args.onnx_int8 if int8 else args.onnx, fp16=args.fp16 and not int8, int8=int8)
        result["export_s"] = time.perf_counter() - t0
        result["params_m"] = sum(p.numel() for p in net.parameters()) / 1e6
    elif args.worker == "speed":
        x_all = torch.randn(max(args.batches), 3, 256, 256)
        runners = {v: make_runner(v, args, threads) for v in args.variant_list}
        for run, _ in runners.values():
            run(x_all[:1])  # warm-up: allocations, kernel choice
        times = {v: {b: [] for b in args.batches} for v in runners}
        for _ in range(args.reps):
            for b in args.batches:
                for v, (run, _) in runners.items():
                    t0 = time.perf_counter()
                    run(x_all[:b])
                    times[v][b].append(time.perf_counter() - t0)
        result["speed"] = {v: {str(b): min(t) * 1000 / b for b, t in tb.items()} for v, tb in times.items()}
        result["all_ms"] = {v: {str(b): [round(s * 1000) for s in t] for b, t in tb.items()} for v, tb in times.items()}
        result["providers"] = {v: p for v, (_, p) in runners.items()}
        if "torch-fp32" in runners and any(v.startswith("ort") for v in runners):
            x = x_all[:2]
            ref = runners["torch-fp32"][0](x)
            result["max_abs_diff_vs_torch_fp32"] = {
                v: max(float(np.abs(_np(a) - _np(r)).max())
                       for a, r in zip(runners[v][0](x), ref, strict=True))
                for v in runners if v != "torch-fp32"
            }  # fmt: skip
    else:  # memory pass for one variant
        run, _ = make_runner(args.worker, args, threads)
        run(torch.randn(max(args.batches), 3, 256, 256))
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def _np(a):
    import numpy as np
    import torch

    return a.float().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float32)


def _load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="one round, no per-variant memory pass, no int8 variant unless --variants names it")
    ap.add_argument("--reps", type=int, default=2, help="interleaved rounds (the fastest counts)")
    ap.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8])
    ap.add_argument("--variants", default=None, help=f"comma list from {', '.join(ALL_VARIANTS)} (default all)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    ap.add_argument("--device", default="cpu", help="ONNX Runtime device: cpu | cuda | auto")
    ap.add_argument("--fp16", action="store_true", help="export the fp32 ONNX variant in fp16 instead (GPU)")
    ap.add_argument("--tiny", action="store_true", help="small network instead of ViT-H (smoke test)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--onnx-int8", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variants is None:
        args.variants = ",".join(v for v in ALL_VARIANTS if not (args.quick and v == "ort-int8"))
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.quick:
        args.reps = 1
    if args.worker:
        worker(args)
        return 0
    unknown = set(args.variant_list) - set(ALL_VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(ALL_VARIANTS)}")

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([source_pythonpath(), env.get("PYTHONPATH", "")])
    load_before = _load_avg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hsmr-") as tmp:
        base = [sys.executable, "-m", __spec__.name, "--reps", str(args.reps),
                "--batches", ",".join(map(str, args.batches)),
                "--threads", str(args.threads), "--device", args.device, "--variants", ",".join(args.variant_list),
                "--onnx", str(Path(tmp) / "hsmr.onnx"), "--onnx-int8", str(Path(tmp) / "hsmr-int8.onnx")]  # fmt: skip
        base += ["--tiny"] * args.tiny + ["--fp16"] * args.fp16
        jobs = ["export"] * ("ort" in args.variant_list) + ["export-int8"] * ("ort-int8" in args.variant_list)
        jobs.append("speed")
        if not args.quick:
            jobs += args.variant_list
        for job in jobs:
            print(f"... {job}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run([*base, "--worker", job], env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{job}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
                if job == "speed":
                    return 1
                continue
            results[job] = json.loads(lines[-1][len("RESULT ") :])
            print(f"    {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    import platform

    print(f"HSMR network benchmark: {'tiny network' if args.tiny else 'ViT-H at release sizes'}, random weights; "
          f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), threads="
          f"{args.threads or os.cpu_count()}, rounds={args.reps} (fastest shown), load avg before/after "
          f"{load_before} / {_load_avg()}")  # fmt: skip
    sp = results["speed"]["speed"]
    print("| variant | " + " | ".join(f"batch {b} ms/crop" for b in args.batches) + " | peak RSS MB | runs on |")
    print("|---|" + "---|" * (len(args.batches) + 2))
    for v in args.variant_list:
        mem = results.get(v, {}).get("peak_rss_mb")
        cells = [f"{sp[v][str(b)]:.0f}" for b in args.batches]
        print(f"| {v} | " + " | ".join(cells) + f" | {'-' if mem is None else f'{mem:.0f}'} | "
              f"{results['speed']['providers'][v]} |")  # fmt: skip
    for job in ("export", "export-int8"):
        if job in results:
            r = results[job]
            print(f"{job}: {r['export_s']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB ({r['params_m']:.0f} M params)")
    if "torch-fp32" in sp:
        for v in args.variant_list:
            if v != "torch-fp32":
                print(f"speed-up of {v} over torch fp32 eager: " + ", ".join(
                    f"batch {b} {sp['torch-fp32'][str(b)] / sp[v][str(b)]:.2f}x" for b in args.batches))  # fmt: skip
    for v, d in results["speed"].get("max_abs_diff_vs_torch_fp32", {}).items():
        print(f"max |output - torch fp32| of {v} (raw rep/betas/cam, random weights): {d:.2e}")
    print("all rounds (ms per batch): " + json.dumps(results["speed"]["all_ms"]))
    if args.device == "cpu":
        print("GPU (batch 64 fp16 < 100 ms target): not measured, no GPU on this machine.")
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:  # one measurement in a child process: the parent records the figures
        sys.exit(main())
    run_recorded(main, __spec__.name)
