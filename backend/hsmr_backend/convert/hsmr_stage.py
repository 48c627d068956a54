"""The HSMR network on the subject's crops (a second pass over the footage), resumable from the work folder."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from hsmr_contract import dofs

from .. import landmarks as L
from .. import video as V
from ..landmarks import people as T
from ..progress import Reporter
from .options import NETWORK_NAMES, ConvertError


@contextlib.contextmanager
def keepalive(reporter: Reporter, stage: str, every: float = 10.0) -> Any:
    """Around one long call that reports nothing itself (loading or exporting the network): a progress line every
    ``every`` s, so the add-on's hang detector sees a live backend. Only around such calls, so a stuck loop
    elsewhere still shows as silence."""
    import threading

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):
                reporter(stage, 0, 1)

    t = threading.Thread(target=beat, name="keepalive", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=1)


def _load_hsmr_chunks(work: L.WorkDir | None, weights: Any, n: int) -> tuple[dict[str, np.ndarray], set[int]]:
    """Predictions saved by an interrupted run for the same track and weights (rows of the track)."""
    out = {"poses": np.zeros((n, dofs.N_DOFS), np.float32), "betas": np.zeros((n, 10), np.float32),
           "cam_t": np.zeros((n, 3), np.float32)}
    done: set[int] = set()
    if work is None or not work.path.is_dir():
        return out, done
    for f in sorted(work.path.glob("hsmr_*.npz")):
        try:
            with np.load(f, allow_pickle=False) as z:
                rows = z["rows"].astype(np.int64)
                if str(z["weights"]) != str(weights) or len(rows) == 0 or rows.max() >= n:
                    continue
                for k in out:
                    out[k][rows] = z[k]
                done.update(int(r) for r in rows)
        except (OSError, ValueError, KeyError):
            continue  # a damaged chunk is simply predicted again
    return out, done


def _load_predictor(network: str, weights: Any, device: str, reporter: Reporter) -> Any:
    """The HSMR or SKEL-CF predictor (both: ``predict(images, boxes, focal_px=)`` and ``batch_size``)."""
    name = NETWORK_NAMES[network]
    reporter.info(f"loading the {name} network (the first run also converts it to ONNX, which takes minutes)")
    try:
        with keepalive(reporter, "hsmr-load"):
            if network == "skelcf":
                from ..hsmr.skelcf_predictor import SKELCFPredictor

                return SKELCFPredictor(weights, device=device)
            from ..hsmr.predictor import HSMRPredictor

            return HSMRPredictor(weights, device=device)
    except (OSError, ValueError, RuntimeError) as e:  # HSMRWeightsError is a RuntimeError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConvertError(f"cannot load the {name} weights: {msg} (fix --weights / $HSMR_WEIGHTS or use --mode "
                           "keypoints)") from None


def hsmr_init(source: V.FrameSource, frame_range: V.FrameRange, track: L.LandmarkTrack, weights: Any,
              device: str, camera: Any, reporter: Reporter, work: L.WorkDir | None = None, *,
              network: str = "hsmr") -> dict[str, np.ndarray]:  # fmt: skip
    """Per-frame predictions of the network (``network``: "hsmr" or "skelcf") on the subject's crops (second pass
    over the footage).

    With ``work``, every batch is saved (atomically) beside the landmark chunks, so a rerun after a crash or a
    cancel predicts only the frames not done yet."""
    import cv2

    predictor = _load_predictor(network, weights, device, reporter)
    n = len(track)
    saved, done_rows = _load_hsmr_chunks(work, weights, n)
    poses, betas, cam_t = saved["poses"], saved["betas"], saved["cam_t"]
    if done_rows:
        reporter.info(f"resuming: {NETWORK_NAMES[network]} predictions for {len(done_rows)} frames already done")
    row = {int(f): i for i, f in enumerate(track.frame_index)}
    focal = float(np.asarray(camera.K)[0, 0])
    batch_imgs: list[np.ndarray] = []
    batch_rows: list[int] = []

    def run() -> None:
        if not batch_rows:
            return
        # landmarks sit inside the body outline: grow their box like a detector's person box
        b = track.boxes[batch_rows].astype(np.float64)
        c, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2 * 1.2
        out = predictor.predict(batch_imgs, np.concatenate([c - half, c + half], 1), focal_px=focal)
        poses[batch_rows] = out["poses"]
        betas[batch_rows] = out["betas"][:, :10]
        cam_t[batch_rows] = out["cam_t_full"]
        if work is not None and work.path.is_dir():
            work.save_arrays(f"hsmr_{batch_rows[0]:06d}", rows=np.array(batch_rows, np.int64),
                             weights=np.array(str(weights)), poses=poses[batch_rows], betas=betas[batch_rows],
                             cam_t=cam_t[batch_rows])
        batch_imgs.clear()
        batch_rows.clear()

    done = 0
    for idx, frame in V.prefetch(source.frames(frame_range)):
        i = row.get(idx)
        done += 1
        if i is None or not track.valid[i] or i in done_rows:
            continue
        batch_imgs.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        batch_rows.append(i)
        if len(batch_rows) >= predictor.batch_size:
            run()
        reporter("hsmr", done, n)
    run()
    reporter("hsmr", n, n)
    # frames without the subject get interpolated predictions (a start for the fit, never data)
    ok = track.valid
    return {"poses": T.bridge(poses, ok), "betas": T.bridge(betas, ok), "cam_t": T.bridge(cam_t, ok),
            "valid": ok.copy()}

