"""``RESULT.angles.png``: every limited DoF over time, in degrees, over its limit band (from the result file)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hsmr_contract.result_format import atomic_write
from hsmr_contract.runs import true_runs


def plot_angles(result: Mapping[str, np.ndarray], path: str | os.PathLike, dpi: int = 70) -> Path:
    """One small panel per limited DoF (limits shaded, frames where the subject was lost greyed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, safe off the main thread

    names = np.asarray(result["dof_names"])
    limits = np.asarray(result["dof_limits"], np.float64)
    poses = np.degrees(np.asarray(result["poses"], np.float64))
    fps = float(result["fps"])
    t = np.arange(len(poses)) / fps
    valid = np.asarray(result["valid"], bool)
    show = [i for i in range(len(names)) if np.all(np.isfinite(limits[i]))]
    xticks = np.round(np.linspace(0, t[-1] if len(t) else 1, 4), 1)
    cols = 6
    rows = -(-len(show) // cols)
    # fixed margins: constrained layout costs seconds with ~45 panels
    fig = Figure(figsize=(cols * 2.6, rows * 1.5), dpi=dpi)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.04, top=0.94, wspace=0.3, hspace=0.55)
    axes = fig.subplots(rows, cols, squeeze=False)  # not sharex: linked limits are slow with many panels
    for k, ax in enumerate(axes.flat):
        if k >= len(show):
            ax.set_axis_off()
            continue
        i = show[k]
        lo, hi = np.degrees(limits[i])
        ax.axhspan(lo, hi, color="#cfe8cf", lw=0)
        y = poses[:, i]
        ax.plot(t, y, color="#1f4e9a", lw=1.0)
        for a, b in true_runs(~valid):
            ax.axvspan(t[a], t[min(b, len(t) - 1)], color="#dddddd", lw=0)
        pad = 0.1 * (hi - lo)
        ax.set_ylim(min(lo, y.min()) - pad, max(hi, y.max()) + 2.5 * pad)
        # fixed ticks (the limits themselves) and an in-panel label: automatic ticks/titles cost seconds
        ax.set_yticks([round(lo), round(hi)])
        ax.set_xlim(0, max(t[-1], 1e-3) if len(t) else 1)
        ax.set_xticks(xticks)
        if k < len(show) - cols:
            ax.set_xticklabels([])
        ax.text(0.02, 0.97, str(names[i]), transform=ax.transAxes, fontsize=8, va="top")
        ax.tick_params(labelsize=6, length=2, pad=1)
    fig.suptitle(f"SKEL joint angles (deg) over time (s); green = limits, grey = subject lost ({len(t)} frames)",
                 fontsize=10, y=0.985)
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png"), suffix=".png")
