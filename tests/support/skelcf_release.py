"""A tiny SKEL-CF checkpoint in the release's layout (reference/skelcf.md "Release"), for tests and tools/gpu_check.py.

``torch.save`` of a dict with ``model``, ``ema_model`` (``updates`` + ``model.<key>``, four submodules),
``optimizer``, ``lr_scheduler``, ``epoch`` and ``cfg``: an omegaconf-style ``DictConfig`` (pickled by stand-in
classes that carry omegaconf's module and class names and its pickled state: ``_content``, ``_metadata`` with a
``defaultdict`` resolver cache, ``typing.Any`` types), with the storages tagged ``cuda:0`` as a GPU run saves them.
"""

from __future__ import annotations

import collections
import contextlib
import io
import sys
import types
import typing
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from hsmr_backend.hsmr.skelcf import SKELCFConfig, SKELCFNetwork

TINY_CFG: dict[str, Any] = {
    "hub": {
        "backbones": {
            "vit_b": {"img_size": [256, 192], "patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12},
            "vit_h": {"img_size": [256, 192], "patch_size": 16, "embed_dim": 64, "depth": 2, "num_heads": 4,
                      "ratio": 1, "use_checkpoint": False, "mlp_ratio": 4, "qkv_bias": True, "drop_path_rate": 0.55},
        },
        "skel_head": {"pd_poses_repr": "rotation_6d", "transformer_decoder": {
            "depth": 2, "heads": 2, "mlp_dim": 48, "dim_head": 16, "dropout": 0.0, "emb_dropout": 0.0,
            "norm": "layer", "context_dim": "${hub.backbones.vit_h.embed_dim}"}},
    },
    "policy": {"focal_length": 5000},
    "trainer": {"ema_decaybase": 0.9998, "ema_tau": 2000, "ckpt_path": None},
}  # fmt: skip


def random_network(cfg: dict[str, Any] = TINY_CFG, seed: int = 0) -> SKELCFNetwork:
    """A tiny network with every weight random (norms near 1), so each tensor shows in the outputs."""
    torch.manual_seed(seed)
    net = SKELCFNetwork(SKELCFConfig.from_training_config(cfg)).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.normal_(0, 0.1).add_(1.0 if "norm" in name and name.endswith("weight") else 0.0)
        for b in net.buffers():
            b.add_(torch.randn_like(b) * 0.05)  # trained means differ from the seeds
    return net


# ---------------------------------------------------------------- omegaconf stand-ins (pickle as omegaconf does)


class _Pickled:
    def __init__(self, **state: Any) -> None:
        self.__dict__.update(state)


def _stand_ins() -> dict[str, dict[str, type]]:
    mods: dict[str, dict[str, type]] = {"omegaconf.dictconfig": {}, "omegaconf.listconfig": {},
                                        "omegaconf.base": {}, "omegaconf.nodes": {}}  # fmt: skip
    for mod, name in (("omegaconf.dictconfig", "DictConfig"), ("omegaconf.listconfig", "ListConfig"),
                      ("omegaconf.base", "ContainerMetadata"), ("omegaconf.base", "Metadata"),
                      ("omegaconf.nodes", "AnyNode")):  # fmt: skip
        mods[mod][name] = type(name, (_Pickled,), {"__module__": mod, "__qualname__": name})
    return mods


@contextlib.contextmanager
def _omegaconf_importable(classes: dict[str, dict[str, type]]) -> Iterator[None]:
    """Pickle checks a class can be imported by name: register the stand-ins while saving, then remove them."""
    names = ["omegaconf", *classes]
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules["omegaconf"] = types.ModuleType("omegaconf")
    for mod, members in classes.items():
        m = types.ModuleType(mod)
        m.__dict__.update(members)
        sys.modules[mod] = m
    try:
        yield
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


def _to_omegaconf(value: Any, classes: dict[str, dict[str, type]], key: Any = None, parent: Any = None) -> Any:
    dict_cls, list_cls = classes["omegaconf.dictconfig"]["DictConfig"], classes["omegaconf.listconfig"]["ListConfig"]
    meta_cls = classes["omegaconf.base"]["ContainerMetadata"]
    if isinstance(value, dict | list):
        node = (dict_cls if isinstance(value, dict) else list_cls)()
        meta = meta_cls(ref_type=typing.Any, object_type=dict if isinstance(value, dict) else list, optional=True,
                        key=key, flags={}, flags_root=False, resolver_cache=collections.defaultdict(dict),
                        key_type=typing.Any, element_type=typing.Any)  # fmt: skip
        items = value.items() if isinstance(value, dict) else enumerate(value)
        content = {k: _to_omegaconf(v, classes, k, node) for k, v in items}
        node.__dict__.update(_metadata=meta, _parent=parent,
                             _content=content if isinstance(value, dict) else list(content.values()))
        return node
    meta = classes["omegaconf.base"]["Metadata"](ref_type=typing.Any, object_type=None, optional=True, key=key,
                                                 flags={})  # fmt: skip
    return classes["omegaconf.nodes"]["AnyNode"](_val=value, _metadata=meta, _parent=parent)


# ---------------------------------------------------------------- the checkpoint file


def _release_dict(net: SKELCFNetwork, cfg_node: Any, extra: dict[str, Any] | None,
                  ema_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    weights["cam_model.backbone.conv1.weight"] = torch.randn(4, 3, 3, 3)  # the field-of-view net: never read
    weights["skel_model.skin_template_v"] = torch.randn(10, 3)
    weights["skel_model.J_regressor_osim"] = torch.eye(4).to_sparse()
    ema = collections.OrderedDict([("updates", torch.tensor(1234))])
    ema.update((f"model.{k}", v) for k, v in weights.items())
    ema.update(ema_extra or {})
    raw = collections.OrderedDict((k, v + 0.01 * torch.randn_like(v) if v.is_floating_point() and not v.is_sparse
                                   else v) for k, v in weights.items())  # fmt: skip
    optimizer = {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}},
                 "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999), "params": [0]}]}  # fmt: skip
    out = {"model": raw, "ema_model": ema, "optimizer": optimizer,
           "lr_scheduler": {"base_lrs": [1e-5], "_last_lr": [1e-5]}, "epoch": 7, "cfg": cfg_node}  # fmt: skip
    return {**(extra or {}), **out}


def _tag_storages_for_gpu(path: Path) -> None:
    """Rewrite the zip with every storage's location ``cpu`` -> ``cuda:0`` in data.pkl (protocol-2 strings)."""
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    cpu, gpu = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                assert cpu in data
                data = data.replace(cpu, gpu)
            zf.writestr(info.filename, data)
    path.write_bytes(buf.getvalue())


def write_checkpoint(path: str | Path, net: SKELCFNetwork | None = None, *, cfg: dict[str, Any] = TINY_CFG,
                     extra: dict[str, Any] | None = None, ema_extra: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Write ``net`` (default: :func:`random_network`) as a release-layout ``best.pth``; ``extra`` keys go first
    in the top-level dict, ``ema_extra`` entries are set in the ``ema_model`` state dict."""
    net = net or random_network(cfg)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = _stand_ins()
    with _omegaconf_importable(classes):
        torch.save(_release_dict(net, _to_omegaconf(cfg, classes), extra, ema_extra), path)
    _tag_storages_for_gpu(path)
    return path
