"""Matplotlib pictures of a SKEL-format body (front and side views), for docs and for eyeballing."""

from __future__ import annotations

import numpy as np


def _shade(tri: np.ndarray, light: np.ndarray) -> np.ndarray:
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    return np.clip(0.25 + 0.75 * np.abs(n @ light), 0, 1)


def _project(p: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Screen coordinates and depth (larger = nearer). Front: camera on +z looking at the subject,
    so the subject's left (+x) is on the picture's right. Side: camera on the subject's left."""
    if view == "front":
        return p[:, [0, 1]], p[:, 2]
    return p[:, [2, 1]] * np.array([-1.0, 1.0]), p[:, 0]


def draw_overlay(ax, verts: np.ndarray, faces: np.ndarray, view: str) -> None:
    """Bone meshes drawn over the skin, semi-transparent."""
    from matplotlib.collections import PolyCollection  # noqa: PLC0415

    proj, depth = _project(verts, view)
    order = np.argsort(depth[faces].mean(1))
    ax.add_collection(
        PolyCollection(
            proj[faces][order], facecolors=(0.98, 0.98, 0.92, 0.55), edgecolors=(0.4, 0.4, 0.35, 0.25), linewidths=0.2
        )
    )


def draw(
    ax, verts: np.ndarray, faces: np.ndarray, view: str, color=(0.85, 0.7, 0.6), joints: np.ndarray | None = None
) -> None:
    """Orthographic painter's-algorithm render onto a 2-D axes. view: 'front' or 'side' (see _project)."""
    from matplotlib.collections import PolyCollection  # noqa: PLC0415

    proj, depth = _project(verts, view)
    tri = verts[faces]
    order = np.argsort(depth[faces].mean(1))
    light = np.array([0.3, 0.5, 0.8]) if view == "front" else np.array([0.8, 0.5, -0.3])
    shade = _shade(tri, light / np.linalg.norm(light))[order]
    cols = np.clip(np.array(color)[None] * shade[:, None], 0, 1)
    ax.add_collection(PolyCollection(proj[faces][order], facecolors=cols, edgecolors="none", antialiased=False))
    if joints is not None:
        jp = _project(joints, view)[0]
        ax.plot(jp[:, 0], jp[:, 1], "o", ms=2.5, color="navy")
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.axis("off")
