"""Network sizes of an HSMR release, read from its ``.hydra/config.yaml`` (reference/hsmr.md §0-§1).

The release stores the composed Hydra config: ``pipeline.cfg`` holds ``backbone`` (ViT kwargs),
``head.cfg.transformer_decoder`` (decoder kwargs), ``pd_poses_repr`` and ``policy`` (patch size, focal,
normalisation). Values may be OmegaConf interpolations (``${policy}``, ``${...pd_poses_repr}``); the few we
read are resolved here without OmegaConf. Unknown keys are ignored, so any release with the same structure
and different sizes builds the matching network.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

DECODER_DIM_DEFAULT = 1024  # the release's head hard-codes this width; a `dim` key in the config wins


class HSMRConfigError(ValueError):
    """The release config cannot describe a network we can build."""


@dataclass(frozen=True)
class BackboneConfig:
    img_size: tuple[int, int] = (256, 192)  # H x W that the ViT sees
    patch_size: int = 16
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    ratio: int = 1


@dataclass(frozen=True)
class DecoderConfig:
    dim: int = DECODER_DIM_DEFAULT
    depth: int = 6
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 1024
    context_dim: int = 1280


def sizes_from_dict(d: dict[str, Any]) -> tuple[BackboneConfig, DecoderConfig]:
    """The backbone and decoder sizes of a config stored with ``to_dict`` (JSON turns tuples into lists)."""
    bb = dict(d.get("backbone", {}))
    if "img_size" in bb:
        bb["img_size"] = tuple(bb["img_size"])
    return BackboneConfig(**bb), DecoderConfig(**d.get("decoder", {}))


@dataclass(frozen=True)
class HSMRConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pd_poses_repr: str = "rotation_6d"  # or "euler_angle" (46 raw outputs)
    img_patch_size: int = 256
    focal_length: float = 5000.0
    img_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    img_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @property
    def n_pose_outputs(self) -> int:
        return 144 if self.pd_poses_repr == "rotation_6d" else 46

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HSMRConfig:
        backbone, decoder = sizes_from_dict(d)
        return cls(
            backbone=backbone,
            decoder=decoder,
            pd_poses_repr=d.get("pd_poses_repr", "rotation_6d"),
            img_patch_size=int(d.get("img_patch_size", 256)),
            focal_length=float(d.get("focal_length", 5000.0)),
            img_mean=tuple(d.get("img_mean", (0.485, 0.456, 0.406))),
            img_std=tuple(d.get("img_std", (0.229, 0.224, 0.225))),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> HSMRConfig:
        path = Path(path)
        try:
            root = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise HSMRConfigError(f"{path}: cannot read the release config ({e.__class__.__name__}: {e})") from None
        try:
            return cls.from_hydra(root)
        except HSMRConfigError as e:
            raise HSMRConfigError(f"{path}: {e}") from None

    @classmethod
    def from_hydra(cls, root: Any) -> HSMRConfig:
        if not isinstance(root, dict):
            raise HSMRConfigError("not a Hydra config (top level is not a mapping)")
        r = _Resolver(root)
        base = ("pipeline", "cfg") if isinstance(r.get(("pipeline", "cfg")), dict) else ()
        if not isinstance(r.get((*base, "backbone")), dict):
            raise HSMRConfigError("no `pipeline.cfg.backbone` mapping: not an HSMR release config")
        bb = r.get((*base, "backbone"))
        target = str(bb.get("_target_", "ViT"))
        if not target.endswith("ViT"):
            raise HSMRConfigError(f"backbone {target!r} is not supported (only the ViT backbone of HSMR)")

        def bget(key: str, default: Any) -> Any:
            v = r.get((*base, "backbone", key))
            return default if v is None else v

        backbone = BackboneConfig(
            img_size=tuple(int(v) for v in bget("img_size", (256, 192))),
            patch_size=int(bget("patch_size", 16)),
            embed_dim=int(bget("embed_dim", 1280)),
            depth=int(bget("depth", 32)),
            num_heads=int(bget("num_heads", 16)),
            mlp_ratio=float(bget("mlp_ratio", 4.0)),
            qkv_bias=bool(bget("qkv_bias", True)),
            ratio=int(bget("ratio", 1)),
        )
        if backbone.ratio != 1:
            raise HSMRConfigError(f"backbone ratio {backbone.ratio} is not supported (HSMR uses 1)")
        head = (*base, "head", "cfg") if isinstance(r.get((*base, "head", "cfg")), dict) else (*base, "head")
        td = r.get((*head, "transformer_decoder"))
        if not isinstance(td, dict):
            raise HSMRConfigError("no `head.cfg.transformer_decoder` mapping: not an HSMR release config")

        def dget(key: str, default: Any) -> Any:
            v = r.get((*head, "transformer_decoder", key))
            return default if v is None else v

        norm = dget("norm", "layer")
        if norm != "layer":
            raise HSMRConfigError(f"decoder norm {norm!r} is not supported (HSMR uses 'layer')")
        decoder = DecoderConfig(
            dim=int(dget("dim", DECODER_DIM_DEFAULT)),
            depth=int(dget("depth", 6)),
            heads=int(dget("heads", 8)),
            dim_head=int(dget("dim_head", 64)),
            mlp_dim=int(dget("mlp_dim", 1024)),
            context_dim=int(dget("context_dim", backbone.embed_dim)),
        )
        if decoder.context_dim != backbone.embed_dim:
            raise HSMRConfigError(
                f"decoder context_dim {decoder.context_dim} != backbone embed_dim {backbone.embed_dim}"
            )
        repr_ = r.get((*head, "pd_poses_repr")) or r.get((*base, "pd_poses_repr")) or "rotation_6d"
        if repr_ not in ("rotation_6d", "euler_angle"):
            raise HSMRConfigError(f"pose representation {repr_!r} is unknown (rotation_6d | euler_angle)")
        pol = (*base, "policy") if isinstance(r.get((*base, "policy")), dict) else ("policy",)

        def pget(key: str, default: Any) -> Any:
            v = r.get((*pol, key))
            return default if v is None else v

        return HSMRConfig(
            backbone=backbone,
            decoder=decoder,
            pd_poses_repr=str(repr_),
            img_patch_size=int(pget("img_patch_size", 256)),
            focal_length=float(pget("focal_length", 5000.0)),
            img_mean=tuple(float(v) for v in pget("img_mean", (0.485, 0.456, 0.406))),
            img_std=tuple(float(v) for v in pget("img_std", (0.229, 0.224, 0.225))),
        )


_INTERP = re.compile(r"^\$\{([^{}]+)\}$")


class _Resolver:
    """Reads nested keys, following whole-value OmegaConf interpolations (absolute and relative)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def get(self, path: tuple[str, ...], _depth: int = 0) -> Any:
        if _depth > 32:
            raise HSMRConfigError(f"interpolation loop at {'.'.join(path)}")
        node: Any = self.root
        for n, key in enumerate(path):
            node = self._follow(node, path[: max(n - 1, 0)], _depth)
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return self._follow(node, path[:-1], _depth)

    def _follow(self, node: Any, parent: tuple[str, ...], depth: int) -> Any:
        if isinstance(node, str):
            m = _INTERP.match(node.strip())
            if m and not m.group(1).startswith(("oc.", "env:", "hydra:")) and ":" not in m.group(1):
                ref = m.group(1)
                if ref.startswith("."):
                    dots = len(ref) - len(ref.lstrip("."))
                    up = dots - 1  # `.x` is a sibling; each further dot climbs one level
                    base = parent[: len(parent) - up] if up else parent
                    target = (*base, *ref.lstrip(".").split("."))
                else:
                    target = tuple(ref.split("."))
                return self.get(target, depth + 1)
        return node
