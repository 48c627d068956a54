"""Joint-angle error of the whole pipeline on synthetic renders of the open body in known poses.

    python build.py bench bench_angles_synthetic -- [--quick]
        [--shapes average tall-light short-heavy] [--motions walk squat sit-to-stand] [--frames 40] [--fps 30]
        [--res 540x960] [--samples 4] [--focal-mm 26] [--distance 3.5] [--default-focal first|all|none]
        [--work DIR] [--keep] [--skip-render] [--azimuths 90 180] [--camera-height 1.3] [--props]
        [--up auto|body]

1. Poses the open body (``load_body("open")``, betas of each shape in ``angles_synth.SHAPES``) through known
   motions (``angles_synth.motion``: walk in place, squat, sit-to-stand from a box), every DoF in its limits.
2. Renders each clip with Blender Cycles on the CPU (the ``bpy`` wheel; Eevee needs a GPU/EGL context that a
   headless CPU machine lacks): a clothed, skin-coloured body on a checker floor, sun + sky light with shadows,
   a static phone-like camera (``--focal-mm`` 35-mm-equivalent focal, portrait, ``--distance`` m away, lens at
   ``--camera-height`` m, 1.3 by default, looking at 0.9 m above the feet), from 30-45 degrees off the front
   (``--azimuths``: every motion from each of these instead, 90 = the subject's left side, 180 = behind).
   ``--props`` adds sixteen upright pillars around the subject (4.5-5.5 m away, 2.0-2.6 m tall), like a room's
   door frames and shelves, whose edges can give "up" (``hsmr_backend.scene``); without them nothing in the picture
   is upright but the subject. Frames go to a temporary folder.
3. Runs ``hsmr-backend convert`` (the real pipeline, a child process) on each image sequence, once with the
   true focal (``--focal-px``) and, for the first shape's clips, once more with the default focal.
4. Compares the result file's poses to the truth (``angles_synth``: joint DoFs directly, the pelvis only
   relative to the world's up) and prints per-joint MAE in degrees, on SKEL's DoFs and on the Rajagopal
   coordinates of ``hsmr_contract.export.opensim_map``, beside the anchors of biomechanics.md section 3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy import angles_synth as syn
from benchmarks.common import run_recorded, source_pythonpath

OPENCAP_MONO, WHAM = 4.8, 9.3  # deg MAE, biomechanics.md section 3
# the dominant skin joint of a face picks its material: trousers, shoes, shirt, else skin
TROUSERS = {0, 1, 2, 6, 7}
SHOES = {3, 4, 5, 8, 9, 10}
SHIRT = {11, 12, 14, 15, 19, 20}
SKIN_TONES = {"average": (0.80, 0.57, 0.45), "tall-light": (0.93, 0.76, 0.65), "short-heavy": (0.45, 0.30, 0.21)}
SHIRT_COLOURS = {"average": (0.55, 0.08, 0.07), "tall-light": (0.10, 0.30, 0.55), "short-heavy": (0.85, 0.75, 0.25)}
VIEWS = {"walk": 40.0, "squat": -30.0, "sit-to-stand": 45.0}  # camera azimuth from the front, degrees


def pose_clip(body, betas: np.ndarray, q: np.ndarray) -> dict[str, np.ndarray]:
    """Skin vertices in Blender's frame (z up, feet on z = 0, ankles' midpoint over the origin), the faces,
    each face's dominant joint and the true rest frames."""
    import torch

    n = len(q)
    with torch.no_grad():
        out = body(
            torch.tensor(q, dtype=torch.float32),
            torch.tensor(np.tile(betas, (n, 1)), dtype=torch.float32),
            torch.zeros(n, 3),
        )
    to_blender = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # model y up, faces +z -> z up, faces -y
    v = out.skin_verts.numpy().astype(np.float64) @ to_blender.T
    j = out.joints.numpy().astype(np.float64) @ to_blender.T
    shift = np.zeros((n, 1, 3))
    shift[:, 0, :2] = -0.5 * (j[:, 3, :2] + j[:, 8, :2])  # talus joints: the feet stay put
    shift[:, 0, 2] = -v[..., 2].min(axis=1)
    faces = out.skin_faces.numpy()
    from hsmr_backend.skel.landmarks import load_landmark_regressor

    lm = load_landmark_regressor("open").apply(out.skin_verts.numpy(), out.joints.numpy()) @ to_blender.T
    dom = body.skin_weights.numpy().argmax(axis=1)
    return {
        "verts": v + shift,
        "joints": j + shift,
        "landmarks": lm + shift,  # the fitter's model of MediaPipe's 33 landmarks, on the true body
        "faces": faces,
        "face_joint": dom[faces[:, 0]],
        "vert_joint": dom,
        "rest_frames": out.rest_frames[0].numpy().astype(np.float64),
    }


def _material(bpy, name: str, colour: tuple[float, float, float], rough: float = 0.6):
    m = bpy.data.materials.new(name)
    m.use_nodes = True
    bsdf = m.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = rough
    return m


def setup_scene(res: tuple[int, int], samples: int, props: bool = False):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 2
    scene.cycles.diffuse_bounces = 1
    scene.cycles.glossy_bounces = 1
    scene.cycles.transparent_max_bounces = 1
    scene.cycles.transmission_bounces = 0
    scene.render.use_persistent_data = True
    scene.render.resolution_x, scene.render.resolution_y = res
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"  # frames are composed, then saved as JPEG like a phone's
    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.55, 0.62, 0.72, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.8
    scene.world = world

    # floor: a checker of two warm greys (1 m tiles of 0.5 m squares), like a tiled or wooden floor
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 0, 0))
    floor = bpy.context.active_object
    fm = _material(bpy, "floor", (0.5, 0.45, 0.4), rough=0.8)
    nt = fm.node_tree
    checker = nt.nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 40.0  # over the plane's 0..1 UVs: 1 m squares on 40 m
    checker.inputs["Color1"].default_value = (0.42, 0.36, 0.30, 1.0)
    checker.inputs["Color2"].default_value = (0.62, 0.58, 0.52, 1.0)
    nt.links.new(checker.outputs["Color"], nt.nodes["Principled BSDF"].inputs["Base Color"])
    floor.data.materials.append(fm)
    # a back wall, so the picture has a horizon like a room
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 6.0, 0), rotation=(np.pi / 2, 0, 0))
    bpy.context.active_object.data.materials.append(_material(bpy, "wall", (0.75, 0.74, 0.70), rough=0.9))
    if props:  # upright pillars on a circle around the subject, beyond the camera's 3.5 m: edges that are vertical
        pm = _material(bpy, "pillar", (0.18, 0.16, 0.15), rough=0.7)
        for i, a in enumerate(np.radians(np.arange(11.25, 360.0, 22.5))):
            height, radius = 2.0 + 0.2 * (i % 4), 4.5 + (i % 2)
            bpy.ops.mesh.primitive_cube_add(size=1.0, location=(radius * np.cos(a), radius * np.sin(a), height / 2))
            pillar = bpy.context.active_object
            pillar.scale = (0.25, 0.25, height)
            pillar.rotation_euler = (0.0, 0.0, a)
            pillar.data.materials.append(pm)

    sun_data = bpy.data.lights.new("sun", "SUN")
    sun_data.energy = 3.0
    sun_data.angle = np.radians(8)  # soft shadows
    sun = bpy.data.objects.new("sun", sun_data)
    sun.rotation_euler = (np.radians(40), np.radians(15), np.radians(-30))
    scene.collection.objects.link(sun)
    return scene


def render_clip(
    scene, posed: dict[str, np.ndarray], shape: str, motion: str, out_dir: Path, cam: dict[str, float]
) -> float:
    """Render one clip to out_dir/frame_%04d.jpg; returns seconds per frame."""
    import bpy
    from mathutils import Vector

    for ob in [o for o in scene.collection.objects if o.name.startswith(("body", "chair", "cam"))]:
        bpy.data.objects.remove(ob, do_unlink=True)
    verts, faces = posed["verts"], posed["faces"]
    mesh = bpy.data.meshes.new("body")
    mesh.from_pydata(verts[0].tolist(), [], faces.tolist())
    for m in (
        _material(bpy, "skin", SKIN_TONES.get(shape, SKIN_TONES["average"]), rough=0.5),
        _material(bpy, "trousers", (0.08, 0.10, 0.18), rough=0.8),
        _material(bpy, "shoes", (0.9, 0.9, 0.9), rough=0.5),
        _material(bpy, "shirt", SHIRT_COLOURS.get(shape, SHIRT_COLOURS["average"]), rough=0.8),
    ):
        mesh.materials.append(m)
    fj = posed["face_joint"]
    idx = np.where(np.isin(fj, list(TROUSERS)), 1, np.where(np.isin(fj, list(SHOES)), 2, 0))
    idx = np.where(np.isin(fj, list(SHIRT)), 3, idx)
    mesh.polygons.foreach_set("material_index", idx.astype(np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    body = bpy.data.objects.new("body", mesh)
    scene.collection.objects.link(body)

    if motion == "sit-to-stand":  # a box chair under the buttocks of the seated first frame
        v0, vj = verts[0], posed["vert_joint"]
        seat = float(v0[vj == 0, 2].min())
        px, py = posed["joints"][0, 0, :2]
        bpy.ops.mesh.primitive_cube_add(size=1.0, location=(px, py + 0.12, seat / 2))
        chair = bpy.context.active_object
        chair.name = "chair"
        chair.scale = (0.45, 0.42, seat)
        chair.data.materials.append(_material(bpy, "chair_mat", (0.30, 0.18, 0.10), rough=0.6))

    w, h = scene.render.resolution_x, scene.render.resolution_y
    cam_data = bpy.data.cameras.new("cam")
    cam_data.sensor_fit = "AUTO"  # sensor_width spans the longer image side
    cam_data.sensor_width = 36.0
    cam_data.lens = cam["focal_px"] * 36.0 / max(w, h)
    cam_ob = bpy.data.objects.new("cam", cam_data)
    a = np.radians(cam["azimuth"])
    d = cam["distance"]
    cam_ob.location = (d * np.sin(a), -d * np.cos(a), cam["height"])
    cam_ob.rotation_euler = (Vector((0.0, 0.0, 0.9)) - cam_ob.location).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam_ob)
    scene.camera = cam_ob

    out_dir.mkdir(parents=True, exist_ok=True)
    bpy.context.view_layer.update()
    # The static scene is rendered once without the body; each frame then renders only the region around
    # the body and its shadow (Cycles border render) and is pasted over that background: ~5x faster.
    body.hide_render = True
    scene.render.use_border = False
    bg_path = out_dir.parent / "background.png"
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(bg_path)
    bpy.ops.render.render(write_still=True)
    body.hide_render = False
    scene.render.use_border = True
    scene.render.use_crop_to_border = True
    cv2 = _cv2()
    background = cv2.imread(str(bg_path))
    cam_rot = np.array(cam_ob.matrix_world)[:3, :3]
    cam_pos = np.array(cam_ob.matrix_world)[:3, 3]
    sun_dir = np.array(scene.objects["sun"].matrix_world)[:3, :3] @ np.array([0.0, 0.0, -1.0])
    f = cam["focal_px"]
    crop = out_dir.parent / "crop.png"
    t0 = time.perf_counter()
    for i, v in enumerate(verts):
        mesh.vertices.foreach_set("co", v.astype(np.float32).ravel())
        mesh.update()
        shadow = v - sun_dir[None] * (v[:, 2:3] / sun_dir[2])  # the body's shadow on the floor
        pts = np.concatenate([v, shadow]) - cam_pos
        pc = pts @ cam_rot  # camera axes: x right, y up, looking along -z
        u = w / 2 + f * pc[:, 0] / -pc[:, 2]
        vv = h / 2 + f * pc[:, 1] / -pc[:, 2]  # from the bottom, as Blender's border
        m = 0.06 * h
        x0, x1 = np.clip([u.min() - m, u.max() + m], 0, w).astype(int)
        y0, y1 = np.clip([vv.min() - m, vv.max() + m], 0, h).astype(int)
        scene.render.border_min_x, scene.render.border_max_x = x0 / w, x1 / w
        scene.render.border_min_y, scene.render.border_max_y = y0 / h, y1 / h
        scene.render.filepath = str(crop)
        bpy.ops.render.render(write_still=True)
        img = background.copy()
        patch = cv2.imread(str(crop))
        ph, pw = patch.shape[:2]
        top = h - y0 - ph  # the crop's top row in image rows (which run downwards)
        top, ph, pw = max(0, top), min(ph, h - max(0, top)), min(pw, w - x0)  # guard against rounding
        img[top : top + ph, x0 : x0 + pw] = patch[:ph, :pw]
        cv2.imwrite(str(out_dir / f"frame_{i:04d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    scene.render.use_border = False
    return (time.perf_counter() - t0) / len(verts)


def camera_axes(cam: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Position and (right, up, forward) rows of the render camera: at ``distance`` m and ``azimuth`` deg from
    the subject's front, lens at ``height`` m, looking at (0, 0, 0.9) with no roll (Blender's track-to)."""
    a = np.radians(cam["azimuth"])
    pos = np.array([cam["distance"] * np.sin(a), -cam["distance"] * np.cos(a), cam["height"]])
    fwd = np.array([0.0, 0.0, 0.9]) - pos
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return pos, np.stack([right, np.cross(right, fwd), fwd])


def project(points: np.ndarray, cam: dict[str, float], size: tuple[int, int]) -> np.ndarray:
    """Pixels (x right, y down) of world points (..., 3) in the render camera (principal point at the centre)."""
    pos, axes = camera_axes(cam)
    pc = (points - pos) @ axes.T
    f = cam["focal_px"]
    return np.stack([size[0] / 2 + f * pc[..., 0] / pc[..., 2], size[1] / 2 - f * pc[..., 1] / pc[..., 2]], -1)


def up_error_deg(r: dict, cam: dict[str, float]) -> float:
    """Angle between the result's world up (row 3 of camera_to_world: world z in OpenCV camera axes) and the
    true up seen from the render camera; the pelvis tilt/list "relative to up" inherit it."""
    _, axes = camera_axes(cam)
    true_up = np.array([axes[0, 2], -axes[1, 2], axes[2, 2]])  # OpenCV camera: x right, y down, z forward
    est = np.asarray(r["camera_to_world"], np.float64)[2, :3]
    return float(np.degrees(np.arccos(np.clip(true_up @ est / np.linalg.norm(est), -1.0, 1.0))))


def _cv2():
    import cv2  # opencv-python-headless, a backend requirement

    return cv2


def convert(frames: Path, result: Path, fps: float, focal_px: float | None, mode: str,
            up: str = "auto") -> tuple[float, str]:
    cmd = [sys.executable, "-m", "hsmr_backend.cli", "convert", str(frames / "frame_*.jpg"), "-o", str(result)]
    cmd += ["--fps", str(fps), "--mode", mode, "--progress", "none", "--no-overlay", "--no-plot", "--no-resume"]
    cmd += ["--up", up]
    if focal_px is not None:
        cmd += ["--focal-px", f"{focal_px:.3f}"]
    env = {**os.environ, "PYTHONPATH": source_pythonpath()}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return -1.0, done.stderr.strip()[-400:]
    return time.perf_counter() - t0, ""


LIMB_LANDMARKS = {
    "shoulders": (11, 12),
    "elbows": (13, 14),
    "wrists": (15, 16),
    "hips": (23, 24),
    "knees": (25, 26),
    "ankles": (27, 28),
}  # MediaPipe landmark indices
LEG_LEFT, LEG_RIGHT = [25, 27, 29, 31], [26, 28, 30, 32]  # knee, ankle, heel, foot index


def swapped_legs(kp: np.ndarray, true_2d: np.ndarray) -> np.ndarray:
    """(T,) bool: the detector's left-leg points lie nearer the true right leg (and its right leg nearer the
    true left) than where they belong: MediaPipe's left/right confusion, common from the side and behind."""

    def dist(a: list[int], b: list[int]) -> np.ndarray:
        return np.linalg.norm(kp[:, a, :2] - true_2d[:, b], axis=-1).mean(-1)

    return dist(LEG_LEFT, LEG_RIGHT) + dist(LEG_RIGHT, LEG_LEFT) < dist(LEG_LEFT, LEG_LEFT) + dist(LEG_RIGHT, LEG_RIGHT)


def feet_drift_cm(joints_world: np.ndarray) -> float:
    """Mean over the foot joints of their largest horizontal distance from their median place (cm): about 0 for
    feet that stay planted."""
    from hsmr_backend.fit import FOOT_JOINTS

    f = np.asarray(joints_world, dtype=np.float64)[:, list(FOOT_JOINTS), :2]
    return float(100 * np.linalg.norm(f - np.median(f, axis=0), axis=-1).max(axis=0).mean())


def compare(
    result: Path, gt_q: np.ndarray, rest_frames: np.ndarray, true_2d: np.ndarray, cam: dict, true_joints: np.ndarray
) -> dict:
    from hsmr_backend.fit import FOOT_JOINTS
    from hsmr_contract import result_format as rf

    r = rf.load(result)
    fi = np.asarray(r["frame_index"])
    meta = json.loads(str(r["meta_json"]))
    g = gt_q[fi]
    kp = np.asarray(r["keypoints_2d"], np.float64)
    return {
        "skel": syn.dof_errors_deg(g, r["poses"]),
        "raj": syn.raj_errors_deg(syn.gt_result(r, g, rest_frames), r),
        "frames": len(fi),
        "valid": int(np.asarray(r["valid"]).sum()),
        "mode": meta.get("mode", "?"),
        "reproj": float(np.mean(r["reprojection_error_px"])),
        "focal": float(np.asarray(r["camera_K"])[0, 0]),
        "up_err": up_error_deg(r, cam),
        "up_source": meta.get("up_source", "?"),
        "scene_focal": meta.get("scene_focal_px"),
        "swapped": float(swapped_legs(kp, true_2d[fi])[np.asarray(r["valid"], bool)].mean()),
        # planted feet: how far the fitted feet wander (the truth's own drift beside it) and sink below the ground
        "feet_drift": feet_drift_cm(r["joints_world"]),
        "feet_drift_true": feet_drift_cm(true_joints[fi]),
        "feet_sink": float(-100 * min(0.0, np.asarray(r["joints_world"])[:, list(FOOT_JOINTS), 2].min())),
        # MediaPipe's 2D landmarks against the true body's (regressed) landmarks: the detector's share
        "kp_err": {
            k: float(np.linalg.norm(kp[:, list(ix), :2] - true_2d[fi][:, list(ix)], axis=-1).mean())
            for k, ix in LIMB_LANDMARKS.items()
        },
    }


def _cat(runs: list[dict], key: str, name: str) -> np.ndarray:
    return np.concatenate([c[key][name] for c in runs])


def table(runs_by_motion: dict[str, list[dict]], title: str) -> str:
    """Per-joint MAE (deg), one column per motion and one over everything (frames pooled)."""
    motions = list(runs_by_motion)
    every = [c for rs in runs_by_motion.values() for c in rs]
    lines = [f"### {title}", "", "| joint (SKEL DoF) | " + " | ".join(motions) + " | all |"]
    lines.append("|---" * (len(motions) + 2) + "|")

    def row(label: str, key: str, names: list[str]) -> str:
        cols = [np.mean([_cat(rs, key, n).mean() for n in names]) for rs in runs_by_motion.values()]
        cols.append(np.mean([_cat(every, key, n).mean() for n in names]))
        return f"| {label} | " + " | ".join(f"{c:.1f}" for c in cols) + " |"

    for label, names in syn.SKEL_ROWS.items():
        lines.append(row(label, "skel", names))
    lines.append(row("**sagittal hip/knee/ankle**", "skel", syn.SAGITTAL))
    lines += ["", "| Rajagopal coordinate | " + " | ".join(motions) + " | all |"]
    lines.append("|---" * (len(motions) + 2) + "|")
    for label, names in syn.RAJ_ROWS.items():
        lines.append(row(label, "raj", names))
    lines.append(row("**sagittal hip/knee/ankle**", "raj", syn.SAGITTAL))
    # "all rotational DoFs": Rajagopal's non-pelvis rotations + SKEL pelvis tilt/list (relative to up)
    cols = []
    for rs in [*runs_by_motion.values(), every]:
        per = [_cat(rs, "raj", n).mean() for n in syn.RAJ_ALL] + [
            _cat(rs, "skel", n).mean() for n in ("pelvis_tilt", "pelvis_list")
        ]
        cols.append(np.mean(per))
    lines.append("| **all rotational DoFs** | " + " | ".join(f"{c:.1f}" for c in cols) + " |")
    lines += ["", f"Anchors (biomechanics.md section 3): OpenCap Monocular {OPENCAP_MONO} deg MAE (all rotational"]
    lines[-1] += " DoFs),"
    lines.append(f"WHAM regression baseline {WHAM} deg; target sagittal hip/knee/ankle <= 5 deg.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one shape (average): 3 clips instead of 9")
    ap.add_argument("--shapes", nargs="+", default=list(syn.SHAPES), choices=list(syn.SHAPES))
    ap.add_argument("--motions", nargs="+", default=list(syn.MOTIONS), choices=list(syn.MOTIONS))
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--res", default="540x960", help="WxH (portrait like a phone held upright)")
    ap.add_argument("--samples", type=int, default=4, help="Cycles samples per pixel (no denoising)")
    ap.add_argument("--focal-mm", type=float, default=26.0, help="35-mm-equivalent focal (diagonal); phones: 24-28")
    ap.add_argument("--distance", type=float, default=3.5, help="camera distance from the subject, metres")
    ap.add_argument(
        "--camera-height",
        type=float,
        default=1.3,
        help="lens height above the floor, metres (it looks at 0.9 m above the subject's feet)",
    )
    ap.add_argument(
        "--default-focal",
        choices=("first", "all", "none"),
        default="first",
        help="also convert with the default focal: the first shape's clips (default), every clip, or none",
    )
    ap.add_argument("--mode", default="auto", help="convert --mode")
    ap.add_argument("--work", type=Path, default=None, help="keep frames and results here (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--skip-render", action="store_true", help="reuse the frames (and results) already in --work")
    ap.add_argument("--props", action="store_true", help="upright pillars around the subject (edges for 'up')")
    ap.add_argument("--up", choices=("auto", "body"), default="auto",
                    help="convert --up: body = 'up' from the body alone, even with --props (results kept apart)")
    ap.add_argument(
        "--azimuths",
        type=float,
        nargs="+",
        default=None,
        help="camera azimuths from the front (degrees) for every motion, instead of the default views",
    )
    args = ap.parse_args()
    if args.quick:
        args.shapes = ["average"]
    w, h = (int(x) for x in args.res.lower().split("x"))

    import importlib.util

    missing = [m for m in ("torch", "bpy", "mediapipe") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"bench_angles_synthetic: skipped, not installed: {', '.join(missing)} (python build.py setup)")
        return 0
    from hsmr_backend import fit as fit_defaults
    from hsmr_backend.skel import load_body

    body = load_body("open")
    work = args.work or Path(tempfile.mkdtemp(prefix="angles_synth_"))
    focal_px = args.focal_mm / np.hypot(36.0, 24.0) * np.hypot(w, h)
    cam = {"focal_px": focal_px, "distance": args.distance, "height": args.camera_height}
    print(
        f"bench_angles_synthetic: {len(args.shapes)} shape(s) x {len(args.motions)} motion(s), {args.frames} frames "
        f"at {args.fps:g} fps, {w}x{h}, Cycles {args.samples} spp, focal {args.focal_mm:g} mm-eq = {focal_px:.0f} px, "
        f"camera {args.distance:g} m at {args.camera_height:g} m{', pillars around' if args.props else ''}, work {work}"
    )
    scene = None
    # (label, motion, azimuth): the default view of each motion, or each motion from every --azimuths
    clips = (
        [(m, m, VIEWS[m]) for m in args.motions]
        if args.azimuths is None
        else [(f"{m}@{a:g}", m, a) for m in args.motions for a in args.azimuths]
    )
    runs: dict[str, dict[str, list[dict]]] = {"true": {c[0]: [] for c in clips}, "default": {}}
    runs["default"] = {c[0]: [] for c in clips}
    t_start = time.perf_counter()
    for shape in args.shapes:
        betas = syn.betas_vector(shape, body.num_betas)
        for label, motion, azimuth in clips:
            q = syn.motion(motion, args.frames, args.fps)
            posed = pose_clip(body, betas, q)
            clip = work / f"{shape}_{label}"
            view = {**cam, "azimuth": azimuth}
            if not args.skip_render:
                if scene is None:
                    scene = setup_scene((w, h), args.samples, args.props)
                spf = render_clip(scene, posed, shape, motion, clip / "frames", view)
            else:
                spf = float("nan")
            true_2d = project(posed["landmarks"], view, (w, h))
            height_px = np.ptp(project(posed["verts"][0], view, (w, h))[:, 1])
            line = f"{shape:12s} {label:13s} render {spf:5.2f} s/frame, body {height_px:.0f} px tall"
            for tag, f in (("true", focal_px), ("default", None)):
                if tag == "default" and (
                    args.default_focal == "none" or (args.default_focal == "first" and shape != args.shapes[0])
                ):
                    continue
                res = clip / f"result_{tag}{'_body_up' if args.up == 'body' else ''}.npz"
                if args.skip_render and res.is_file():  # reuse: only the comparison is recomputed
                    wall, err = 0.0, ""
                else:
                    wall, err = convert(clip / "frames", res, args.fps, f, args.mode, args.up)
                if wall < 0:
                    line += f" | {tag} focal: convert failed: {err}"
                    continue
                c = compare(res, q, posed["rest_frames"], true_2d, view, posed["joints"])
                runs[tag][label].append(c)
                sag = np.mean([c["skel"][n].mean() for n in syn.SAGITTAL])
                line += (
                    f" | {tag} focal ({c['focal']:.0f} px"
                    + ("" if c["scene_focal"] is None else f"; the scene told {c['scene_focal']:.0f}")
                    + f"): convert {wall:5.1f} s, {c['valid']}/{c['frames']} valid,"
                    f" reproj {c['reproj']:.1f} px, world-up error {c['up_err']:.1f} deg (from {c['up_source']}),"
                    f" sagittal {sag:.1f} deg,"
                    f" feet drift {c['feet_drift']:.0f} cm (true {c['feet_drift_true']:.0f}), sink"
                    f" {c['feet_sink']:.0f} cm"
                )
                if tag == "true":
                    line += (
                        ", MediaPipe 2D vs true landmarks (px): "
                        + " ".join(f"{k} {e:.1f}" for k, e in c["kp_err"].items())
                        + f", legs swapped in {c['swapped']:.0%} of frames"
                    )
            print(line + f", mode {c['mode'] if runs['true'][label] else '?'}", flush=True)
    print(f"total {time.perf_counter() - t_start:.0f} s\n")
    print(table(runs["true"], f"True focal ({focal_px:.0f} px): MAE in degrees"))
    if all(runs["default"].values()):
        print()
        which = (
            "every shape" if args.default_focal == "all" or len(args.shapes) == 1 else f"{args.shapes[0]} shape only"
        )
        fov = fit_defaults.DEFAULT_DIAGONAL_FOV_DEG
        print(table(runs["default"], f"Default focal (diagonal FOV {fov:g} deg; {which}): MAE in degrees"))
    if args.work is None and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
