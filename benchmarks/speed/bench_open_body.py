"""Open default body: load time and forward-pass time (prints its figures).

    python build.py bench bench_open_body
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import ROOT, run_recorded, source_pythonpath

LOAD = """
import time, torch, numpy; t = time.perf_counter()
from hsmr_backend.skel import load_body
m = load_body("open")
print(f"{time.perf_counter() - t:.3f}")
"""


def main() -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    size = (ROOT / "assets" / "open_body.npz").stat().st_size / 1e6
    print(f"open_body.npz: {size:.2f} MB")
    try:
        from hsmr_backend.skel import load_body
    except ImportError:
        print("hsmr_backend.skel.load_body not available in this checkout: nothing else to measure")
        return
    env = {"PYTHONPATH": source_pythonpath(), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    cold = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, env=env, check=True)
    print(f"load_body('open') in a fresh process (torch already imported): {cold.stdout.strip()} s")
    t = time.perf_counter()
    model = load_body("open")
    print(f"load_body('open') warm: {time.perf_counter() - t:.3f} s")
    for batch in (1, 64):
        q = torch.zeros(batch, 46)
        b = torch.zeros(batch, 10)
        tr = torch.zeros(batch, 3)
        with torch.no_grad():
            model(q, b, tr)
            t = time.perf_counter()
            for _ in range(5):
                model(q, b, tr)
        dt = (time.perf_counter() - t) / 5
        print(f"forward, batch {batch}, 1 CPU thread: {dt * 1000:.1f} ms ({dt / batch * 1000:.2f} ms per body)")
    del np


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
