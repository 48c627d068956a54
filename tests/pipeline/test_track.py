"""Subject choice, boxes, appearance and gap bridging (no MediaPipe)."""

from __future__ import annotations

import numpy as np
import pytest

from hsmr_backend.landmarks import people as T


def test_box_iou_analytic():
    a = np.array([0, 0, 10, 10.0])
    assert T.box_iou(a, a) == pytest.approx(1.0)
    assert T.box_iou(a, np.array([5, 0, 15, 10.0])) == pytest.approx(50 / 150)
    assert T.box_iou(a, np.array([20, 20, 30, 30.0])) == 0.0


def test_square_window_stays_inside_and_keeps_its_size():
    w = T.square_window(np.array([0, 0, 100, 200.0]), 1.5, (1000, 800))
    assert w[0] == 0 and w[1] == 0 and w[2] - w[0] == 300 and w[3] - w[1] == 300
    w = T.square_window(np.array([900, 700, 1000, 800.0]), 2.0, (1000, 800))
    assert w[2] == 1000 and w[3] == 800 and w[2] - w[0] == 200
    # a window bigger than the image is clipped to it
    w = T.square_window(np.array([100, 100, 700, 700.0]), 3.0, (1000, 800))
    assert tuple(w) == (0, 0, 1000, 800)
    win = np.array([10, 10, 110, 110])
    assert T.contains(win, np.array([30, 30, 90, 90.0]), 0.1)
    assert not T.contains(win, np.array([15, 30, 90, 90.0]), 0.1)  # within 10 px of the left edge
    # a window side on the image border needs no margin: the window cannot move further that way
    assert T.contains(np.array([0, 0, 100, 100]), np.array([2, 30, 80, 80.0]), 0.1, (500, 500))
    assert not T.contains(np.array([0, 0, 100, 100]), np.array([2, 30, 95, 80.0]), 0.1, (500, 500))


def test_box_from_points_ignores_unconfident_points():
    xy = np.array([[10, 10], [20, 30], [15, 25], [12, 11], [500, 500]], float)
    conf = np.array([1, 1, 1, 1, 0.1])
    assert T.box_from_points(xy, conf).tolist() == [10, 10, 20, 30]
    assert T.box_from_points(xy, np.zeros(5)) is None


def test_subject_option_parsing():
    assert T.SubjectChoice.parse(None).kind == "largest"
    assert T.SubjectChoice.parse("most-central").kind == "most-central"
    assert T.SubjectChoice.parse("2") == T.SubjectChoice("index", index=2)
    assert T.SubjectChoice.parse("10,20,30,40").box == (10, 20, 40, 60)
    for bad in ("tallest", "1,2,3", "1,2,-3,4", "a,b,c,d", "-1"):
        with pytest.raises(T.SubjectError, match="--subject"):
            T.SubjectChoice.parse(bad)


def test_choose_subject():
    big = np.array([100, 100, 400, 900.0])
    small_centre = np.array([450, 450, 550, 650.0])
    cands = [big, small_centre]
    size = (1000, 1000)
    assert T.choose_subject(cands, T.SubjectChoice("largest"), size) == 0
    assert T.choose_subject(cands, T.SubjectChoice("most-central"), size) == 1
    assert T.choose_subject(cands, T.SubjectChoice("index", index=1), size) == 1
    with pytest.raises(T.SubjectError, match="only 2"):
        T.choose_subject(cands, T.SubjectChoice("index", index=5), size)
    assert T.choose_subject(cands, T.SubjectChoice.parse("440,440,120,220"), size) == 1
    assert T.choose_subject(cands, T.SubjectChoice.parse("800,0,50,50"), size) == -1
    assert T.choose_subject([], T.SubjectChoice("largest"), size) == -1


def test_torso_histogram_tells_colours_apart():
    rng = np.random.default_rng(0)
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:, :100] = (200, 60, 30)  # blue-ish shirt (BGR)
    frame[:, 100:] = (40, 40, 200)  # red shirt
    frame = np.clip(frame + rng.integers(0, 20, frame.shape), 0, 255).astype(np.uint8)
    kp = np.zeros((33, 3), np.float32)

    def torso(x0):
        k = kp.copy()
        k[[11, 12, 24, 23]] = [[x0 + 80, 20, 1], [x0 + 10, 20, 1], [x0 + 10, 180, 1], [x0 + 80, 180, 1]]
        return k

    a1 = T.torso_histogram(frame, torso(0))
    a2 = T.torso_histogram(frame[::-1].copy(), torso(0))
    b = T.torso_histogram(frame, torso(105))
    assert T.appearance_distance(a1, a2) < 0.2 < 0.6 < T.appearance_distance(a1, b)
    assert T.appearance_distance(a1, None) == 0.0
    hidden = torso(0)
    hidden[11, 2] = 0.0
    assert T.torso_histogram(frame, hidden) is None


def test_bridge_interpolates_gaps_and_holds_edges():
    v = np.array([[0.0], [0], [2], [0], [0], [8], [0]])
    ok = np.array([False, True, True, False, False, True, False])
    v[1] = 1.0
    out = T.bridge(v, ok)
    assert out[:, 0].tolist() == [1, 1, 2, 4, 6, 8, 8]
    assert T.bridge(v, np.ones(7, bool)).tolist() == v.tolist()
