"""The leg-swap detection benchmark's scenario (benchmarks/accuracy/bench_leg_swaps.py), held as a test."""

from __future__ import annotations

from benchmarks.accuracy import bench_leg_swaps as bench


def test_injected_leg_swaps_over_views_at_6px_noise(open_body):
    """The detection benchmark's first four motions over five views (0-180°), 6 px noise and 10 % of points
    dropped: every swapped frame is found and no other, and clean clips have none."""
    clips = bench.projected_clips(4, 150, [0.0, 45.0, 90.0, 135.0, 180.0])
    assert bench.count(clips, 6.0, 0.0)["wrongly"] == 0
    swaps = bench.count(clips, 6.0, 0.1)
    assert swaps["swapped"] > 300 and swaps["wrongly"] == 0 and swaps["missed"] == 0, swaps
