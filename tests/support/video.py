"""Video files the way phones write them, for the video, landmark and bad-input tests."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """An mp4v clip of ``frames`` (BGR, all one size), written as they come."""
    import cv2

    writer = None
    for f in frames:
        if writer is None:
            h, w = f.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            assert writer.isOpened()
        writer.write(f)
    assert writer is not None, "no frames to write"
    writer.release()
    return path


def tag_rotation(src: Path, dst: Path, degrees: int) -> Path:
    """Copy an mp4 with the track-header display matrix set to a rotation (what phones write)."""
    one = 1 << 16
    c, s = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    matrix = [c * one, s * one, 0, -s * one, c * one, 0, 0, 0, 1 << 30]
    data = bytearray(src.read_bytes())

    def walk(start: int, end: int) -> None:
        i = start
        while i < end:
            size, typ = struct.unpack(">I4s", data[i : i + 8])
            if typ in (b"moov", b"trak"):
                walk(i + 8, i + size)
            elif typ == b"tkhd":
                version = data[i + 8]
                off = i + 12 + (32 if version == 1 else 20) + 16
                data[off : off + 36] = struct.pack(">9i", *matrix)
            i += size

    walk(0, len(data))
    dst.write_bytes(bytes(data))
    return dst
