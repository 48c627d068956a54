"""Finding and loading an HSMR release (reference/hsmr.md §0).

A release is ``<root>/.hydra/config.yaml`` + ``<root>/checkpoints/hsmr.ckpt`` (a Lightning checkpoint whose
weights are under ``state_dict``). ``load_hsmr`` accepts that folder, the release tarball, or a Hugging Face
repo id + filename (fetched into the huggingface_hub cache, then used offline from there). Nothing is
downloaded unless the caller asks for it; :func:`find_weights` never downloads.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .config import HSMRConfig, HSMRConfigError
from .network import HSMRNetwork

HF_REPO = "IsshikiHugh/HSMR-data_inputs"
HF_FILENAME = "released_models/HSMR-ViTH-r1d1.tar.gz"
CONFIG_REL = Path(".hydra") / "config.yaml"
CKPT_REL = Path("checkpoints") / "hsmr.ckpt"
IGNORED_PREFIXES = ("skel_model.",)  # body-model buffers the pipeline carries (one sparse): not weights
NETWORK_PREFIXES = ("backbone.", "head.")
ENV_WEIGHTS = "HSMR_WEIGHTS"
ENV_CACHE = "HSMR_CACHE"


class HSMRWeightsError(RuntimeError):
    """The HSMR weights cannot be found or read; the message is one line saying what to do."""


def cache_dir() -> Path:
    """Where extracted releases and exported ONNX files live: ``$HSMR_CACHE`` or ~/.cache/hsmr_backend."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "hsmr_backend"


# ---------------------------------------------------------------- locating a release


def _is_release(d: Path) -> bool:
    return (d / CONFIG_REL).is_file() and (d / CKPT_REL).is_file()


def _find_release_in(d: Path) -> Path | None:
    if _is_release(d):
        return d
    # The tarball holds one top folder (HSMR-ViTH-r1d1/); a data_inputs tree nests it deeper.
    for depth in ("*", "*/*", "*/*/*"):
        hits = sorted(p.parent.parent for p in d.glob(f"{depth}/{CONFIG_REL}") if _is_release(p.parent.parent))
        if hits:
            return hits[0]
    return None


def file_key(path: Path) -> str:
    """16 hex digits naming a file's identity (resolved path, size, mtime): the key of what is cached from it."""
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _extract_tarball(tar_path: Path) -> Path:
    dest = cache_dir() / "releases" / f"{tar_path.name.split('.')[0]}-{file_key(tar_path)}"
    done = dest / ".complete"
    if not done.is_file():
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with tarfile.open(tar_path) as tf:
                tf.extractall(tmp, filter="data")  # refuses absolute paths, links out of the tree, devices
        except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HSMRWeightsError(
                f"{tar_path}: not a readable HSMR release tarball ({e.__class__.__name__}: {e}); "
                "download it again"
            ) from None
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        done.write_text(str(tar_path) + "\n")
    release = _find_release_in(dest)
    if release is None:
        raise HSMRWeightsError(
            f"{tar_path}: the tarball has no {CONFIG_REL} + {CKPT_REL}; it is not an HSMR release"
        )
    return release


def _hf_download(repo_id: str, filename: str, allow_download: bool,
                 instead: str = "pass a release folder/tarball") -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, filename)
    if isinstance(cached, str):
        return Path(cached)
    if not allow_download:
        raise HSMRWeightsError(
            f"{repo_id}/{filename} is not in the Hugging Face cache and downloading was not allowed; "
            f"{instead} or allow the download"
        )
    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as e:  # network, auth, offline mode: all end the same way for the user
        raise HSMRWeightsError(
            f"could not fetch {repo_id}/{filename} from Hugging Face ({e.__class__.__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); download it by hand and pass the file"
        ) from None


def parse_hf_source(source: str) -> tuple[str, str] | None:
    """``hf://owner/repo/path/in/repo`` -> (repo id, filename); anything else -> None."""
    if not source.startswith("hf://"):
        return None
    parts = source[len("hf://") :].strip("/").split("/")
    if len(parts) < 3:
        raise HSMRWeightsError(f"{source}: write a Hugging Face source as hf://owner/repo/path/to/file")
    return "/".join(parts[:2]), "/".join(parts[2:])


def resolve_release(
    source: str | os.PathLike[str] | tuple[str, str],
    filename: str | None = None,
    *,
    allow_download: bool = True,
) -> Path:
    """Release folder for a folder, a tarball, ``(repo_id, filename)``, ``hf://...`` or repo id + ``filename``."""
    if isinstance(source, tuple):
        source, filename = source
    src = str(source)
    hf = parse_hf_source(src)
    if hf is None and filename is not None:
        hf = (src, filename)
    if hf is not None:
        path = _hf_download(hf[0], hf[1], allow_download)
    else:
        path = Path(src).expanduser()
        if not path.exists():
            raise HSMRWeightsError(f"{path}: no such file or folder; pass an HSMR release folder or tarball")
    if path.is_dir():
        release = _find_release_in(path)
        if release is None:
            raise HSMRWeightsError(f"{path}: no {CONFIG_REL} + {CKPT_REL} inside; it is not an HSMR release folder")
        return release
    if path.name.endswith(".ckpt"):
        release = path.parent.parent
        if _is_release(release) and (release / CKPT_REL).resolve() == path.resolve():
            return release
        raise HSMRWeightsError(f"{path}: a bare checkpoint needs its release folder (with {CONFIG_REL}); pass that")
    return _extract_tarball(path)


def find_weights(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The HSMR weights to use, or None. Order: ``explicit``, ``$HSMR_WEIGHTS``, a cached HF download.

    Never downloads. An explicit or environment path that does not exist is an error (a typo should not
    silently switch modes). The result is a release folder, a tarball, a ``.ckpt`` or an ``.onnx`` file.
    """
    for given, what in ((explicit, "the given path"), (os.environ.get(ENV_WEIGHTS), f"${ENV_WEIGHTS}")):
        if given:
            p = Path(given).expanduser()
            if not p.exists():
                raise HSMRWeightsError(f"{p}: HSMR weights not found ({what}); fix the path or leave it unset")
            return p
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(HF_REPO, HF_FILENAME)
    except Exception:  # a broken cache must not break keypoints mode
        return None
    return Path(cached) if isinstance(cached, str) else None


# ---------------------------------------------------------------- reading the checkpoint safely


class _Inert:
    """Stands in for any class a checkpoint names that plain tensors do not need (never executed)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import collections

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_sparse_tensor"): torch._utils._rebuild_sparse_tensor,
        ("torch.serialization", "_get_layout"): torch.serialization._get_layout,  # name -> torch.layout
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
    }
    for name in dir(torch):  # dtypes and layouts (a sparse buffer pickles torch.sparse_coo)
        if isinstance(getattr(torch, name, None), torch.dtype | torch.layout | torch.memory_format):
            allowed[("torch", name)] = getattr(torch, name)
    return allowed


class _InertUnpickler(pickle.Unpickler):
    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        return self._allowed.get((module, name), _Inert)


class _InertPickleModule:
    """``pickle_module`` for torch.load: tensors rebuild normally, every other global becomes inert."""

    Unpickler = _InertUnpickler
    load = staticmethod(lambda f, **kw: _InertUnpickler(f, **kw).load())
    __name__ = "hsmr_inert_pickle"


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of a Lightning/plain checkpoint, ``skel_model.*`` dropped. Never runs pickled code."""
    if not path.is_file():
        raise HSMRWeightsError(f"{path}: checkpoint not found")
    # Memory-map zip checkpoints: the optimiser state a Lightning file may carry is then never read into RAM.
    mmap = zipfile.is_zipfile(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        # Lightning stores hyper-parameters as arbitrary objects; weights_only refuses them. Read again with an
        # unpickler that rebuilds tensors only and replaces every other class by an inert placeholder.
        if "Unsupported global" not in str(e) and "weights_only" not in str(e):
            raise HSMRWeightsError(f"{path}: not a readable PyTorch checkpoint ({str(e).splitlines()[0]})") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_InertPickleModule,
                             mmap=mmap)  # fmt: skip
        except Exception as e2:
            raise HSMRWeightsError(
                f"{path}: not a readable PyTorch checkpoint ({e2.__class__.__name__}: {str(e2).splitlines()[0]})"
            ) from None
    except Exception as e:  # truncated zip, a text file, random bytes: all "not a checkpoint"
        msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise HSMRWeightsError(
            f"{path}: not a readable PyTorch checkpoint (truncated or wrong file? {msg}); download it again"
        ) from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise HSMRWeightsError(f"{path}: the checkpoint holds no state_dict of named tensors")
    return {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}


def load_state_strict(net: torch.nn.Module, state: dict[str, torch.Tensor], where: str, *,
                      assign: bool = False) -> None:  # fmt: skip
    """Load weights; any missing/unexpected key or shape mismatch is one error that names them.

    ``assign=True`` makes the tensors of ``state`` the module's own (no copy: for a network built on the meta
    device)."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    bad_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)):
        if keys:
            shown = ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
            problems.append(f"{len(keys)} {label}: {shown}")
    if problems:
        raise HSMRWeightsError(f"{where}: weights do not match the config's network; " + "; ".join(problems))
    net.load_state_dict(state, strict=True, assign=assign)


def load_hsmr(
    source: str | os.PathLike[str] | tuple[str, str] = (HF_REPO, HF_FILENAME),
    filename: str | None = None,
    *,
    device: str | torch.device = "cpu",
    allow_download: bool = True,
) -> HSMRNetwork:
    """Build the network from a release's config and load its weights (eval mode)."""
    release = resolve_release(source, filename, allow_download=allow_download)
    try:
        cfg = HSMRConfig.from_yaml(release / CONFIG_REL)
    except HSMRConfigError as e:
        raise HSMRWeightsError(str(e)) from None
    net = HSMRNetwork(cfg)
    load_state_strict(net, read_checkpoint(release / CKPT_REL), str(release / CKPT_REL))
    return net.eval().to(device)
