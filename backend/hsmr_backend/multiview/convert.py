"""``hsmr-backend convert CLIP1 CLIP2 [...] --calibration CALIB -o RESULT.npz``: several calibrated views of one
subject -> one result file (docs/multicamera.md)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hsmr_contract import result_format

from .. import landmarks as L
from .. import video as V
from ..convert import ConvertError, ConvertOptions, ConvertSummary, assemble, build_meta, output_paths, resolve_device
from ..convert.options import overlay_path
from ..convert.stages import (
    OverlayJob,
    check_output,
    count_views,
    fit_options,
    load_body_model,
    open_landmark_work,
    prepare_fit,
    work_key,
    write_overlay_and_plot,
)
from ..convert.state import ConvertRun
from ..progress import Reporter
from .cameras import CalibratedCamera, CalibrationError, read_calibration
from .fitting import MultiViewTrack, calibration_up, fit_views, make_track, view_weights
from .geometry import triangulate_track
from .matching import fit_to_image, match_clips
from .refine import refine_principal_points
from .subject import consistent_candidate, consistent_labels, disagreeing_frames
from .sync import SyncError, aligned_frames, estimate_offsets, parse_offsets

SAME_RATE = 0.005  # clips whose frame rates differ by more than this share are not frame-synchronous
MIN_SEEN_SHARE = 0.1  # a camera that agrees with the others in fewer of the frames than this cannot see the subject
# the options a multi-view conversion shares with the single-clip one (``ConvertOptions``), passed through as they are
SHARED_OPTIONS = ("mode", "body", "device", "frames", "stride", "subject", "smoothing", "fps", "overlay", "plot",
                  "resume")


@dataclass
class MultiViewOptions:
    videos: list[str]
    calibration: str
    output: str
    offsets: str | None = None  # None/"auto", "0", or one number per clip
    mode: str = "auto"
    body: str = "open"
    device: str = "auto"
    frames: str | None = None
    stride: int = 1
    subject: str | None = None
    smoothing: float | None = None
    fps: float | None = None
    overlay: bool = True
    plot: bool = True
    resume: bool = True  # each clip's landmark stage continues from its work folder (RESULT.npz.work/CAMERA/)

    def single(self) -> ConvertOptions:
        """The first clip's conversion options (the single-clip stages read them)."""
        return ConvertOptions(video=self.videos[0], output=self.output,
                              **{k: getattr(self, k) for k in SHARED_OPTIONS})


@dataclass
class View:
    """One clip, the camera that filmed it (fitted to the clip's size, later refined) and its landmarks."""

    clip: str
    source: V.FrameSource
    camera: CalibratedCamera
    track: L.LandmarkTrack | None = None


def open_views(opts: MultiViewOptions, reporter: Reporter) -> list[View]:
    """Calibration, clips, their cameras (matched and fitted to the clips' sizes), one frame rate: or one line."""
    try:
        cams = read_calibration(opts.calibration)
        picks, line = match_clips(opts.videos, cams)
    except CalibrationError as e:
        raise ConvertError(str(e)) from None
    reporter.info(line)
    views = []
    for clip, k in zip(opts.videos, picks, strict=True):
        source = V.open_source(clip, opts.fps)
        try:
            cam, warning = fit_to_image(cams[k], *source.size)
        except CalibrationError as e:
            raise ConvertError(str(e)) from None
        if warning:
            reporter.info(warning, level="warning")
        views.append(View(clip, source, cam))
    rates = [v.source.fps for v in views]
    if max(rates) - min(rates) > SAME_RATE * max(rates):
        listed = ", ".join(f"{Path(v.clip).name} {v.source.fps:.3g} fps" for v in views)
        raise ConvertError(f"the clips have different frame rates ({listed}): re-encode them at one rate "
                           "(e.g. ffmpeg -i IN -r 60 OUT.mp4) or film at one rate")
    return views


def _undistorted(kp: np.ndarray, cam: CalibratedCamera) -> np.ndarray:
    out = np.array(kp, dtype=np.float64, copy=True)
    out[..., :2] = cam.undistort(out[..., :2])
    return out


def _subject_in(view: View, first: View) -> tuple[L.SubjectChoice, str]:
    """The person in ``view`` who is the first view's subject (multi-view consistency at the first frame the
    first view sees the subject) and a line saying so; a clear error when nobody is."""
    track = first.track
    assert track is not None
    i = int(np.flatnonzero(track.valid)[0])
    idx = int(track.frame_index[i])
    frame = next(iter(view.source.frames(V.FrameRange(idx, idx + 1))), None)
    people = [] if frame is None else L.find_people(frame[1])
    ref = _undistorted(track.kp2d[i], first.camera)
    k, res = consistent_candidate(ref, first.camera, [_undistorted(p, view.camera) for _, p in people], view.camera)
    if k < 0:
        told = ", ".join(f"{r:.0f} px" for r in res) or "nobody found"
        raise ConvertError(f"camera {view.camera.name!r} ({Path(view.clip).name}) does not see the subject chosen "
                           f"in {first.camera.name!r} at frame {idx} (its people's disagreement: {told}): check that "
                           f"camera's calibration and that its clip shows the same moment")
    others = ", ".join(f"{r:.0f} px" for i, r in enumerate(res) if i != k)
    note = (f"{view.camera.name}: the subject of {first.camera.name}, found by multi-view consistency at frame {idx} "
            f"(two-view residual {res[k]:.0f} px" + (f"; the other people: {others})" if others else ")"))
    return L.SubjectChoice("box", box=tuple(float(x) for x in people[k][0])), note


def camera_file_names(names: list[str]) -> list[str]:
    """Every camera's name as it can stand in a file or folder name (letters, digits, - and _), each its own."""
    safe = [re.sub(r"[^A-Za-z0-9_-]+", "_", n).strip("_") or "camera" for n in names]
    return [s if safe.count(s) == 1 else f"{s}_{i + 1}" for i, s in enumerate(safe)]


def detect_views(views: list[View], opts: MultiViewOptions, reporter: Reporter, work_root: Path) -> None:
    """Every view's landmark track (``view.track``): the subject chosen in the first, found in the others. Each view
    saves its finished frames in its own work folder (``work_root/CAMERA``), so a rerun continues every view where
    it stopped; one progress bar runs over all views."""
    frame_range = V.FrameRange.parse(opts.frames, opts.stride)
    totals = [v.source.selected_count(frame_range) if v.source.n_frames else 0 for v in views]
    folders = camera_file_names([v.camera.name for v in views])
    done = 0
    for n, view in enumerate(views):
        choice, note = (L.SubjectChoice.parse(opts.subject), "") if n == 0 else _subject_in(view, views[0])
        # the first view's subject is the option's; another view's is the box it was found in (from the first's track)
        subject = opts.subject if n == 0 else [float(x) for x in choice.box or ()]
        key = work_key(view.clip, view.source, opts.frames, opts.stride, subject)
        work, resume, rng = open_landmark_work(work_root / folders[n], key, opts.resume, frame_range, reporter)
        offset = done
        progress = lambda stage, k, _t, o=offset: reporter(stage, o + k, sum(totals))  # noqa: E731
        try:
            view.track = L.detect_landmarks(V.prefetch(view.source.frames(rng)), choice, progress,
                                            fps=view.source.fps / frame_range.stride, image_size=view.source.size,
                                            total=totals[n], work=work, resume=resume)
        except L.NoPersonError as e:
            raise ConvertError(f"{Path(view.clip).name}: {e}") from None
        reporter.info(note or f"{view.camera.name}: {view.track.subject_note}")
        done += len(view.track)


def _fitted_offsets(given: list[int], stride: int) -> list[int]:
    """``--offsets`` counts the clips' own frames; with ``--stride`` the clips are thinned together, so an offset
    must be a whole number of kept frames."""
    if any(o % stride for o in given):
        raise ConvertError(f"--offsets {','.join(map(str, given))} with --stride {stride}: each offset must be a "
                           f"multiple of {stride} (the clips are thinned together); give the nearest multiples")
    return [o // stride for o in given]


def _synchronise(views: list[View], kps: list[np.ndarray], opts: MultiViewOptions, reporter: Reporter
                 ) -> tuple[np.ndarray, list[int], np.ndarray]:
    """(V,T,33,3) keypoints of the frames every clip has, the offsets (fitted frames) and the first clip's frame
    numbers of those frames."""
    try:
        given = parse_offsets(opts.offsets, len(views))
    except SyncError as e:
        raise ConvertError(str(e)) from None
    cams = [v.camera for v in views]
    fps = views[0].track.fps if views[0].track is not None else 30.0
    if given is None:
        offsets, line = estimate_offsets(kps, cams, fps)
        reporter.info(line)
    else:
        offsets = _fitted_offsets(given, opts.stride)
        reporter.info(f"synchronisation: offsets given (--offsets): {', '.join(f'{o:+d}' for o in given)} frames")
    try:
        start, end = aligned_frames([len(k) for k in kps], offsets)
    except SyncError as e:
        raise ConvertError(str(e)) from None
    stacked = np.stack([k[start + o: end + o] for k, o in zip(kps, offsets, strict=True)])
    first = views[0].track
    assert first is not None
    return stacked, offsets, first.frame_index[start:end]


def _one_subject(kp: np.ndarray, cams: list[CalibratedCamera], reporter: Reporter) -> np.ndarray:
    """Left/right consistent across views, then the frames where a view disagrees dropped (confidence 0)."""
    kp, relabelled = consistent_labels(kp, cams)
    for cam, r in zip(cams, relabelled, strict=True):
        if r.any():
            reporter.info(f"{cam.name}: left/right relabelled in {int((r > 0).sum())} frames to agree with the "
                          "other views")
    drop = disagreeing_frames(kp, cams)
    seen = kp[..., 2].max(-1) > 0
    for cam, d, s in zip(cams, drop, seen, strict=True):
        if s.sum() == 0 or (s & ~d).sum() < MIN_SEEN_SHARE * len(s):
            raise ConvertError(f"camera {cam.name!r} cannot see the subject: its keypoints agree with the other "
                               f"views in {int((s & ~d).sum())} of {len(s)} frames; check its calibration (and that "
                               "the clips match the cameras)")
        if d.any():
            reporter.info(f"{cam.name}: drops out in {int(d.sum())} frames where it does not agree with the other "
                          "views (someone else, or the subject badly seen)", level="warning")
    kp[drop] = 0.0
    return kp


def _multi_camera_fields(cams: list[CalibratedCamera], camera_to_world: np.ndarray, offsets: list[int],
                         stride: int, kp: np.ndarray, errors: np.ndarray) -> dict[str, np.ndarray]:
    """The result file's fields for every camera (docs/result-format.md)."""
    c2w0 = np.asarray(camera_to_world, dtype=np.float64)
    to_cam0 = np.eye(4)
    to_cam0[:3, :3], to_cam0[:3, 3] = cams[0].R, cams[0].t  # calibration world -> first camera
    calib_to_world = c2w0 @ to_cam0
    c2w = []
    for cam in cams:
        cam_to_calib = np.eye(4)
        cam_to_calib[:3, :3], cam_to_calib[:3, 3] = cam.R.T, cam.centre
        c2w.append(calib_to_world @ cam_to_calib)
    dist = np.zeros((len(cams), 5))
    for i, c in enumerate(cams):
        dist[i, : len(c.dist)] = c.dist
    return {
        "camera_names": np.array([c.name for c in cams]),
        "cameras_K": np.stack([c.K for c in cams]).astype(np.float32),
        "cameras_distortion": dist.astype(np.float32),
        "cameras_image_size": np.array([c.size for c in cams], np.int32),
        "cameras_to_world": np.stack(c2w).astype(np.float32),
        "cameras_frame_offset": (np.asarray(offsets) * stride).astype(np.int64),
        "calibration_to_world": calib_to_world.astype(np.float32),
        "keypoints_2d_views": kp.astype(np.float32),
        "reprojection_error_views_px": np.nan_to_num(errors).astype(np.float32),
    }


def prepare_views(views: list[View], opts: MultiViewOptions, reporter: Reporter
                  ) -> tuple[MultiViewTrack, dict[str, Any], np.ndarray]:
    """Synchronised, consistent, refined views -> the fitter's track, what was found (for meta) and the
    triangulated keypoints in the first camera's frame."""
    kps = [_undistorted(v.track.kp2d, v.camera) for v in views if v.track is not None]
    kp, offsets, frame_index = _synchronise(views, kps, opts, reporter)
    cams = [v.camera for v in views]
    kp = _one_subject(kp, cams, reporter)
    ref = refine_principal_points(kp, cams)
    reporter.info("calibration refined from the subject (principal points): median reprojection per view "
                  + ", ".join(f"{c.name} {a:.1f} -> {b:.1f} px ({s[0]:+.1f}, {s[1]:+.1f})" for c, a, b, s
                              in zip(cams, ref.error_before_px, ref.error_after_px, ref.shifts_px, strict=True)))
    for v, cam in zip(views, ref.cameras, strict=True):
        v.camera = cam
    first = views[0].track
    assert first is not None
    start = int(np.searchsorted(first.frame_index, frame_index[0]))
    sl = slice(start, start + len(frame_index))
    weights = view_weights(ref.error_after_px)
    track = make_track(kp, first.kp3d[sl], ref.cameras, weights, first.fps, frame_index, first.boxes[sl],
                       subject_note=first.subject_note, candidates=first.candidates, stats=first.stats)
    pts, _ = triangulate_track(kp, ref.cameras)
    found = {"offsets": offsets, "principal_point_shift_px": ref.shifts_px.tolist(),
             "triangulation_error_before_px": ref.error_before_px.tolist(),
             "triangulation_error_after_px": ref.error_after_px.tolist(), "view_weights": weights.tolist()}
    return track, found, ref.cameras[0].to_camera(pts)


def convert_views(opts: MultiViewOptions, reporter: Reporter | None = None) -> ConvertSummary:
    """The whole multi-view conversion, on the single-clip stages where they apply (convert/stages.py)."""
    run = ConvertRun(opts.single(), reporter or Reporter("none"), time.perf_counter(), output_paths(opts.output))
    check_output(run)
    if opts.mode not in ("auto", "keypoints"):
        raise ConvertError(f"--mode {opts.mode}: the networks are not used with several cameras yet; use --mode "
                           "keypoints (or auto)")
    views = open_views(opts, run.reporter)
    run.frame_range, run.source = V.FrameRange.parse(opts.frames, opts.stride), views[0].source
    run.device, run.mode = resolve_device(opts.device, run.reporter), "keypoints"
    load_body_model(run)  # before the long landmark stage, so a wrong body file fails in seconds
    t0 = time.perf_counter()
    detect_views(views, opts, run.reporter, run.paths["work"])
    run.timings["landmarks"] = time.perf_counter() - t0
    track, found, points_cam = prepare_views(views, opts, run.reporter)
    run.track = track
    prepare_fit(run)  # the body on its device and its landmark regressor (the camera is the calibration's)
    errors = _fit(run, [v.camera for v in views], points_cam)
    _save(run, views, opts.calibration, found, errors)
    write_overlay_and_plot(run, overlay_jobs(views, run.paths["result"]))
    if opts.resume:
        L.remove_work_folder(run.paths["work"])  # every view's work folder, as one clip's own once it is saved
    return ConvertSummary(str(run.paths["result"]), run.outputs, run.mode, run.device, len(track),
                          int(track.valid.sum()), time.perf_counter() - run.started, run.timings, track.subject_note,
                          run.focal_note, run.result_seconds)


def overlay_jobs(views: list[View], result: Path) -> list[OverlayJob]:
    """One overlay video per camera, drawn with that camera over its own clip: the first camera's is
    ``RESULT.overlay.mp4`` as for one clip, another's ``RESULT.overlay.CAMERA.mp4``."""
    names = camera_file_names([v.camera.name for v in views])
    return [(v.source, c, overlay_path(result, None if c == 0 else names[c])) for c, v in enumerate(views)]


def _fit(run: ConvertRun, cams: list[CalibratedCamera], points_cam: np.ndarray) -> np.ndarray:
    """The multi-view fit into ``run`` (fit, world, resting feet, camera); returns the per-view errors (V,T)."""
    t0 = time.perf_counter()
    up, up_note = calibration_up(cams[0], points_cam)
    run.reporter.info(up_note)
    run.fit, run.world, run.foot_resting, errors = fit_views(run.track, cams, points_cam, run.model, run.regressor,
                                                             fit_options(run), progress=run.reporter, up=up)
    run.camera = run.fit.camera
    run.focal_note = f"focal length {cams[0].K[0, 0]:.0f} px (calibration)"
    run.timings["fit"] = time.perf_counter() - t0
    count_views(run)
    medians = [float(np.median(e[e > 0])) if (e > 0).any() else float("nan") for e in errors]
    run.reporter.info("fit reprojection error per view (median): "
                      + ", ".join(f"{c.name} {m:.1f} px" for c, m in zip(cams, medians, strict=True)))
    return errors


def _save(run: ConvertRun, views: list[View], calibration: str, found: dict, errors: np.ndarray) -> None:
    """The result file: the single-camera fields for the first camera, then every camera's (format version 2)."""
    t0 = time.perf_counter()
    cams = [v.camera for v in views]
    arrays = assemble(run)
    meta = build_meta(run)
    meta.focal_source = "calibration"
    meta.sources = [os.path.abspath(v.clip) for v in views]
    meta.calibration = os.path.abspath(calibration)
    medians = [float(np.median(e[e > 0])) if (e > 0).any() else None for e in errors]
    meta.multi_camera = {"cameras": [c.name for c in cams], "fit_reprojection_error_views_px": medians, **found}
    arrays["meta_json"] = meta.to_json()
    arrays.update(_multi_camera_fields(cams, run.world.camera_to_world, found["offsets"], run.frame_range.stride,
                                       run.track.kp2d_views, errors))
    result_format.save(run.paths["result"], arrays)
    run.arrays = arrays
    run.timings["save"] = time.perf_counter() - t0
    run.result_seconds = time.perf_counter() - run.started
    run.outputs.append(str(run.paths["result"]))


# single-clip options that several calibrated cameras do without: (field, its default, the flag's name)
NOT_WITH_CALIBRATION = (("focal_px", None, "--focal-px"), ("up", "auto", "--up"), ("weights", None, "--weights"))


def ignored_options(opts: Any) -> list[str]:
    """The flags given that have no effect with a calibration: it gives every camera's focal length and the
    world's up, and the fit runs on keypoints."""
    return [flag for name, default, flag in NOT_WITH_CALIBRATION if getattr(opts, name) != default]


def options_from(opts: Any, videos: list[str], calibration: str, offsets: str | None) -> MultiViewOptions:
    """Multi-view options from the single-clip ``ConvertOptions`` fields the command line fills."""
    keep = {f: getattr(opts, f) for f in SHARED_OPTIONS}
    return replace(MultiViewOptions(list(videos), calibration, opts.output, offsets), **keep)
