"""Per-result HTML report with PNG plots: every DoF over time with its limit band, range of motion per joint,
frames flagged as uncertain, and the fit diagnostics. Uses matplotlib's Agg backend (no display needed).

Output: ``<stem>.report.html`` beside ``<stem>.report/`` (the PNGs, referenced relatively).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsmr_contract.export.opensim_map import dof_names, rajagopal_motion, times
from hsmr_contract.runs import true_runs

# Uncertainty rules (documented in docs/biomechanics-export.md).
LOW_CONFIDENCE = 0.5  # mean 2D keypoint confidence below this
REPROJ_FLOOR_PX = 15.0  # reprojection error above max(this, median + 4 * robust sigma)
REPROJ_SIGMAS = 4.0
# Which way the subject faces the camera. From behind, a bent knee and a straight leg project alike and
# MediaPipe's 3D landmarks give the legs little depth: on the renders, sagittal hip/knee/ankle errors of deep
# flexion were 15-16° at 135° and 30-31° at 180°, against 7-12° from the front and the side.
SIDE_VIEW_DEG = 60.0  # facing further than this from the camera: side-on
BACK_VIEW_DEG = 120.0  # further than this: seen from behind
_PELVIS, _FEMUR_R, _FEMUR_L, _HUMERUS_R, _HUMERUS_L = 0, 1, 6, 15, 20  # SKEL joint indices


def facing_angle_deg(joints_world: np.ndarray, camera_to_world: np.ndarray) -> np.ndarray:
    """(T,) angle in degrees, about the world's vertical, between the way the subject's trunk faces and the
    direction from the pelvis to the camera: 0 facing the camera, 90 side-on, 180 back to it.

    ``joints_world`` (T,24,3): SKEL joints in the result's world (z up); ``camera_to_world`` (4,4): the static
    camera, whose centre is its translation. The trunk faces along left × up, left from the hips and the
    shoulders; a trunk leaning forward or back does not change the angle.
    """
    j = np.asarray(joints_world, dtype=np.float64)
    up = np.array([0.0, 0.0, 1.0])

    def flat_unit(v: np.ndarray) -> np.ndarray:
        v = v - (v @ up)[..., None] * up
        return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)

    left = flat_unit(j[:, _FEMUR_L] - j[:, _FEMUR_R]) + flat_unit(j[:, _HUMERUS_L] - j[:, _HUMERUS_R])
    facing = flat_unit(np.cross(left, up))
    to_camera = flat_unit(np.asarray(camera_to_world, dtype=np.float64)[:3, 3] - j[:, _PELVIS])
    return np.degrees(np.arccos(np.clip((facing * to_camera).sum(-1), -1.0, 1.0)))


def view_counts(result: Mapping[str, np.ndarray]) -> dict[str, int]:
    """A result's valid frames seen from the front, the side and behind (``SIDE_VIEW_DEG``, ``BACK_VIEW_DEG``)."""
    a = facing_angle_deg(result["joints_world"], result["camera_to_world"])[np.asarray(result["valid"], dtype=bool)]
    back = a > BACK_VIEW_DEG
    side = (a > SIDE_VIEW_DEG) & ~back
    return {"front": int((~side & ~back).sum()), "side": int(side.sum()), "back": int(back.sum())}


@dataclass
class Uncertainty:
    lost: np.ndarray  # (T,) bool: valid == False
    low_confidence: np.ndarray  # (T,) bool
    high_error: np.ndarray  # (T,) bool
    mean_confidence: np.ndarray  # (T,)
    error_threshold_px: float
    from_behind: np.ndarray  # (T,) bool: valid, facing more than BACK_VIEW_DEG away from the camera

    @property
    def any(self) -> np.ndarray:
        return self.lost | self.low_confidence | self.high_error | self.from_behind


def uncertain_frames(result: Mapping[str, np.ndarray]) -> Uncertainty:
    conf = np.asarray(result["keypoints_2d"], dtype=np.float64)[..., 2]
    mean_conf = conf.mean(axis=1) if conf.shape[1] else np.ones(conf.shape[0])
    err = np.asarray(result["reprojection_error_px"], dtype=np.float64)
    med = float(np.median(err))
    sigma = 1.4826 * float(np.median(np.abs(err - med)))
    thr = max(REPROJ_FLOOR_PX, med + REPROJ_SIGMAS * sigma)
    lost = ~np.asarray(result["valid"], dtype=bool)
    behind = ~lost & (facing_angle_deg(result["joints_world"], result["camera_to_world"]) > BACK_VIEW_DEG)
    return Uncertainty(lost, mean_conf < LOW_CONFIDENCE, err > thr, mean_conf, thr, behind)


def _shade(ax, t: np.ndarray, mask: np.ndarray, color: str, label: str | None) -> None:
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    for k, (a, b) in enumerate(true_runs(mask)):
        ax.axvspan(t[a] - dt / 2, t[b - 1] + dt / 2, color=color, alpha=0.25, lw=0, label=label if k == 0 else None)


def _joint_groups(result: Mapping[str, np.ndarray]) -> list[tuple[str, list[int]]]:
    jn = [str(n) for n in result["joint_names"]]
    dj = np.asarray(result["dof_joint"])
    return [(jn[j], [int(i) for i in np.flatnonzero(dj == j)]) for j in range(len(jn)) if np.any(dj == j)]


def _rom_rows(names: list[str], deg: np.ndarray, limits_deg: np.ndarray | None) -> list[list[str]]:
    rows = []
    for i, n in enumerate(names):
        v = deg[:, i]
        row = [n, f"{v.min():.1f}", f"{v.max():.1f}", f"{np.ptp(v):.1f}"]
        if limits_deg is not None:
            lo, hi = limits_deg[i]
            if np.isfinite(lo) and np.isfinite(hi):
                near = np.mean((v <= lo + 0.5) | (v >= hi - 0.5)) * 100.0
                row += [f"{lo:.1f} … {hi:.1f}", f"{near:.0f} %"]
            else:
                row += ["unlimited", "–"]
        rows.append(row)
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


@dataclass
class _Curves:
    """What the report draws, read once from the result."""

    t: np.ndarray  # (T,) seconds
    names: list[str]  # SKEL DoF names
    deg: np.ndarray  # (T, 46) degrees
    limits_deg: np.ndarray  # (46, 2)
    error_px: np.ndarray  # (T,) reprojection error
    loss: np.ndarray  # (T,) fit loss
    unc: Uncertainty

    @classmethod
    def of(cls, result: Mapping[str, np.ndarray]) -> _Curves:
        return cls(times(result), dof_names(result), np.degrees(np.asarray(result["poses"], dtype=np.float64)),
                   np.degrees(np.asarray(result["dof_limits"], dtype=np.float64)),
                   np.asarray(result["reprojection_error_px"], dtype=np.float64),
                   np.asarray(result["fit_loss"], dtype=np.float64), uncertain_frames(result))


def _plot_dof_curves(plt, result: Mapping[str, np.ndarray], c: _Curves, out_dir: Path) -> list[tuple[str, str]]:
    """One PNG per joint: its DoFs over time with the limit band and the uncertain frames; (joint, file) pairs."""
    figs: list[tuple[str, str]] = []
    for joint, idx in _joint_groups(result):
        height = 1.9 * len(idx) + 0.4
        fig, axes = plt.subplots(len(idx), 1, figsize=(8, height), sharex=True, squeeze=False)
        # fixed margins in inches: tight_layout costs most of the report's time
        fig.subplots_adjust(left=0.09, right=0.98, top=1 - 0.3 / height, bottom=0.55 / height, hspace=0.35)
        for ax, i in zip(axes[:, 0], idx, strict=True):
            lo, hi = c.limits_deg[i]
            if np.isfinite(lo) and np.isfinite(hi):
                ax.axhspan(lo, hi, color="tab:green", alpha=0.12, lw=0, label="limits")
                ax.axhline(lo, color="tab:green", lw=0.8)
                ax.axhline(hi, color="tab:green", lw=0.8)
            _shade(ax, c.t, c.unc.any, "tab:red", "uncertain")
            ax.plot(c.t, c.deg[:, i], color="tab:blue", lw=1.4, label=c.names[i])
            ax.set_ylabel("deg")
            ax.set_title(c.names[i], fontsize=9, loc="left")
            ax.grid(alpha=0.3)
        axes[0, 0].legend(loc="upper right", fontsize=7, ncol=3)
        axes[-1, 0].set_xlabel("time (s)")
        fname = f"dof_{joint}.png"
        fig.savefig(out_dir / fname, dpi=80)
        plt.close(fig)
        figs.append((joint, fname))
    return figs


def _plot_fit_diagnostics(plt, c: _Curves, path: Path) -> None:
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.4), sharex=True)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.97, bottom=0.08, hspace=0.12)
    series = (
        (c.error_px, "reprojection error (px)", c.unc.error_threshold_px),
        (c.unc.mean_confidence, "mean keypoint confidence", LOW_CONFIDENCE),
        (c.loss, "fit loss", None),
    )
    for ax, (y, label, thr) in zip(axes, series, strict=True):
        _shade(ax, c.t, c.unc.lost, "0.5", "subject lost")
        _shade(ax, c.t, c.unc.any & ~c.unc.lost, "tab:red", "uncertain")
        ax.plot(c.t, y, lw=1.2)
        if thr is not None:
            ax.axhline(thr, color="tab:red", ls="--", lw=0.8, label="threshold")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("time (s)")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_rom(plt, c: _Curves, path: Path) -> None:
    """Range-of-motion bars per SKEL DoF over its limits."""
    fig, ax = plt.subplots(figsize=(8, 11))
    fig.subplots_adjust(left=0.2, right=0.97, top=0.99, bottom=0.05)
    y = np.arange(len(c.names))[::-1]
    for k, i in enumerate(range(len(c.names))):
        lo, hi = c.limits_deg[i]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [y[k], y[k]], color="tab:green", lw=6, alpha=0.3, solid_capstyle="butt")
        ax.plot([c.deg[:, i].min(), c.deg[:, i].max()], [y[k], y[k]], color="tab:blue", lw=2.5)
    ax.set_yticks(y, c.names, fontsize=7)
    ax.set_xlabel("degrees (blue: used range, green: limits)")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _flagged_rows(frames: np.ndarray, c: _Curves) -> list[list[str]]:
    unc = c.unc
    reasons = (("subject lost", unc.lost), ("low confidence", unc.low_confidence),
               ("high reprojection error", unc.high_error), ("seen from behind", unc.from_behind))
    return [[str(int(frames[k])), f"{c.t[k]:.3f}", ", ".join(w for w, m in reasons if m[k]),
             f"{unc.mean_confidence[k]:.2f}", f"{c.error_px[k]:.1f}"] for k in np.flatnonzero(unc.any)]


def _summary_rows(result: Mapping[str, np.ndarray], c: _Curves) -> list[list[str]]:
    unc, err, t = c.unc, c.error_px, c.t
    return [
        ["frames", str(len(t))],
        ["fps (fitted)", f"{float(result['fps']):g}"],
        ["duration (s)", f"{t[-1] - t[0]:.2f}"],
        ["body", str(result["body"])],
        ["subject lost", f"{int(unc.lost.sum())} frames"],
        [f"low confidence (< {LOW_CONFIDENCE})", f"{int(unc.low_confidence.sum())} frames"],
        [f"high reprojection error (> {unc.error_threshold_px:.1f} px)", f"{int(unc.high_error.sum())} frames"],
        [f"seen from behind (facing > {BACK_VIEW_DEG:.0f}° from the camera)", f"{int(unc.from_behind.sum())} frames"],
        ["valid frames seen from the front / side / behind", " / ".join(str(v) for v in view_counts(result).values())],
        ["reprojection error median / 95th pct (px)", f"{np.median(err):.2f} / {np.percentile(err, 95):.2f}"],
        ["fit loss median / max", f"{np.median(c.loss):.4g} / {c.loss.max():.4g}"],
    ]


def _meta_text(result: Mapping[str, np.ndarray]) -> str:
    try:
        return json.dumps(json.loads(str(result["meta_json"])), indent=2)
    except ValueError:
        return str(result["meta_json"])


_STYLE = ("<style>body{font-family:sans-serif;max-width:960px;margin:auto;padding:1em}"
          "table{border-collapse:collapse;font-size:13px;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
          "th{background:#eee}img{max-width:100%}pre{background:#f6f6f6;padding:0.5em;overflow:auto}</style>")


def _html(result: Mapping[str, np.ndarray], c: _Curves, title: str, rel: str, figs: list[tuple[str, str]]) -> str:
    raj_names, raj = rajagopal_motion(result)
    raj_rows = [r for r in _rom_rows(raj_names, raj, None) if r[0] not in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]
    flagged_rows = _flagged_rows(np.asarray(result["frame_index"]), c)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)} — joint-angle report</title>",
        _STYLE,
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Summary and fit diagnostics</h2>",
        _table(["item", "value"], _summary_rows(result, c)),
        f"<img src='{rel}/fit_diagnostics.png' alt='fit diagnostics'>",
        "<h2>Range of motion (SKEL DoFs, degrees)</h2>",
        "<p>'at limit' = share of frames within 0.5° of a limit.</p>",
        _table(["DoF", "min", "max", "range", "limits", "at limit"], _rom_rows(c.names, c.deg, c.limits_deg)),
        f"<img src='{rel}/rom.png' alt='range of motion'>",
        "<h2>Range of motion (Rajagopal-style coordinates, degrees)</h2>",
        "<p>Mapped as in docs/biomechanics-export.md; pelvis angles are in the OpenSim ground.</p>",
        _table(["coordinate", "min", "max", "range"], raj_rows),
        "<h2>DoF curves</h2><p>Green band: joint limits. Red: frames flagged as uncertain.</p>",
        *(f"<h3>{html.escape(j)}</h3><img src='{rel}/{f}' alt='{html.escape(j)}'>" for j, f in figs),
        f"<h2>Uncertain frames ({len(flagged_rows)} of {len(c.t)})</h2>",
        _table(["frame", "time (s)", "why", "mean confidence", "reprojection error (px)"], flagged_rows)
        if flagged_rows
        else "<p>None.</p>",
        "<h2>Producer metadata</h2>",
        f"<pre>{html.escape(_meta_text(result))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(result: Mapping[str, np.ndarray], stem: str | os.PathLike, title: str | None = None) -> Path:
    """Write ``<stem>.report.html`` and its PNGs in ``<stem>.report/``; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    stem = Path(stem)
    out_dir = stem.parent / (stem.name + ".report")
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = stem.parent / (stem.name + ".report.html")
    curves = _Curves.of(result)
    figs = _plot_dof_curves(plt, result, curves, out_dir)
    _plot_fit_diagnostics(plt, curves, out_dir / "fit_diagnostics.png")
    _plot_rom(plt, curves, out_dir / "rom.png")
    html_path.write_text(_html(result, curves, title or stem.name, out_dir.name, figs), encoding="utf-8")
    return html_path
