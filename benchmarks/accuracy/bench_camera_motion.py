"""Does the camera move? ``scene.camera_motion`` on the shared clips (tripods) and on moving-camera versions of
them: the frames cut from a window that slides 30 or 100 px over the clip (a pan), or shakes by +-8 px (a hand).

    python build.py bench bench_camera_motion -- [--footage ../shared/footage]

Prints, per clip and camera, the background shift found (share of the frame's diagonal, and in pixels of the
cut frame beside the true largest offset), whether convert would warn (``scene.CAMERA_MOVED``) and the time of
the check on the eight kept frames.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, run_recorded
from hsmr_backend import scene
from hsmr_backend import video as V

WINDOW = (960, 1700)  # w, h of the cut frames (the clips are 1080x1920)


def _shake(i: int) -> tuple[int, int]:
    return 60 + int(8 * np.cos(i * 1.3)), 10 + int(8 * np.sin(i))


CAMERAS: dict[str, Callable[[int], tuple[int, int]] | None] = {
    "tripod": None,
    "pan 30 px": lambda i: (int(i * 0.3), 0),
    "pan 100 px": lambda i: (i, 0),
    "shake 8 px": _shake,
}


def samples_of(path: Path, offset: Callable[[int], tuple[int, int]] | None) -> tuple[list, list]:
    source = V.open_source(str(path))
    sampler = scene.FrameSampler(source.n_frames)
    offsets = []

    def frames():
        for i, frame in source.frames():
            if offset is None:
                yield i, frame
                continue
            x, y = offset(i)
            offsets.append((x, y))
            yield i, frame[y:y + WINDOW[1], x:x + WINDOW[0]]

    for _ in sampler.tap(frames()):
        pass
    return sampler.samples, offsets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--footage", type=Path, default=ROOT.parent / "shared" / "footage")
    args = ap.parse_args()
    clips = sorted(args.footage.glob("*.mp4"))
    if not clips:
        print(f"no clips in {args.footage}")
        return 1
    print(f"# camera motion: threshold {scene.CAMERA_MOVED:.0%} of the diagonal, {scene.SAMPLE_FRAMES} kept frames")
    for clip in clips:
        for name, offset in CAMERAS.items():
            samples, offsets = samples_of(clip, offset)
            t0 = time.perf_counter()
            found = scene.camera_motion(samples)
            ms = 1000 * (time.perf_counter() - t0)
            h, w = (samples[0][1].shape[:2] if offset is None else WINDOW[::-1])
            if offset is None:
                h, w = int(round(h / samples[0][2])), int(round(w / samples[0][2]))
            diag = float(np.hypot(w, h))
            x0, y0 = offsets[0] if offsets else (0, 0)
            true = max((float(np.hypot(x - x0, y - y0)) for x, y in offsets), default=0.0)
            if found is None:
                print(f"{clip.name:26s} {name:11s} not judged (too little background texture)  {ms:4.0f} ms")
                continue
            print(f"{clip.name:26s} {name:11s} shift {found.shift:6.2%} = {found.shift * diag:5.1f} px "
                  f"(largest true offset {true:5.1f} px), rotation {found.rotation_deg:.2f}°, "
                  f"{'warns' if found.moved else 'static'}, {found.pairs} pairs  {ms:4.0f} ms")
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
