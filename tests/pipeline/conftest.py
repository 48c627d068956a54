"""Fixtures the pipeline tests share."""

from __future__ import annotations

import sys

import pytest

from synthetic.standins import install_standins


@pytest.fixture
def standins(monkeypatch):
    import hsmr_backend.skel as skel

    names = ("hsmr_backend.fit", "hsmr_backend.world", "hsmr_backend.skel.landmarks")
    saved = {name: sys.modules.get(name) for name in names}
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(skel, "load_body", None, raising=False)
    record: dict = {}
    install_standins(record)
    yield record
    for name, mod in saved.items():  # never leave a stand-in behind for later tests (real parts)
        if mod is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = mod
