"""How well the open body's landmark regressor matches what MediaPipe Pose sees on pictures of the body.

Renders the open body (matplotlib, orthographic front view, 512 px for 2 m) in the four poses of
docs/open_body.png, runs MediaPipe Pose (legacy solution, model_complexity=1, bundled with the wheel:
no download) and prints, per landmark, the distance between MediaPipe's 2-D landmark and our regressed
landmark projected the same way (cm), plus the mean signed offset (MediaPipe - ours; x = subject's
left, y = up).

    python build.py bench bench_open_body_landmarks
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import ROOT, run_recorded

SPAN = 2.0  # metres across the square picture
CENTRE_Y = -0.25


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mediapipe as mp

    from hsmr_backend.skel import SKEL, SkelData
    from hsmr_backend.skel.landmarks import MEDIAPIPE_POSE_LANDMARKS, load_landmark_regressor
    from hsmr_backend.skel.open_body_build import render
    from hsmr_backend.skel.open_body_build.pictures import posed, poses

    data = SkelData.from_npz(ROOT / "assets" / "open_body.npz")
    model = SKEL(data)
    reg = load_landmark_regressor("open")
    errs, signed = [], []
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for title, q in poses():
            skin, joints, _ = posed(model, q)
            fig = plt.figure(figsize=(4, 4), dpi=128)
            ax = fig.add_axes([0, 0, 1, 1])
            render.draw(ax, skin, data.skin_template_f, "front")
            ax.set_xlim(-SPAN / 2, SPAN / 2)
            ax.set_ylim(CENTRE_Y - SPAN / 2, CENTRE_Y + SPAN / 2)
            fig.canvas.draw()
            img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
            plt.close(fig)
            h, w = img.shape[:2]
            res = pose.process(img)
            if res.pose_landmarks is None:
                print(f"{title}: MediaPipe found no person")
                continue
            det = np.array([[p.x * w, p.y * h] for p in res.pose_landmarks.landmark])
            ours = reg.apply(skin, joints)
            px = np.stack([(ours[:, 0] + SPAN / 2) / SPAN * w, (CENTRE_Y + SPAN / 2 - ours[:, 1]) / SPAN * h], 1)
            d = (det - px) * SPAN / w * 100 * np.array([1.0, -1.0])  # cm, x = subject's left, y = up
            errs.append(np.linalg.norm(d, axis=1))
            signed.append(d)
            print(f"{title}: median {np.median(errs[-1]):.1f} cm, max {errs[-1].max():.1f} cm")
    if not errs:
        return
    e, s = np.array(errs), np.array(signed).mean(0)
    print(f"all poses: median {np.median(e):.1f} cm over {e.size} landmark detections")
    for i, name in enumerate(MEDIAPIPE_POSE_LANDMARKS):
        print(f"  {name:18s} mean {e[:, i].mean():4.1f} cm   offset x {s[i, 0]:+5.1f} y {s[i, 1]:+5.1f} cm")


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
