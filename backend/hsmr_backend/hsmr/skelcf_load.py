"""Finding and loading a SKEL-CF release checkpoint (reference/skelcf.md, "Release" and "Official loading").

The release is one ``torch.save`` file (``best.pth``, ~11 GB if nothing was stripped) holding ``model``,
``ema_model``, the optimizer state and the training ``cfg``. Only the ``ema_model`` backbone and decoder tensors
and a few ``cfg`` values are read, through :mod:`.checkpoint_reader`, which never runs the file's pickle.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .checkpoint_reader import CheckpointFormatError, TensorRef, TorchZip, plain_config
from .config import HSMRConfigError
from .load import HSMRWeightsError, _hf_download, load_state_strict, parse_hf_source
from .skelcf import SKELCFConfig, SKELCFNetwork

SKELCF_REPO = "Intellindust/SKEL_CF_vitpose_H"
SKELCF_FILENAME = "best.pth"
EMA_PREFIX = "model."
NETWORK_PREFIXES = ("backbone.", "decoder.")  # cam_model.* and skel_model.* are never read
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".onnx", ".gz", ".tar", ".tgz", ".zip")


def is_repo_id(source: str) -> bool:
    """Whether ``source`` reads as a Hugging Face repo id (owner/name) rather than a relative file path."""
    return bool(_REPO_ID.match(source)) and not source.lower().endswith(_FILE_SUFFIXES)


def resolve_skelcf(source: str | os.PathLike[str] = SKELCF_REPO, filename: str = SKELCF_FILENAME, *,
                   allow_download: bool = True) -> Path:  # fmt: skip
    """The checkpoint file for a path, a folder holding it, ``hf://owner/repo/file`` or a Hugging Face repo id."""
    src = str(source)
    path = Path(src).expanduser()
    hf = parse_hf_source(src)
    if hf is None and not path.exists() and is_repo_id(src):
        hf = (src, filename)
    if hf is not None:
        return _hf_download(hf[0], hf[1], allow_download, instead="pass the SKEL-CF checkpoint (best.pth)")
    if path.is_dir():
        if (path / filename).is_file():
            return path / filename
        found = sorted(path.glob("*.pth"))
        if len(found) == 1:
            return found[0]
        raise HSMRWeightsError(f"{path}: no {filename} (or single .pth file) inside; pass the SKEL-CF checkpoint")
    if not path.is_file():
        raise HSMRWeightsError(f"{path}: no such file or folder; pass the SKEL-CF checkpoint (best.pth)")
    return path


def _network_refs(root: Any) -> tuple[dict[str, TensorRef], Any]:
    """(backbone/decoder tensor references without the ``model.`` prefix, the training cfg) of the layout."""
    if not (isinstance(root, dict) and isinstance(root.get("ema_model"), dict)):
        raise CheckpointFormatError("not a SKEL-CF checkpoint (no ema_model state dict at its top level)")
    if "cfg" not in root:
        raise CheckpointFormatError("not a SKEL-CF checkpoint (no training cfg beside ema_model)")
    refs: dict[str, TensorRef] = {}
    for key, value in root["ema_model"].items():
        if not (isinstance(key, str) and key.startswith(EMA_PREFIX)):
            continue
        name = key[len(EMA_PREFIX) :]
        if name.startswith(NETWORK_PREFIXES):
            if not isinstance(value, TensorRef):
                raise CheckpointFormatError(f"ema_model entry {key} is not a tensor")
            refs[name] = value
    if not refs:
        raise CheckpointFormatError("not a SKEL-CF checkpoint (no backbone or decoder tensors under ema_model)")
    return refs, root["cfg"]


def read_skelcf_checkpoint(path: str | os.PathLike[str]) -> tuple[SKELCFConfig, dict[str, torch.Tensor]]:
    """(network sizes from the file's cfg, backbone + decoder weights). Never runs pickled code."""
    path = Path(path)
    try:
        with TorchZip(path) as ck:
            refs, cfg_tree = _network_refs(ck.root)
            cfg = SKELCFConfig.from_training_config(plain_config(cfg_tree))
            return cfg, {name: ck.tensor(ref) for name, ref in refs.items()}
    except (CheckpointFormatError, HSMRConfigError) as e:
        raise HSMRWeightsError(f"{path}: {e}") from None
    except OSError as e:
        raise HSMRWeightsError(f"{path}: cannot read it ({e.__class__.__name__}: {e})") from None


@lru_cache(maxsize=8)
def _is_skelcf_file(path: str, size: int, mtime_ns: int) -> bool:
    try:
        with TorchZip(path) as ck:
            _network_refs(ck.root)
        return True
    except (CheckpointFormatError, OSError):
        return False


def is_skelcf_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (a file, or a folder holding ``best.pth``) has the SKEL-CF checkpoint layout.

    Reads only the zip's directory and object tree (not the tensors); a damaged file is simply "no"."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / SKELCF_FILENAME
    if not p.is_file():
        return False
    st = p.stat()
    return _is_skelcf_file(str(p.resolve()), st.st_size, st.st_mtime_ns)


def find_skelcf_cached() -> Path | None:
    """The release checkpoint if it is already in the Hugging Face cache, else None (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(SKELCF_REPO, SKELCF_FILENAME)
    except Exception:  # a broken cache must not break the other modes
        return None
    return Path(cached) if isinstance(cached, str) else None


def network_kind(path: str | os.PathLike[str]) -> str:
    """"skelcf" for a SKEL-CF checkpoint (or a folder holding one) or SKEL-CF ONNX export, else "hsmr"."""
    if str(path).endswith(".onnx"):
        from .export import read_onnx_config

        try:
            cfg, _ = read_onnx_config(path)
        except Exception:  # not ours, unreadable: the HSMR path reports it as it always has
            return "hsmr"
        return "skelcf" if isinstance(cfg, SKELCFConfig) else "hsmr"
    return "skelcf" if is_skelcf_checkpoint(path) else "hsmr"


def load_skelcf(source: str | os.PathLike[str] = SKELCF_REPO, filename: str = SKELCF_FILENAME, *,
                device: str | torch.device = "cpu", allow_download: bool = True) -> SKELCFNetwork:  # fmt: skip
    """Build the network from the checkpoint's own cfg and load its EMA weights (strict, eval mode)."""
    path = resolve_skelcf(source, filename, allow_download=allow_download)
    cfg, state = read_skelcf_checkpoint(path)
    with torch.device("meta"):  # no random init to overwrite, and the weights are not held twice
        net = SKELCFNetwork(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    load_state_strict(net, state, str(path), assign=True)
    return net.eval().to(device)
