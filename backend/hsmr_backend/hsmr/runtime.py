"""ONNX Runtime sessions for an exported HSMR network: CUDA when usable, else CPU with a notice."""

from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from .export import BOX_INPUT, INPUT_NAME, OUTPUT_NAMES, read_onnx_config


@lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports (0 without a driver), without importing a CUDA toolkit."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    return 0


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware, unlike os.cpu_count in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def session_options(threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or usable_cores()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only: the CUDA provider's probing is noisy on CPU-only machines
    return so


class OnnxHSMR:
    """``run(patches (B,3,256,256) float32[, bbox_info (B,3)]) -> (poses_rep, betas, cam)`` numpy, batched by
    ``batch_size``. A SKEL-CF export (``needs_box``) takes the box conditioning as its second input."""

    def __init__(self, path: str | os.PathLike[str], device: str = "auto", threads: int | None = None,
                 batch_size: int = 16) -> None:  # fmt: skip
        import onnxruntime as ort

        self.path = Path(path)
        self.cfg, self.fp16 = read_onnx_config(self.path)
        self.batch_size = max(1, int(batch_size))
        want_cuda = device in ("auto", "cuda") or str(device).startswith("cuda")
        providers: list = ["CPUExecutionProvider"]
        if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0:
            idx = int(str(device).split(":")[1]) if str(device).startswith("cuda:") else 0
            providers = [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads), providers=providers)
        except Exception as e:  # a broken CUDA install must not stop inference
            if providers[0] == "CPUExecutionProvider":
                raise
            print(f"hsmr: CUDA execution provider failed ({str(e).splitlines()[0]}); running on CPU",
                  file=sys.stderr)  # fmt: skip
            self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                                providers=["CPUExecutionProvider"])  # fmt: skip
        self.provider = self.session.get_providers()[0]
        self.needs_box = any(i.name == BOX_INPUT for i in self.session.get_inputs())
        if want_cuda and self.provider != "CUDAExecutionProvider":
            print("hsmr: no usable CUDA device for ONNX Runtime; running the network on CPU", file=sys.stderr)

    def run(self, patches: np.ndarray, bbox_info: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        x = np.ascontiguousarray(patches, dtype=np.float32)
        if self.needs_box and (bbox_info is None or np.shape(bbox_info) != (len(x), 3)):
            raise ValueError(f"{self.path.name} is a SKEL-CF model: pass bbox_info (N,3) with the N patches")
        box = None if bbox_info is None else np.ascontiguousarray(bbox_info, dtype=np.float32)
        outs: list[list[np.ndarray]] = [[], [], []]
        for i in range(0, len(x), self.batch_size):
            feed = {INPUT_NAME: x[i : i + self.batch_size]}
            if self.needs_box and box is not None:
                feed[BOX_INPUT] = box[i : i + self.batch_size]
            res = self.session.run(list(OUTPUT_NAMES), feed)
            for acc, r in zip(outs, res, strict=True):
                acc.append(r)
        if not len(x):
            return (np.zeros((0, self.cfg.n_pose_outputs), np.float32), np.zeros((0, 10), np.float32),
                    np.zeros((0, 3), np.float32))  # fmt: skip
        return tuple(np.concatenate(a) for a in outs)  # type: ignore[return-value]
