"""Per-crop SKEL-CF predictions: SKEL-CF's crop (reference/skelcf.md "Crop and normalisation"), its box
conditioning and its full-image camera, on ONNX Runtime (default) or torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from . import crop
from .load import cache_dir, file_key
from .predictor import _per_box_images, run_torch_batches
from .rep import rep_to_q
from .skelcf import SKELCFNetwork
from .skelcf_load import load_skelcf, resolve_skelcf


def box_to_square(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(N,4) boxes -> (N,3) (cx, cy, side): the box centre and its longer side (no aspect expansion)."""
    return crop.box_to_square(boxes_xyxy, aspect_wh=1.0)  # a 1:1 aspect enlarges nothing: side = max(w, h)


def crop_affine(cx: float, cy: float, side: float, out: int = 256) -> np.ndarray:
    """2x3 image -> patch map through three float32 point pairs: the centre, centre + (0, side/2) and
    centre + (side/2, 0) go to the patch's centre, bottom-centre and right-centre."""
    c = np.array([cx, cy], np.float64)
    half = float(np.float32(side * 0.5))  # the half side is a float32, the sums are rounded once (as released)
    src = np.stack((c, c + (0.0, half), c + (half, 0.0))).astype(np.float32)
    o = out * 0.5
    dst = np.array([[o, o], [o, 2 * o], [2 * o, o]], np.float32)
    return cv2.getAffineTransform(src, dst)


def crop_patch(image_rgb: np.ndarray, cx: float, cy: float, side: float, out: int = 256) -> np.ndarray:
    """(out, out, 3) uint8 crop, bilinear, zeros outside the image."""
    return cv2.warpAffine(image_rgb, crop_affine(cx, cy, side, out), (out, out), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip


def normalise(patches_uint8: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """(N,H,W,3) uint8 RGB -> (N,3,H,W) float32 ``(x - 255 mean) / (255 std)`` in float32 arithmetic."""
    m = (255.0 * np.asarray(mean, np.float64)).astype(np.float32)
    s = (255.0 * np.asarray(std, np.float64)).astype(np.float32)
    x = (np.asarray(patches_uint8, np.float32) - m) / s
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def bbox_info(squares: np.ndarray, image_wh: np.ndarray, focal_px: float | np.ndarray,
              principal: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """(N,3) float32 ``[(cx - px)/f, (cy - py)/f, side/f]`` (computed in float64); (px, py) = image centre."""
    sq = np.asarray(squares, np.float64).reshape(-1, 3)
    f = np.broadcast_to(np.asarray(focal_px, np.float64), (len(sq),))[:, None]
    pp = crop.principal_points(image_wh, len(sq), principal)
    return (np.concatenate((sq[:, :2] - pp, sq[:, 2:]), axis=1) / f).astype(np.float32)


def full_cam_t(cam: np.ndarray, squares: np.ndarray, image_wh: np.ndarray, focal_px: float | np.ndarray,
               principal: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """(N,3) translation in the full-image camera: ``(tx + 2(cx-px)/(s b), ty + 2(cy-py)/(s b), 2f/(s b))``."""
    cam = np.asarray(cam, np.float64).reshape(-1, 3)
    sq = np.asarray(squares, np.float64).reshape(-1, 3)
    f = np.broadcast_to(np.asarray(focal_px, np.float64), (len(cam),))
    pp = crop.principal_points(image_wh, len(cam), principal)
    sb = cam[:, 0] * sq[:, 2]
    return np.stack((cam[:, 1] + 2 * (sq[:, 0] - pp[:, 0]) / sb, cam[:, 2] + 2 * (sq[:, 1] - pp[:, 1]) / sb,
                     2 * f / sb), axis=1)  # fmt: skip


def onnx_cache_path(checkpoint: Path, fp16: bool = False) -> Path:
    """Where the ONNX export of a checkpoint is kept (keyed by the file's identity)."""
    return cache_dir() / "onnx" / f"skelcf-{file_key(checkpoint)}{'-fp16' if fp16 else ''}.onnx"


class SKELCFPredictor:
    """SKEL-CF on image crops; the same ``predict`` as :class:`~hsmr_backend.hsmr.predictor.HSMRPredictor`.

    ``source``: a SKEL-CF ``.onnx`` export, a checkpoint / folder / repo id, or a loaded :class:`SKELCFNetwork`
    (torch backend). With ``backend="onnx"`` a checkpoint is exported once into ``$HSMR_CACHE/onnx`` and reused.
    """

    def __init__(self, source: Any, device: str = "auto", backend: str = "onnx", *, batch_size: int = 16,
                 fp16: bool = False, threads: int | None = None, allow_download: bool = False) -> None:  # fmt: skip
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', not {backend!r}")
        self.backend, self.batch_size = backend, max(1, int(batch_size))
        self._net: SKELCFNetwork | None = None
        self._onnx = None
        is_onnx_file = isinstance(source, str | os.PathLike) and str(source).endswith(".onnx")
        if backend == "onnx":
            self._open_onnx(source, is_onnx_file, device, fp16, threads, allow_download)
        else:
            if is_onnx_file:
                raise ValueError("the torch backend needs the SKEL-CF checkpoint, not an .onnx file")
            dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
            if isinstance(source, SKELCFNetwork):
                self._net = source.eval().to(dev)
            else:
                self._net = load_skelcf(source, device=dev, allow_download=allow_download)
            self.cfg, self.device = self._net.cfg, str(dev)

    def _open_onnx(self, source: Any, is_onnx_file: bool, device: str, fp16: bool, threads: int | None,
                   allow_download: bool) -> None:  # fmt: skip
        from .runtime import OnnxHSMR

        if isinstance(source, SKELCFNetwork):
            raise ValueError("the onnx backend takes an .onnx file or a checkpoint, not a loaded network")
        if is_onnx_file:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: ONNX model not found")
        else:
            checkpoint = resolve_skelcf(source, allow_download=allow_download)
            path = onnx_cache_path(checkpoint, fp16)
            if not path.is_file():
                from .export import export_skelcf_onnx

                print(f"skelcf: exporting the network to ONNX once ({path})", file=sys.stderr)
                export_skelcf_onnx(checkpoint, path, fp16=fp16)
        self._onnx = OnnxHSMR(path, device=device, threads=threads, batch_size=self.batch_size)
        if not self._onnx.needs_box:
            raise ValueError(f"{path}: an HSMR export, not SKEL-CF (it takes no bbox_info input)")
        self.cfg = self._onnx.cfg
        self.device = "cuda" if self._onnx.provider == "CUDAExecutionProvider" else "cpu"

    def run_patches(self, patches: np.ndarray, boxes_info: np.ndarray) -> dict[str, np.ndarray]:
        """(N,3,256,256) normalised patches + (N,3) bbox_info -> ``poses`` (N,46), ``betas``, ``cam``, ``poses_rep``."""
        if self._onnx is not None:
            rep, betas, cam = self._onnx.run(patches, boxes_info)
        else:
            assert self._net is not None
            rep, betas, cam = run_torch_batches(self._net, (patches, boxes_info), self.batch_size, self.device,
                                                self.cfg.n_pose_outputs)  # fmt: skip
        poses = rep_to_q(np.asarray(rep, np.float64)).astype(np.float32)
        return {"poses": poses, "betas": np.asarray(betas, np.float32), "cam": np.asarray(cam, np.float32),
                "poses_rep": np.asarray(rep, np.float32)}  # fmt: skip

    def predict(self, images_rgb_uint8: Any, boxes_xyxy: np.ndarray, *, focal_px: float | np.ndarray,
                principal: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
        """One prediction per box (``images``: one RGB frame for all boxes, or one per box).

        ``focal_px`` (the footage's focal in pixels) conditions the network and places the camera. Returns
        ``poses`` (N,46), ``betas`` (N,10), ``cam`` (N,3), ``cam_t_full`` (N,3), ``crop_boxes`` (N,3) =
        (cx, cy, side), ``bbox_info`` (N,3), ``poses_rep`` (N,144)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        imgs = _per_box_images(images_rgb_uint8, len(boxes))
        p = self.cfg.img_patch_size
        squares = box_to_square(boxes) if len(boxes) else np.zeros((0, 3))
        crops = [crop_patch(im, *sq, out=p) for im, sq in zip(imgs, squares, strict=True)]
        patches = normalise(np.stack(crops) if crops else np.zeros((0, p, p, 3), np.uint8), self.cfg.img_mean,
                            self.cfg.img_std)  # fmt: skip
        sizes = np.array([[im.shape[1], im.shape[0]] for im in imgs], dtype=np.float64).reshape(-1, 2)
        info = bbox_info(squares, sizes, focal_px, principal)
        out = self.run_patches(patches, info)
        out["cam_t_full"] = full_cam_t(out["cam"], squares, sizes, focal_px, principal).astype(np.float32)
        out["crop_boxes"] = squares.astype(np.float32)
        out["bbox_info"] = info
        return out
