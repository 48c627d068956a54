"""A small numpy forward pass of the SKEL model (skel.md §5-§6, no pose correctives).

Used at build time to check the generated body and to render its pictures without torch; the
product uses ``hsmr_backend.skel.SKEL``. Tests compare the two where both are available.
"""

from __future__ import annotations

import numpy as np

from ..dofs import DOFS, N_JOINTS, PARENTS, dofs_of_joint
from .geometry import axis_angle

FORCED_IDENTITY = (0, 5, 10, 13, 18, 23)


def first_children() -> list[int]:
    out = []
    for j in range(N_JOINTS):
        out.append(next((c for c in range(N_JOINTS) if PARENTS[c] == j), 0))
    return out


def rot_align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = a @ b
    s = np.linalg.norm(v) + np.finfo(np.float64).eps
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k * (1 - c) / s**2


def joint_rotation(j: int, q: np.ndarray) -> np.ndarray:
    r = np.eye(3)
    for d in dofs_of_joint(j):
        vec = d.flip * q[d.index] * np.asarray(d.axis)
        ang = np.linalg.norm(vec)
        if ang > 0:
            r = axis_angle(vec, ang) @ r
    return r


def _arc(theta: float, length: float) -> tuple[float, float]:
    if abs(theta) < 1e-5:
        return length * theta / 2, length * (1 - theta**2 / 6)
    return length * (1 - np.cos(theta)) / theta, length * np.sin(theta) / theta


def _spine(b: float, e: float, length: float) -> np.ndarray:
    xb, yb = _arc(b, length)
    xe, ye = _arc(e, length)
    return np.array([-xb, yb, 0.0]) + np.array([0.0, ye, -xe])


def _scap(a: float, e: float, w: float, h: float, left: bool) -> np.ndarray:
    if left:
        a, e = -a, -e
    rx, ry, rz = w / 4 * np.cos(e - np.pi / 4), w / 4, h / 2
    x = -rx * np.cos(a)
    return np.array([-x if left else x, -rz * np.sin(e - np.pi / 4), ry * np.sin(a)])


def forward(
    data: dict, q: np.ndarray, betas: np.ndarray | None = None, trans: np.ndarray | None = None, bone_mesh: bool = False
) -> dict:
    q = np.asarray(q, dtype=float)
    k = data["shapedirs"].shape[2]
    beta = np.zeros(k) if betas is None else np.pad(np.asarray(betas, float), (0, max(0, k - len(betas))))[:k]
    v = data["skin_template_v"] + data["shapedirs"] @ beta
    jr = data["J_regressor_osim"] @ v
    local = jr.copy()
    for c in range(1, N_JOINTS):
        local[c] = jr[c] - jr[PARENTS[c]]
    off = data["apose_rel_transfo"][:, :3, 3]
    ra = data["apose_rel_transfo"][:, :3, :3]
    pjr = data["per_joint_rot"]
    child = first_children()
    rk = np.zeros((N_JOINTS, 3, 3))
    for j in range(N_JOINTS):
        b, o = local[child[j]], off[child[j]]
        if j in (16, 21):
            b, o = local[j + 1] + local[j + 2], off[j + 1] + off[j + 2]
        if j == 12:
            b = local[child[11]]
        align = np.eye(3) if j in FORCED_IDENTITY else rot_align(pjr[j] @ o, b)
        rk[j] = align @ pjr[j]
    g = np.zeros((N_JOINTS, 4, 4))
    h = np.linalg.norm(jr[12] - jr[11])
    w = np.linalg.norm(jr[19] - jr[14])
    for j in range(N_JOINTS):
        r = rk[j] @ ra[j].T @ joint_rotation(j, q) @ ra[j] @ rk[j].T
        t = local[j].copy()
        if j in (11, 12, 13):
            length = abs(jr[j, 1] - jr[PARENTS[j], 1])
            i0 = {11: 17, 12: 20, 13: 23}[j]
            t += _spine(q[i0], q[i0 + 1], length) - _spine(0.0, 0.0, length)
        if j in (14, 19):
            i0 = 26 if j == 14 else 36
            t += _scap(q[i0], q[i0 + 1], w, h, j == 19) - _scap(0.0, 0.0, w, h, j == 19)
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = r, t
        g[j] = m if j == 0 else g[PARENTS[j]] @ m
    tr = np.zeros(3) if trans is None else np.asarray(trans, float)
    rel = g.copy()
    rel[:, :3, 3] -= np.einsum("jab,jb->ja", g[:, :3, :3], jr)
    wts = data["skin_weights"]
    blended = np.einsum("vj,jab->vab", wts, rel)
    skin = np.einsum("vab,vb->va", blended[:, :3, :3], v) + blended[:, :3, 3] + tr
    out = {"skin_verts": skin, "joints": g[:, :3, 3] + tr, "joints_tpose": jr, "rk01": rk, "global": g, "v_shaped": v}
    if bone_mesh:
        scale = bone_scales(jr, local, off, child)
        for b, axis, va, vb, ax in data.get("bone_scale_vertex_pairs", np.zeros((0, 5), int)):
            tmpl = data["skin_template_v"]
            scale[b, axis] = (v[va, ax] - v[vb, ax]) / (tmpl[va, ax] - tmpl[vb, ax])
        owner = data["skel_weights_rigid"].argmax(1)
        v0 = data["skel_template_v"] * scale[owner]
        va = np.einsum("nab,nb->na", rk[owner], v0) + jr[owner]
        rel_o = rel[owner]
        out["bone_verts"] = np.einsum("nab,nb->na", rel_o[:, :3, :3], va) + rel_o[:, :3, 3] + tr
    return out


def bone_scales(jr: np.ndarray, local: np.ndarray, off: np.ndarray, child: list[int]) -> np.ndarray:
    """§6 before the per-axis vertex-pair overrides (applied by the caller)."""
    ratio = np.linalg.norm(local, axis=1) / np.maximum(np.linalg.norm(off, axis=1), 1e-12)
    s = np.ones(N_JOINTS)
    for j in range(N_JOINTS):
        if child[j]:
            s[j] = ratio[child[j]]
    s[16], s[21] = s[17], s[22]
    s[12] = s[11]  # before the lumbar override, as SKEL does it
    s[11] = abs(local[11, 1]) / abs(off[11, 1])
    return np.repeat(s[:, None], 3, 1)


__all__ = ["DOFS", "forward"]
