"""The main job as a list of stages; each reads and fills the ``ConvertRun`` (state.py).

check_output -> open_footage -> choose_device_and_mode -> load_body_model -> find_landmarks -> prepare_fit ->
scene_focal -> run_hsmr -> fit_world -> save_result -> write_overlay_and_plot; the notes on the footage and the
fit are the table in diagnostics.py, reported after the stage whose findings they read.
"""

from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsmr_contract import result_format

from .. import landmarks as L
from .. import video as V
from ..landmarks import people as T
from ..progress import Reporter
from ..scene import FrameSampler, camera_motion, focal_from_scene, pitch_roll_deg, scene_lines, vertical_up
from . import diagnostics
from .hsmr_stage import hsmr_init
from .options import (
    ConvertError,
    ConvertOptions,
    ConvertSummary,
    body_label,
    output_paths,
    resolve_device,
    resolve_mode,
)
from .result import assemble
from .state import ConvertRun

if TYPE_CHECKING:
    from ..fit import FitOptions

FOCAL_SCENE_CHANGE = 0.05  # a focal from the scene this far from the default replaces it


def convert(opts: ConvertOptions, reporter: Reporter | None = None) -> ConvertSummary:
    """Footage in, result file (then overlay video and angle plot) out; ``ConvertError`` with one line on
    an expected failure."""
    run = ConvertRun(opts, reporter or Reporter("none"), time.perf_counter(), output_paths(opts.output))
    check_output(run)
    open_footage(run)
    choose_device_and_mode(run)
    load_body_model(run)  # before the long landmark stage, so a wrong body file fails in seconds
    find_landmarks(run)
    diagnostics.report(run, "landmarks")
    prepare_fit(run)
    scene_focal(run)
    diagnostics.report(run, "scene")
    run.reporter.info(run.focal_note)
    run_hsmr(run)
    fit_world(run)
    diagnostics.report(run, "fit")
    save_result(run)
    write_overlay_and_plot(run)
    if run.work is not None:
        run.work.remove()
    return ConvertSummary(str(run.paths["result"]), run.outputs, run.mode, run.device, len(run.track),
                          int(run.track.valid.sum()), time.perf_counter() - run.started, run.timings,
                          run.track.subject_note, run.focal_note, run.result_seconds)


def check_output(run: ConvertRun) -> None:
    """The result path is an .npz in a folder that exists (made if needed) and can be written."""
    result = run.paths["result"]
    if result.suffix != ".npz":
        raise ConvertError(f"the result must be an .npz file (got {run.opts.output!r}): e.g. -o result.npz")
    out_dir = result.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvertError(f"cannot create the output folder {out_dir} ({e.strerror}): choose another -o") from None
    if not os.access(out_dir, os.W_OK):
        raise ConvertError(f"cannot write into {out_dir}: choose another output folder")


def open_footage(run: ConvertRun) -> None:
    opts = run.opts
    if opts.up not in ("auto", "body"):
        raise ConvertError(f"up must be 'auto' or 'body' (got {opts.up!r})")
    run.frame_range = V.FrameRange.parse(opts.frames, opts.stride)
    run.choice = T.SubjectChoice.parse(opts.subject)  # a bad --subject fails before the footage opens
    source = run.source = V.open_source(opts.video, opts.fps)
    run.total = source.selected_count(run.frame_range) if source.n_frames else 0
    if source.n_frames and run.total == 0:
        raise ConvertError(
            f"--frames {opts.frames or ''} selects no frames: the footage has {source.n_frames} frames (0.."
            f"{source.n_frames - 1})"
        )


def choose_device_and_mode(run: ConvertRun) -> None:
    run.device = resolve_device(run.opts.device, run.reporter)
    run.mode, run.weights = resolve_mode(run.opts.mode, run.opts.weights, run.reporter)


def load_body_model(run: ConvertRun) -> None:
    from ..skel import load_body

    body = run.opts.body
    try:
        run.model = load_body(body)
    except (OSError, ValueError) as e:
        why = str(e)
        if why.startswith(str(body)):  # the body loader already names the file
            why = why[len(str(body)):].lstrip(": ")
        raise ConvertError(f"cannot load body {body!r}: {why}") from None


def work_key(video: str, source: V.FrameSource, frames: str | None, stride: int, subject: Any) -> dict[str, Any]:
    """What must match for a work folder's landmark frames to be reused: the clip (path, size, time), the frames
    asked for (--frames, --stride) and the subject (--subject, or the box a calibrated view's subject was found in)."""
    st = os.stat(video) if os.path.isfile(video) else None
    return {"video": os.path.abspath(video), "size": st.st_size if st else None,
            "mtime": st.st_mtime_ns if st else None, "frames": frames, "stride": stride,
            "subject": subject, "landmarks_version": 1, "image_size": list(source.size)}


def open_landmark_work(path: Path, key: dict[str, Any], resume: bool, frame_range: V.FrameRange,
                       reporter: Reporter) -> tuple[L.WorkDir | None, L.Resume | None, V.FrameRange]:
    """One clip's landmark work folder (None with --no-resume), the finished frames it holds for ``key`` and the
    frames still to detect."""
    work = L.WorkDir(path, key) if resume else None
    done = work.load() if work is not None else None
    if done is None:
        return work, None, frame_range
    last = int(done[0]["frame_index"][-1])
    reporter.info(f"resuming: {len(done[0]['frame_index'])} frames already done in {path}")
    return work, done, V.FrameRange(last + frame_range.stride, frame_range.end, frame_range.stride)


def find_landmarks(run: ConvertRun) -> None:
    """The subject's landmarks (resumable from the work folder); meanwhile a few frames are kept for the scene,
    then asked whether the camera moved."""
    t0 = time.perf_counter()
    opts, source, frame_range, reporter = run.opts, run.source, run.frame_range, run.reporter
    key = work_key(opts.video, source, opts.frames, opts.stride, opts.subject)
    work, resume, rng = open_landmark_work(run.paths["work"], key, opts.resume, frame_range, reporter)
    run.work = work
    sampler = run.sampler = FrameSampler(source.selected_count(rng) if source.n_frames else 0)
    frames = sampler.tap(V.prefetch(source.frames(rng)))
    try:
        track = run.track = L.detect_landmarks(
            frames, run.choice, reporter, fps=source.fps / frame_range.stride,
            image_size=source.size, total=run.total, work=work, resume=resume)
    except L.NoPersonError as e:
        raise ConvertError(str(e)) from None
    run.timings["landmarks"] = time.perf_counter() - t0
    reporter.info(track.subject_note)
    if not len(track):
        raise ConvertError("no frames could be decoded: the file may be damaged or the range empty")
    run.variable_rate_ms = source.variable_rate() if isinstance(source, V.VideoFileSource) else None
    t1 = time.perf_counter()
    run.motion = camera_motion(sampler.samples, track.frame_index, track.boxes)
    run.timings["scene"] = time.perf_counter() - t1  # the rest of the scene's time is scene_focal's


def prepare_fit(run: ConvertRun) -> None:
    """The body on its device, its landmark regressor, and the camera from the user's, the image's or the
    default focal length."""
    t0 = time.perf_counter()
    from ..fit import default_camera
    from ..skel.landmarks import load_landmark_regressor

    if run.device == "cuda":
        run.model = run.model.to("cuda")
    run.body = body_label(run.opts.body, run.model)
    run.regressor = load_landmark_regressor("open" if run.body == "open" else "skel")
    width, height = run.track.image_size
    hint = None if run.opts.focal_px is not None else run.source.focal_px_hint  # the user's focal wins
    run.camera = default_camera(width, height, focal_px=run.opts.focal_px if hint is None else hint)
    if hint is not None:  # the image's own EXIF 35-mm-equivalent focal length
        run.camera = dataclasses.replace(run.camera, focal_source="exif")
    run.timings["load"] = time.perf_counter() - t0


def scene_focal(run: ConvertRun) -> None:
    """The scene's straight edges (--up auto) and, for a default focal, the focal their horizontal ones tell: a
    wrong focal costs joint angles (docs/fitting.md). Asked before the fit, near the up of MediaPipe's own 3D
    landmarks, so the clip is fitted once."""
    t0 = time.perf_counter()
    from ..fit import default_camera

    track, camera = run.track, run.camera
    if run.opts.up == "auto":
        run.lines = scene_lines(run.sampler.samples, track.image_size, track.frame_index, track.boxes)
    if camera.focal_source == "default" and run.lines is not None:
        k = np.asarray(camera.K, np.float64)
        up = vertical_up(run.lines, k, L.landmark_up(track.kp3d, track.valid))
        run.scene_focal = None if up is None else focal_from_scene(run.lines, k, up.up)
        found, run.default_focal_px = run.scene_focal, float(k[0, 0])
        if found is not None and abs(found.focal_px / k[0, 0] - 1.0) > FOCAL_SCENE_CHANGE:
            width, height = track.image_size
            run.camera = dataclasses.replace(default_camera(width, height, focal_px=found.focal_px),
                                             focal_source="scene")
    run.timings["scene"] += time.perf_counter() - t0
    run.focal_note = f"focal length {float(np.asarray(run.camera.K)[0, 0]):.0f} px ({run.camera.focal_source})"


def run_hsmr(run: ConvertRun) -> None:
    """In hsmr and skelcf modes, the network's per-frame predictions: the fit's starting point."""
    if run.mode not in ("hsmr", "skelcf"):
        return
    t0 = time.perf_counter()
    run.init = hsmr_init(run.source, run.frame_range, run.track, run.weights, run.device, run.camera, run.reporter,
                         run.work, network=run.mode)
    run.timings["hsmr"] = time.perf_counter() - t0


def fit_options(run: ConvertRun) -> FitOptions:
    """The fit's options the command line sets: the device and the smoothing."""
    from ..fit import FitOptions

    fit_kw: dict[str, Any] = {"device": run.device}
    if run.opts.smoothing is not None:
        fit_kw["smoothing"] = run.opts.smoothing
    return FitOptions(**fit_kw)


def count_views(run: ConvertRun) -> None:
    """Which way the subject faces in each frame of the fitted world (``run.views``)."""
    from ..export.report import view_counts

    run.views = view_counts({"joints_world": run.world.joints_world, "camera_to_world": run.world.camera_to_world,
                             "valid": run.track.valid})


def fit_world(run: ConvertRun) -> None:
    """SKELify over time, then the world frame (docs/pipeline.md); which way the subject faces in each frame."""
    t0 = time.perf_counter()
    from ..world import fit_in_world

    run.fit, run.world, run.foot_resting = fit_in_world(run.track, run.model, run.regressor, run.camera,
                                                        fit_options(run), init=run.init,
                                                        progress=run.reporter, scene=run.lines)
    pitch, roll = pitch_roll_deg(np.asarray(run.world.camera_to_world)[2, :3])
    run.reporter.info(f"camera pitch {pitch:.0f}° (down), roll {roll:.0f}°: up from "
                      f"{run.world.up_source or 'the body'}")
    run.timings["fit"] = time.perf_counter() - t0
    count_views(run)


def save_result(run: ConvertRun) -> None:
    t0 = time.perf_counter()
    run.arrays = assemble(run)
    result_format.save(run.paths["result"], run.arrays)
    run.timings["save"] = time.perf_counter() - t0
    run.result_seconds = time.perf_counter() - run.started
    run.outputs.append(str(run.paths["result"]))


# one overlay video to write: the clip, the result's camera it is drawn with (None: the single-camera fields) and
# the file
OverlayJob = tuple[V.FrameSource, int | None, Path]


def write_overlay_and_plot(run: ConvertRun, overlays: list[OverlayJob] | None = None) -> None:
    """Overlay(s) and plot side by side (the plot is Python-bound, the overlay mostly OpenCV, which releases the
    GIL); ``overlays`` defaults to the clip's own. The result is already safe on disk, so a failure here is only a
    warning."""
    opts, paths, reporter, timings = run.opts, run.paths, run.reporter, run.timings

    def timed(name: str, fn: Any, *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            timings[name] = time.perf_counter() - t

    with ThreadPoolExecutor(max_workers=1) as pool:
        plot_job = None
        if opts.plot:
            from ..plots import plot_angles

            plot_job = pool.submit(timed, "plot", plot_angles, run.arrays, paths["plot"])
        if opts.overlay:
            timed("overlay", _write_overlays, run, overlays or [(run.source, None, paths["overlay"])])
        if plot_job is not None:
            try:
                plot_job.result()
                run.outputs.append(str(paths["plot"]))
            except Exception as e:
                reporter.info(f"angle plot not written: {e}", level="warning")


def _write_overlays(run: ConvertRun, jobs: list[OverlayJob]) -> None:
    """One overlay video per job, one progress bar over them all; each one that is written joins the outputs."""
    try:
        from ..overlay import write_overlay
    except Exception as e:
        run.reporter.info(f"overlay video not written: {e}", level="warning")
        return
    n = len(run.arrays["frame_index"])
    for k, (source, camera, path) in enumerate(jobs):
        def progress(stage: str, i: int, _n: int, before: int = k * n) -> None:
            run.reporter(stage, before + i, n * len(jobs))

        try:
            write_overlay(source, run.frame_range.stride, run.arrays, path, progress, camera=camera)
            run.outputs.append(str(path))
        except Exception as e:
            named = f" {path.name}" if len(jobs) > 1 else ""
            run.reporter.info(f"overlay video{named} not written: {e}", level="warning")
