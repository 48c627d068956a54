"""A multi-camera result in Blender (bpy wheel, headless): every camera with its own footage, the first active."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthetic.make_result import make_result

bpy = pytest.importorskip("bpy")

from hsmr_blender import api  # noqa: E402
from hsmr_contract import result_format  # noqa: E402

N_FRAMES = 12


def _second_camera(res: dict) -> np.ndarray:
    """A camera 90° round the subject from the first, looking at the subject's first root position."""
    c2w = np.asarray(res["camera_to_world"], np.float64)
    target = np.asarray(res["joints_world"][0, 0], np.float64)
    centre = target + 3.0 * np.array([1.0, 0.0, 0.3])
    fwd = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    out = np.eye(4)
    out[:3, :3] = np.stack([right, np.cross(fwd, right), fwd], 1)  # columns: OpenCV camera axes in the world
    out[:3, 3] = centre
    assert c2w.shape == (4, 4)
    return out


@pytest.fixture()
def multicam_result(tmp_path: Path, shared_dir: Path) -> tuple[Path, dict]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    path = tmp_path / "multi.npz"
    res = make_result(path, n_frames=N_FRAMES, body="synthetic", seed=3, n_verts=600)
    arrays = {k: v for k, v in result_format.load(path).items() if k not in ("magic", "format_version")}
    k2 = np.array([[1500.0, 0.0, 540.0], [0.0, 1500.0, 960.0], [0.0, 0.0, 1.0]])
    clips = [shared_dir / "footage" / f"single_person_cam0{i}.mp4" for i in (1, 2)]
    meta = json.loads(str(arrays["meta_json"]))
    meta["sources"] = [str(c) for c in clips]
    meta["source"] = str(clips[0])
    arrays.update(
        meta_json=json.dumps(meta), camera_names=np.array(["cam01", "cam02"]),
        cameras_K=np.stack([arrays["camera_K"], k2]).astype(np.float32),
        cameras_distortion=np.zeros((2, 5), np.float32),
        cameras_image_size=np.array([arrays["image_size"], [1080, 1920]], np.int32),
        cameras_to_world=np.stack([arrays["camera_to_world"], _second_camera(res)]).astype(np.float32),
        cameras_frame_offset=np.array([0, 5], np.int64))
    result_format.save(path, arrays)
    return path, result_format.load(path)


def test_every_camera_is_built_with_its_footage_and_the_first_is_active(multicam_result) -> None:
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    path, res = multicam_result
    sc = api.import_result(path, skin=False)
    scene = bpy.context.scene
    assert scene.camera == sc.camera and len(sc.view_cameras) == 1
    cam2 = sc.view_cameras[0]
    assert cam2.name.endswith("cam02")
    w2c = np.linalg.inv(res["cameras_to_world"][1].astype(np.float64))
    k = res["cameras_K"][1]
    scene.render.resolution_x, scene.render.resolution_y = 1080, 1920  # cam02's frame, to read its projection
    for j in range(0, 24, 6):
        p = res["joints_world"][0, j].astype(np.float64)
        pc = w2c[:3, :3] @ p + w2c[:3, 3]
        ndc = world_to_camera_view(scene, cam2, Vector(p.tolist()))
        np.testing.assert_allclose([ndc.x * 1080, (1 - ndc.y) * 1920], (k @ pc)[:2] / pc[2], atol=0.05)
    bgs = [c.data.background_images for c in (sc.camera, cam2)]
    assert all(len(b) == 1 and b[0].source == "MOVIE_CLIP" for b in bgs)
    assert Path(bgs[1][0].clip.filepath).name == "single_person_cam02.mp4"
    assert bgs[1][0].clip.frame_start == 1 - 5  # that clip starts 5 frames before the first: shown 5 earlier
