"""hsmr_contract.runs.true_runs: the spells of a per-frame mask, half-open, on hand-made masks."""

import numpy as np
import pytest

from hsmr_contract.runs import true_runs


@pytest.mark.parametrize(("mask", "runs"), [
    ([], []),
    ([0, 0, 0], []),
    ([1, 1, 1], [(0, 3)]),
    ([1, 0, 0, 1, 1, 0, 1], [(0, 1), (3, 5), (6, 7)]),
    ([0, 1, 1, 0], [(1, 3)]),
])
def test_runs_of_true_are_half_open_and_in_order(mask, runs):
    assert true_runs(np.array(mask, dtype=bool)) == runs
    assert all(isinstance(a, int) and isinstance(b, int) for a, b in true_runs(np.array(mask, dtype=bool)))
