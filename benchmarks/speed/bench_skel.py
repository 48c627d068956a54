"""SKEL forward speed on this CPU, against the arithmetic floor of the work it must do.

    python build.py bench bench_skel -- [--pkl skel_male.pkl] [--threads N]

Without --pkl it times a generated official-format body (synthetic/fake_skel.py) with 6890 skin vertices and
a full-size 247k-vertex bone mesh, so the figures hold for a real file of the same sizes. Reports frames
per second for B = 1 and B = 64: skin + joints + pose correctives (forward, i.e. shape included), the
same posed from a precomputed rest state (the fitter's path), a 100-vertex subset, and with the bone mesh.
The floor is FLOPs per frame / this CPU's measured float32 matmul throughput (torch, same threads).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import run_recorded
from hsmr_backend.skel import SKEL

CLOCK = time.perf_counter


def timeit(fn, min_time: float = 1.0, min_reps: int = 3) -> float:
    """Median seconds per call (on CLOCK)."""
    fn()  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    times.sort()
    return times[len(times) // 2]


def matmul_gflops() -> float:
    """Best float32 GEMM throughput (GFLOP/s) over a few sizes typical of the model's matmuls."""
    best = 0.0
    for m, k, n in ((1024, 1024, 1024), (64, 207, 20670), (20670, 24, 768)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        t = timeit(lambda a=a, b=b: a @ b, 0.5)
        best = max(best, 2 * m * k * n / t / 1e9)
    return best


def flops_per_frame(m: SKEL, bones: bool, shape: bool, n_skin: int | None = None) -> float:
    V, K = m.num_verts, m.num_betas
    n = V if n_skin is None else n_skin
    f = 2 * 207 * n * 3 + 2 * n * 24 * 12 + 6 * n * 3  # correctives, weight blend, apply 3x4
    f += 24 * 3 * 3 * 40  # kinematics (negligible)
    if shape:
        f += 2 * V * 3 * K + 2 * 24 * V * 3  # shape blend shapes, joint regressor
    if bones:
        f += 6 * 3 * m.num_bone_verts  # one 3x4 affine per bone vertex
    return f


def bytes_per_call(m: SKEL, B: int, bones: bool, n_skin: int | None = None) -> tuple[float, float]:
    """(bytes streamed from memory once per call, fresh output bytes written per call)."""
    n = m.num_verts if n_skin is None else n_skin
    read = 4 * (207 * 3 * n + 24 * n + 3 * n)  # pose correctives, weights, shaped template
    write = 4 * B * n * 3
    if bones:
        read += 4 * 3 * m.num_bone_verts
        write += 4 * B * m.num_bone_verts * 3
    return read, write


def memory_bandwidth() -> tuple[float, float]:
    """(read GB/s from a warm 64 MB array, write GB/s into freshly allocated 64 MB: page faults included)."""
    x = torch.ones(16 << 20)
    read = 64e6 / timeit(lambda: x.sum(), 0.5) / 1e9
    write = 64e6 / timeit(lambda: torch.empty(16 << 20).fill_(1.0), 0.5) / 1e9
    return read, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pkl", type=Path, help="an official skel_male.pkl (default: a generated one)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu = this process's CPU time (steadier on a shared machine; with 1 thread it equals the wall "
        "time of an idle machine)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.pkl:
        model = SKEL.from_file(args.pkl)
    else:
        from synthetic.fake_skel import write_fake_skel_pkl

        with tempfile.TemporaryDirectory() as tmp:
            path = write_fake_skel_pkl(Path(tmp) / "skel_male.pkl", bone_verts_per_bone=10302)
            model = SKEL.from_file(path)
    model.eval()
    gf = matmul_gflops()
    bw = memory_bandwidth()
    print(
        f"body: {model.name}, {model.num_verts} skin / {model.num_bone_verts} bone vertices; "
        f"torch {torch.__version__}, {args.threads} thread(s), {args.clock} clock"
    )
    print(f"this CPU: float32 matmul {gf:.1f} GFLOP/s, memory read {bw[0]:.1f} GB/s, fresh write {bw[1]:.1f} GB/s")
    print("floor = the larger of FLOPs / matmul peak and bytes / bandwidth ('by' says which)")
    print(f"{'case':<40}{'B':>4}{'ms/call':>10}{'frames/s':>10}{'floor':>10}{'by':>8}{'of floor':>9}")
    ids = torch.arange(0, model.num_verts, model.num_verts // 100)[:100]
    with torch.no_grad():
        for B in (1, 64):
            bench_batch(model, B, gf, bw, ids)
    bench_fitter_step(model, ids)


def bench_fitter_step(model: SKEL, ids: torch.Tensor) -> None:
    """One optimiser step of a fit: shared shape + poses of many frames -> 100 skin vertices + joints -> backward."""
    for B in (64, 300):
        q = (torch.rand(B, 46) - 0.5).requires_grad_()
        betas = torch.zeros(1, 10, requires_grad=True)
        trans = torch.zeros(B, 3, requires_grad=True)

        def step(q=q, betas=betas, trans=trans) -> None:
            out = model.pose(model.rest_state(betas), q, trans, skin_vertex_ids=ids)
            (out.skin_verts.square().sum() + out.joints.square().sum()).backward()

        t = timeit(step)
        print(f"{'fitter step: 100 verts + joints, fwd+bwd':<40}{B:>4}{t * 1e3:>10.2f}{B / t:>10.0f}", flush=True)


def bench_batch(model: SKEL, B: int, gf: float, bw: tuple[float, float], ids: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.rand(B, 46, generator=g) - 0.5
    betas = torch.randn(B, 10, generator=g)
    trans = torch.randn(B, 3, generator=g)
    rest1 = model.rest_state(betas[:1])
    cases = [
        ("forward: skin+joints+correctives", lambda: model(q, betas, trans), False, True, None),
        ("pose from rest_state (shared shape)", lambda: model.pose(rest1, q, trans), False, False, None),
        ("pose, 100 skin vertices (fitter)",
         lambda: model.pose(rest1, q, trans, skin_vertex_ids=ids), False, False, 100),
        ("forward + bone mesh", lambda: model(q, betas, trans, bone_mesh=True), True, True, None),
        ("pose from rest_state + bone mesh", lambda: model.pose(rest1, q, trans, bone_mesh=True), True, False, None),
    ]  # fmt: skip
    for name, fn, bones, shape, n in cases:
        t = timeit(fn)
        t_flop = B * flops_per_frame(model, bones, shape, n) / (gf * 1e9)
        read, write = bytes_per_call(model, B, bones, n)
        t_mem = read / (bw[0] * 1e9) + write / (bw[1] * 1e9)
        floor = B / max(t_flop, t_mem)
        by = "flops" if t_flop >= t_mem else "memory"
        fps = B / t
        print(f"{name:<40}{B:>4}{t * 1e3:>10.2f}{fps:>10.0f}{floor:>10.0f}{by:>8}{fps / floor:>9.0%}", flush=True)


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
