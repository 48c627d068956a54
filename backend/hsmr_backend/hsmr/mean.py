"""HSMR's mean SKEL parameters (``SKEL_mean.npz`` of the release), kept as plain data.

The decoder predicts residuals on these values (reference/hsmr.md §1). A released checkpoint stores them
again as the ``head.init_*`` buffers, which then take precedence; these numbers only seed a network that is
built without a checkpoint (benchmarks, tests) and SKELify's fallback start.
"""

from __future__ import annotations

MEAN_CAM: tuple[float, float, float] = (0.9, 0.0, 0.0)  # (s, tx, ty) in the 256-pixel patch camera

MEAN_POSES: tuple[float, ...] = (
    3.1416, 0.0, 0.0, 0.2582, -0.0071, -0.0876, 0.4731, 0.1797, -0.0889, 0.1686,
    0.2181, -0.0426, -0.0258, 0.4005, 0.2235, -0.1282, 0.0974, 0.0080, -0.1757, 0.0128,
    -0.0050, -0.0140, -0.0251, 0.0334, -0.0705, 0.0118, 0.1171, 0.2204, -0.1529, 0.8109,
    -0.1505, 0.3264, 0.8769, 0.0029, 0.0093, -0.1357, -0.0722, -0.2091, -0.2010, -0.7917,
    0.0847, 0.3904, 0.9036, -0.0237, -0.0298, -0.1886,
)  # fmt: skip

MEAN_BETAS: tuple[float, ...] = (
    0.0722, 0.4987, 0.4030, -0.0092, 0.2598, -0.6516, 0.3040, -0.5180, 0.4776, 0.2177,
)  # fmt: skip

assert len(MEAN_POSES) == 46 and len(MEAN_BETAS) == 10
