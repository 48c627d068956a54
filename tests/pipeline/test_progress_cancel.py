"""Cooperative cancel: a signal only asks, and the next progress report on the main thread stops the work."""

from __future__ import annotations

import threading

import pytest

from hsmr_backend import progress


def test_cancel_stops_at_the_next_report_on_the_main_thread_only():
    rep = progress.Reporter("none")
    rep.stage("landmarks", 1, 10)  # nothing asked: carries on
    progress.request_cancel()
    try:
        raised: list[BaseException] = []

        def helper() -> None:  # e.g. the keepalive thread: its report must not end it
            try:
                rep.stage("load", 0, 1)
            except BaseException as e:  # noqa: BLE001
                raised.append(e)

        t = threading.Thread(target=helper)
        t.start()
        t.join()
        assert not raised
        with pytest.raises(KeyboardInterrupt):
            rep.stage("landmarks", 2, 10)
    finally:
        progress.reset_cancel()
    rep.stage("landmarks", 3, 10)  # reset: carries on again
