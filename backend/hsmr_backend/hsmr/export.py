"""Export the HSMR network to ONNX (``hsmr-backend export-onnx``).

The graph is ``patches (B,3,256,256) float32 -> poses_rep (B,144), betas (B,10), cam (B,3)`` with a dynamic
batch axis; the pose conversion to q stays outside (numpy/torch, float64) so it is exact and NaN-free.
The network config is stored in the model's metadata (``hsmr_config``), so an ``.onnx`` file is
self-contained. Models over ~1.8 GB (ViT-H) keep their weights in one external ``<name>.data`` file beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from .config import HSMRConfig
from .network import HSMRNetwork, RawOutputs
from .skelcf import SKELCFConfig, SKELCFNetwork

DEFAULT_OPSET = 17
EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's hard limit is 2 GiB; stay below it with margin
META_CONFIG = "hsmr_config"
META_SKELCF = "skelcf_config"
INPUT_NAME = "patches"
BOX_INPUT = "bbox_info"  # SKEL-CF's second input (B,3)
OUTPUT_NAMES = ("poses_rep", "betas", "cam")


class _Fp16(torch.nn.Module):
    """fp16 weights and compute inside, float32 at the graph's edges (callers need not change)."""

    def __init__(self, net: HSMRNetwork | SKELCFNetwork) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t.float() for t in self.net.raw(*(x.half() for x in inputs)))


def _param_bytes(net: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])


def export_onnx(
    source: HSMRNetwork | str | os.PathLike[str] | tuple[str, str],
    output: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    int8: bool = False,
    external_data: bool | None = None,
    allow_download: bool = False,
) -> Path:
    """Write the network (a loaded :class:`HSMRNetwork` or a release source for ``load_hsmr``) to ``output``.

    ``external_data=None`` chooses by size. ``int8`` applies ONNX Runtime's dynamic int8 quantisation to the
    MatMul weights (per channel): several times faster on CPUs with VNNI, but NOT numerically the released
    model (opt-in, see docs/hsmr.md). Returns the ``.onnx`` path.
    """
    if fp16 and int8:
        raise ValueError("choose fp16 or int8, not both")

    from .load import load_hsmr

    net = source if isinstance(source, HSMRNetwork) else load_hsmr(source, allow_download=allow_download)
    net = net.eval().cpu()
    shrink = 2 if fp16 else (4 if int8 else 1)
    big = _param_bytes(net) // shrink > EXTERNAL_DATA_BYTES if external_data is None else external_data
    module: torch.nn.Module = _Fp16(_clone(net)) if fp16 else RawOutputs(net)
    dummy = torch.zeros(2, 3, net.cfg.img_patch_size, net.cfg.img_patch_size)
    meta = {**net.cfg.to_dict(), "fp16": fp16, "int8": int8}
    return write_onnx(module, (dummy,), (INPUT_NAME,), (META_CONFIG, meta), output, opset=opset, int8=int8,
                      external_data=big)


def write_onnx(module: torch.nn.Module, dummies: tuple[torch.Tensor, ...], input_names: tuple[str, ...],
               meta: tuple[str, dict], output: str | os.PathLike[str], *, opset: int, int8: bool = False,
               external_data: bool = False) -> Path:  # fmt: skip
    """Trace ``module`` (batch axis dynamic on every input and output), optionally int8-quantise it, store
    ``meta`` = (key, JSON-able dict) in the model's metadata and write it atomically (weights beside it in
    ``<name>.onnx.data`` when ``external_data``). Returns the ``.onnx`` path."""
    import onnx

    out = Path(output)
    if out.suffix != ".onnx":
        out = out.with_suffix(".onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".onnx-export-") as tmp:
        raw = Path(tmp) / "model.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                module, dummies, str(raw), dynamo=False, opset_version=opset, input_names=list(input_names),
                output_names=list(OUTPUT_NAMES), do_constant_folding=True,
                dynamic_axes={n: {0: "batch"} for n in (*input_names, *OUTPUT_NAMES)},
            )  # fmt: skip
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(tmp) / "int8.onnx"
            logging.disable(logging.WARNING)  # its advice to pre-process is about static quantisation
            try:
                quantize_dynamic(raw, quantized, op_types_to_quantize=["MatMul"], per_channel=True,
                                 weight_type=QuantType.QInt8, use_external_data_format=True)  # fmt: skip
            finally:
                logging.disable(logging.NOTSET)
            raw = quantized
        model = onnx.load(str(raw), load_external_data=True)
        del model.metadata_props[:]
        entry = model.metadata_props.add()
        entry.key, entry.value = meta[0], json.dumps(meta[1])
        data_name = out.name + ".data"
        for stale in (out, out.with_name(data_name)):
            stale.unlink(missing_ok=True)
        tmp_out = Path(tmp) / out.name
        if external_data:
            onnx.save_model(model, str(tmp_out), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name, size_threshold=1024)  # fmt: skip
            shutil.move(str(Path(tmp) / data_name), out.with_name(data_name))
        else:
            onnx.save_model(model, str(tmp_out))
        shutil.move(str(tmp_out), out)
    return out


def export_skelcf_onnx(source: SKELCFNetwork | str | os.PathLike[str], output: str | os.PathLike[str], *,
                       opset: int = DEFAULT_OPSET, fp16: bool = False, external_data: bool | None = None,
                       allow_download: bool = False) -> Path:  # fmt: skip
    """Write SKEL-CF (a loaded network or a source for ``load_skelcf``) to ``output``:
    ``patches (B,3,256,256), bbox_info (B,3) -> poses_rep, betas, cam``, config in the ``skelcf_config`` metadata."""
    from .skelcf_load import load_skelcf

    net = source if isinstance(source, SKELCFNetwork) else load_skelcf(source, allow_download=allow_download)
    net = net.eval().cpu()
    big = _param_bytes(net) // (2 if fp16 else 1) > EXTERNAL_DATA_BYTES if external_data is None else external_data
    module: torch.nn.Module = _Fp16(_clone(net)) if fp16 else RawOutputs(net)
    p = net.cfg.img_patch_size
    dummies = (torch.zeros(2, 3, p, p), torch.full((2, 3), 0.1))
    meta = {**net.cfg.to_dict(), "fp16": fp16, "int8": False}
    return write_onnx(module, dummies, (INPUT_NAME, BOX_INPUT), (META_SKELCF, meta), output, opset=opset,
                      external_data=big)  # fmt: skip


def _clone(net: HSMRNetwork | SKELCFNetwork) -> HSMRNetwork | SKELCFNetwork:
    twin = type(net)(net.cfg)
    twin.load_state_dict(net.state_dict())
    return twin.eval()


def read_onnx_config(path: str | os.PathLike[str]) -> tuple[HSMRConfig | SKELCFConfig, bool]:
    """(config, fp16) stored in an exported model's metadata (an HSMR or a SKEL-CF export)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for p in model.metadata_props:
        if p.key in (META_CONFIG, META_SKELCF):
            d = json.loads(p.value)
            fp16 = bool(d.pop("fp16", False))
            d.pop("int8", None)
            return (HSMRConfig if p.key == META_CONFIG else SKELCFConfig).from_dict(d), fp16
    raise ValueError(f"{path}: not an HSMR ONNX export (no {META_CONFIG} metadata); export it with export-onnx")


# ---------------------------------------------------------------- command-line helpers (wired by cli.py)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", default=None,
                        help="HSMR release folder or tarball, a SKEL-CF checkpoint (best.pth), or hf://owner/repo/file "
                             "(default: the weights found via $HSMR_WEIGHTS or the Hugging Face cache)")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, help="output .onnx path (weights go beside it)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--fp16", action="store_true", help="fp16 weights/compute (for the CUDA provider)")
    parser.add_argument("--int8", action="store_true",
                        help="dynamic int8 quantisation for CPU speed (approximate: not the released numbers)")
    parser.add_argument("--download", action="store_true",
                        help="allow downloading the official release from Hugging Face")  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    import sys

    from .load import HF_FILENAME, HF_REPO, HSMRWeightsError, find_weights

    try:
        source = args.source or find_weights()
        if source is None:
            if not args.download:
                print("export-onnx: no HSMR weights found; pass a release folder/tarball, set $HSMR_WEIGHTS, "
                      "or add --download", file=sys.stderr)  # fmt: skip
                return 2
            source = (HF_REPO, HF_FILENAME)
        if str(source).endswith(".onnx"):
            print(f"export-onnx: {source} is already an ONNX model", file=sys.stderr)
            return 2
        from .skelcf_load import network_kind

        if not isinstance(source, tuple) and network_kind(source) == "skelcf":
            if getattr(args, "int8", False):
                raise ValueError("--int8 is for HSMR exports only; export SKEL-CF in fp32 or --fp16")
            path = export_skelcf_onnx(source, args.output, opset=args.opset, fp16=args.fp16)
        else:
            path = export_onnx(source, args.output, opset=args.opset, fp16=args.fp16,
                               int8=getattr(args, "int8", False), allow_download=args.download)  # fmt: skip
    except (HSMRWeightsError, ValueError, OSError) as e:
        print(f"export-onnx: {e}", file=sys.stderr)
        return 1
    print(f"export-onnx: wrote {path}")
    return 0
