"""``hsmr-backend export RESULT.npz [--mot] [--trc] [--csv] [--report]`` (and ``python -m hsmr_backend.export``).

The pipeline's CLI wires the subcommand with ``add_cli_arguments(sub_parser)`` and ``run_cli(args)``.
With none of the output flags, every output is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hsmr_contract.export.opensim_map import ExportError
from hsmr_contract.result_format import ResultFileError, load


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("result", type=Path, help="result file (.npz) written by `convert`")
    parser.add_argument(
        "--mot",
        action="store_true",
        help="write STEM.skel.mot (46 SKEL DoFs) and STEM.rajagopal.mot (OpenSim Rajagopal names)",
    )
    parser.add_argument("--trc", action="store_true", help="write STEM.markers.trc (virtual markers, metres, y up)")
    parser.add_argument("--csv", action="store_true", help="write STEM.angles.csv (time + 46 DoFs)")
    parser.add_argument("--report", action="store_true", help="write STEM.report.html with PNG plots in STEM.report/")
    parser.add_argument("--radians", action="store_true", help="CSV in radians instead of degrees")
    parser.add_argument(
        "--no-skin-markers", action="store_true", help="only the 24 joint centres in the .trc (no skin landmarks)"
    )
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="output stem (default: the result path without .npz)"
    )
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Write the requested exports; 0 on success, 1 with one line on stderr otherwise."""
    try:
        for path in export(
            args.result,
            out=args.out,
            mot=args.mot,
            trc=args.trc,
            csv=args.csv,
            report=args.report,
            radians=args.radians,
            skin_markers=not args.no_skin_markers,
        ):
            print(path)
    except (ResultFileError, ExportError, ValueError) as e:
        print(f"hsmr-backend export: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"hsmr-backend export: error: cannot write the exports ({e}); check the output folder", file=sys.stderr)
        return 1
    return 0


def export(
    result_path: str | Path,
    *,
    out: str | Path | None = None,
    mot: bool = False,
    trc: bool = False,
    csv: bool = False,
    report: bool = False,
    radians: bool = False,
    skin_markers: bool = True,
) -> list[Path]:
    """Load (and validate) a result file and write the chosen exports; nothing chosen = everything."""
    from hsmr_contract.export.csv import write_angles_csv
    from hsmr_contract.export.mot import write_rajagopal_mot, write_skel_mot
    from hsmr_contract.export.trc import write_markers_trc

    result_path = Path(result_path)
    result = load(result_path)
    if not (mot or trc or csv or report):
        mot = trc = csv = report = True
    stem = Path(out) if out is not None else result_path.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if mot:
        written.append(write_skel_mot(result, stem.parent / f"{stem.name}.skel.mot"))
        written.append(write_rajagopal_mot(result, stem.parent / f"{stem.name}.rajagopal.mot"))
    if trc:
        written.append(write_markers_trc(result, stem.parent / f"{stem.name}.markers.trc", skin=skin_markers))
    if csv:
        written.append(write_angles_csv(result, stem.parent / f"{stem.name}.angles.csv", radians=radians))
    if report:
        from .report import write_report

        written.append(write_report(result, stem, title=result_path.name))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hsmr_backend.export",
        description="Export a result file for biomechanics (OpenSim .mot/.trc, CSV, HTML report).",
    )
    return run_cli(add_cli_arguments(parser).parse_args(argv))
