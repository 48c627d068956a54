"""The HSMR network (ViT-H + SKEL decoder) with its release loader, pose conversion, crops and ONNX path.

Public entry points (see docs/hsmr.md):
``load_hsmr``, ``find_weights``, ``rep_to_q``, ``q_to_rep``, ``HSMRNetwork``, ``HSMRConfig``;
``hsmr_backend.hsmr.predictor.HSMRPredictor``; ``hsmr_backend.hsmr.export.export_onnx``.
"""

from .config import HSMRConfig, HSMRConfigError
from .load import HF_FILENAME, HF_REPO, HSMRWeightsError, find_weights, load_hsmr, resolve_release
from .network import HSMRNetwork, cam_to_translation
from .rep import q_to_rep, rep_to_q

__all__ = [
    "HF_FILENAME",
    "HF_REPO",
    "HSMRConfig",
    "HSMRConfigError",
    "HSMRNetwork",
    "HSMRWeightsError",
    "cam_to_translation",
    "find_weights",
    "load_hsmr",
    "q_to_rep",
    "rep_to_q",
    "resolve_release",
]
