"""What the user asks of a conversion, what it reports back, and the choices made from the options."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..progress import Reporter


class ConvertError(RuntimeError):
    """An expected failure of the conversion; the message is one line for the user."""


@dataclass
class ConvertOptions:
    video: str
    output: str
    mode: str = "auto"  # keypoints | hsmr | skelcf | auto
    body: str = "open"  # "open" or a path to skel_male.pkl / skel_female.pkl
    device: str = "auto"  # auto | cpu | cuda
    frames: str | None = None  # "START:END"
    stride: int = 1
    subject: str | None = None
    focal_px: float | None = None
    smoothing: float | None = None  # None = the fitter's default
    fps: float | None = None  # override (image sequences)
    overlay: bool = True
    plot: bool = True
    resume: bool = True
    weights: str | None = None  # HSMR release/.onnx or SKEL-CF checkpoint/.onnx (else $HSMR_WEIGHTS or the HF cache)
    up: str = "auto"  # auto: the scene's vertical edges when they decide, else the body | body: the body alone


@dataclass
class ConvertSummary:
    result: str
    outputs: list[str]
    mode: str
    device: str
    frames: int
    valid_frames: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    subject_note: str = ""
    focal_note: str = ""
    result_seconds: float = 0.0  # decode -> result file on disk (before the overlay and the plot)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def output_paths(result: str | os.PathLike) -> dict[str, Path]:
    r = Path(result)
    return {"result": r, "overlay": overlay_path(r), "plot": Path(f"{_stem(r)}.angles.png"),
            "work": Path(f"{r}.work")}


def _stem(result: Path) -> Path:
    return result.with_suffix("") if result.suffix == ".npz" else result


def overlay_path(result: str | os.PathLike, camera: str | None = None) -> Path:
    """``RESULT.overlay.mp4``; ``RESULT.overlay.CAMERA.mp4`` for a calibrated camera other than the first."""
    return Path(f"{_stem(Path(result))}.overlay{'' if camera is None else '.' + camera}.mp4")


def resolve_device(device: str, reporter: Reporter) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise ConvertError(f"--device must be auto, cpu or cuda (got {device!r})")
    if device == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except Exception:
        has_cuda = False
    if has_cuda:
        return "cuda"
    if device == "cuda":
        reporter.info("CUDA is not available here: running on the CPU instead", level="warning")
    return "cpu"


MODES = ("auto", "keypoints", "hsmr", "skelcf")
NETWORK_NAMES = {"hsmr": "HSMR", "skelcf": "SKEL-CF"}


def resolve_mode(mode: str, weights: str | None, reporter: Reporter) -> tuple[str, Any]:
    """('keypoints' | 'hsmr' | 'skelcf', weights path or None); says which ran and why.

    The network is the one the weights are (a SKEL-CF checkpoint or export is told apart by its layout); without
    weights given, ``auto`` takes a cached SKEL-CF release, else a cached HSMR one, else keypoints."""
    if mode not in MODES:
        raise ConvertError(f"--mode must be one of {', '.join(MODES)} (got {mode!r})")
    if mode == "keypoints":
        reporter.info("mode: keypoints (MediaPipe landmarks -> SKELify)")
        return "keypoints", None
    from ..hsmr import HSMRWeightsError, network_kind

    try:
        found = _find_network_weights(mode, weights)
        kind = network_kind(found) if found is not None else None
    except HSMRWeightsError as e:  # a given path that does not exist, a repo id that is not cached
        raise ConvertError(f"{e} (or use --mode keypoints)") from None
    if found is None:
        if mode != "auto":
            raise ConvertError(
                f"--mode {mode} needs the {NETWORK_NAMES[mode]} weights: set $HSMR_WEIGHTS or pass --weights "
                f"({'the checkpoint best.pth, docs/skelcf.md' if mode == 'skelcf' else 'release folder/tarball'}), "
                "or use --mode keypoints"
            )
        reporter.info("mode: keypoints (no network weights found; set $HSMR_WEIGHTS or pass --weights to use HSMR "
                      "or SKEL-CF)")  # fmt: skip
        return "keypoints", None
    if mode == "skelcf" and kind != "skelcf":
        raise ConvertError(f"{found}: not a SKEL-CF checkpoint (no ema_model/cfg layout); pass best.pth from "
                           "Intellindust/SKEL_CF_vitpose_H or use --mode hsmr")  # fmt: skip
    if kind == "hsmr":
        _check_weights_file(found)
    note = " (detected by its layout)" if mode == "hsmr" and kind == "skelcf" else ""
    reporter.info(f"mode: {kind} (weights: {found}){note}")
    return str(kind), found


def _find_network_weights(mode: str, weights: str | None) -> Path | None:
    """Explicit weights (a path, or a cached Hugging Face repo id for SKEL-CF), ``$HSMR_WEIGHTS``, then a cached
    release: SKEL-CF for auto/skelcf, HSMR for auto/hsmr. Never downloads."""
    from ..hsmr import find_skelcf_cached, find_weights, resolve_skelcf
    from ..hsmr.load import ENV_WEIGHTS
    from ..hsmr.skelcf_load import is_repo_id

    if weights and not Path(weights).expanduser().exists() and (is_repo_id(weights) or weights.startswith("hf://")):
        return resolve_skelcf(weights, allow_download=False)  # from the Hugging Face cache only
    if weights or os.environ.get(ENV_WEIGHTS):
        return find_weights(weights)
    cached = find_skelcf_cached() if mode in ("auto", "skelcf") else None
    if cached is None and mode in ("auto", "hsmr"):
        cached = find_weights()
    return cached


def _check_weights_file(found: Any) -> None:
    """Cheap checks before the long landmark stage: the release layout and a checkpoint that is a whole zip."""
    if str(found).endswith(".onnx"):
        return
    from ..hsmr.load import CKPT_REL, HSMRWeightsError, resolve_release

    try:
        release = resolve_release(found, allow_download=False)
    except HSMRWeightsError as e:
        raise ConvertError(f"{e} (or use --mode keypoints)") from None
    ckpt = release / CKPT_REL
    if ckpt.is_file() and not zipfile.is_zipfile(ckpt):
        raise ConvertError(f"{ckpt}: truncated or not a PyTorch checkpoint; download the HSMR release again "
                           "(or use --mode keypoints)")


def body_label(body: str, model: Any) -> str:
    """The result file's ``body``: "open", or the loaded body's own name (e.g. skel_male)."""
    return "open" if body == "open" else str(model.name)
