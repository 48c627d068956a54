"""Per-crop HSMR predictions for the pipeline: boxes in, SKEL parameters and cameras out."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from .crop import box_to_square, crop_patch, full_cam_t, normalise, patch_cam_t
from .load import cache_dir, file_key, load_hsmr, resolve_release
from .network import HSMRNetwork
from .rep import rep_to_q


def onnx_cache_path(release: Path, fp16: bool = False, int8: bool = False) -> Path:
    """Where the ONNX export of a release is kept (keyed by the checkpoint's identity)."""
    key = file_key(release / "checkpoints" / "hsmr.ckpt")
    return cache_dir() / "onnx" / f"hsmr-{key}{'-fp16' if fp16 else ''}{'-int8' if int8 else ''}.onnx"


class HSMRPredictor:
    """HSMR on image crops, through ONNX Runtime (default) or torch.

    ``source``: an exported ``.onnx`` file, a release folder/tarball, ``hf://...`` or ``(repo_id, filename)``.
    With ``backend="onnx"`` a release is exported once into the cache (``$HSMR_CACHE``/onnx) and reused.
    ``fp16`` applies to ONNX exports made here and is only worth it on CUDA; ``int8`` (dynamic quantisation)
    is faster on CPU but approximate, so it is opt-in.
    """

    def __init__(self, source, device: str = "auto", backend: str = "onnx", *, batch_size: int = 16,
                 fp16: bool = False, int8: bool = False, threads: int | None = None,
                 allow_download: bool = False) -> None:  # fmt: skip
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', not {backend!r}")
        self.backend = backend
        self.batch_size = max(1, int(batch_size))
        self._net: HSMRNetwork | None = None
        self._onnx = None
        is_onnx_file = isinstance(source, str | os.PathLike) and str(source).endswith(".onnx")
        if backend == "onnx":
            from .runtime import OnnxHSMR

            if isinstance(source, HSMRNetwork):
                raise ValueError("the onnx backend takes an .onnx file or a release, not a loaded network")
            if is_onnx_file:
                path = Path(source)
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: ONNX model not found; export one with hsmr-backend export-onnx")
            else:
                release = resolve_release(source, allow_download=allow_download)
                path = onnx_cache_path(release, fp16, int8)
                if not path.is_file():
                    from .export import export_onnx

                    print(f"hsmr: exporting the network to ONNX once ({path})", file=sys.stderr)
                    export_onnx(release, path, fp16=fp16, int8=int8)
            self._onnx = OnnxHSMR(path, device=device, threads=threads, batch_size=self.batch_size)
            self.cfg = self._onnx.cfg
            self.device = "cuda" if self._onnx.provider == "CUDAExecutionProvider" else "cpu"
        else:
            if is_onnx_file:
                raise ValueError("the torch backend needs the release (folder or tarball), not an .onnx file")
            dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
            if source is not None and isinstance(source, HSMRNetwork):
                self._net = source.eval().to(dev)
            else:
                self._net = load_hsmr(source, device=dev, allow_download=allow_download)
            self.cfg = self._net.cfg
            self.device = str(dev)

    @property
    def network(self) -> HSMRNetwork | None:
        return self._net

    def run_patches(self, patches: np.ndarray) -> dict[str, np.ndarray]:
        """(N,3,256,256) normalised float32 patches -> ``poses`` (N,46), ``betas``, ``cam``, ``poses_rep``."""
        if self._onnx is not None:
            rep, betas, cam = self._onnx.run(patches)
        else:
            assert self._net is not None
            rep, betas, cam = run_torch_batches(self._net, (patches,), self.batch_size, self.device,
                                                self.cfg.n_pose_outputs)  # fmt: skip
        rep64 = np.asarray(rep, np.float64)
        poses = rep_to_q(rep64) if self.cfg.pd_poses_repr == "rotation_6d" else rep64
        return {"poses": poses.astype(np.float32), "betas": np.asarray(betas, np.float32),
                "cam": np.asarray(cam, np.float32), "poses_rep": np.asarray(rep, np.float32)}  # fmt: skip

    def make_patches(self, images_rgb_uint8, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crops for each box -> (normalised patches (N,3,P,P), squares (N,3), image sizes (N,2))."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        imgs = _per_box_images(images_rgb_uint8, len(boxes))
        squares = box_to_square(boxes) if len(boxes) else np.zeros((0, 3))
        p = self.cfg.img_patch_size
        crops = np.stack([crop_patch(im, *sq, out=p) for im, sq in zip(imgs, squares, strict=True)]) if len(
            boxes) else np.zeros((0, p, p, 3), np.uint8)  # fmt: skip
        sizes = np.array([[im.shape[1], im.shape[0]] for im in imgs], dtype=np.float64).reshape(-1, 2)
        return normalise(crops, self.cfg.img_mean, self.cfg.img_std), squares, sizes

    def predict(self, images_rgb_uint8, boxes_xyxy: np.ndarray, *, focal_px: float | np.ndarray | None = None,
                principal: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
        """One prediction per box.

        ``images_rgb_uint8``: one H x W x 3 image shared by all boxes, or one image per box (list or array).
        ``boxes_xyxy`` (N,4) pixels. ``focal_px``: the footage's focal length in pixels (default: the
        release's 5000, as the official demo renders). Returns numpy ``poses`` (N,46), ``betas`` (N,10),
        ``cam`` (N,3) (s,tx,ty), ``cam_t_patch`` (N,3), ``cam_t_full`` (N,3) translation in the full image
        camera, ``crop_boxes`` (N,3) (cx, cy, side) in pixels, ``poses_rep`` (N,144).
        """
        patches, squares, sizes = self.make_patches(images_rgb_uint8, boxes_xyxy)
        out = self.run_patches(patches)
        f, p = self.cfg.focal_length, self.cfg.img_patch_size
        out["cam_t_patch"] = patch_cam_t(out["cam"], f, p).astype(np.float32)
        out["cam_t_full"] = full_cam_t(out["cam"], squares, sizes, focal_px=focal_px, principal=principal,
                                       net_focal=f, patch=p).astype(np.float32)  # fmt: skip
        out["crop_boxes"] = squares.astype(np.float32)
        return out


def run_torch_batches(net: torch.nn.Module, inputs: tuple[np.ndarray, ...], batch_size: int, device: str,
                      n_pose_outputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``net.raw`` on float32 ``inputs`` (N rows each) in batches of ``batch_size``: (pose outputs, betas, cam)."""
    outs: list[list[np.ndarray]] = [[], [], []]
    with torch.inference_mode():
        for i in range(0, len(inputs[0]), batch_size):
            batch = (torch.from_numpy(np.ascontiguousarray(a[i : i + batch_size], np.float32)) for a in inputs)
            for acc, t in zip(outs, net.raw(*(b.to(device) for b in batch)), strict=True):
                acc.append(t.float().cpu().numpy())
    empty = (np.zeros((0, n_pose_outputs), np.float32), np.zeros((0, 10), np.float32), np.zeros((0, 3), np.float32))
    rep, betas, cam = (np.concatenate(a) if a else e for a, e in zip(outs, empty, strict=True))
    return rep, betas, cam


def _per_box_images(images, n: int) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim == 3:
        imgs = [images] * n
    else:
        imgs = list(images)
        if len(imgs) != n:
            raise ValueError(f"got {len(imgs)} images for {n} boxes; pass one image, or one image per box")
    for im in imgs:
        if not (isinstance(im, np.ndarray) and im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8):
            raise ValueError("images must be H x W x 3 uint8 RGB arrays")
    return imgs
