"""The rig in Blender (bpy wheel, headless) held to the backend: joints, skin, limits, camera, rollback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthetic.make_result import make_result, posed_skin

bpy = pytest.importorskip("bpy")

from hsmr_blender import api  # noqa: E402
from hsmr_blender.blender.keyframes import action_fcurves  # noqa: E402
from hsmr_blender.io import rig_math  # noqa: E402

N_FRAMES = 24
MM = 1e-3


@pytest.fixture(autouse=True)
def empty_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("res") / "clip.npz"
    res = make_result(path, n_frames=N_FRAMES, seed=5, n_verts=900)
    return path, res


def _heads_world(arm: bpy.types.Object) -> np.ndarray:
    return np.array([list(arm.matrix_world @ pb.head) for pb in arm.pose.bones])


def _skin_model(skin: bpy.types.Object) -> np.ndarray:
    dg = bpy.context.evaluated_depsgraph_get()
    ob = skin.evaluated_get(dg)
    me = ob.to_mesh()
    co = np.empty(len(me.vertices) * 3, dtype=np.float32)
    me.vertices.foreach_get("co", co)
    ob.to_mesh_clear()
    return co.reshape(-1, 3).astype(np.float64)


def test_bone_heads_follow_backend_joints(result: tuple[Path, dict]) -> None:
    path, res = result
    sc = api.import_result(path, skin=False, camera=False)
    arm = sc.armature
    assert [pb.name for pb in arm.pose.bones] == [str(n) for n in res["joint_names"]]
    scene = bpy.context.scene
    worst = 0.0
    for t, f in enumerate(sc.frames):
        scene.frame_set(int(f))
        worst = max(worst, float(np.abs(_heads_world(arm) - res["joints_world"][t]).max()))
    assert len(sc.frames) >= 20
    assert worst < MM, f"bone heads are {worst * 1000:.3f} mm from the backend's joints"


@pytest.mark.parametrize("correctives", [False, True])
def test_skin_follows_backend_skin(result: tuple[Path, dict], correctives: bool) -> None:
    path, res = result
    sc = api.import_result(path, correctives=correctives, camera=False)
    assert (sc.n_correctives > 0) == correctives
    scene = bpy.context.scene
    worst = 0.0
    for t in range(0, N_FRAMES, 3):
        scene.frame_set(int(sc.frames[t]))
        expected = posed_skin(res, t, correctives)
        worst = max(worst, float(np.abs(_skin_model(sc.skin) - expected).max()))
    assert worst < MM, f"skin is {worst * 1000:.3f} mm from the backend's posed skin"
    if correctives:  # the correctives really move vertices (the off case would fail here)
        scene.frame_set(int(sc.frames[N_FRAMES // 2]))
        diff = np.abs(posed_skin(res, N_FRAMES // 2, True) - posed_skin(res, N_FRAMES // 2, False)).max()
        assert diff > 3 * MM


def test_channel_and_limit_table_equals_dof_table(result: tuple[Path, dict]) -> None:
    path, res = result
    sc = api.import_result(path, skin=False, camera=False)
    table = api.rig_dof_table(sc.armature)
    names = [str(n) for n in res["dof_names"]]
    assert sorted(table) == sorted(names)
    for i, name in enumerate(names):
        bone, ch, lo, hi = table[name]
        assert bone == str(res["joint_names"][res["dof_joint"][i]])
        lo_ref, hi_ref = res["dof_limits"][i]
        assert lo == pytest.approx(lo_ref, abs=1e-6) if np.isfinite(lo_ref) else not np.isfinite(lo)
        assert hi == pytest.approx(hi_ref, abs=1e-6) if np.isfinite(hi_ref) else not np.isfinite(hi)
        pb = sc.armature.pose.bones[bone]
        assert not pb.lock_rotation[ch]
        assert f"{'XYZ'[ch]}: {name}" in pb["SKEL DoFs"]
        con = [c for c in pb.constraints if c.type == "LIMIT_ROTATION"]
        if con:
            assert con[0].owner_space == "LOCAL"
    # channels that are not DoFs are locked, and have no limits of their own
    for pb in sc.armature.pose.bones:
        used = {ch for (b, ch, _, _) in table.values() if b == pb.name}
        assert [not x for x in pb.lock_rotation] == [i in used for i in range(3)]


def test_keyed_values_are_the_dofs_and_stay_in_limits(result: tuple[Path, dict]) -> None:
    path, res = result
    sc = api.import_result(path, skin=False, camera=False)
    frames, values, names = api.sample_dofs(sc.armature)
    np.testing.assert_allclose(values, res["poses"], atol=1e-5)
    lim = res["dof_limits"]
    assert np.all(values >= lim[:, 0] - 1e-6) and np.all(values <= lim[:, 1] + 1e-6)
    # root motion is keyed too
    paths = {(fc.data_path, fc.array_index) for fc in action_fcurves(sc.armature.animation_data.action)}
    assert ('pose.bones["pelvis"].location', 0) in paths


def test_limit_constraint_clamps_out_of_range_values(result: tuple[Path, dict]) -> None:
    path, res = result
    sc = api.import_result(path, skin=False, camera=False)
    arm = sc.armature
    arm.animation_data.action = None
    pb = arm.pose.bones["tibia_r"]
    layout = rig_math.build_layout(res)
    ch = layout[2].channels[0]
    pb.rotation_euler[ch] = -0.6  # knee hyper-extension: outside [0, 3π/4]
    bpy.context.view_layer.update()
    clamped = np.array(pb.matrix)
    pb.rotation_euler[ch] = 0.0
    bpy.context.view_layer.update()
    np.testing.assert_allclose(clamped, np.array(pb.matrix), atol=1e-5)


def test_camera_reproduces_the_footage_projection(result: tuple[Path, dict]) -> None:
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    path, res = result
    sc = api.import_result(path, skin=False)
    scene = bpy.context.scene
    assert scene.camera == sc.camera
    w, h = res["image_size"]
    k = res["camera_K"]
    for t in (0, N_FRAMES - 1):
        for j in range(0, 24, 5):
            ndc = world_to_camera_view(scene, sc.camera, Vector(res["joints_world"][t, j].tolist()))
            u, v = ndc.x * w, (1.0 - ndc.y) * h
            cam = res["joints_cam"][t, j]
            np.testing.assert_allclose([u, v], (k @ cam)[:2] / cam[2], atol=0.05)
    assert scene.render.resolution_x == w and scene.render.resolution_y == h
    assert scene.frame_start == 1 and scene.frame_end == N_FRAMES
    assert any("footage" in n for n in sc.notes)  # no video: said, not failed


def test_footage_becomes_the_camera_background(result: tuple[Path, dict], shared_dir: Path) -> None:
    path, _ = result
    video = shared_dir / "footage" / "single_person_cam01.mp4"
    if not video.exists():
        pytest.skip("shared footage missing")
    sc = api.import_result(path, skin=False, footage=video)
    bg = sc.camera.data.background_images
    assert len(bg) == 1 and bg[0].source == "MOVIE_CLIP" and bg[0].clip.frame_duration > 0
    assert bpy.context.scene.active_clip == bg[0].clip


@pytest.mark.parametrize("step", ["armature", "skin", "camera", "scene"])
def test_failed_import_leaves_the_scene_as_it_was(result: tuple[Path, dict], step: str) -> None:
    path, _ = result
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end, scene.render.fps = 7, 99, 24

    def state() -> tuple:
        kinds = ("objects", "meshes", "armatures", "actions", "cameras", "collections", "movieclips", "images")
        return (tuple(len(getattr(bpy.data, k)) for k in kinds), scene.frame_start, scene.frame_end,
                scene.render.fps, scene.render.resolution_x, scene.camera, len(scene.collection.children))

    before = state()
    with pytest.raises(api.HsmrImportError):
        api.import_result(path, _fail_after=step)
    assert state() == before


def test_bad_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(api.HsmrImportError, match="result file .*x.npz"):
        api.import_result(bad)
    assert len(bpy.data.objects) == 0


def test_exports_csv_mot_and_animation_files(result: tuple[Path, dict], tmp_path: Path) -> None:
    path, res = result
    sc = api.import_result(path, camera=False, correctives=False)
    from hsmr_contract.export import csv as csv_io
    from hsmr_contract.export import mot as mot_io

    names, rows = csv_io.read_csv(api.export_csv(sc.armature, tmp_path / "dofs.csv", radians=True))
    np.testing.assert_allclose(rows[:, 1:], res["poses"], atol=1e-5)
    assert names[1:] == [f"{n}_rad" for n in res["dof_names"]]
    table = mot_io.read_mot(api.export_mot(sc.armature, tmp_path / "dofs.mot"))
    assert table.in_degrees
    np.testing.assert_allclose(table.column("knee_angle_r"), np.degrees(res["poses"][:, 6]), atol=1e-3)
    # the pelvis path read back from the rig's root curves equals the result's
    rig_res = api.rig_result(sc.armature)
    np.testing.assert_allclose(rig_res["joints_world"][:, 0], res["joints_world"][:, 0], atol=1e-5)
    # an edit in Blender reaches the export: key knee_angle_r = 0.5 everywhere
    fc = next(f for f in action_fcurves(sc.armature.animation_data.action)
              if f.data_path == 'pose.bones["tibia_r"].rotation_euler')
    for kp in fc.keyframe_points:
        kp.co.y = 0.5
    _, rows = csv_io.read_csv(api.export_csv(sc.armature, tmp_path / "edited.csv", radians=True))
    np.testing.assert_allclose(rows[:, 1 + 6], 0.5, atol=1e-6)
    for fmt in ("bvh", "fbx", "glb"):
        out = api.export_animation(sc.armature, tmp_path / f"anim.{fmt}")
        assert out.stat().st_size > 1000, fmt
    # the original (unbaked) action is back on the rig
    assert sc.armature.animation_data.action.name.endswith("motion")


def test_portrait_camera_projection(tmp_path: Path) -> None:
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    path = tmp_path / "p.npz"
    res = make_result(path, n_frames=3, n_verts=100, portrait=True, body="synthetic")
    sc = api.import_result(path, skin=False)
    w, h = res["image_size"]
    for j in range(24):
        ndc = world_to_camera_view(bpy.context.scene, sc.camera, Vector(res["joints_world"][1, j].tolist()))
        np.testing.assert_allclose([ndc.x * w, (1 - ndc.y) * h], res["keypoints_2d"][1, j, :2], atol=0.05)


def test_bone_meshes_ride_rigidly_on_their_bones(tmp_path: Path) -> None:
    path = tmp_path / "b.npz"
    res = make_result(path, n_frames=6, n_verts=200, bones=True, body="synthetic")
    sc = api.import_result(path, camera=False, skin=False)
    assert len(sc.bone_objects) == 24
    m2w = res["model_to_world"]
    scene = bpy.context.scene
    for t in (0, 5):
        scene.frame_set(int(sc.frames[t]))
        for ob in sc.bone_objects[::5]:
            j = [str(n) for n in res["joint_names"]].index(ob.parent_bone)
            sel = res["bone_vertex_joint"] == j
            rest = res["bone_rest_verts"][sel]
            s = res["_skin_mats"][t, j]
            expected = (rest @ s[:3, :3].T + s[:3, 3]) @ m2w[:3, :3].T + m2w[:3, 3]
            mw = np.array(ob.matrix_world)
            co = np.array([list(v.co) for v in ob.data.vertices])
            got = co @ mw[:3, :3].T + mw[:3, 3]
            np.testing.assert_allclose(got, expected, atol=MM)


def test_image_sequence_footage(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    make_result(path, n_frames=3, n_verts=100, body="synthetic", video="frames")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        img = bpy.data.images.new(f"f{i}", 16, 9)
        img.filepath_raw = str(frames / f"{i:04d}.png")
        img.file_format = "PNG"
        img.save()
        bpy.data.images.remove(img)
    sc = api.import_result(path, skin=False)  # the result names "frames", relative to the result file
    bg = sc.camera.data.background_images[0]
    assert bg.source == "IMAGE" and bg.image.source == "SEQUENCE" and bg.image_user.frame_duration == 3


def test_demo_builds_blend_and_renders_a_preview(tmp_path: Path) -> None:
    from hsmr_blender import demo

    path = tmp_path / "d.npz"
    make_result(path, n_frames=4, n_verts=300, body="synthetic")
    assert demo.main([str(path), "--out", str(tmp_path / "out"), "--frames", "1", "--scale", "10"]) == 0
    assert (tmp_path / "out" / "demo.blend").stat().st_size > 10000
    pngs = sorted((tmp_path / "out" / "preview").glob("*.png"))
    assert len(pngs) == 1
    img = bpy.data.images.load(str(pngs[0]))
    px = np.array(img.pixels[:]).reshape(-1, 4)
    assert px[:, :3].max() > 0.3  # something was drawn (the body and bones over no footage)


def test_bone_shapes_point_at_the_child_joint(result: tuple[Path, dict]) -> None:
    from mathutils import Vector

    path, res = result
    sc = api.import_result(path, skin=False, camera=False)
    parents = res["joint_parents"]
    for j, pb in enumerate(sc.armature.pose.bones):
        kids = [k for k in range(24) if parents[k] == j]
        if len(kids) != 1:
            continue
        tip = pb.bone.matrix_local @ Vector(pb.custom_shape.data.vertices[5].co)  # the shape's far end
        np.testing.assert_allclose(list(tip), res["rest_joints"][kids[0]], atol=1e-4)
