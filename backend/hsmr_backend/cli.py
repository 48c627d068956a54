"""``hsmr-backend``: the command line (also ``python -m hsmr_backend`` and ``python -m hsmr_backend.cli``).

    hsmr-backend convert VIDEO -o RESULT.npz [--mode auto|keypoints|hsmr|skelcf] [--body open|PATH] [--device ...]
                 [--frames START:END] [--stride N] [--subject largest|most-central|N|x,y,w,h] [--focal-px F]
                 [--smoothing S] [--progress json|bar|none] [--no-overlay] [--no-plot] [--no-resume]
    hsmr-backend convert VIDEO1 VIDEO2 [...] --calibration CALIB -o RESULT.npz [--offsets auto|0|A,B,...] [...]
    hsmr-backend export-onnx ...     (HSMR network -> ONNX; see its --help)
    hsmr-backend export ...          (result file -> OpenSim / CSV; see its --help)

Exit status 0 only on success. Expected failures print one line (what is wrong, what to do), no traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="footage -> result file (.npz), overlay video and angle plot",
                       description="Convert footage of a person into a SKEL motion result file.")
    p.add_argument("video", nargs="+",
                   help="video file, image, folder of images, or a glob like 'frames/*.png'; several with "
                        "--calibration (one per calibrated camera)")
    p.add_argument("--calibration", default=None, metavar="CALIB",
                   help="calibration of the cameras that filmed the clips (Pose2Sim .toml or Qualisys .qca.txt); "
                        "clips are matched to cameras by name, else by order")
    p.add_argument("--offsets", default=None, metavar="auto|0|A,B,...",
                   help="with several clips: frame offsets against the first clip (default auto: estimated and "
                        "printed; 0: the clips start together)")
    p.add_argument("-o", "--output", required=True, help="result file to write (.npz)")
    p.add_argument("--mode", choices=("auto", "keypoints", "hsmr", "skelcf"), default="auto",
                   help="auto (default): the network whose weights are found (HSMR or SKEL-CF), else keypoints")
    p.add_argument("--weights", default=None,
                   help="network weights: HSMR release folder/tarball/.onnx, or SKEL-CF checkpoint (best.pth, a folder "
                        "holding it, its cached Hugging Face repo id) or .onnx; the kind is detected")  # fmt: skip
    p.add_argument("--body", default="open", help="'open' (bundled default body) or a path to skel_male.pkl")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--frames", default=None, metavar="START:END", help="frame range, END exclusive (e.g. 0:300)")
    p.add_argument("--stride", type=int, default=1, help="use every N-th frame (default 1)")
    p.add_argument("--subject", default=None,
                   help="who to follow: 'largest' (default), 'most-central', a candidate number (0 = largest), "
                        "or a box 'x,y,w,h' in pixels of the first frame")
    p.add_argument("--focal-px", type=float, default=None,
                   help="focal length in pixels (default: a photo's EXIF 35 mm-equivalent focal, else a 70° "
                        "diagonal field of view; reported)")
    p.add_argument("--up", choices=("auto", "body"), default="auto",
                   help="where the world's up comes from: auto (default) = the scene's vertical edges (door frames, "
                        "walls, poles) when there are enough of them, else the body's balance and resting feet; "
                        "body = the body alone (for a scene whose straight edges are not upright)")
    p.add_argument("--smoothing", type=float, default=None, help="temporal smoothing strength (fitter default)")
    p.add_argument("--fps", type=float, default=None, help="frame rate of an image sequence (default 30)")
    p.add_argument("--progress", choices=("json", "bar", "none"), default="bar",
                   help="json: one JSON object per line on stdout (for the add-on); bar: on stderr")
    p.add_argument("--no-overlay", action="store_true", help="do not write RESULT.overlay.mp4")
    p.add_argument("--no-plot", action="store_true", help="do not write RESULT.angles.png")
    p.add_argument("--no-resume", action="store_true", help="ignore and replace unfinished work of an earlier run")


def _add_delegate(sub: argparse._SubParsersAction, name: str, module: str, help_: str) -> None:
    """A subcommand that lives in another part; a missing part gives a clear message, not a crash."""
    p = sub.add_parser(name, help=help_, add_help=False)
    p.set_defaults(_delegate=(module, name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hsmr-backend", description="HSMR for Blender: inference backend")
    parser.add_argument("--version", action="version", version=f"hsmr-backend {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_convert(sub)
    _add_delegate(sub, "export-onnx", "hsmr_backend.hsmr.export", "export the HSMR network to ONNX")
    _add_delegate(sub, "export", "hsmr_backend.export.cli", "export a result file (OpenSim .mot/.trc, CSV)")
    return parser


def _run_delegate(module: str, name: str, argv: Sequence[str]) -> int:
    try:
        mod = importlib.import_module(module)
        add, run = mod.add_cli_arguments, mod.run_cli
    except (ImportError, AttributeError) as e:
        print(f"hsmr-backend: error: '{name}' is not available in this installation ({e}); "
              "update or reinstall the backend", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"hsmr-backend {name}")
    add(parser)
    args = parser.parse_args(list(argv))
    return int(run(args) or 0)


def _convert(args: argparse.Namespace) -> int:
    return run_convert(args)[0]


def run_convert(args: argparse.Namespace):
    """Run ``convert`` from parsed arguments -> (exit code, ConvertSummary or None)."""
    from .progress import Reporter, reset_cancel

    reporter = Reporter(args.progress)
    reporter.protect_stdout()
    reporter.hello()
    try:
        return _convert_inner(args, reporter)
    except KeyboardInterrupt:
        reset_cancel()  # handled: a caller in the same process may run again
        reporter.error("cancelled; run the same command again to resume from the finished frames")
        return 130, None
    except BrokenPipeError:  # whoever read our progress lines (the add-on, Blender) is gone
        reporter.error("the program reading the progress stopped (closed?); run again to resume from the "
                       "finished frames")
        return 130, None
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            where = e.filename or os.path.dirname(os.path.abspath(args.output))
            reporter.error(f"the disk is full (writing {where}): free some space or choose another -o, then run "
                           "the same command again to resume from the finished frames")
            return 1, None
        if os.environ.get("HSMR_DEBUG"):
            raise
        reporter.error(f"{e.strerror or e}: {e.filename or ''} (check the path, permissions and free space, then "
                       "run again)")
        return 1, None
    except MemoryError:
        reporter.error("out of memory: use --frames/--stride for a shorter piece, or a machine with more memory")
        return 1, None
    except Exception as e:  # an unexpected failure: one line, and the traceback only when asked for
        if os.environ.get("HSMR_DEBUG"):
            raise
        reporter.error(f"unexpected failure: {type(e).__name__}: {e} (set HSMR_DEBUG=1 for details and report it)")
        return 1, None
    finally:
        reporter.restore_stdout()


def _convert_inner(args: argparse.Namespace, reporter):
    from hsmr_contract.result_format import ResultFileError

    from .convert import ConvertError, ConvertOptions, convert
    from .hsmr.load import HSMRWeightsError
    from .landmarks import SubjectError
    from .skel.data import SkelFileError
    from .video import VideoError

    expected = (ConvertError, VideoError, SubjectError, ResultFileError, SkelFileError, HSMRWeightsError)
    if args.stride < 1:
        reporter.error(f"--stride must be 1 or more (got {args.stride})")
        return 2, None
    if args.focal_px is not None and not args.focal_px > 0:
        reporter.error(f"--focal-px must be a positive number of pixels (got {args.focal_px})")
        return 2, None
    videos = [args.video] if isinstance(args.video, str) else list(args.video)
    if len(videos) > 1 and not args.calibration:
        reporter.error(f"{len(videos)} clips given without --calibration: several clips need the calibration of "
                       "the cameras that filmed them (--calibration CALIB); for one clip give one")
        return 2, None
    opts = ConvertOptions(
        video=videos[0], output=args.output, mode=args.mode, body=args.body, device=args.device,
        frames=args.frames, stride=args.stride, subject=args.subject, focal_px=args.focal_px,
        smoothing=args.smoothing, fps=args.fps, overlay=not args.no_overlay, plot=not args.no_plot,
        resume=not args.no_resume, weights=args.weights, up=args.up,
    )
    try:
        if args.calibration:
            from .multiview.convert import convert_views, ignored_options, options_from

            if ignored := ignored_options(opts):
                reporter.info(f"with --calibration, {', '.join(ignored)} has no effect: the calibration gives every "
                              "camera's focal length and the world's up, and the fit runs on keypoints",
                              level="warning")
            summary = convert_views(options_from(opts, videos, args.calibration, args.offsets), reporter)
        else:
            summary = convert(opts, reporter)
    except expected as e:
        reporter.error(str(e))
        return 1, None
    except ImportError as e:
        reporter.error(f"a part of the backend is missing ({e}); reinstall it with `python build.py setup`")
        return 1, None
    reporter.info(
        f"done: {summary.frames} frames ({summary.valid_frames} with the subject) in {summary.seconds:.1f} s "
        f"({summary.fps:.1f} frames/s), mode {summary.mode} on {summary.device}; wrote "
        + ", ".join(summary.outputs)
    )
    reporter.done(summary.result, summary.outputs)
    return 0, summary


def _sigterm_as_cancel(cooperative: bool) -> None:
    """SIGTERM (the add-on's Cancel, Blender closing) stops like Ctrl+C: one line, exit 130, finished frames
    kept. ``cooperative`` (convert, whose stages report progress between frames): SIGTERM and Ctrl+C only ask,
    and the work stops at its next progress report; a second signal stops at once. Otherwise SIGTERM raises
    ``KeyboardInterrupt`` where it lands."""
    import signal
    import threading

    from .progress import cancel_requested, request_cancel

    def ask(signum: int, frame: object) -> None:
        if cancel_requested():  # asked twice (e.g. a stage that reports nothing for long): stop now
            raise KeyboardInterrupt
        request_cancel()

    def now(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGINT") if cooperative else ("SIGTERM",):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), ask if cooperative else now)


def main(argv: Sequence[str] | None = None) -> int:
    own_process = argv is None  # the program itself (not a caller in the same process)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    delegate = bool(argv) and argv[0] in ("export-onnx", "export")
    if own_process:
        _sigterm_as_cancel(cooperative=not delegate)
    if delegate:
        module = {"export-onnx": "hsmr_backend.hsmr.export", "export": "hsmr_backend.export.cli"}[argv[0]]
        return _run_delegate(module, argv[0], argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return _convert(args)


if __name__ == "__main__":
    sys.exit(main())
