"""convert with SKEL-CF: the mode is chosen from the weights' layout and said; end to end on the sample clip."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

from hsmr_backend.convert import ConvertError, ConvertOptions, convert, resolve_mode
from hsmr_backend.progress import Reporter
from hsmr_contract import result_format
from tests.support.hsmr_release import random_net, write_release
from tests.support.hub_cache import populate_hub_cache
from tests.support.skelcf_release import random_network, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
REPO = "Intellindust/SKEL_CF_vitpose_H"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(a SKEL-CF checkpoint, an HSMR release folder), both tiny and in their release layouts."""
    base = tmp_path_factory.mktemp("weights")
    return write_checkpoint(base / "skelcf" / "best.pth", random_network(seed=2)), write_release(base, random_net())


@pytest.fixture(autouse=True)
def _no_weights_around(tmp_path, monkeypatch):
    monkeypatch.setenv("HSMR_CACHE", str(tmp_path / "hsmr-cache"))
    monkeypatch.delenv("HSMR_WEIGHTS", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))


def _mode(mode: str, weights) -> tuple[str, object, list[str]]:
    out = io.StringIO()
    kind, found = resolve_mode(mode, None if weights is None else str(weights), Reporter("json", stream=out))
    return kind, found, [json.loads(ln)["message"] for ln in out.getvalue().splitlines()]


def test_the_weights_decide_the_network_and_convert_says_which(weights):
    skelcf, hsmr = weights
    kind, found, said = _mode("auto", skelcf)
    assert kind == "skelcf" and str(found) == str(skelcf) and said == [f"mode: skelcf (weights: {skelcf})"]
    kind, _, said = _mode("hsmr", skelcf.parent)  # the folder holding best.pth, under --mode hsmr
    assert kind == "skelcf" and "detected by its layout" in said[0]
    assert _mode("auto", hsmr)[0] == "hsmr" and _mode("skelcf", skelcf)[0] == "skelcf"
    with pytest.raises(ConvertError, match="not a SKEL-CF checkpoint") as e:
        _mode("skelcf", hsmr)
    assert "\n" not in str(e.value)


def test_without_weights_auto_takes_a_cached_release_and_skelcf_asks(weights, tmp_path):
    skelcf, _ = weights
    assert _mode("auto", None)[0] == "keypoints"
    with pytest.raises(ConvertError, match="--mode skelcf needs the SKEL-CF weights"):
        _mode("skelcf", None)
    with pytest.raises(ConvertError, match="not in the Hugging Face cache") as e:
        _mode("auto", REPO)  # a repo id is looked up in the cache only: convert never downloads
    assert "\n" not in str(e.value)
    populate_hub_cache(tmp_path / "hub", skelcf, REPO, "best.pth")
    kind, found, said = _mode("auto", None)
    assert kind == "skelcf" and found.name == "best.pth" and said[0].startswith("mode: skelcf")
    assert _mode("skelcf", REPO)[0] == "skelcf"


def test_convert_with_skelcf_on_the_sample_clip(weights, tmp_path):
    skelcf, _ = weights
    out = io.StringIO()
    result = tmp_path / "sample.npz"
    summary = convert(ConvertOptions(video=str(ROOT / "assets" / "sample_clip.mp4"), output=str(result),
                                     mode="skelcf", weights=str(skelcf), frames="0:8", device="cpu", overlay=False,
                                     plot=False), Reporter("json", stream=out))  # fmt: skip
    said = [m.get("message", "") for m in map(json.loads, out.getvalue().splitlines())]
    assert summary.mode == "skelcf" and f"mode: skelcf (weights: {skelcf})" in said
    assert any(m.startswith("loading the SKEL-CF network") for m in said)
    res = result_format.load(result)
    assert json.loads(str(res["meta_json"]))["mode"] == "skelcf"
    assert res["poses"].shape == (8, 46) and np.isfinite(res["poses"]).all()
    assert "hsmr" in summary.timings  # the network pass ran, on the SKEL-CF export made for it
    assert len(list((tmp_path / "hsmr-cache" / "onnx").glob("skelcf-*.onnx"))) == 1
