"""GPU check (issue 17 part 6): everything a CUDA machine must show, in one run of under 8 minutes.

    PYTHONPATH=backend:backend/contract:. python tools/gpu_check.py [--json gpu_check.json] [--dry-run]

On a CUDA machine it
1. confirms ONNX Runtime's CUDA execution provider loads and runs (a tiny HSMR export);
2. times the release-size HSMR (ViT-H) and SKEL-CF networks, random weights, ms per crop at batch 1, 8 and 64:
   ONNX Runtime CUDA fp32 and fp16 exports, torch CUDA fp32 and fp16 (when torch has CUDA), against ONNX Runtime
   on the CPU (batch 1 and 8; batch 64 while time is left);
3. compares CUDA and CPU outputs of tiny release-layout checkpoints (HSMR release folder, SKEL-CF ``best.pth``)
   loaded by ``load_hsmr`` / ``load_skelcf``: torch and ONNX Runtime, TF32 off (strict, 1e-4) and as shipped;
4. runs ``convert --mode hsmr`` and ``--mode skelcf`` on the sample clip with the release-size random-weight
   exports on CUDA.
Figures are printed and saved to JSON. Without CUDA it says so, writes ``{"cuda": false, ...}`` and exits 0.
``--dry-run`` runs every step with tiny networks on the CPU (checks this script anywhere). Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tests.support import hsmr_release, skelcf_release  # the tiny release-layout writers the tests use

if TYPE_CHECKING:
    import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 8, 64)
STRICT_ATOL = 1e-4  # CUDA vs CPU with TF32 off: the same tolerance as ONNX vs torch
SHIPPED_RTOL = 1e-2  # with TF32 (ONNX Runtime's and cuDNN's default): relative to the outputs' scale


class Check:
    """Collects figures and failures; ``deadline`` is when optional work is skipped."""

    def __init__(self, budget_s: float, dry_run: bool, work: Path) -> None:
        self.t0 = time.perf_counter()
        self.budget_s, self.dry_run, self.work = budget_s, dry_run, work
        self.figures: dict[str, Any] = {}
        self.failures: list[str] = []
        self.device = "cpu" if dry_run else "cuda"

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def step(self, name: str, fn: Callable[[], Any]) -> None:
        t = time.perf_counter()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            self.figures[name] = fn()
        except Exception as e:  # one failing step must not hide the others' figures
            msg = f"{name}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            self.failures.append(msg)
            self.figures[name] = {"error": msg, "trace": traceback.format_exc(limit=6)}
            print(f"gpu_check: FAILED {msg}", flush=True)
        print(f"gpu_check: {name} took {time.perf_counter() - t:.1f} s "
              f"({self.left_s():.0f} s of the budget left)", flush=True)  # fmt: skip

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        print(f"gpu_check: FAILED {msg}", flush=True)


def _ort_session(path: Path, device: str, tf32: bool = True) -> ort.InferenceSession:
    import onnxruntime as ort

    from hsmr_backend.hsmr.runtime import session_options

    if device == "cpu":
        return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    opts: dict[str, Any] = {"device_id": 0}
    if not tf32:
        opts["use_tf32"] = 0
    try:
        sess = ort.InferenceSession(str(path), session_options(), providers=[("CUDAExecutionProvider", opts)])
    except Exception as e:  # an onnxruntime without the use_tf32 option: say so, run with its default
        if tf32:
            raise
        print(f"gpu_check: CUDA provider refused use_tf32=0 ({str(e).splitlines()[0]}); TF32 as shipped", flush=True)
        opts.pop("use_tf32")
        sess = ort.InferenceSession(str(path), session_options(), providers=[("CUDAExecutionProvider", opts)])
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        raise RuntimeError(f"ONNX Runtime did not use CUDA for {path.name} (providers {sess.get_providers()})")
    return sess


def _feed(sess: ort.InferenceSession, patches: np.ndarray, boxes: np.ndarray) -> dict[str, np.ndarray]:
    from hsmr_backend.hsmr.export import INPUT_NAME

    names = [i.name for i in sess.get_inputs()]
    return {n: (patches if n == INPUT_NAME else boxes) for n in names}


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3, 256, 256)).astype(np.float32),
            (rng.normal(size=(n, 3)) * 0.3).astype(np.float32))  # fmt: skip


def _max_abs(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """The largest absolute difference over paired outputs."""
    return float(max(np.abs(g - w).max() for g, w in zip(got, want, strict=True)))


def _max_relative(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """The largest difference over paired outputs, each relative to its reference's largest magnitude."""
    return max(float(np.abs(g - w).max() / max(float(np.abs(w).max()), 1e-12)) for g, w in zip(got, want, strict=True))


# ---------------------------------------------------------------- 1. the CUDA provider


def provider_check(chk: Check) -> dict[str, Any]:
    import onnxruntime as ort

    from hsmr_backend.hsmr import HSMRConfig, HSMRNetwork
    from hsmr_backend.hsmr.export import export_onnx
    from hsmr_backend.hsmr.runtime import OnnxHSMR, cuda_device_count

    out: dict[str, Any] = {"onnxruntime": ort.__version__, "available": ort.get_available_providers(),
                           "cuda_devices": cuda_device_count(), "torch": torch.__version__,
                           "torch_cuda": torch.cuda.is_available()}  # fmt: skip
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    net = HSMRNetwork(HSMRConfig.from_hydra(hsmr_release.TINY)).eval()
    path = export_onnx(net, chk.work / "provider" / "tiny.onnx")
    sess = OnnxHSMR(path, device=chk.device)
    out["provider"] = sess.provider
    rep, _, _ = sess.run(_inputs(2)[0])
    out["finite"] = bool(np.isfinite(rep).all())
    if not chk.dry_run and sess.provider != "CUDAExecutionProvider":
        chk.fail(f"ONNX Runtime's CUDA provider did not run (got {sess.provider}); see its stderr notice above")
    return out


def preload_cuda_libraries() -> str:
    """ONNX Runtime >= 1.21 can load CUDA/cuDNN from the nvidia-* wheels; torch's CUDA build also brings them."""
    try:
        import onnxruntime as ort

        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()
            return "onnxruntime.preload_dlls() called"
    except Exception as e:  # no nvidia wheels: the provider may still find system libraries
        return f"preload_dlls failed: {e}"
    return "no preload_dlls in this onnxruntime"


# ---------------------------------------------------------------- 2. release-size timings


def _release_network(kind: str, dry_run: bool) -> torch.nn.Module:
    from hsmr_backend.hsmr import HSMRConfig, HSMRNetwork, SKELCFConfig, SKELCFNetwork

    torch.manual_seed(0)
    if kind == "hsmr":
        cfg = HSMRConfig.from_hydra(hsmr_release.TINY) if dry_run else HSMRConfig()
        return HSMRNetwork(cfg).eval()
    cfg = SKELCFConfig.from_training_config(skelcf_release.TINY_CFG) if dry_run else SKELCFConfig()
    return SKELCFNetwork(cfg).eval()


def _export(net: torch.nn.Module, path: Path, fp16: bool) -> Path:
    from hsmr_backend.hsmr import SKELCFNetwork
    from hsmr_backend.hsmr.export import export_onnx, export_skelcf_onnx

    if isinstance(net, SKELCFNetwork):
        return export_skelcf_onnx(net, path, fp16=fp16)
    return export_onnx(net, path, fp16=fp16)


def _time_ms_per_crop(run: Callable[[int], Any], batch: int, repeats: int) -> float:
    run(batch)  # warm-up (CUDA kernels, cuDNN algorithm search, ORT arena)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t)
    return round(1000 * float(np.median(times)) / batch, 3)


def _ort_runner(sess: ort.InferenceSession) -> Callable[[int], Any]:
    cache: dict[int, dict[str, np.ndarray]] = {}

    def run(batch: int) -> Any:
        if batch not in cache:
            cache[batch] = _feed(sess, *_inputs(batch))
        return sess.run(None, cache[batch])

    return run


def _torch_runner(net: torch.nn.Module, device: str, half: bool) -> Callable[[int], Any]:
    from hsmr_backend.hsmr import SKELCFNetwork

    dtype = torch.float16 if half else torch.float32
    model = net.to(device=device, dtype=dtype)

    def run(batch: int) -> Any:
        x, b = (torch.from_numpy(a).to(device=device, dtype=dtype) for a in _inputs(batch))
        with torch.inference_mode():
            out = model.raw(x, b) if isinstance(model, SKELCFNetwork) else model.raw(x)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return run


def _time_variant(chk: Check, path: Path, device: str) -> tuple[dict[int, float], list[np.ndarray]]:
    """ms per crop at each batch (CPU: batch 64 only while time is left) and the outputs for one fixed input."""
    sess = _ort_session(path, device)
    run = _ort_runner(sess)
    on_cpu = device == "cpu"
    batches = BATCHES if not on_cpu or chk.left_s() > 330 or chk.dry_run else BATCHES[:2]
    ms = {b: _time_ms_per_crop(run, b, (2 if b == 1 else 1) if on_cpu else 5) for b in batches}
    outs = sess.run(None, _feed(sess, *_inputs(2, seed=7)))
    del sess
    return ms, outs


def time_release_network(chk: Check, kind: str) -> dict[str, Any]:
    """Release-size random-weight network: exports, ms per crop per runtime/precision/batch, CUDA vs CPU."""
    net = _release_network(kind, chk.dry_run)
    out: dict[str, Any] = {"params_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 1)}
    t = time.perf_counter()
    fp32 = _export(net, chk.work / kind / "fp32.onnx", fp16=False)
    out["export_fp32_s"] = round(time.perf_counter() - t, 1)
    chk.figures[f"{kind}_onnx"] = str(fp32)
    ms: dict[str, dict[int, float]] = {}
    ms["ort_cuda_fp32"], cuda_outs = _time_variant(chk, fp32, chk.device)
    ms["ort_cpu_fp32"], cpu_outs = _time_variant(chk, fp32, "cpu")
    out["cuda_vs_cpu_fp32_max_abs"] = _max_abs(cuda_outs, cpu_outs)
    if chk.left_s() > 240 or chk.dry_run:
        t = time.perf_counter()
        fp16 = _export(net, chk.work / kind / "fp16.onnx", fp16=True)
        out["export_fp16_s"] = round(time.perf_counter() - t, 1)
        ms["ort_cuda_fp16"], half_outs = _time_variant(chk, fp16, chk.device)
        out["fp16_vs_fp32_max_abs"] = _max_abs(half_outs, cuda_outs)
    if torch.cuda.is_available() and not chk.dry_run:
        for half in (False, True):
            run = _torch_runner(net, "cuda", half)
            ms[f"torch_cuda_{'fp16' if half else 'fp32'}"] = {b: _time_ms_per_crop(run, b, 5) for b in BATCHES}
        net.to(device="cpu", dtype=torch.float32)
        torch.cuda.empty_cache()
    out["ms_per_crop"] = ms
    cpu = ms["ort_cpu_fp32"]
    out["speedup_vs_cpu"] = {name: {b: round(cpu[b] / v[b], 1) for b in v if b in cpu}
                             for name, v in ms.items() if name != "ort_cpu_fp32"}  # fmt: skip
    return out


# ---------------------------------------------------------------- 3. tiny release-layout checkpoints, CUDA vs CPU


def _tiny_release(kind: str, work: Path) -> tuple[Path, torch.nn.Module]:
    """(the source ``load_hsmr`` / ``load_skelcf`` takes, the loaded network), written like the releases."""
    from hsmr_backend.hsmr import load_hsmr, load_skelcf

    if kind == "hsmr":
        rel = hsmr_release.write_release(work / "tiny_hsmr", hsmr_release.random_net(seed=4))
        return rel, load_hsmr(rel)
    sk = skelcf_release
    path = sk.write_checkpoint(work / "tiny_skelcf" / "best.pth", sk.random_network(seed=4))
    return path, load_skelcf(path)


def compare_tiny(chk: Check, kind: str) -> dict[str, Any]:
    """CUDA against CPU on a tiny release-layout checkpoint: torch and ONNX Runtime, TF32 off and as shipped."""
    source, net = _tiny_release(kind, chk.work)
    patches, boxes = _inputs(4, seed=11)
    args = [torch.from_numpy(patches)] + ([torch.from_numpy(boxes)] if kind == "skelcf" else [])
    with torch.inference_mode():
        want = [t.numpy() for t in net.raw(*args)]
    out: dict[str, Any] = {"source": str(source)}
    if torch.cuda.is_available() and not chk.dry_run:
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            with torch.inference_mode():
                got = [t.float().cpu().numpy() for t in net.to("cuda").raw(*(a.cuda() for a in args))]
            net.to("cpu")
            key = "torch_tf32" if tf32 else "torch_strict"
            out[key + "_max_abs"] = _max_abs(got, want)
            out[key + "_max_rel"] = _max_relative(got, want)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True  # torch's defaults
    path = _export(net, chk.work / f"tiny_{kind}.onnx", fp16=False)
    for tf32 in (False, True):
        sess = _ort_session(path, chk.device, tf32=tf32)
        got = sess.run(None, _feed(sess, patches, boxes))
        key = "ort_tf32" if tf32 else "ort_strict"
        out[key + "_max_abs"] = _max_abs(got, want)
        out[key + "_max_rel"] = _max_relative(got, want)
    for key in [k for k in out if k.endswith("strict_max_abs")]:
        if out[key] > STRICT_ATOL:
            chk.fail(f"{kind} tiny checkpoint: CUDA vs CPU {key} = {out[key]:.2e} > {STRICT_ATOL}")
    for key in [k for k in out if k.endswith("tf32_max_rel")]:
        if out[key] > SHIPPED_RTOL:
            chk.fail(f"{kind} tiny checkpoint: CUDA vs CPU {key} = {out[key]:.2e} > {SHIPPED_RTOL}")
    return out


# ---------------------------------------------------------------- 4. convert on the sample clip


def _messages(json_lines: str) -> list[str]:
    """The notes (``message`` fields) of convert's ``--progress json`` output."""
    said = []
    for line in json_lines.splitlines():
        try:
            said.append(str(json.loads(line)["message"]))
        except (ValueError, KeyError, TypeError):
            continue
    return said


def convert_sample(chk: Check, kind: str) -> dict[str, Any]:
    """``hsmr-backend convert`` on the sample clip with the random-weight export, in a child process."""
    onnx = chk.figures.get(f"{kind}_onnx")
    if not onnx:
        raise RuntimeError(f"no {kind} export to convert with (its timing step failed)")
    result = chk.work / f"convert_{kind}.npz"
    cmd = [sys.executable, "-m", "hsmr_backend.cli", "convert", str(ROOT / "assets" / "sample_clip.mp4"), "-o",
           str(result), "--mode", kind, "--weights", onnx, "--device", chk.device, "--progress", "json",
           "--no-overlay", "--no-plot"]  # fmt: skip
    if chk.dry_run:
        cmd += ["--frames", "0:12"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(60.0, chk.left_s()), cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "8")))  # fmt: skip
    out: dict[str, Any] = {"rc": proc.returncode, "wall_s": round(time.perf_counter() - t, 1),
                           "said": _messages(proc.stdout) + [ln for ln in proc.stderr.splitlines()
                                                             if "CUDA" in ln or "CPU" in ln or "error" in ln]}
    if proc.returncode != 0:
        chk.fail(f"convert --mode {kind} exited {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1]}")
        return out
    with np.load(result, allow_pickle=False) as z:
        out["frames"] = int(len(z["poses"]))
        out["poses_finite"] = bool(np.isfinite(z["poses"]).all())
        if "meta_json" in z.files:
            meta = json.loads(str(z["meta_json"]))
            out["mode"], out["device"] = meta.get("mode"), meta.get("device")
    if not chk.dry_run and (out.get("device") != "cuda" or any("on CPU" in ln for ln in out["said"])):
        chk.fail(f"convert --mode {kind} ran on {out.get('device')} (convert picks CUDA only when torch has it)")
    return out


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "gpu_check.json"),
                    help="where to save the figures (default $OUT/gpu_check.json or ./gpu_check.json)")
    ap.add_argument("--dry-run", action="store_true", help="tiny networks on the CPU: check this script anywhere")
    ap.add_argument("--budget-s", type=float, default=450.0, help="optional work stops after this (default 450)")
    args = ap.parse_args(argv)
    from hsmr_backend.hsmr.runtime import cuda_device_count

    header = {"python": platform.python_version(), "machine": platform.machine(), "dry_run": args.dry_run}
    if cuda_device_count() == 0 and not args.dry_run:
        print("gpu_check: no CUDA device here (the driver reports none); nothing to check on this machine")
        Path(args.json).write_text(json.dumps({**header, "cuda": False}, indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        os.environ["HSMR_CACHE"] = str(Path(tmp) / "cache")
        chk = Check(args.budget_s, args.dry_run, Path(tmp))
        chk.figures["cuda_libraries"] = "skipped (dry run)" if args.dry_run else preload_cuda_libraries()
        chk.step("provider", lambda: provider_check(chk))
        for kind in ("hsmr", "skelcf"):
            chk.step(f"{kind}_release_size", lambda kind=kind: time_release_network(chk, kind))
        for kind in ("hsmr", "skelcf"):
            chk.step(f"{kind}_tiny_cuda_vs_cpu", lambda kind=kind: compare_tiny(chk, kind))
        for kind in ("hsmr", "skelcf"):
            chk.step(f"convert_{kind}", lambda kind=kind: convert_sample(chk, kind))
        report = {**header, "cuda": not args.dry_run, "total_s": round(time.perf_counter() - chk.t0, 1),
                  "failures": chk.failures, **chk.figures}  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict) or "error" not in v}, indent=1,
                     default=str))  # fmt: skip
    print(f"gpu_check: {'OK' if not chk.failures else f'{len(chk.failures)} FAILED'} in {report['total_s']} s; "
          f"figures in {args.json}")
    return 0 if not chk.failures else 1


if __name__ == "__main__":
    sys.exit(main())
