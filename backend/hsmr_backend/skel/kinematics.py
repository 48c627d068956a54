"""Batch-agnostic rotation helpers in pure torch (in the spirit of roma / pytorch3d).

Every function accepts any leading batch shape ``(...)``. All of them are differentiable with finite
gradients everywhere they are defined, including the zero rotation: small-angle branches are selected
with ``torch.where`` on *safe* inputs so the unused branch never produces inf/NaN gradients.

Conventions: rotation matrices act on column vectors (``R @ v``); quaternions are ``(w, x, y, z)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Below this rotation angle the quaternion uses the Taylor series of sin(t/2)/t (as SKEL does).
SMALL_ANGLE = 1e-6


def skew(v: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix: ``skew(a) @ b == cross(a, b)``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), dim=-1).reshape(v.shape + (3,))


def axis_angle_to_quaternion(rotvec: Tensor) -> Tensor:
    """(..., 3) rotation vector (axis * angle, axis *not* required unit) -> (..., 4) quaternion (w, x, y, z).

    The angle is ``|rotvec|``. For angles below ``SMALL_ANGLE`` sin(t/2)/t uses 0.5 - t^2/48.
    """
    t2 = (rotvec * rotvec).sum(-1, keepdim=True)
    small = t2 < SMALL_ANGLE**2
    # safe angle: never 0 in the branch that divides, so its gradient stays finite
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    half_sinc = torch.where(small, 0.5 - t2 / 48.0, torch.sin(0.5 * t) / t)
    w = torch.where(small, 1.0 - t2 / 8.0, torch.cos(0.5 * t))
    return torch.cat((w, rotvec * half_sinc), dim=-1)


def quaternion_to_matrix(quat: Tensor) -> Tensor:
    """(..., 4) quaternion (w, x, y, z), any non-zero norm -> (..., 3, 3) rotation matrix."""
    w, x, y, z = quat.unbind(-1)
    two_s = 2.0 / (quat * quat).sum(-1)
    m = torch.stack(
        (
            1 - two_s * (y * y + z * z),
            two_s * (x * y - z * w),
            two_s * (x * z + y * w),
            two_s * (x * y + z * w),
            1 - two_s * (x * x + z * z),
            two_s * (y * z - x * w),
            two_s * (x * z - y * w),
            two_s * (y * z + x * w),
            1 - two_s * (x * x + y * y),
        ),
        dim=-1,
    )
    return m.reshape(quat.shape[:-1] + (3, 3))


def axis_angle_to_matrix(rotvec: Tensor) -> Tensor:
    """(..., 3) rotation vector -> (..., 3, 3) rotation matrix ``exp(skew(rotvec))`` (via the quaternion)."""
    return quaternion_to_matrix(axis_angle_to_quaternion(rotvec))


def matrix_to_axis_angle(R: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrix -> (..., 3) rotation vector with angle in [0, pi].

    Robust near 0 and near pi (goes through the quaternion with the largest-component branch).
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def matrix_to_quaternion(R: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrix -> (..., 4) unit quaternion (w, x, y, z) with w >= 0."""
    m = R.reshape(R.shape[:-2] + (9,))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    # 4 * squared components from the diagonal, then pick the best-conditioned row
    q_abs = torch.sqrt(
        torch.clamp(
            torch.stack(
                (
                    1.0 + m00 + m11 + m22,
                    1.0 + m00 - m11 - m22,
                    1.0 - m00 + m11 - m22,
                    1.0 - m00 - m11 + m22,
                ),
                dim=-1,
            ),
            min=1e-12,
        )
    )
    cands = torch.stack(
        (
            torch.stack((q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), dim=-1),
            torch.stack((m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20), dim=-1),
            torch.stack((m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21), dim=-1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2), dim=-1),
        ),
        dim=-2,
    )
    cands = cands / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = q_abs.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(quat: Tensor) -> Tensor:
    """(..., 4) quaternion (w, x, y, z) -> (..., 3) rotation vector, angle in [0, pi]."""
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    xyz = quat[..., 1:]
    s2 = (xyz * xyz).sum(-1, keepdim=True)
    small = s2 < 1e-12
    s = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))
    angle = 2.0 * torch.atan2(s, quat[..., :1])
    # near 0: angle / sin(angle/2) -> 2 / w
    scale = torch.where(small, 2.0 / quat[..., :1], angle / s)
    return xyz * scale


def rot_align(a: Tensor, b: Tensor) -> Tensor:
    """(..., 3), (..., 3) -> (..., 3, 3): the smallest rotation taking direction ``a`` onto direction ``b``.

    Rodrigues' "align a to b": ``I + [v]x + [v]x^2 (1 - c) / s^2`` with ``v = a^ x b^``, ``c = a^ . b^``,
    ``s = |v|``; written with ``(1 - c) / s^2 = 1 / (1 + c)`` (equal for unit vectors) so that it stays
    finite and smooth when a and b are parallel (it is then I). Undefined only for opposite directions,
    where the denominator is clamped (a finite, not meaningful result) instead of producing NaN.
    """
    a_n = a / a.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    v = torch.cross(a_n, b_n, dim=-1)
    c = (a_n * b_n).sum(-1)
    K = skew(v)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand(K.shape)
    k = 1.0 / (1.0 + c).clamp(min=1e-8)
    return eye + K + (K @ K) * k[..., None, None]


def rot_x(angle: Tensor) -> Tensor:
    """(...,) -> (..., 3, 3) rotation about x."""
    c, s, o, i = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack((i, o, o, o, c, -s, o, s, c), -1).reshape(angle.shape + (3, 3))


def rot_y(angle: Tensor) -> Tensor:
    """(...,) -> (..., 3, 3) rotation about y."""
    c, s, o, i = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack((c, o, s, o, i, o, -s, o, c), -1).reshape(angle.shape + (3, 3))


def rot_z(angle: Tensor) -> Tensor:
    """(...,) -> (..., 3, 3) rotation about z."""
    c, s, o, i = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack((c, -s, o, s, c, o, o, o, i), -1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: Tensor, order: str = "XYZ") -> Tensor:
    """(..., 3) intrinsic Euler angles -> (..., 3, 3): ``R = R_{order[0]}(a0) @ R_{order[1]}(a1) @ R_{order[2]}(a2)``
    (pytorch3d's convention)."""
    fns = {"X": rot_x, "Y": rot_y, "Z": rot_z}
    out = fns[order[0]](angles[..., 0])
    for i in (1, 2):
        out = out @ fns[order[i]](angles[..., i])
    return out


def rigid(R: Tensor, t: Tensor) -> Tensor:
    """(..., 3, 3), (..., 3) -> (..., 4, 4) homogeneous transform ``[R | t; 0 0 0 1]``."""
    top = torch.cat((R, t[..., None]), dim=-1)
    bottom = torch.zeros(top.shape[:-2] + (1, 4), dtype=R.dtype, device=R.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat((top, bottom), dim=-2)
