"""Runs of True in a per-frame mask: the spells that the fitter, the plots, the report and retargeting all walk."""

from __future__ import annotations

import numpy as np


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a (T,) mask as half-open (start, end) frame ranges, in order."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
