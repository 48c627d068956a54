"""The result-file schema: round trip, refusals with clear messages, atomic writes, and fuzzing."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hsmr_contract import dofs
from hsmr_contract import result_format as rf


def minimal_result(T: int = 4, V: int = 10, F: int = 6, K: int = 3, N: int = 33) -> dict[str, np.ndarray]:
    """A small, schema-valid result (geometry is arbitrary; only the format is under test)."""
    rng = np.random.default_rng(0)
    eye = np.eye(4, dtype=np.float32)
    weights = rng.random((V, 24)).astype(np.float32)
    return {
        "meta_json": json.dumps({"producer": "test"}),
        "body": "open",
        "fps": np.float32(30.0),
        "frame_index": np.arange(T),
        "valid": np.ones(T, bool),
        "dof_names": np.array(dofs.DOF_NAMES),
        "dof_joint": np.array([d.joint for d in dofs.DOFS]),
        "dof_axis": np.array([d.axis for d in dofs.DOFS], np.float32),
        "dof_flip": np.array([d.flip for d in dofs.DOFS], np.float32),
        "dof_limits": np.array([(d.lower, d.upper) for d in dofs.DOFS], np.float32),
        "joint_names": np.array(dofs.JOINT_NAMES),
        "joint_parents": np.array(dofs.PARENTS),
        "poses": np.zeros((T, 46), np.float32),
        "betas": np.zeros(K, np.float32),
        "trans": np.zeros((T, 3), np.float32),
        "joint_offsets": np.zeros((T, 24, 3), np.float32),
        "joints_cam": rng.random((T, 24, 3)).astype(np.float32),
        "joints_world": rng.random((T, 24, 3)).astype(np.float32),
        "rest_joints": rng.random((24, 3)).astype(np.float32),
        "rest_frames": np.tile(np.eye(3, dtype=np.float32), (24, 1, 1)),
        "skin_rest_verts": rng.random((V, 3)).astype(np.float32),
        "skin_faces": rng.integers(0, V, (F, 3)),
        "skin_weights": weights / weights.sum(1, keepdims=True),
        "model_to_world": eye,
        "camera_to_world": eye,
        "camera_K": np.array([[1000, 0, 320], [0, 1000, 240], [0, 0, 1]], np.float32),
        "image_size": np.array([640, 480]),
        "keypoint_names": np.array([f"kp{i}" for i in range(N)]),
        "keypoints_2d": rng.random((T, N, 3)).astype(np.float32),
        "reprojection_error_px": np.zeros(T, np.float32),
        "fit_loss": np.zeros(T, np.float32),
    }


def test_round_trip(tmp_path: Path):
    data = minimal_result()
    path = rf.save(tmp_path / "r.npz", data)
    back = rf.load(path)
    assert int(back["format_version"]) == rf.FORMAT_VERSION
    for k, v in data.items():
        np.testing.assert_array_equal(back[k], np.asarray(v), err_msg=k)
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("poses"), "missing field"),
        (lambda d: d.__setitem__("poses", np.zeros((4, 45), np.float32)), "expected"),
        (lambda d: d.__setitem__("trans", np.zeros((5, 3), np.float32)), "T=5"),
        (lambda d: d["poses"].__setitem__((1, 6), np.nan), "NaN"),
        (lambda d: d.__setitem__("valid", np.ones(4, np.int64)), "dtype"),
        (lambda d: d.__setitem__("meta_json", "{not json"), "not valid JSON"),
    ],
)
def test_invalid_content_is_refused_with_one_clear_line(tmp_path, mutate, message):
    data = minimal_result()
    mutate(data)
    with pytest.raises(rf.ResultFileError, match=message) as exc:
        rf.save(tmp_path / "r.npz", data)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "r.npz").exists()


def test_newer_version_truncated_and_foreign_files(tmp_path):
    good = rf.save(tmp_path / "good.npz", minimal_result())
    arrays = dict(np.load(good))
    arrays["format_version"] = np.array(rf.FORMAT_VERSION + 1)
    np.savez(tmp_path / "newer.npz", **arrays)
    with pytest.raises(rf.ResultFileError, match="newer than this reader"):
        rf.load(tmp_path / "newer.npz")

    raw = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(rf.ResultFileError, match="truncated"):
        rf.load(tmp_path / "cut.npz")

    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(rf.ResultFileError, match="missing field"):
        rf.load(tmp_path / "other.npz")

    np.savez(tmp_path / "objects.npz", magic=np.array([{"a": 1}], dtype=object))
    with pytest.raises(rf.ResultFileError, match="unpickling"):
        rf.load(tmp_path / "objects.npz")

    with pytest.raises(rf.ResultFileError, match="not found"):
        rf.load(tmp_path / "absent.npz")


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = rf.save(tmp_path / "r.npz", minimal_result())
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="No space"):
        rf.save(path, minimal_result(T=6))
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_docs_table_names_every_field():
    table = rf.markdown_table()
    for f in rf.FIELDS:
        assert f"`{f.name}`" in table


_GOOD_BYTES = io.BytesIO()
np.savez(_GOOD_BYTES, **{"magic": rf.MAGIC, "format_version": 1, **minimal_result()})
GOOD_BYTES = _GOOD_BYTES.getvalue()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, len(GOOD_BYTES)),
    flips=st.lists(st.tuples(st.integers(0, len(GOOD_BYTES) - 1), st.integers(1, 255)), max_size=8),
)
def test_fuzz_corrupted_files_raise_only_result_file_error(tmp_path_factory, cut, flips):
    raw = bytearray(GOOD_BYTES[:cut])
    for pos, xor in flips:
        if pos < len(raw):
            raw[pos] ^= xor
    path = tmp_path_factory.mktemp("fuzz") / "r.npz"
    path.write_bytes(bytes(raw))
    with contextlib.suppress(rf.ResultFileError):
        rf.load(path)


@pytest.mark.parametrize("offset,value", [(6, 109), (8, 1)])
def test_damaged_zip_header_fields_are_a_result_file_error(tmp_path, offset, value):
    """zipfile raises NotImplementedError for a damaged 'version needed' field ('zip file version 10.9', found by
    the fuzz test above) and RuntimeError for an 'encrypted' flag, not BadZipFile."""
    raw = bytearray(GOOD_BYTES)
    central = raw.find(b"PK\x01\x02")
    raw[central + offset] = value  # +6: version needed to extract; +8: general purpose flags (bit 0: encrypted)
    path = tmp_path / "r.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(rf.ResultFileError, match="truncated or not an .npz"):
        rf.load(path)


@settings(max_examples=500, deadline=None)
@given(
    field=st.sampled_from([f.name for f in rf.FIELDS]),
    value=st.one_of(
        st.none(),
        st.integers(-5, 5),
        st.floats(allow_nan=True),
        st.text(max_size=5),
        st.lists(st.floats(allow_nan=True), max_size=5),
    ),
)
def test_fuzz_wrong_field_values_raise_only_result_file_error(field, value):
    data = {"magic": rf.MAGIC, "format_version": 1, **minimal_result()}
    if value is None:
        data.pop(field, None)
    else:
        data[field] = np.asarray(value)
    with contextlib.suppress(rf.ResultFileError):
        rf.validate(data)


def test_zip_with_bad_member_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("magic.npy", b"not an npy file")
    with pytest.raises(rf.ResultFileError):
        rf.load(path)


def test_saved_file_has_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = rf.save(tmp_path / "r.npz", minimal_result())
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_optional_foot_resting_is_a_bool_per_frame_and_foot_point(tmp_path):
    res = minimal_result(T=4)
    resting = np.zeros((4, 4), bool)
    resting[1:3, [0, 2]] = True
    out = rf.load(rf.save(tmp_path / "r.npz", {**res, "foot_resting": resting}))
    assert out["foot_resting"].dtype == np.bool_ and np.array_equal(out["foot_resting"], resting)
    assert "foot_resting" not in rf.load(rf.save(tmp_path / "s.npz", res))  # optional: older files stay valid
    with pytest.raises(rf.ResultFileError, match="foot_resting"):
        rf.save(tmp_path / "t.npz", {**res, "foot_resting": np.zeros((4, 2), bool)})
    with pytest.raises(rf.ResultFileError, match="foot_resting"):
        rf.save(tmp_path / "u.npz", {**res, "foot_resting": np.zeros((5, 4), bool)})
    with pytest.raises(rf.ResultFileError, match="foot_resting"):
        rf.save(tmp_path / "v.npz", {**res, "foot_resting": np.zeros((4, 4), np.float32)})


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "x.bin"
    assert rf.atomic_write(target, lambda fh: fh.write(b"abc")).read_bytes() == b"abc"

    def fail(fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        rf.atomic_write(target, fail)
    assert target.read_bytes() == b"abc" and sorted(p.name for p in target.parent.iterdir()) == ["x.bin"]
