"""Resumable work: chunks of finished frames in ``RESULT.npz.work/`` so a rerun after a crash or a cancel
continues where it stopped. The landmark stage saves its frames and the tracker state here; later stages (the
HSMR network) save their own chunks in the same folder. Several calibrated clips keep one sub-folder per camera
(``RESULT.npz.work/CAMERA/``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from hsmr_contract.result_format import atomic_write

from .tracker import TrackerState

Resume = tuple[dict[str, np.ndarray], TrackerState, dict]  # finished frames' columns, tracker state, header


class WorkDir:
    """Chunks of finished frames in ``RESULT.npz.work/`` (atomic writes) so a rerun resumes."""

    def __init__(self, path: str | os.PathLike, key: dict) -> None:
        self.path = Path(path)
        self.key = key  # what must match for the saved frames to be reused (video, range, subject, ...)

    def chunk_files(self) -> list[Path]:
        return sorted(self.path.glob("chunk_*.npz"))

    def load(self) -> Resume | None:
        """Finished frames, the tracker state after them and the header; None when nothing reusable."""
        head = self.path / "key.json"
        if not head.is_file():
            return None
        try:
            saved = json.loads(head.read_text())
            if saved.get("key") != self.key:
                return None
            parts: dict[str, list[np.ndarray]] = {}
            state = None
            for c in self.chunk_files():
                with np.load(c, allow_pickle=False) as z:
                    for k in ("frame_index", "kp2d", "kp3d", "valid", "boxes"):
                        parts.setdefault(k, []).append(z[k])
                    state = {k[6:]: z[k] for k in z.files if k.startswith("state_")}
            if state is None:
                return None
            return ({k: np.concatenate(v) for k, v in parts.items()}, TrackerState.from_arrays(state), saved)
        except (OSError, ValueError, KeyError):
            return None  # a damaged work folder is simply redone

    def start(self, header: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for c in self.path.glob("*.npz"):  # landmark chunks and later stages' chunks (hsmr_*) of another run
            c.unlink()
        key = json.dumps({"key": self.key, **header}).encode()
        atomic_write(self.path / "key.json", lambda fh: fh.write(key))

    def save_chunk(self, n: int, arrays: dict[str, np.ndarray], state: TrackerState) -> None:
        self.save_arrays(f"chunk_{n:06d}", **arrays, **{f"state_{k}": v for k, v in state.to_arrays().items()})

    def save_arrays(self, name: str, **arrays: np.ndarray) -> None:
        """``name.npz`` in the work folder, written atomically: landmark chunks and later stages' chunks (cleared
        with them)."""
        atomic_write(self.path / f"{name}.npz", lambda fh: np.savez(fh, **arrays))

    def remove(self) -> None:
        remove_work_folder(self.path)


def remove_work_folder(path: str | os.PathLike) -> None:
    """The whole work folder, with any per-camera sub-folders in it (every run for this result is over once the
    result is saved)."""
    if Path(path).is_dir():
        shutil.rmtree(path)

