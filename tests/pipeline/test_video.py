"""Frame sources: ranges, strides, rotation tags, image sequences, errors, prefetch."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hsmr_backend import video as V
from tests.support.video import tag_rotation

W, H = 160, 96


def _frame(i: int) -> np.ndarray:
    """A frame whose number can be read back after lossy coding: brightness of a big block, plus a red corner."""
    f = np.zeros((H, W, 3), np.uint8)
    f[:, : W // 2] = (10 * i) % 250
    f[: H // 3, W - W // 4 :] = (0, 0, 255)  # red block top-right: tells the orientation
    return f


def _read_number(f: np.ndarray) -> int:
    return int(round(float(f[f.shape[0] // 2 - 8 : f.shape[0] // 2 + 8, 4:20].mean()) / 10))


def _write_mp4(path: Path, n: int) -> Path:
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (W, H))
    assert wr.isOpened()
    for i in range(n):
        wr.write(_frame(i))
    wr.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _write_mp4(tmp_path_factory.mktemp("v") / "clip.mp4", 20)


def test_frame_range_parse():
    assert V.FrameRange.parse(None) == V.FrameRange(0, None, 1)
    assert V.FrameRange.parse("5:10", 2) == V.FrameRange(5, 10, 2)
    assert V.FrameRange.parse("7:") == V.FrameRange(7, None, 1)
    assert V.FrameRange.parse(":4") == V.FrameRange(0, 4, 1)
    assert list(V.FrameRange(2, 9, 3).indices(100)) == [2, 5, 8]
    assert list(V.FrameRange(2, None, 3).indices(7)) == [2, 5]
    for bad in ("5", "a:b", "10:5", "3:3", "-1:4", "1:2:3"):
        with pytest.raises(V.VideoError, match="--frames"):
            V.FrameRange.parse(bad)
    with pytest.raises(V.VideoError, match="--stride"):
        V.FrameRange.parse("0:4", 0)


def test_video_streams_every_frame_in_order(clip):
    src = V.open_source(clip)
    assert src.size == (W, H) and src.n_frames == 20 and src.fps == pytest.approx(25.0) and src.rotation == 0
    got = [(i, _read_number(f)) for i, f in src.frames()]
    assert got == [(i, i) for i in range(20)]


@pytest.mark.parametrize("rng", [V.FrameRange(3, 11, 1), V.FrameRange(0, None, 4), V.FrameRange(5, 17, 3),
                                 V.FrameRange(15, 40, 2)])
def test_video_range_and_stride(clip, rng):
    got = [(i, _read_number(f)) for i, f in V.open_source(clip).frames(rng)]
    want = list(rng.indices(20))
    assert [i for i, _ in got] == want
    assert [n for _, n in got] == want  # the content is the frame it claims to be


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_tag_is_applied(clip, tmp_path, degrees):
    rotated = tag_rotation(clip, tmp_path / f"r{degrees}.mp4", degrees)
    src = V.open_source(rotated)
    assert src.rotation == degrees
    expect_size = (H, W) if degrees in (90, 270) else (W, H)
    assert src.size == expect_size
    i, f = next(iter(src.frames(V.FrameRange(4, 5))))
    assert (f.shape[1], f.shape[0]) == expect_size
    # same picture as the plain clip turned clockwise by the tag's angle (as a player shows it)
    code = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}[degrees]
    plain = next(iter(V.open_source(clip).frames(V.FrameRange(4, 5))))[1]
    assert np.abs(f.astype(int) - cv2.rotate(plain, code).astype(int)).mean() < 3
    # and specifically: the red block (top-right of the sensor image) ends where the rotation puts it
    red = (f[..., 2] > 200) & (f[..., 0] < 60)
    ys, xs = np.nonzero(red)
    cy, cx = ys.mean() / f.shape[0], xs.mean() / f.shape[1]
    corner = {90: (1, 1), 180: (1, 0), 270: (0, 0)}[degrees]  # (bottom?, right?) after turning
    assert (cy > 0.5, cx > 0.5) == (bool(corner[0]), bool(corner[1]))


def test_image_folder_glob_and_single_image(tmp_path):
    d = tmp_path / "seq"
    d.mkdir()
    for i in range(6):
        cv2.imwrite(str(d / f"img_{i:03d}.png"), _frame(i))
    (d / "notes.txt").write_text("not an image")
    src = V.open_source(d, fps=12)
    assert src.n_frames == 6 and src.size == (W, H) and src.fps == 12
    assert [(i, _read_number(f)) for i, f in src.frames(V.FrameRange(1, None, 2))] == [(1, 1), (3, 3), (5, 5)]
    g = V.open_source(str(d / "img_00[0-2].png"))
    assert [i for i, _ in g.frames()] == [0, 1, 2]
    one = V.open_source(d / "img_004.png")
    assert one.n_frames == 1 and _read_number(next(iter(one.frames()))[1]) == 4


def test_focal_length_from_exif(tmp_path):
    from PIL import Image

    def jpeg(name: str, f35: float | None, ifd0: bool = False, orientation: int = 1) -> Path:
        im = Image.new("RGB", (640, 480))
        exif = im.getexif()
        if f35 is not None:
            (exif if ifd0 else exif.get_ifd(V.EXIF_IFD))[V.EXIF_FOCAL_35MM] = f35
        exif[0x0112] = orientation
        path = tmp_path / name
        im.save(path, exif=exif)
        return path

    # 26 mm equivalent (a phone's main camera) on an 800-px diagonal: 26 / 43.27 * 800 = 480.7 px
    want = 26 / np.hypot(36, 24) * 800
    assert V.exif_focal_px(str(jpeg("a.jpg", 26)), (640, 480)) == pytest.approx(want)
    assert V.exif_focal_px(str(jpeg("b.jpg", 26, ifd0=True)), (640, 480)) == pytest.approx(want)
    src = V.open_source(jpeg("c.jpg", 26, orientation=6))  # shown rotated: 480x640, same diagonal
    assert src.size == (480, 640) and src.focal_px_hint == pytest.approx(want)
    for name, f35 in (("none.jpg", None), ("zero.jpg", 0)):
        assert V.open_source(jpeg(name, f35)).focal_px_hint is None
    cv2.imwrite(str(tmp_path / "d.png"), _frame(1))
    assert V.open_source(tmp_path / "d.png").focal_px_hint is None


def test_clear_errors(tmp_path):
    with pytest.raises(V.VideoError, match="not found"):
        V.open_source(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(V.VideoError, match="no images"):
        V.open_source(tmp_path / "empty")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(V.VideoError, match="cannot open video"):
        V.open_source(junk)
    bad_img = tmp_path / "bad.png"
    bad_img.write_bytes(b"nope")
    with pytest.raises(V.VideoError, match="cannot read image"):
        V.open_source(bad_img)
    d = tmp_path / "mixed"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), _frame(0))
    cv2.imwrite(str(d / "b.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(V.VideoError, match="share one size"):
        list(V.open_source(d).frames())


def test_prefetch_keeps_order_stops_early_and_passes_errors():
    assert list(V.prefetch(iter([(i, None) for i in range(50)]), depth=2)) == [(i, None) for i in range(50)]
    it = V.prefetch(((i, None) for i in range(10**9)), depth=2)
    assert next(it) == (0, None)
    it.close()  # must not hang on the endless producer

    def broken():
        yield 0, None
        raise V.VideoError("decoder broke")

    with pytest.raises(V.VideoError, match="decoder broke"):
        list(V.prefetch(broken()))
