"""The Pose2Sim demo take (``pose2sim`` 0.10.49 on PyPI, BSD-3-Clause, copyright 2022 perfanalytics): four
calibrated views of one subject (``Demo_SinglePerson``) and the same cameras with two people (``Demo_MultiPerson``).
The benchmarks that use it fetch it here (the wheel from the package index once, or ``--wheel``) and read its
Qualisys calibration the way this page's :func:`read_qca` documents."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "pose2sim==0.10.49"
DEMO = "Pose2Sim/Demo_SinglePerson"
SECOND_TAKE = "Pose2Sim/Demo_MultiPerson"  # same cameras, same calibration file
VIEWS = ("cam01", "cam02", "cam03", "cam04")
DEFAULT_CACHE = Path.home() / ".cache" / "hsmr-blender" / "pose2sim-0.10.49"
# A Qualisys camera looks along its -z with y up in the image; OpenCV's looks along +z with y down.
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])



def read_qca(text: str, image_width: int = 1088) -> dict[str, dict]:
    """Cameras of a Qualisys ``.qca.txt`` calibration: ``f`` and ``c`` (principal point) in pixels of a frame
    ``image_width`` wide, ``R`` world -> OpenCV camera, ``C`` camera centre (m), ``up`` the world's +z in OpenCV
    camera axes. The rows of Qualisys' ``transform`` are the camera axes in the lab; intrinsics are in sensor
    sub-pixels (``sensorMaxU`` per image width)."""
    cams = {}
    pattern = r'serial="([^"]+)".*?<transform (.*?)/>.*?<intrinsic (.*?)/>'
    for m in re.finditer(pattern, text, re.S):
        t = dict(re.findall(r'(\w+)="([^"]+)"', m.group(2)))
        k = dict(re.findall(r'(\w+)="([^"]+)"', m.group(3)))
        r = np.array([[float(t[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
        sub = float(k["sensorMaxU"]) / image_width
        rot = QUALISYS_TO_OPENCV @ r
        cams[m.group(1)] = {
            "R": rot,
            "C": np.array([float(t[a]) for a in "xyz"]) / 1000.0,
            "f": float(k["focalLengthU"]) / sub,
            "c": (float(k["centerPointU"]) / sub, float(k["centerPointV"]) / sub),
            "up": rot @ np.array([0.0, 0.0, 1.0]),
        }
    return cams


def projection(cam: dict, width: int, calib_width: int = 1088) -> np.ndarray:
    """(3,4) pixel projection of world points; a frame narrower than the calibration's is centred in it."""
    k = np.array([[cam["f"], 0.0, cam["c"][0] - (calib_width - width) / 2], [0.0, cam["f"], cam["c"][1]],
                  [0.0, 0.0, 1.0]])
    return k @ np.hstack([cam["R"], -(cam["R"] @ cam["C"])[:, None]])


def fetch(cache: Path, wheel: Path | None) -> Path:
    """The demo's videos and calibration under ``cache`` (downloaded and extracted once)."""
    demo = cache / DEMO
    if (demo / "calibration" / "Calib.qca.txt").is_file() and all((cache / take / "videos" / f"{v}.mp4").is_file()
                                                                   for v in VIEWS for take in (DEMO, SECOND_TAKE)):
        return demo
    if wheel is None:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "-q", "-d", str(cache)],
                       check=True)
        wheel = next(cache.glob("pose2sim-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for v in VIEWS:
            z.extract(f"{DEMO}/videos/{v}.mp4", cache)
            z.extract(f"{SECOND_TAKE}/videos/{v}.mp4", cache)
        z.extract(f"{DEMO}/calibration/Calib.qca.txt", cache)
        z.extract(f"{SECOND_TAKE}/calibration/Calib.qca.txt", cache)
    return demo
