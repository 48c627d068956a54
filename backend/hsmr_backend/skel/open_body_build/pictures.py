"""The documentation picture: the open body in T-pose and three poses, front and side (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsmr_contract.dofs import dof_index

from . import render


def posed(model, q: np.ndarray, bone_mesh: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(skin (V,3), joints (24,3), bone verts (Vb,3) or None) of ``model`` (a SKEL) at pose q, betas 0."""
    import torch  # noqa: PLC0415 - build/documentation time only

    with torch.no_grad():
        out = model(
            torch.tensor(np.asarray(q), dtype=torch.float32)[None],
            torch.zeros(1, model.num_betas),
            torch.zeros(1, 3),
            bone_mesh=bone_mesh,
        )
    bones = out.bone_verts[0].double().numpy() if bone_mesh else None
    return out.skin_verts[0].double().numpy(), out.joints[0].double().numpy(), bones


def poses() -> list[tuple[str, np.ndarray]]:
    def q(**kw: float) -> np.ndarray:
        p = np.zeros(46)
        for k, v in kw.items():
            p[dof_index(k)] = v
        return p

    return [
        ("T-pose (q = 0)", q()),
        (
            "walking",
            q(
                hip_flexion_r=0.5,
                knee_angle_r=0.3,
                hip_flexion_l=-0.3,
                knee_angle_l=0.6,
                ankle_angle_l=-0.2,
                shoulder_r_x=1.3,
                shoulder_l_x=-1.3,
                shoulder_r_y=-0.3,
                shoulder_l_y=0.3,
                elbow_flexion_r=0.5,
                elbow_flexion_l=0.3,
                lumbar_twist=0.1,
            ),
        ),
        (
            "squat, reaching",
            q(
                hip_flexion_r=1.4,
                hip_flexion_l=1.4,
                knee_angle_r=1.9,
                knee_angle_l=1.9,
                ankle_angle_r=0.6,
                ankle_angle_l=0.6,
                lumbar_extension=-0.3,
                thorax_extension=-0.2,
                shoulder_r_z=1.3,
                shoulder_l_z=1.3,
                elbow_flexion_r=0.3,
                elbow_flexion_l=0.3,
                hip_adduction_r=-0.2,
                hip_adduction_l=-0.2,
            ),
        ),
        (
            "waving, head turned",
            q(
                shoulder_l_x=-0.2,
                shoulder_l_y=1.3,
                elbow_flexion_l=1.6,
                pro_sup_l=0.8,
                wrist_flexion_l=-0.4,
                shoulder_r_x=1.4,
                elbow_flexion_r=1.2,
                head_twist=0.5,
                head_bending=0.2,
                lumbar_bending=0.15,
                hip_adduction_r=-0.3,
                knee_angle_r=0.2,
                scapula_elevation_l=-0.35,
                pelvis_rotation=0.3,
            ),
        ),
    ]


def render_pictures(body_path: Path, out_png: Path, with_bones: bool = True) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from .. import SKEL, SkelData  # noqa: PLC0415 - torch only when pictures are drawn

    data = SkelData.from_npz(body_path)
    model = SKEL(data)
    ps = poses()
    fig, axs = plt.subplots(2, len(ps), figsize=(3.2 * len(ps), 7.0))
    for i, (title, q) in enumerate(ps):
        skin, _, bones = posed(model, q, bone_mesh=with_bones)
        for r, view in enumerate(("front", "side")):
            ax = axs[r, i]
            render.draw(ax, skin, data.skin_template_f, view)
            if with_bones:
                render.draw_overlay(ax, bones, data.skel_template_f, view)
            ax.set_title(f"{title}, {view}" if r == 0 else view, fontsize=9)
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
