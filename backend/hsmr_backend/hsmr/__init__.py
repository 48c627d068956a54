"""The HSMR network (ViT-H + SKEL decoder) with its release loader, pose conversion, crops and ONNX path.

Public entry points (see docs/hsmr.md):
``load_hsmr``, ``find_weights``, ``rep_to_q``, ``q_to_rep``, ``HSMRNetwork``, ``HSMRConfig``;
``hsmr_backend.hsmr.predictor.HSMRPredictor``; ``hsmr_backend.hsmr.export.export_onnx``.
SKEL-CF (docs/skelcf.md): ``load_skelcf``, ``is_skelcf_checkpoint``, ``SKELCFNetwork``, ``SKELCFConfig``;
``hsmr_backend.hsmr.skelcf_predictor.SKELCFPredictor``; ``hsmr_backend.hsmr.export.export_skelcf_onnx``.
"""

from .config import HSMRConfig, HSMRConfigError
from .load import HF_FILENAME, HF_REPO, HSMRWeightsError, find_weights, load_hsmr, resolve_release
from .network import HSMRNetwork, cam_to_translation
from .rep import q_to_rep, rep_to_q
from .skelcf import SKELCFConfig, SKELCFNetwork
from .skelcf_load import (
    SKELCF_FILENAME,
    SKELCF_REPO,
    find_skelcf_cached,
    is_skelcf_checkpoint,
    load_skelcf,
    network_kind,
    resolve_skelcf,
)

__all__ = [
    "HF_FILENAME",
    "HF_REPO",
    "HSMRConfig",
    "HSMRConfigError",
    "HSMRNetwork",
    "HSMRWeightsError",
    "SKELCFConfig",
    "SKELCFNetwork",
    "SKELCF_FILENAME",
    "SKELCF_REPO",
    "cam_to_translation",
    "find_skelcf_cached",
    "find_weights",
    "is_skelcf_checkpoint",
    "load_hsmr",
    "load_skelcf",
    "network_kind",
    "q_to_rep",
    "rep_to_q",
    "resolve_release",
    "resolve_skelcf",
]
