"""The main job: footage in, result file out.

decode (video.py) -> subject landmarks (landmarks.py, resumable) -> [HSMR network on crops] -> SKELify over
time (fit.py) -> world frame (world.py) -> result file (result_format.save, atomic) -> overlay video + plot.

Every expected failure raises ``ConvertError`` (or a subclass of ValueError from the stage that found it)
with one line saying what is wrong and what to do; cli.py prints it without a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, result_format
from . import landmarks as L
from . import video as V
from .landmarks import people as T
from .progress import Reporter
from .scene import FrameSampler, camera_motion, focal_from_scene, pitch_roll_deg, scene_lines, vertical_up
from .skel import dofs

BACK_VIEW_SHARE = 0.25  # warn when at least this share of the valid frames shows the subject from behind
FOCAL_SCENE_CHANGE = 0.05  # a focal from the scene this far from the default replaces it


class ConvertError(RuntimeError):
    """An expected failure of the conversion; the message is one line for the user."""


@dataclass
class ConvertOptions:
    video: str
    output: str
    mode: str = "auto"  # keypoints | hsmr | auto
    body: str = "open"  # "open" or a path to skel_male.pkl / skel_female.pkl
    device: str = "auto"  # auto | cpu | cuda
    frames: str | None = None  # "START:END"
    stride: int = 1
    subject: str | None = None
    focal_px: float | None = None
    smoothing: float | None = None  # None = the fitter's default
    fps: float | None = None  # override (image sequences)
    overlay: bool = True
    plot: bool = True
    resume: bool = True
    weights: str | None = None  # HSMR weights (else hsmr.find_weights())
    up: str = "auto"  # auto: the scene's vertical edges when they decide, else the body | body: the body alone


@dataclass
class ConvertSummary:
    result: str
    outputs: list[str]
    mode: str
    device: str
    frames: int
    valid_frames: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    subject_note: str = ""
    focal_note: str = ""
    result_seconds: float = 0.0  # decode -> result file on disk (before the overlay and the plot)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------- choices


def resolve_device(device: str, reporter: Reporter) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise ConvertError(f"--device must be auto, cpu or cuda (got {device!r})")
    if device == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except Exception:
        has_cuda = False
    if has_cuda:
        return "cuda"
    if device == "cuda":
        reporter.info("CUDA is not available here: running on the CPU instead", level="warning")
    return "cpu"


def resolve_mode(mode: str, weights: str | None, reporter: Reporter) -> tuple[str, Any]:
    """('keypoints' | 'hsmr', weights path or None); says which ran and why."""
    if mode not in ("auto", "keypoints", "hsmr"):
        raise ConvertError(f"--mode must be auto, keypoints or hsmr (got {mode!r})")
    if mode == "keypoints":
        reporter.info("mode: keypoints (MediaPipe landmarks -> SKELify)")
        return "keypoints", None
    try:
        from .hsmr import find_weights
    except ImportError:
        find_weights = None
    found = None
    if find_weights is not None:
        try:
            found = find_weights(weights)
        except Exception as e:  # HSMRWeightsError: a given path that does not exist
            raise ConvertError(str(e)) from None
    if found is None:
        if mode == "hsmr":
            raise ConvertError(
                "--mode hsmr needs the HSMR weights: set $HSMR_WEIGHTS or pass --weights (release folder/tarball), "
                "or use --mode keypoints"
            )
        reporter.info("mode: keypoints (no HSMR weights found; set $HSMR_WEIGHTS to use the network)")
        return "keypoints", None
    _check_weights_file(found)
    reporter.info(f"mode: hsmr (weights: {found})")
    return "hsmr", found


def _check_weights_file(found: Any) -> None:
    """Cheap checks before the long landmark stage: the release layout and a checkpoint that is a whole zip."""
    import zipfile

    if str(found).endswith(".onnx"):
        return
    try:
        from .hsmr.load import CKPT_REL, HSMRWeightsError, resolve_release
    except ImportError:
        return
    try:
        release = resolve_release(found, allow_download=False)
    except HSMRWeightsError as e:
        raise ConvertError(f"{e} (or use --mode keypoints)") from None
    ckpt = release / CKPT_REL
    if ckpt.is_file() and not zipfile.is_zipfile(ckpt):
        raise ConvertError(f"{ckpt}: truncated or not a PyTorch checkpoint; download the HSMR release again "
                           "(or use --mode keypoints)")


def body_label(body: str, model: Any = None) -> str:
    if body == "open":
        return "open"
    name = getattr(model, "name", None) or getattr(getattr(model, "data", None), "name", None) or Path(body).stem
    return str(name)


# ---------------------------------------------------------------- the model's arrays


def _np(x: Any) -> np.ndarray:
    if x is None:
        return None  # type: ignore[return-value]
    if hasattr(x, "detach"):
        if getattr(x, "is_sparse", False):
            x = x.to_dense()
        x = x.detach().cpu().numpy()
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(x)


def _model_array(model: Any, name: str) -> np.ndarray | None:
    """An array of the body model by its SkelData name (``model.data.<name>``, else an attribute)."""
    for holder in (getattr(model, "data", None), model):
        if holder is not None and getattr(holder, name, None) is not None:
            return _np(getattr(holder, name))
    return None


def _model_device(model: Any) -> Any:
    for get in ("parameters", "buffers"):
        try:
            return next(iter(getattr(model, get)())).device
        except (AttributeError, StopIteration, TypeError):
            continue
    return "cpu"


def model_forward(model: Any, poses: np.ndarray, betas: np.ndarray, trans: np.ndarray, *, batch: int = 64,
                  **kw: Any) -> list[Any]:
    """Run the body model in batches (numpy in); returns the SKELOutput of each batch."""
    import torch

    outs = []
    t = len(poses)
    dtype = torch.float32
    dev = _model_device(model)
    b = torch.as_tensor(np.asarray(betas, np.float32), dtype=dtype, device=dev).reshape(1, -1)
    with torch.no_grad():
        for i in range(0, t, batch):
            p = torch.as_tensor(np.asarray(poses[i:i + batch], np.float32), dtype=dtype, device=dev)
            tr = torch.as_tensor(np.asarray(trans[i:i + batch], np.float32), dtype=dtype, device=dev)
            outs.append(model(p, b.expand(len(p), -1), tr, **kw))
    return outs


def _bone_vertex_joint(model: Any) -> np.ndarray | None:
    """The joint that moves each bone-mesh vertex (its posing bone), from the model's buffers."""
    w = _model_array(model, "skel_weights")
    if w is not None:
        return np.argmax(w, axis=1)
    if getattr(model, "bone_one_hot", False) and hasattr(model, "bone_groups"):
        pose = _np(model.bone_group_pose)
        sorted_joint = np.concatenate([np.full(e - s, pose[g]) for g, (s, e) in enumerate(model.bone_groups)])
        return sorted_joint if model.bone_sorted else sorted_joint[_np(model.bone_unsort)]
    idx = _model_array(model, "bone_w_idx")
    if idx is not None:
        return idx[:, 0]  # soft weights: the bone with the largest weight
    return None


def _posedirs(model: Any) -> np.ndarray | None:
    """Pose-corrective blend shapes as (207, V, 3), or None when the body has none."""
    if getattr(model, "has_posedirs", True) is False:
        return None
    pd = _model_array(model, "posedirs")
    if pd is not None and pd.ndim == 3 and pd.shape[2] == 207:
        return np.ascontiguousarray(np.transpose(pd, (2, 0, 1))).astype(np.float32)
    pd_t = _model_array(model, "posedirs_t")  # (207, V*3)
    if pd_t is not None and pd_t.shape[0] == 207:
        return np.ascontiguousarray(pd_t.reshape(207, -1, 3)).astype(np.float32)
    return None


def rest_arrays(model: Any, betas: np.ndarray) -> dict[str, np.ndarray]:
    """The subject's rest pose: joints, frames, shaped skin, faces, weights, optional bone meshes."""
    zero_q = np.zeros((1, dofs.N_DOFS), np.float32)
    zero_t = np.zeros((1, 3), np.float32)
    out = model_forward(model, zero_q, betas, zero_t, pose_correctives=False, bone_mesh=True)[0]
    arrays: dict[str, np.ndarray] = {
        "rest_joints": _np(out.joints)[0].astype(np.float32),
        "rest_frames": _np(out.rest_frames)[0].astype(np.float32),
        "skin_rest_verts": _np(out.v_shaped)[0].astype(np.float32),
        "skin_faces": _np(out.skin_faces).astype(np.int32).reshape(-1, 3),
    }
    weights = _model_array(model, "skin_weights")
    if weights is None:
        raise ConvertError("the body model exposes no skin weights; the body file may be incomplete")
    arrays["skin_weights"] = weights.astype(np.float32)
    bone_verts = getattr(out, "bone_verts", None)
    bone_faces = _model_array(model, "bone_faces")
    if bone_faces is None:
        bone_faces = _model_array(model, "skel_template_f")
    bone_joint = _bone_vertex_joint(model)
    if bone_verts is not None and bone_faces is not None and bone_joint is not None and bone_faces.size:
        arrays["bone_rest_verts"] = _np(bone_verts)[0].astype(np.float32)
        arrays["bone_faces"] = bone_faces.astype(np.int32).reshape(-1, 3)
        arrays["bone_vertex_joint"] = bone_joint.astype(np.int32)
    posedirs = _posedirs(model)
    if posedirs is not None:
        arrays["skin_posedirs"] = posedirs
    return arrays


def dof_arrays() -> dict[str, np.ndarray]:
    """The serialised DoF table and kinematic tree (from skel.dofs, the single source)."""
    return {
        "dof_names": np.array(dofs.DOF_NAMES),
        "dof_joint": np.array([d.joint for d in dofs.DOFS], np.int32),
        "dof_axis": np.array([d.axis for d in dofs.DOFS], np.float32),
        "dof_flip": np.array([d.flip for d in dofs.DOFS], np.float32),
        "dof_limits": np.array([(d.lower, d.upper) for d in dofs.DOFS], np.float32),
        "joint_names": np.array(dofs.JOINT_NAMES),
        "joint_parents": np.array(dofs.PARENTS, np.int32),
    }


def versions() -> dict[str, str]:
    out = {"hsmr_backend": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "cv2", "mediapipe"):
        with contextlib.suppress(Exception):
            out[mod] = __import__(mod).__version__
    return out


def assemble(
    track: L.LandmarkTrack, fit: Any, world: Any, model: Any, camera: Any, meta: dict[str, Any], body: str,
) -> dict[str, np.ndarray]:
    """Every field of the result file from the stage outputs (validated later by result_format.save)."""
    poses = _np(world.poses).astype(np.float32)
    trans = _np(world.trans).astype(np.float32)
    betas = _np(fit.betas).astype(np.float32).reshape(-1)
    # only the two per-frame arrays the file needs: no skin is posed (it would cost time and, kept per frame,
    # ~0.1 MB a frame of memory)
    offs, feats = [], []
    for i in range(0, len(poses), 64):
        [o] = model_forward(model, poses[i:i + 64], betas, trans[i:i + 64], batch=64, pose_correctives=True,
                            bone_mesh=False, skin=False)
        offs.append(_np(o.joint_offsets).astype(np.float32))
        pf = getattr(o, "pose_features", None)
        feats.append(None if pf is None else _np(pf).astype(np.float32))
        del o
    joint_offsets = np.concatenate(offs)
    arrays: dict[str, Any] = {
        "meta_json": json.dumps(meta, default=str),
        "body": body,
        "fps": np.float64(track.fps),
        "frame_index": track.frame_index.astype(np.int64),
        "valid": track.valid.astype(bool),
        **dof_arrays(),
        "poses": poses,
        "betas": betas,
        "trans": trans,
        "joint_offsets": joint_offsets,
        "joints_cam": _np(fit.joints_cam).astype(np.float32),
        "joints_world": _np(world.joints_world).astype(np.float32),
        **rest_arrays(model, betas),
        "model_to_world": _np(world.model_to_world).astype(np.float32),
        "camera_to_world": _np(world.camera_to_world).astype(np.float32),
        "camera_K": _np(camera.K).astype(np.float32),
        "image_size": np.array(track.image_size, np.int32),
        "keypoint_names": np.array(L.KEYPOINT_NAMES),
        "keypoints_2d": track.kp2d.astype(np.float32),
        "reprojection_error_px": np.nan_to_num(_np(fit.reprojection_error_px).astype(np.float32), nan=0.0),
        "fit_loss": np.nan_to_num(_np(fit.fit_loss).astype(np.float32), nan=0.0),
    }
    if "skin_posedirs" in arrays and all(f is not None for f in feats):
        arrays["pose_features"] = np.concatenate(feats)
    else:
        arrays.pop("skin_posedirs", None)
    return arrays


# ---------------------------------------------------------------- HSMR stage


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


def hsmr_init(source: V.FrameSource, frame_range: V.FrameRange, track: L.LandmarkTrack, weights: Any,
              device: str, camera: Any, reporter: Reporter, work: L.WorkDir | None = None) -> dict[str, np.ndarray]:
    """Per-frame HSMR predictions on the subject's crops (second pass over the footage).

    With ``work``, every batch is saved (atomically) beside the landmark chunks, so a rerun after a crash or a
    cancel predicts only the frames not done yet."""
    import cv2

    from .hsmr.predictor import HSMRPredictor

    reporter.info("loading the HSMR network (the first run also converts it to ONNX, which takes minutes)")
    try:
        with keepalive(reporter, "hsmr-load"):
            predictor = HSMRPredictor(weights, device=device)
    except (OSError, ValueError, RuntimeError) as e:  # HSMRWeightsError is a RuntimeError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConvertError(f"cannot load the HSMR weights: {msg} (fix --weights / $HSMR_WEIGHTS or use --mode "
                           "keypoints)") from None
    n = len(track)
    saved, done_rows = _load_hsmr_chunks(work, weights, n)
    poses, betas, cam_t = saved["poses"], saved["betas"], saved["cam_t"]
    if done_rows:
        reporter.info(f"resuming: HSMR predictions for {len(done_rows)} frames already done")
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


# ---------------------------------------------------------------- the job


def _work_key(opts: ConvertOptions, source: V.FrameSource) -> dict[str, Any]:
    st = os.stat(opts.video) if os.path.isfile(opts.video) else None
    return {"video": os.path.abspath(opts.video), "size": st.st_size if st else None,
            "mtime": st.st_mtime_ns if st else None, "frames": opts.frames, "stride": opts.stride,
            "subject": opts.subject, "landmarks_version": 1, "image_size": list(source.size)}


def output_paths(result: str | os.PathLike) -> dict[str, Path]:
    r = Path(result)
    stem = r.with_suffix("") if r.suffix == ".npz" else r
    return {"result": r, "overlay": Path(f"{stem}.overlay.mp4"), "plot": Path(f"{stem}.angles.png"),
            "work": Path(f"{r}.work")}


def _decode_shortfall(source: V.FrameSource, frame_range: V.FrameRange, track: L.LandmarkTrack) -> str | None:
    """A warning when decoding stopped well before the frames the container announced (a damaged file)."""
    if not isinstance(source, V.VideoFileSource) or not source.n_frames or not len(track):
        return None
    expected = frame_range.indices(source.n_frames)
    if not len(expected):
        return None
    last = int(track.frame_index[-1])
    missing = len(range(last + frame_range.stride, expected[-1] + 1, frame_range.stride))
    if missing <= max(2, len(expected) // 100):  # containers' frame counts are often off by a frame or two
        return None
    return (f"the video could only be decoded up to frame {last} of {source.n_frames}: the file is damaged or cut "
            f"short after that point; converted the first part (re-export or re-copy the file for the rest)")


def convert(opts: ConvertOptions, reporter: Reporter | None = None) -> ConvertSummary:
    reporter = reporter or Reporter("none")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    paths = output_paths(opts.output)
    if paths["result"].suffix != ".npz":
        raise ConvertError(f"the result must be an .npz file (got {opts.output!r}): e.g. -o result.npz")
    out_dir = paths["result"].parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvertError(f"cannot create the output folder {out_dir} ({e.strerror}): choose another -o") from None
    if not os.access(out_dir, os.W_OK):
        raise ConvertError(f"cannot write into {out_dir}: choose another output folder")

    if opts.up not in ("auto", "body"):
        raise ConvertError(f"up must be 'auto' or 'body' (got {opts.up!r})")
    frame_range = V.FrameRange.parse(opts.frames, opts.stride)
    choice = T.SubjectChoice.parse(opts.subject)
    source = V.open_source(opts.video, opts.fps)
    total = source.selected_count(frame_range) if source.n_frames else 0
    if source.n_frames and total == 0:
        raise ConvertError(
            f"--frames {opts.frames or ''} selects no frames: the footage has {source.n_frames} frames (0.."
            f"{source.n_frames - 1})"
        )
    device = resolve_device(opts.device, reporter)
    mode, weights = resolve_mode(opts.mode, opts.weights, reporter)
    fps = source.fps / frame_range.stride
    # the body file is checked before the long landmark stage, so a wrong file fails in seconds
    from .skel import load_body

    try:
        model = load_body(opts.body)
    except (OSError, ValueError) as e:
        why = str(e)
        if why.startswith(str(opts.body)):  # the body loader already names the file
            why = why[len(str(opts.body)):].lstrip(": ")
        raise ConvertError(f"cannot load body {opts.body!r}: {why}") from None

    # --- landmarks (resumable)
    t0 = time.perf_counter()
    work = L.WorkDir(paths["work"], _work_key(opts, source)) if opts.resume else None
    resume = work.load() if work is not None else None
    rng = frame_range
    if resume is not None:
        last = int(resume[0]["frame_index"][-1])
        rng = V.FrameRange(last + frame_range.stride, frame_range.end, frame_range.stride)
        reporter.info(f"resuming: {len(resume[0]['frame_index'])} frames already done in {paths['work']}")
    frames = V.prefetch(source.frames(rng))
    # a few frames kept for the scene: did the camera move, and (--up auto) its straight edges
    sampler = FrameSampler(source.selected_count(rng) if source.n_frames else 0)
    frames = sampler.tap(frames)
    try:
        track = L.detect_landmarks(frames, choice, reporter, fps=fps, image_size=source.size, total=total,
                                   work=work, resume=resume)
    except L.NoPersonError as e:
        raise ConvertError(str(e)) from None
    timings["landmarks"] = time.perf_counter() - t0
    reporter.info(track.subject_note)
    if not len(track):
        raise ConvertError("no frames could be decoded: the file may be damaged or the range empty")
    short = _decode_shortfall(source, frame_range, track)
    if short:
        reporter.info(short, level="warning")
    vfr = source.variable_rate() if isinstance(source, V.VideoFileSource) else None
    if vfr is not None:
        reporter.info(
            f"variable frame rate footage (frames {vfr[0]:.0f}-{vfr[1]:.0f} ms apart): times assume a steady "
            f"{source.fps:.3g} fps, so timing is approximate; for exact timing re-encode at a constant rate "
            "(e.g. ffmpeg -i IN -vsync cfr OUT.mp4)", level="warning")
    swaps = int(track.stats.get("left_right_swaps", 0))
    if swaps:
        reporter.info(f"MediaPipe swapped left and right in {swaps} of {len(track)} frames (taking the front for "
                      "the back): relabelled to match the rest of the clip")
    leg_swaps = int(track.stats.get("leg_swaps", 0))
    if leg_swaps:
        reporter.info(f"MediaPipe swapped the legs alone in {leg_swaps} of {len(track)} frames: relabelled")
    t1 = time.perf_counter()
    motion = camera_motion(sampler.samples, track.frame_index, track.boxes)
    scene_s = time.perf_counter() - t1
    if motion is not None and motion.moved:
        reporter.info(f"the camera moved during the clip: the background shifted by {motion.shift:.0%} of the frame's "
                      f"diagonal (by frame {motion.frame}). The fit assumes a static camera, so the subject's "
                      "path, the ground and the camera's pitch and roll are only approximate; film from a tripod "
                      "for a true world frame", level="warning")
    lost = int((~track.valid).sum())
    if lost:
        reporter.info(f"subject not found in {lost} of {len(track)} frames: those are marked invalid and bridged",
                      level="warning")

    # --- body, camera, fit, world
    t0 = time.perf_counter()
    from .export.report import view_counts
    from .fit import FitOptions, default_camera
    from .skel.landmarks import load_landmark_regressor
    from .world import fit_in_world

    if device == "cuda" and hasattr(model, "to"):
        model = model.to("cuda")
    body = body_label(opts.body, model)
    regressor = load_landmark_regressor("open" if body == "open" else "skel")
    hint = None if opts.focal_px is not None else source.focal_px_hint  # the user's focal wins
    camera = default_camera(track.image_size[0], track.image_size[1], focal_px=opts.focal_px if hint is None else hint)
    if hint is not None:  # the image's own EXIF 35-mm-equivalent focal length
        camera = dataclasses.replace(camera, focal_source="exif")
    timings["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lines = None if opts.up != "auto" else scene_lines(sampler.samples, track.image_size, track.frame_index,
                                                       track.boxes)
    scene_focal = None
    if camera.focal_source == "default" and lines is not None:
        # the scene's horizontal edges may tell the focal length; a wrong one costs joint angles (docs/fitting.md).
        # Asked before the fit, near the up of MediaPipe's own 3D landmarks, so the clip is fitted once.
        k = np.asarray(camera.K, np.float64)
        up = vertical_up(lines, k, L.landmark_up(track.kp3d, track.valid))
        found = scene_focal = None if up is None else focal_from_scene(lines, k, up.up)
        if found is not None and abs(found.focal_px / k[0, 0] - 1.0) > FOCAL_SCENE_CHANGE:
            reporter.info(f"focal length from the scene's horizontal edges: {found.focal_px:.0f} px (the default "
                          f"would be {k[0, 0]:.0f} px)")
            camera = dataclasses.replace(default_camera(track.image_size[0], track.image_size[1],
                                                        focal_px=found.focal_px), focal_source="scene")
    timings["scene"] = scene_s + time.perf_counter() - t0  # did the camera move, its edges, the focal they tell
    focal_note = f"focal length {float(np.asarray(camera.K)[0, 0]):.0f} px ({camera.focal_source})"
    reporter.info(focal_note)

    init = None
    if mode == "hsmr":
        t0 = time.perf_counter()
        init = hsmr_init(source, frame_range, track, weights, device, camera, reporter, work)
        timings["hsmr"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fit_kw: dict[str, Any] = {} if opts.smoothing is None else {"smoothing": opts.smoothing}
    if "device" in {f.name for f in dataclasses.fields(FitOptions)}:
        fit_kw["device"] = device
    fit, world, resting = fit_in_world(track, model, regressor, camera, FitOptions(**fit_kw), init=init,
                                       progress=reporter, scene=lines)
    up_source = getattr(world, "up_source", None)
    pitch, roll = pitch_roll_deg(np.asarray(world.camera_to_world)[2, :3])
    reporter.info(f"camera pitch {pitch:.0f}° (down), roll {roll:.0f}°: up from {up_source or 'the body'}")
    if resting > 0:
        reporter.info(f"feet rest on the ground in {resting:.0%} of the frames: they were held there")
    timings["fit"] = time.perf_counter() - t0
    views = view_counts({"joints_world": world.joints_world, "camera_to_world": world.camera_to_world,
                         "valid": track.valid})
    if views["back"] >= BACK_VIEW_SHARE * max(sum(views.values()), 1):
        reporter.info(f"the subject has their back to the camera in {views['back']} of {len(track)} frames: from "
                      "behind, knee and hip flexion are poorly seen (deep squats and sitting came out 25-30° off "
                      "in tests); film from the front or the side if you can", level="warning")

    # --- result file
    t0 = time.perf_counter()
    meta = {
        "producer": "hsmr-backend", "versions": versions(), "mode": mode, "body": body, "device": device,
        "source": os.path.abspath(opts.video), "source_fps": source.fps, "rotation": source.rotation,
        "stride": frame_range.stride, "frames": opts.frames, "focal_px": float(np.asarray(camera.K)[0, 0]),
        "focal_source": camera.focal_source, "subject": track.subject_note, "candidates": track.candidates,
        "options": {k: v for k, v in asdict(opts).items() if k not in ("video", "output")},
        "world_notes": getattr(world, "notes", None), "left_right_swaps": swaps, "leg_swaps": leg_swaps,
        "views": views, "feet_resting_share": resting, "up_source": up_source,
        "scene_focal_px": None if scene_focal is None else scene_focal.focal_px,
        "camera_motion": None if motion is None else {
            "moved": motion.moved, "shift": motion.shift, "rotation_deg": motion.rotation_deg,
            "frame": motion.frame, "pairs": motion.pairs},
    }
    if vfr is not None:  # the real time of each frame, kept for tools that want it (the schema has fps only)
        ts = source.timestamps_ms  # type: ignore[attr-defined]
        meta["variable_frame_rate"] = True
        meta["timestamps_ms"] = [ts.get(int(i)) for i in track.frame_index]
    arrays = assemble(track, fit, world, model, camera, meta, body)
    result_format.save(paths["result"], arrays)
    timings["save"] = time.perf_counter() - t0
    result_seconds = time.perf_counter() - t_start
    outputs = [str(paths["result"])]

    # --- overlay + plot, side by side (the plot is Python-bound, the overlay mostly OpenCV, which releases the
    # GIL). The result is already safe on disk, so a failure here is only a warning.
    from concurrent.futures import ThreadPoolExecutor

    def timed(name: str, fn: Any, *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            timings[name] = time.perf_counter() - t

    with ThreadPoolExecutor(max_workers=1) as pool:
        plot_job = None
        if opts.plot:
            from .plots import plot_angles

            plot_job = pool.submit(timed, "plot", plot_angles, arrays, paths["plot"])
        if opts.overlay:
            try:
                from .overlay import write_overlay

                timed("overlay", write_overlay, source, frame_range, arrays, paths["overlay"], reporter)
                outputs.append(str(paths["overlay"]))
            except Exception as e:
                reporter.info(f"overlay video not written: {e}", level="warning")
        if plot_job is not None:
            try:
                plot_job.result()
                outputs.append(str(paths["plot"]))
            except Exception as e:
                reporter.info(f"angle plot not written: {e}", level="warning")

    if work is not None:
        work.remove()
    seconds = time.perf_counter() - t_start
    return ConvertSummary(str(paths["result"]), outputs, mode, device, len(track), int(track.valid.sum()),
                          seconds, timings, track.subject_note, focal_note, result_seconds)
