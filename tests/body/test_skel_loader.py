"""Loading official-format SKEL pkls (safely), refusing everything else, and the npz round trip."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import hsmr_backend.skel as skel
from hsmr_backend.skel import SKEL, SkelData, SkelFileError, load_body
from hsmr_backend.skel.data import OFFICIAL_BONE_SCALE_VERTEX_PAIRS, safe_unpickle
from synthetic.fake_skel import build_fake_skel_dict, write_fake_skel_pkl, write_fake_smpl_pkl


@pytest.fixture(scope="module")
def pkl(tmp_path_factory):
    return write_fake_skel_pkl(tmp_path_factory.mktemp("skel") / "skel_female.pkl")


def _one_line_with_hint(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_reads_official_format(pkl):
    d = build_fake_skel_dict()
    data = SkelData.from_official_pkl(pkl)
    assert data.name == "skel_female"
    np.testing.assert_array_equal(data.skin_weights, d["skin_weights"].toarray())
    np.testing.assert_array_equal(data.J_regressor_osim, d["J_regressor_osim"].toarray())
    np.testing.assert_array_equal(data.parents, np.array(skel.PARENTS))
    assert data.skin_template_v.dtype == np.float32 and data.skin_template_f.dtype == np.int64
    assert data.shapedirs.shape == (6890, 3, 10) and data.posedirs.shape == (6890, 3, 207)
    np.testing.assert_array_equal(data.bone_scale_vertex_pairs, OFFICIAL_BONE_SCALE_VERTEX_PAIRS)


@pytest.mark.parametrize(
    "kw",
    [
        dict(dtype=np.float64),
        dict(n_shapedirs=16),
        dict(root_parent=4294967295),
        dict(protocol=2),
        dict(protocol=5),
    ],
    ids=["float64", "16-shapedirs", "uint32-root", "protocol2", "protocol5"],
)
def test_liberal_in_what_a_real_file_holds(tmp_path, pkl, kw):
    path = write_fake_skel_pkl(tmp_path / "skel_male.pkl", **kw)
    m = SKEL.from_file(path)
    ref = SKEL.from_file(pkl)
    assert m.num_betas == 10  # only the first 10 directions are used
    q = torch.as_tensor(np.random.default_rng(0).uniform(-0.5, 0.5, (2, 46)), dtype=torch.float32)
    b = torch.randn(2, 10)
    torch.testing.assert_close(m(q, b).skin_verts, ref(q, b).skin_verts, atol=2e-6, rtol=0)


@pytest.mark.parametrize("version", ["1.1.0", "1.0", None])
def test_refuses_other_versions(tmp_path, version):
    path = write_fake_skel_pkl(tmp_path / "skel_male.pkl", version=version)
    with pytest.raises(SkelFileError) as e:
        SKEL.from_file(path)
    msg = _one_line_with_hint(e)
    assert ("no version key" if version is None else repr(version)) in msg
    assert "v1.1.1" in msg and "https://skel.is.tue.mpg.de" in msg and "SKEL and BSM models" in msg


def test_refuses_smpl_file(tmp_path):
    with pytest.raises(SkelFileError) as e:
        SKEL.from_file(write_fake_smpl_pkl(tmp_path / "SMPL_MALE.pkl"))
    msg = _one_line_with_hint(e)
    assert "SMPL" in msg and "not SKEL" in msg and "skel.is.tue.mpg.de" in msg


def test_refuses_random_pickles(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(SkelFileError, match="holds a list"):
        SKEL.from_file(p)
    p.write_bytes(pickle.dumps({"weights": np.zeros(3)}))
    with pytest.raises(SkelFileError, match="not a SKEL model"):
        SKEL.from_file(p)
    p.write_bytes(b"this is not a pickle at all")
    with pytest.raises(SkelFileError, match="not a readable pickle"):
        SKEL.from_file(p)
    with pytest.raises(SkelFileError, match="no such file"):
        SKEL.from_file(tmp_path / "missing.pkl")
    with pytest.raises(SkelFileError, match="expected a SKEL .pkl"):
        SKEL.from_file(tmp_path / "model.obj")
    with pytest.raises(SkelFileError, match="unzip it"):
        SKEL.from_file(tmp_path / "skel_models_v1.1.zip")
    (tmp_path / "skel_models_v1.1").mkdir()
    (tmp_path / "skel_models_v1.1" / "skel_male.pkl").write_bytes(b"")
    with pytest.raises(SkelFileError, match="is a folder; pass one of skel_male.pkl"):
        SKEL.from_file(tmp_path / "skel_models_v1.1")


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


def test_never_runs_code_from_a_pickle(tmp_path):
    marker = tmp_path / "pwned"
    d = build_fake_skel_dict()
    d["version"] = _Evil(str(marker))
    p = tmp_path / "skel_male.pkl"
    p.write_bytes(pickle.dumps(d))
    with pytest.raises(SkelFileError) as e:
        SKEL.from_file(p)
    msg = _one_line_with_hint(e)
    assert "a pickle can run code" in msg and ("posix.system" in msg or "os.system" in msg)
    assert not marker.exists()
    # chumpy (old SMPL/SKEL files) is named as such
    raw = b"\x80\x02cchumpy.ch\nCh\nq\x00."
    with pytest.raises(SkelFileError, match="chumpy"):
        safe_unpickle(raw, "old.pkl")


def test_sparse_containers_are_read_not_trusted(tmp_path):
    """coo_matrix, csr_matrix and plain arrays are all accepted for the sparse keys."""
    d = build_fake_skel_dict()
    d["skin_weights"] = sp.csr_matrix(d["skin_weights"])
    d["J_regressor_osim"] = d["J_regressor_osim"].toarray()
    p = tmp_path / "skel_male.pkl"
    p.write_bytes(pickle.dumps(d))
    data = SkelData.from_official_pkl(p)
    assert data.skin_weights.shape == (6890, 24)


def test_npz_round_trip(tmp_path, pkl):
    data = SkelData.from_official_pkl(pkl)
    out = tmp_path / "body.npz"
    data.to_npz(out)
    with np.load(out, allow_pickle=False) as z:  # plain arrays only
        assert "skin_weights__rows" in z.files and "skin_weights" not in z.files
    back = SkelData.from_npz(out)
    for name in ("skin_template_v", "shapedirs", "posedirs", "skin_weights", "skel_weights_rigid", "parents",
                 "apose_rel_transfo", "bone_scale_vertex_pairs", "skel_template_f"):  # fmt: skip
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name), err_msg=name)
    assert back.name == data.name
    q = torch.as_tensor(np.random.default_rng(1).uniform(-0.5, 0.5, (2, 46)), dtype=torch.float32)
    b = torch.randn(2, 10)
    a, c = SKEL(data)(q, b, bone_mesh=True), SKEL.from_file(out)(q, b, bone_mesh=True)
    torch.testing.assert_close(a.skin_verts, c.skin_verts)
    torch.testing.assert_close(a.bone_verts, c.bone_verts)
    # a body without correctives or vertex pairs (own topology) is fine too
    data.posedirs = None
    data.bone_scale_vertex_pairs = None
    data.shapedirs = data.shapedirs[:, :, :2]
    data.to_npz(out)
    m = SKEL.from_file(out)
    assert m.num_betas == 2 and not m.has_posedirs
    assert torch.isfinite(m(q, b).skin_verts).all()


def test_npz_missing_key_and_bad_tree(tmp_path, pkl):
    data = SkelData.from_official_pkl(pkl)
    out = tmp_path / "body.npz"
    data.to_npz(out)
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files if k != "per_joint_rot"}
    np.savez(out, **arrays)
    with pytest.raises(SkelFileError, match="without 'per_joint_rot'"):
        SkelData.from_npz(out)
    data.parents = data.parents.copy()
    data.parents[5] = 3
    with pytest.raises(SkelFileError, match="kinematic tree"):
        data.validate()


def test_load_body(tmp_path, pkl, monkeypatch):
    monkeypatch.setattr(skel, "OPEN_BODY_CANDIDATES", [tmp_path / "nope" / "open_body.npz"])
    with pytest.raises(SkelFileError, match="build.py assets"):
        load_body("open")
    SkelData.from_official_pkl(pkl).to_npz(tmp_path / "open_body.npz")
    monkeypatch.setattr(skel, "OPEN_BODY_CANDIDATES", [tmp_path / "nope.npz", tmp_path / "open_body.npz"])
    assert isinstance(load_body("open"), SKEL)
    assert isinstance(load_body(str(pkl)), SKEL)
