"""A Blender camera with the footage's intrinsics and pose, the footage as its background."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

SENSOR_MM = 36.0
# OpenCV camera axes (x right, y down, z forward) expressed in Blender camera axes (x right, y up, looks down -z)
CV_TO_BLENDER_CAM = np.diag([1.0, -1.0, -1.0, 1.0])
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp"}


def camera_settings(k: np.ndarray, size: np.ndarray) -> dict[str, float | str]:
    """Blender lens/sensor/shift values that reproduce pinhole intrinsics ``k`` for an image of ``size``."""
    w, h = float(size[0]), float(size[1])
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    big = max(w, h)
    fit = "HORIZONTAL" if w >= h else "VERTICAL"
    lens = (fx * SENSOR_MM / w) if fit == "HORIZONTAL" else (fy * SENSOR_MM / h)
    return {
        "sensor_fit": fit,
        "sensor_width": SENSOR_MM,
        "sensor_height": SENSOR_MM,
        "lens": lens,
        "shift_x": (w / 2.0 - cx) / big,
        "shift_y": (cy - h / 2.0) / big,
    }


def build_camera(
    name: str, collection: bpy.types.Collection, k: np.ndarray, size: np.ndarray, camera_to_world: np.ndarray
) -> bpy.types.Object:
    cam_data = bpy.data.cameras.new(name)
    s = camera_settings(k, size)
    cam_data.sensor_fit = s["sensor_fit"]
    cam_data.sensor_width = s["sensor_width"]
    cam_data.sensor_height = s["sensor_height"]
    cam_data.lens = s["lens"]
    cam_data.shift_x = s["shift_x"]
    cam_data.shift_y = s["shift_y"]
    cam_data.clip_start = 0.05
    cam_data.clip_end = 200.0
    cam = bpy.data.objects.new(name, cam_data)
    collection.objects.link(cam)
    cam.matrix_world = Matrix((np.asarray(camera_to_world, dtype=np.float64) @ CV_TO_BLENDER_CAM).tolist())
    return cam


def apply_render_size(scene: bpy.types.Scene, size: np.ndarray) -> None:
    # square pixels assumed (fx == fy for every camera the backend produces)
    scene.render.resolution_x = int(size[0])
    scene.render.resolution_y = int(size[1])
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = 1.0
    scene.render.pixel_aspect_y = 1.0


def attach_footage(cam: bpy.types.Object, footage: Path, frame_start: int) -> bpy.types.ID | None:
    """Show the footage behind the camera view: a movie clip, or an image sequence from a folder.

    Video frame 0 is shown at scene frame ``frame_start``. Returns the clip/image created, or None.
    """
    cam_data = cam.data
    if footage.is_dir():
        files = sorted(p for p in footage.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            return None
        img = bpy.data.images.load(str(files[0]), check_existing=False)
        img.source = "SEQUENCE"
        bg = cam_data.background_images.new()
        bg.source = "IMAGE"
        bg.image = img
        bg.image_user.frame_duration = len(files)
        bg.image_user.frame_start = frame_start
        bg.image_user.use_auto_refresh = True
        out: bpy.types.ID = img
    else:
        clip = bpy.data.movieclips.load(str(footage), check_existing=False)
        clip.frame_start = frame_start
        bg = cam_data.background_images.new()
        bg.source = "MOVIE_CLIP"
        bg.clip = clip
        bg.clip_user.use_render_undistorted = False
        out = clip
    bg.frame_method = "FIT"
    bg.alpha = 1.0
    bg.display_depth = "BACK"
    cam_data.show_background_images = True
    return out


def build_view_cameras(name: str, collection: bpy.types.Collection, result: dict[str, np.ndarray],
                       sources: list[Path | None]) -> tuple[list[bpy.types.Object], list[str]]:
    """The other calibrated cameras of a multi-camera result (its ``camera_names`` after the first), each with
    its own footage (``sources[v]``, or None) as background. The first camera is the caller's. Returns the
    cameras and notes on footage that was not found."""
    names = [str(n) for n in result.get("camera_names", [])]
    cams, notes = [], []
    for v in range(1, len(names)):
        cam = build_camera(f"{name} {names[v]}", collection, result["cameras_K"][v], result["cameras_image_size"][v],
                           result["cameras_to_world"][v])
        cams.append(cam)
        src = sources[v] if v < len(sources) else None
        if src is None or not src.exists():
            notes.append(f"footage of camera {names[v]} not found ({src}): that camera has no background")
            continue
        # result frame i is the first clip's frame n = frame_index[i] (scene frame n + 1) and this clip's n + offset
        attach_footage(cam, src, frame_start=1 - int(result["cameras_frame_offset"][v]))
    return cams, notes
