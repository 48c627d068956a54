"""The result file: one ``.npz`` (no pickles) that carries a fitted clip from the backend to Blender.

This module is the single source of the schema; it depends on numpy alone and both the backend and the Blender
add-on import it. Every field is documented here and, for people, in ``docs/result-format.md`` (generated from
``FIELDS``); ``meta_json`` is typed by ``meta.Meta``.

Frames: ``T`` fitted frames, ``C`` calibrated cameras (several-camera results), ``V`` skin vertices, ``F`` skin
faces, ``K`` shape coefficients, ``N_JOINTS`` joints, ``N_DOFS`` DoFs (from ``dofs.py``). Coordinates:
- *model*: the body model's frame (SKEL/SMPL: y up, subject faces +z, metres).
- *camera*: OpenCV camera frame (x right, y down, z forward, metres).
- *world*: Blender's world (z up, metres, ground plane at z = 0).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .dofs import N_DOFS, N_JOINTS

FORMAT_VERSION = 2  # 2: the optional fields of several calibrated cameras (camera_names ... C)
MAGIC = "hsmr-blender-result"


class ResultFileError(ValueError):
    """A result file that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Field:
    name: str
    shape: tuple[str | int, ...]  # symbolic dims: T, V, F, K, Vb, Fb, N, C; ints are fixed
    kind: str  # "f" float, "i" integer, "b" bool, "U" string
    required: bool
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("magic", (), "U", True, f"Always {MAGIC!r}: tells a result file from any other .npz."),
    Field("format_version", (), "i", True, f"Schema version ({FORMAT_VERSION}). Readers refuse newer versions."),
    Field(
        "meta_json",
        (),
        "U",
        True,
        "JSON object (typed by hsmr_contract.meta.Meta): producer versions, mode (keypoints/hsmr/skelcf), body, source "
        "video path, focal source, options.",
    ),
    Field("body", (), "U", True, "Body model: 'open' (bundled default) or 'skel_male' / 'skel_female'."),
    Field("fps", (), "f", True, "Frames per second of the fitted sequence (source fps / stride)."),
    Field("frame_index", ("T",), "i", True, "Source video frame number of each fitted frame."),
    Field("valid", ("T",), "b", True, "False where the subject was lost; such frames are bridged, never someone else."),
    # --- the DoFs and the kinematic tree (a serialised copy of hsmr_contract.dofs) ---
    Field("dof_names", (N_DOFS,), "U", True, "SKEL DoF names, in q order."),
    Field("dof_joint", (N_DOFS,), "i", True, "Joint index each DoF belongs to."),
    Field(
        "dof_axis", (N_DOFS, 3), "f", True, "Rotation axis of each DoF in its joint's BSM frame (as SKEL stores it)."
    ),
    Field("dof_flip", (N_DOFS,), "f", True, "Sign applied to q before rotating about dof_axis."),
    Field("dof_limits", (N_DOFS, 2), "f", True, "Lower/upper limit (radians); -inf/inf where unlimited (pelvis)."),
    Field("joint_names", (N_JOINTS,), "U", True, "SKEL joint (bone) names."),
    Field("joint_parents", (N_JOINTS,), "i", True, "Parent joint index; -1 for the pelvis."),
    # --- motion ---
    Field("poses", ("T", N_DOFS), "f", True, "SKEL q per frame, radians, every limited DoF inside its limits."),
    Field("betas", ("K",), "f", True, "Shape coefficients of the subject (shared by the whole clip)."),
    Field("trans", ("T", 3), "f", True, "SKEL translation per frame (model frame, metres), added after skinning."),
    Field(
        "joint_offsets",
        ("T", N_JOINTS, 3),
        "f",
        True,
        "Non-rotational joint translation delta_j(q) (spine arcs, scapula ellipsoid) in the parent's rest-aligned "
        "frame, metres; zero for other joints. Keyed as location channels by the rig.",
    ),
    Field("joints_cam", ("T", N_JOINTS, 3), "f", True, "SKEL joint centres in the camera frame (OpenCV), metres."),
    Field(
        "joints_world", ("T", N_JOINTS, 3), "f", True, "SKEL joint centres in the world (Blender: z up, ground z=0)."
    ),
    # --- the subject's rest pose (what the rig is built from) ---
    Field("rest_joints", (N_JOINTS, 3), "f", True, "Joint centres of the subject's T-pose (q=0), model frame."),
    Field(
        "rest_frames",
        (N_JOINTS, 3, 3),
        "f",
        True,
        "M_j = Rk01_j @ Ra_j^T for the subject's shape: maps joint j's BSM frame into the model frame at rest.",
    ),
    Field("skin_rest_verts", ("V", 3), "f", True, "Shaped T-pose skin (v_shaped), model frame, metres."),
    Field("skin_faces", ("F", 3), "i", True, "Skin triangles (vertex indices)."),
    Field("skin_weights", ("V", N_JOINTS), "f", True, "Linear-blend skin weights onto the joints (rows sum to 1)."),
    Field("skin_posedirs", (207, "V", 3), "f", False, "Pose-corrective blend shapes (SMPL layout); optional."),
    Field("pose_features", ("T", 207), "f", False, "Per-frame corrective weights vec(R_smpl[1:] - I); optional."),
    Field("bone_rest_verts", ("Vb", 3), "f", False, "Bone meshes placed in the subject's T-pose, model frame."),
    Field("bone_faces", ("Fb", 3), "i", False, "Bone-mesh triangles."),
    Field("bone_vertex_joint", ("Vb",), "i", False, "Joint each bone-mesh vertex is rigidly attached to."),
    # --- camera and world ---
    Field("model_to_world", (4, 4), "f", True, "Takes model-frame points (after trans) to the world."),
    Field("camera_to_world", (4, 4), "f", True, "Takes OpenCV camera-frame points to the world (static camera)."),
    Field("camera_K", (3, 3), "f", True, "Camera intrinsics in pixels (fx, fy, cx, cy)."),
    Field("image_size", (2,), "i", True, "Width, height of the (rotation-corrected) frames in pixels."),
    # --- what was fitted, and how well ---
    Field("keypoint_names", ("N",), "U", True, "Names of the fitted 2D keypoints (MediaPipe pose landmarks)."),
    Field("keypoints_2d", ("T", "N", 3), "f", True, "Fitted 2D keypoints: x, y in pixels, confidence in [0, 1]."),
    Field("reprojection_error_px", ("T",), "f", True, "Confidence-weighted mean 2D error of the fit, pixels."),
    Field("fit_loss", ("T",), "f", True, "Final per-frame objective of the fit (lower is better)."),
    # --- several calibrated cameras (version 2; absent for one camera). Camera 0 is the one the single-camera
    # fields above describe. Per-frame extrinsics, when they come, are a separate optional (T, C, 4, 4) field.
    Field("camera_names", ("C",), "U", False, "Several cameras: every camera's name in the calibration."),
    Field("cameras_K", ("C", 3, 3), "f", False, "Several cameras: intrinsics in pixels of each camera's clip."),
    Field("cameras_distortion", ("C", 5), "f", False,
          "Several cameras: OpenCV distortion k1, k2, p1, p2, k3 (keypoints were undistorted before the fit)."),
    Field("cameras_image_size", ("C", 2), "i", False, "Several cameras: width, height of each camera's clip."),
    Field("cameras_to_world", ("C", 4, 4), "f", False,
          "Several cameras: takes each camera's OpenCV frame to the world (static cameras)."),
    Field("cameras_frame_offset", ("C",), "i", False,
          "Several cameras: fitted frame i is frame frame_index[i] + offset of that camera's clip (0 for the first)."),
    Field("calibration_to_world", (4, 4), "f", False,
          "Several cameras: takes the calibration's (lab) frame to the world."),
    Field("keypoints_2d_views", ("C", "T", "N", 3), "f", False,
          "Several cameras: the fitted 2D keypoints in every view (undistorted pixels, confidence; 0 where dropped)."),
    Field("reprojection_error_views_px", ("C", "T"), "f", False,
          "Several cameras: the fit's confidence-weighted mean 2D error in every view, pixels (0 where unseen)."),
    Field(
        "foot_resting",
        ("T", 4),
        "b",
        False,
        "Per frame: does the left heel, right heel, left foot tip, right foot tip (MediaPipe landmarks 29, 30, 31, "
        "32) rest on the ground; optional.",
    ),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}


def _check_kind(name: str, arr: np.ndarray, kind: str) -> None:
    ok = {
        "f": np.issubdtype(arr.dtype, np.floating),
        "i": np.issubdtype(arr.dtype, np.integer),
        "b": arr.dtype == np.bool_,
        "U": arr.dtype.kind == "U",
    }[kind]
    if not ok:
        raise ResultFileError(f"result field {name!r} has dtype {arr.dtype}, expected kind {kind!r}")


def validate(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """Check names, dtypes, shapes, consistent dimensions and finiteness; return numpy arrays.

    Raises ResultFileError with one line that names the first problem found.
    """
    out = {k: np.asarray(v) for k, v in arrays.items()}
    missing = [f.name for f in FIELDS if f.required and f.name not in out]
    if missing:
        raise ResultFileError(f"result file is missing field(s): {', '.join(missing)}")
    magic, version_arr = out["magic"], out["format_version"]
    if magic.shape != () or magic.dtype.kind != "U" or str(magic) != MAGIC:
        raise ResultFileError("not an HSMR-for-Blender result file (magic mismatch)")
    if version_arr.shape != () or not np.issubdtype(version_arr.dtype, np.integer):
        raise ResultFileError(f"result field 'format_version' must be an integer scalar, got {version_arr!r:.60}")
    version = int(version_arr)
    if version > FORMAT_VERSION:
        raise ResultFileError(
            f"result file has format_version {version}, newer than this reader ({FORMAT_VERSION}): update the add-on"
        )
    dims: dict[str, int] = {}
    for f in FIELDS:
        if f.name not in out:
            continue
        arr = out[f.name]
        _check_kind(f.name, arr, f.kind)
        if arr.ndim != len(f.shape):
            raise ResultFileError(f"result field {f.name!r} has shape {arr.shape}, expected {f.shape}")
        for size, spec in zip(arr.shape, f.shape, strict=True):
            if isinstance(spec, int):
                if size != spec:
                    raise ResultFileError(f"result field {f.name!r} has shape {arr.shape}, expected {f.shape}")
            elif dims.setdefault(spec, size) != size:
                raise ResultFileError(
                    f"result field {f.name!r} has {spec}={size}, but other fields say {spec}={dims[spec]}"
                )
        if f.kind == "f" and f.name != "dof_limits" and not np.all(np.isfinite(arr)):
            raise ResultFileError(f"result field {f.name!r} contains NaN or infinite values")
    if dims.get("T", 0) < 1:
        raise ResultFileError("result file holds no frames")
    try:
        json.loads(str(out["meta_json"]))
    except json.JSONDecodeError as e:
        raise ResultFileError(f"result field 'meta_json' is not valid JSON ({e})") from None
    return out


def _default_file_mode() -> int:
    """0666 less the process umask: the mode open() would have given a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, suffix: str = ".tmp") -> Path:
    """Write ``path`` all at once or not at all: ``write(fh)`` fills a temporary file in the same folder, which
    then replaces ``path`` (with the mode a new file would get); on any failure nothing is left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; results and pictures are ordinary user files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """Validate and write atomically (temporary file in the same folder, then rename)."""
    data = validate({"magic": MAGIC, "format_version": FORMAT_VERSION, **arrays})
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **data))


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate a result file; any problem is a ResultFileError with one clear line."""
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"result file not found: {path}")
    if not zipfile.is_zipfile(path):  # checked first: np.load would try to unpickle anything else
        raise ResultFileError(f"result file {path} is truncated or not an .npz; convert the clip again")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e):  # object arrays need pickles, which we never load
            raise ResultFileError(f"result file {path} holds objects that would need unpickling ({e})") from None
        raise ResultFileError(f"result file {path} is damaged ({e}); convert the clip again") from None
    except Exception as e:  # a damaged zip: BadZipFile, EOFError, OSError, zlib.error, and zipfile's
        # NotImplementedError / RuntimeError for flags it does not support (version, compression, encryption)
        raise ResultFileError(f"result file {path} is truncated or not an .npz ({e}); convert the clip again") from None
    return validate(arrays)


def markdown_table() -> str:
    """The field table for docs/result-format.md."""
    rows = ["| field | shape | type | required | meaning |", "|---|---|---|---|---|"]
    kinds = {"f": "float", "i": "int", "b": "bool", "U": "str"}
    for f in FIELDS:
        shape = "(" + ", ".join(str(s) for s in f.shape) + ")" if f.shape else "scalar"
        rows.append(f"| `{f.name}` | {shape} | {kinds[f.kind]} | {'yes' if f.required else 'no'} | {f.doc} |")
    return "\n".join(rows)
