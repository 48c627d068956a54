"""Progress reporting: protocol-valid JSON lines, throttling, where each mode writes."""

from __future__ import annotations

import io

import pytest

from hsmr_backend.progress import Reporter
from hsmr_contract import protocol


def test_json_lines_are_protocol_messages_and_throttled():
    out, err = io.StringIO(), io.StringIO()
    r = Reporter("json", stream=out, err=err)
    r.hello()
    for i in range(1, 501):  # far faster than 10 a second: only the first and the last must come out
        r("landmarks", i, 500)
    r.info("subject: someone")
    r.done("/x/r.npz", ["/x/r.npz", "/x/r.overlay.mp4"])
    msgs = [protocol.parse_line(ln) for ln in out.getvalue().splitlines()]
    kinds = [m.type for m in msgs]
    assert kinds[0] == "hello" and kinds[-1] == "done" and "log" in kinds
    prog = [m for m in msgs if m.type == "progress"]
    assert 2 <= len(prog) <= 10
    assert prog[-1]["frame"] == 500 and prog[-1]["total"] == 500 and prog[-1]["stage"] == "landmarks"
    assert msgs[-1]["outputs"] == ["/x/r.npz", "/x/r.overlay.mp4"]
    assert err.getvalue() == ""


def test_error_goes_to_both_streams_in_json_mode_and_only_stderr_otherwise():
    out, err = io.StringIO(), io.StringIO()
    Reporter("json", stream=out, err=err).error("video not found")
    assert protocol.parse_line(out.getvalue().strip()).type == "error"
    assert err.getvalue().strip() == "hsmr-backend: error: video not found"
    for mode in ("bar", "none"):
        out, err = io.StringIO(), io.StringIO()
        r = Reporter(mode, stream=out, err=err)
        r("landmarks", 5, 5)
        r.info("note")
        r.error("bad")
        assert out.getvalue() == ""
        assert err.getvalue().endswith("hsmr-backend: error: bad\n")
        assert ("note" in err.getvalue()) == (mode == "bar")


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="--progress"):
        Reporter("xml")
