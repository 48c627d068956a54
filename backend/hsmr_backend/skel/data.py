"""SkelData: the arrays that define a SKEL-family body, read from an official pkl or a plain npz.

Official files (``skel_male.pkl`` / ``skel_female.pkl``, SKEL v1.1.1, from https://skel.is.tue.mpg.de,
"SKEL and BSM models") are pickles holding numpy arrays and ``scipy.sparse.coo_matrix`` objects. A pickle
can run arbitrary code, so they are read with a restricted unpickler that only reconstructs numpy arrays,
scipy sparse matrices and a few inert builtins; anything else is refused before it runs.

All arrays are kept **dense** numpy arrays here (the sparse ones are small enough: the bone-mesh weights
are 247k x 24). ``to_npz`` writes the mostly-zero matrices (regressor, weights) as sparse triplets
``<name>__rows``, ``<name>__cols``, ``<name>__vals``, ``<name>__shape``; ``from_npz`` accepts either that
or a dense ``<name>`` array. The npz never contains pickled objects (``allow_pickle=False``).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hsmr_contract.dofs import JOINT_NAMES, N_JOINTS, PARENTS

SUPPORTED_VERSION = "1.1.1"
WHERE_TO_GET = 'download skel_male.pkl / skel_female.pkl v1.1.1 ("SKEL and BSM models") from https://skel.is.tue.mpg.de'

# §6 per-axis bone-scale overrides for SMPL-topology skins, one row per ratio:
# (bone, bone_axis, vertex_a, vertex_b, skin_axis): scale[bone, bone_axis] = min over its rows of
# (v_shaped[a] - v_shaped[b])[skin_axis] / (template[a] - template[b])[skin_axis].
# Thorax axis 0 is the min of two ratios; lumbar axis 0 copies thorax axis 0 (same two rows);
# both hands use right-hand vertices (as SKEL does).
OFFICIAL_BONE_SCALE_VERTEX_PAIRS = np.array(
    [
        (13, 0, 410, 384, 2),
        (13, 1, 414, 384, 1),
        (13, 2, 196, 3708, 0),
        (18, 0, 6179, 6137, 1),
        (18, 1, 5670, 5906, 0),
        (23, 0, 6179, 6137, 1),
        (23, 1, 5670, 5906, 0),
        (12, 0, 3027, 3495, 2),
        (12, 0, 3027, 3506, 2),
        (11, 0, 3027, 3495, 2),
        (11, 0, 3027, 3506, 2),
    ],
    dtype=np.int64,
)

# matrices stored as sparse triplets by to_npz (mostly zeros)
_SPARSE_KEYS = ("J_regressor_osim", "skin_weights", "skel_weights", "skel_weights_rigid")


class SkelFileError(ValueError):
    """A body-model file that cannot be used; the message is one line saying why and what to do."""


@dataclass
class SkelData:
    """Arrays of one SKEL-family body (names as in the official pkl). Float arrays are float32.

    Shapes: V skin vertices, F skin faces, K shape directions, Vb / Fb bone-mesh vertices / faces.
    """

    skin_template_v: np.ndarray  # (V, 3) T-pose skin, metres, y up, facing +z
    skin_template_f: np.ndarray  # (F, 3) int64
    shapedirs: np.ndarray  # (V, 3, K)
    posedirs: np.ndarray | None  # (V, 3, 207) SMPL-layout pose correctives, or None (no correctives)
    J_regressor_osim: np.ndarray  # (24, V) regresses the anatomical joints from the shaped skin
    skin_weights: np.ndarray  # (V, 24) LBS weights
    skel_template_v: np.ndarray  # (Vb, 3) bone mesh, each bone in its own bone-local frame
    skel_template_f: np.ndarray  # (Fb, 3) int64
    skel_weights: np.ndarray  # (Vb, 24) posing weights of the bone mesh
    skel_weights_rigid: np.ndarray  # (Vb, 24) one bone per vertex: T-pose placement
    per_joint_rot: np.ndarray  # (24, 3, 3)
    apose_rel_transfo: np.ndarray  # (24, 4, 4) parent-relative BSM A-pose transforms
    parents: np.ndarray  # (24,) int64, root = -1
    bone_scale_vertex_pairs: np.ndarray | None = None  # (N, 5) int64, see OFFICIAL_BONE_SCALE_VERTEX_PAIRS
    name: str = "skel"
    extras: dict[str, Any] = field(default_factory=dict)  # names etc., informative only

    # ------------------------------------------------------------------ checks
    def validate(self, source: str = "body") -> SkelData:
        """Check shapes and the kinematic tree; raise SkelFileError with one line on any mismatch."""

        def bad(msg: str) -> SkelFileError:
            return SkelFileError(f"{source}: {msg}")

        V = self.skin_template_v.shape[0]
        Vb = self.skel_template_v.shape[0]
        expect = {
            "skin_template_v": (V, 3),
            "J_regressor_osim": (N_JOINTS, V),
            "skin_weights": (V, N_JOINTS),
            "skel_template_v": (Vb, 3),
            "skel_weights": (Vb, N_JOINTS),
            "skel_weights_rigid": (Vb, N_JOINTS),
            "per_joint_rot": (N_JOINTS, 3, 3),
            "apose_rel_transfo": (N_JOINTS, 4, 4),
            "parents": (N_JOINTS,),
        }
        for key, shape in expect.items():
            if getattr(self, key).shape != shape:
                raise bad(f"{key} has shape {getattr(self, key).shape}, expected {shape}")
        sd = self.shapedirs
        if sd.ndim != 3 or sd.shape[:2] != (V, 3) or sd.shape[2] < 1:
            raise bad(f"shapedirs has shape {sd.shape}, expected ({V}, 3, K>=1)")
        if self.posedirs is not None and self.posedirs.shape != (V, 3, 207):
            raise bad(f"posedirs has shape {self.posedirs.shape}, expected ({V}, 3, 207)")
        for key, n in (("skin_template_f", V), ("skel_template_f", Vb)):
            f = getattr(self, key)
            if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= n)):
                raise bad(f"{key} must be (F, 3) indices into {n} vertices")
        if tuple(int(p) for p in self.parents) != PARENTS:
            raise bad(f"kinematic tree {self.parents.tolist()} is not SKEL's 24-joint tree {list(PARENTS)}")
        rig = self.skel_weights_rigid
        if Vb and not np.all(np.count_nonzero(rig, axis=1) == 1):
            raise bad("skel_weights_rigid must assign exactly one bone to every bone-mesh vertex")
        p = self.bone_scale_vertex_pairs
        if p is not None:
            if p.ndim != 2 or p.shape[1] != 5:
                raise bad(f"bone_scale_vertex_pairs has shape {p.shape}, expected (N, 5)")
            if p.size and (p[:, 2:4].max() >= V or p[:, 2:4].min() < 0 or p[:, [1, 4]].max() > 2):
                raise bad("bone_scale_vertex_pairs refers to vertices or axes that do not exist")
        for key in ("skin_template_v", "shapedirs", "J_regressor_osim", "skin_weights", "per_joint_rot"):
            if not np.all(np.isfinite(getattr(self, key))):
                raise bad(f"{key} contains NaN or inf")
        return self

    # ------------------------------------------------------------------ official pkl
    @classmethod
    def from_official_pkl(cls, path: str | Path) -> SkelData:
        """Read an official SKEL v1.1.1 ``skel_male.pkl`` / ``skel_female.pkl`` (safely, see module doc)."""
        path = Path(path)
        if not path.is_file():
            raise SkelFileError(f"{path}: no such file; {WHERE_TO_GET}")
        raw = path.read_bytes()
        obj = safe_unpickle(raw, str(path))
        if not isinstance(obj, dict):
            raise SkelFileError(
                f"{path}: not a SKEL model (the pickle holds a {type(obj).__name__}, not a dict of arrays); "
                f"{WHERE_TO_GET}"
            )
        keys = set(obj)
        if "skel_template_v" not in keys:
            if {"v_template", "weights", "kintree_table"} <= keys:
                kind = "an SMPL-family model file (v_template/weights/kintree_table), not SKEL"
            else:
                kind = f"not a SKEL model (keys: {', '.join(sorted(map(str, keys))[:8])})"
            raise SkelFileError(f"{path}: {kind}; {WHERE_TO_GET}")
        version = obj.get("version")
        if isinstance(version, bytes):
            version = version.decode("latin1")
        if version is None or str(version) != SUPPORTED_VERSION:
            found = "no version key (an older SKEL release)" if version is None else f"version {version!r}"
            raise SkelFileError(
                f"{path}: SKEL model with {found}; only v{SUPPORTED_VERSION} is supported; {WHERE_TO_GET}"
            )
        need = (
            "skin_template_v", "skin_template_f", "shapedirs", "J_regressor_osim", "skin_weights",
            "skel_template_v", "skel_template_f", "skel_weights", "skel_weights_rigid", "osim_kintree_table",
            "per_joint_rot", "apose_rel_transfo",
        )  # fmt: skip
        missing = [k for k in need if k not in keys]
        if missing:
            raise SkelFileError(f"{path}: SKEL v1.1.1 file without {', '.join(missing)} (damaged?); {WHERE_TO_GET}")
        try:
            data = cls(
                skin_template_v=_f32(obj["skin_template_v"]),
                skin_template_f=_faces(obj["skin_template_f"]),
                shapedirs=_f32(obj["shapedirs"])[:, :, :10],  # SKEL uses the first 10 directions only
                posedirs=_f32(obj["posedirs"]) if obj.get("posedirs") is not None else None,
                J_regressor_osim=_f32(obj["J_regressor_osim"]),
                skin_weights=_f32(obj["skin_weights"]),
                skel_template_v=_f32(obj["skel_template_v"]),
                skel_template_f=_faces(obj["skel_template_f"]),
                skel_weights=_f32(obj["skel_weights"]),
                skel_weights_rigid=_f32(obj["skel_weights_rigid"]),
                per_joint_rot=_f32(obj["per_joint_rot"]),
                apose_rel_transfo=_apose(obj["apose_rel_transfo"]),
                parents=parents_from_kintree(obj["osim_kintree_table"]),
                bone_scale_vertex_pairs=OFFICIAL_BONE_SCALE_VERTEX_PAIRS.copy(),
                name=path.stem,
                extras={k: obj[k] for k in ("bone_names", "joints_name", "pose_params_name") if k in obj},
            )
        except SkelFileError:
            raise
        except (ValueError, TypeError, IndexError) as e:
            raise SkelFileError(f"{path}: SKEL v1.1.1 file with unexpected contents ({e}); {WHERE_TO_GET}") from e
        if data.posedirs is not None and data.posedirs.ndim == 2:  # (V*3, 207) variant
            data.posedirs = data.posedirs.reshape(-1, 3, data.posedirs.shape[-1])
        if data.skin_template_v.shape[0] <= OFFICIAL_BONE_SCALE_VERTEX_PAIRS[:, 2:4].max():
            data.bone_scale_vertex_pairs = None  # not SMPL topology: skip the vertex-pair overrides
        return data.validate(str(path))

    # ------------------------------------------------------------------ npz
    def to_npz(self, path: str | Path) -> None:
        """Write plain arrays (no pickles); mostly-zero matrices as ``<name>__rows/__cols/__vals/__shape``."""
        out: dict[str, np.ndarray] = {"format": np.array("skel-data-1"), "name": np.array(self.name)}
        for f in fields(self):
            if f.name in ("name", "extras"):
                continue
            val = getattr(self, f.name)
            if val is None:
                continue
            if f.name in _SPARSE_KEYS:
                r, c = np.nonzero(val)
                out[f"{f.name}__rows"] = r.astype(np.int32)
                out[f"{f.name}__cols"] = c.astype(np.int32)
                out[f"{f.name}__vals"] = val[r, c].astype(np.float32)
                out[f"{f.name}__shape"] = np.array(val.shape, dtype=np.int64)
            else:
                out[f.name] = np.asarray(val)
        np.savez_compressed(path, **out)

    @classmethod
    def from_npz(cls, path: str | Path) -> SkelData:
        """Read a body written by ``to_npz`` (or any npz with the same names, dense or as triplets)."""
        path = Path(path)
        if not path.is_file():
            raise SkelFileError(f"{path}: no such file")
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line answer
            raise SkelFileError(f"{path}: not a readable npz body file ({e})") from e
        with z:
            names = set(z.files)

            def get(key: str, required: bool = True) -> np.ndarray | None:
                if key in names:
                    return z[key]
                if f"{key}__rows" in names:
                    shape = tuple(int(s) for s in z[f"{key}__shape"])
                    dense = np.zeros(shape, dtype=np.float32)
                    dense[z[f"{key}__rows"], z[f"{key}__cols"]] = z[f"{key}__vals"]
                    return dense
                if required:
                    raise SkelFileError(f"{path}: body npz without {key!r}; regenerate it (python build.py assets)")
                return None

            parents = get("parents")
            data = cls(
                skin_template_v=_f32(get("skin_template_v")),
                skin_template_f=_faces(get("skin_template_f")),
                shapedirs=_f32(get("shapedirs")),
                posedirs=None if (p := get("posedirs", False)) is None else _f32(p),
                J_regressor_osim=_f32(get("J_regressor_osim")),
                skin_weights=_f32(get("skin_weights")),
                skel_template_v=_f32(get("skel_template_v")),
                skel_template_f=_faces(get("skel_template_f")),
                skel_weights=_f32(get("skel_weights")),
                skel_weights_rigid=_f32(get("skel_weights_rigid")),
                per_joint_rot=_f32(get("per_joint_rot")),
                apose_rel_transfo=_apose(get("apose_rel_transfo")),
                parents=np.where(parents < 0, -1, parents).astype(np.int64),
                bone_scale_vertex_pairs=(
                    None if (b := get("bone_scale_vertex_pairs", False)) is None else b.astype(np.int64)
                ),
                name=str(z["name"]) if "name" in names else path.stem,
            )
        return data.validate(str(path))


# ---------------------------------------------------------------------- helpers
def parents_from_kintree(kintree: Any) -> np.ndarray:
    """(2, 24) kintree (row 0 parents, row 1 children) -> (24,) parents; the root's parent may be stored
    as -1 or as 4294967295 (-1 read as uint32): anything outside 0..23 becomes -1."""
    k = np.asarray(_dense(kintree)).astype(np.int64)
    if k.ndim != 2 or k.shape[0] != 2:
        raise SkelFileError(f"osim_kintree_table has shape {k.shape}, expected (2, {N_JOINTS})")
    parents = np.full(N_JOINTS, -1, dtype=np.int64)
    for par, child in zip(k[0], k[1], strict=True):
        if not 0 <= child < N_JOINTS:
            raise SkelFileError(f"osim_kintree_table names joint {child}; SKEL has {N_JOINTS} joints")
        parents[child] = par if 0 <= par < N_JOINTS else -1
    return parents


def _dense(x: Any) -> np.ndarray:
    if hasattr(x, "toarray"):  # scipy sparse
        return x.toarray()
    return np.asarray(x)


def _f32(x: Any) -> np.ndarray:
    return np.ascontiguousarray(_dense(x), dtype=np.float32)


def _faces(x: Any) -> np.ndarray:
    return np.ascontiguousarray(_dense(x)).astype(np.int64)


def _apose(x: Any) -> np.ndarray:
    """apose_rel_transfo as (24, 4, 4); some files store only the (24, 3, 4) top rows."""
    a = _f32(x)
    if a.shape == (N_JOINTS, 3, 4):
        a = np.concatenate([a, np.tile(np.array([[[0, 0, 0, 1]]], np.float32), (N_JOINTS, 1, 1))], axis=1)
    return a


# ---------------------------------------------------------------------- safe unpickling
_NUMPY_CORE = {"_reconstruct", "scalar", "_frombuffer"}
_ALLOWED: dict[str, set[str]] = {
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": _NUMPY_CORE,
    "numpy.core.numeric": _NUMPY_CORE,
    "numpy._core.multiarray": _NUMPY_CORE,  # written by numpy 2
    "numpy._core.numeric": _NUMPY_CORE,
    "numpy.dtypes": {n for n in dir(np.dtypes) if n.endswith("DType")} if hasattr(np, "dtypes") else set(),
    "scipy.sparse._coo": {"coo_matrix", "coo_array"},
    "scipy.sparse.coo": {"coo_matrix"},  # scipy < 1.8 module path
    "scipy.sparse._csr": {"csr_matrix", "csr_array"},
    "scipy.sparse._csc": {"csc_matrix", "csc_array"},
    "scipy.sparse.csr": {"csr_matrix"},
    "scipy.sparse.csc": {"csc_matrix"},
    "builtins": {"object", "set", "frozenset", "slice", "complex", "bytearray", "range"},
    "copyreg": {"_reconstructor"},  # protocol 0/1 object reconstruction (class still goes through this filter)
    "_codecs": {"encode"},  # protocol 2 writes bytes as _codecs.encode(str, 'latin1')
    "collections": {"OrderedDict"},
}
_ALLOWED["__builtin__"] = _ALLOWED["builtins"]  # protocol-0/2 names (mapped by fix_imports)
_ALLOWED["copy_reg"] = _ALLOWED["copyreg"]
# where a class moved between library versions
_RENAMED = {"numpy._core.multiarray": "numpy.core.multiarray", "numpy._core.numeric": "numpy.core.numeric",
            "numpy.core.multiarray": "numpy._core.multiarray", "numpy.core.numeric": "numpy._core.numeric",
            "scipy.sparse.coo": "scipy.sparse._coo", "scipy.sparse.csr": "scipy.sparse._csr",
            "scipy.sparse.csc": "scipy.sparse._csc"}  # fmt: skip


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, f: io.BytesIO, source: str) -> None:
        super().__init__(f, encoding="latin1")  # latin1 reads Python-2 numpy pickles too
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED.get(module, ()):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                return super().find_class(_RENAMED.get(module, module), name)
        hint = " (chumpy: an old-format SMPL/SKEL file)" if module.startswith("chumpy") else ""
        raise SkelFileError(
            f"{self._source}: refused to unpickle: a pickle can run code and this one asks for "
            f"{module}.{name}{hint}, which is not a numpy/scipy array; a SKEL v1.1.1 file needs nothing else; "
            f"{WHERE_TO_GET}"
        )


def safe_unpickle(raw: bytes, source: str = "file") -> Any:
    """Unpickle ``raw`` allowing only numpy arrays, scipy sparse matrices and inert builtins."""
    try:
        return _SafeUnpickler(io.BytesIO(raw), source).load()
    except SkelFileError:
        raise
    except Exception as e:  # noqa: BLE001 - any broken pickle gets the same one-line answer
        raise SkelFileError(f"{source}: not a readable pickle ({type(e).__name__}: {e}); {WHERE_TO_GET}") from e


__all__ = [
    "JOINT_NAMES",
    "OFFICIAL_BONE_SCALE_VERTEX_PAIRS",
    "SUPPORTED_VERSION",
    "SkelData",
    "SkelFileError",
    "parents_from_kintree",
    "safe_unpickle",
]
