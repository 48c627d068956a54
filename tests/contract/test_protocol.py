"""The add-on/backend line protocol: valid messages, refusals, handshake, fuzzing."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsmr_contract import protocol as p


def test_round_trip_of_every_message_type():
    lines = [
        p.encode("hello", protocol=p.PROTOCOL_VERSION, backend_version="0.1.0", device="cpu"),
        p.encode("progress", stage="landmarks", frame=3, total=100, fps=41.5),
        p.encode("log", level="warning", message="CUDA asked for but absent: using the CPU"),
        p.encode("done", result="/tmp/r.npz", outputs=["/tmp/r.overlay.mp4"]),
        p.encode("error", message="video not found: x.mp4"),
    ]
    msgs = [p.parse_line(line) for line in lines]
    assert [m.type for m in msgs] == ["hello", "progress", "log", "done", "error"]
    assert msgs[1]["frame"] == 3 and msgs[1].get("fps") == 41.5
    p.check_hello(msgs[0])
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize(
    "line, message",
    [
        ("not json", "not a JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "launch"}', "unknown protocol message type"),
        ('{"type": "progress", "stage": "x", "frame": 1}', "lacks 'total'"),
        ('{"type": "progress", "stage": "x", "frame": true, "total": 3}', "bad 'frame'"),
        ('{"type": "progress", "stage": "x", "frame": -1, "total": 3}', "negative"),
        ('{"type": "progress", "stage": "x", "frame": 1, "total": 3, "fps": NaN}', "bad 'fps'"),
        ('{"type": "log", "level": "debug", "message": "m"}', "unknown level"),
        ('{"type": "done", "result": "r", "outputs": [1]}', "bad 'outputs'"),
    ],
)
def test_bad_lines_are_refused(line, message):
    with pytest.raises(p.ProtocolError, match=message):
        p.parse_line(line)


def test_handshake_refuses_other_versions_and_missing_hello():
    with pytest.raises(p.ProtocolError, match="did not start with a hello"):
        p.check_hello(p.parse_line(p.encode("progress", stage="s", frame=0, total=1)))
    newer = p.parse_line(json.dumps({"type": "hello", "protocol": 99, "backend_version": "9"}))
    with pytest.raises(p.ProtocolError, match="speaks protocol 99"):
        p.check_hello(newer)


def test_oversized_line_is_refused():
    with pytest.raises(p.ProtocolError, match="longer than"):
        p.parse_line(b"x" * (p.MAX_LINE_BYTES + 1))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=2000, deadline=None)
@given(
    obj=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"type": st.sampled_from(["hello", "progress", "log", "done", "error", "x"])},
            optional={
                k: json_values
                for k in (
                    "protocol",
                    "backend_version",
                    "stage",
                    "frame",
                    "total",
                    "fps",
                    "level",
                    "message",
                    "result",
                    "outputs",
                    "device",
                )
            },
        ),
    )
)
def test_fuzz_json_objects_raise_only_protocol_error(obj):
    try:
        line = json.dumps(obj)
    except ValueError:
        return
    try:
        msg = p.parse_line(line)
    except p.ProtocolError:
        return
    assert msg.type in ("hello", "progress", "log", "done", "error")


@settings(max_examples=2000, deadline=None)
@given(raw=st.binary(max_size=200))
def test_fuzz_raw_bytes_raise_only_protocol_error(raw):
    with contextlib.suppress(p.ProtocolError):
        p.parse_line(raw)
