"""The checkpoint reader never runs a pickle: tampered, truncated, wrong and lying SKEL-CF files."""

import collections
import io
import os
import pickle
import zipfile

import pytest
import torch

from hsmr_backend.hsmr import HSMRWeightsError, load_skelcf
from hsmr_backend.hsmr.checkpoint_reader import CheckpointFormatError, Opaque, TorchZip, walk_pickle
from tests.support.skelcf_release import random_network, write_checkpoint


class _Evil:
    """Unpickling this runs ``touch MARKER`` (what a tampered checkpoint would do)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def net():
    return random_network(seed=3)


def _same(a, b) -> None:
    x, box = torch.randn(1, 3, 256, 256), torch.randn(1, 3)
    with torch.no_grad():
        for u, v in zip(a.raw(x, box), b.raw(x, box), strict=True):
            torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_a_pickled_command_is_never_run(net, tmp_path):
    marker = tmp_path / "pwned"
    path = write_checkpoint(tmp_path / "evil.pth", net, extra={"hook": _Evil(str(marker))})
    with pytest.raises(Exception):  # noqa: B017 (torch's own full unpickle: the payload runs, then it fails)
        torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()  # the payload is live
    marker.unlink()
    _same(load_skelcf(path), net)  # read through our reader: the same weights, the payload ignored
    with TorchZip(path) as ck:
        hook = ck.root["hook"]
    assert isinstance(hook, Opaque) and (hook.func.module, hook.func.name) in (("posix", "system"), ("os", "system"))
    assert not marker.exists()


def test_a_payload_in_place_of_a_weight_is_refused(net, tmp_path):
    marker = tmp_path / "pwned"
    path = write_checkpoint(tmp_path / "evil.pth", net, ema_extra={"model.decoder.mean_cam": _Evil(str(marker))})
    with pytest.raises(HSMRWeightsError, match="model.decoder.mean_cam is not a tensor") as e:
        load_skelcf(path)
    assert "\n" not in str(e.value) and not marker.exists()


def _rewrite(path, entries: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


def test_truncated_and_wrong_files_are_one_line(net, tmp_path):
    path = write_checkpoint(tmp_path / "best.pth", net)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    text = tmp_path / "text.pth"
    text.write_text("not a checkpoint at all")
    plain = tmp_path / "plain.pth"
    torch.save({"state_dict": {"backbone.pos_embed": torch.zeros(2)}}, plain)  # a torch zip, not SKEL-CF
    for bad, says in ((cut, "truncated"), (text, "not a PyTorch zip checkpoint"), (plain, "no ema_model")):
        with pytest.raises(HSMRWeightsError, match=says) as e:
            load_skelcf(bad)
        assert "\n" not in str(e.value) and str(bad) in str(e.value)
    with pytest.raises(HSMRWeightsError, match="no such file"):
        load_skelcf(tmp_path / "missing.pth")


def test_a_storage_shorter_than_it_claims_is_refused(net, tmp_path):
    path = write_checkpoint(tmp_path / "best.pth", net)
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    with TorchZip(path) as ck:
        victim = f"{ck.prefix}data/{ck.root['ema_model']['model.decoder.mean_poses'].storage.key}"
    entries[victim] = entries[victim][:-8]
    _rewrite(path, entries)
    with pytest.raises(HSMRWeightsError, match="holds .* bytes, not the"):
        load_skelcf(path)


class _FakeStorage:
    def __init__(self, n: int) -> None:
        self.n = n


class _TensorLike:
    def __init__(self, storage, offset, size, stride) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def _torch_style_pickle(obj) -> bytes:
    class P(pickle.Pickler):
        def persistent_id(self, o):
            return ("storage", torch.FloatStorage, "0", "cuda:0", o.n) if isinstance(o, _FakeStorage) else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    return buf.getvalue()


def test_tensor_references_are_checked_against_their_storage():
    ok = walk_pickle(_torch_style_pickle({"w": _TensorLike(_FakeStorage(6), 2, (2, 2), (2, 1))}))
    assert ok["w"].size == (2, 2) and ok["w"].storage.numel == 6 and ok["w"].storage.location == "cuda:0"
    for storage, offset, size, stride in ((_FakeStorage(6), 3, (2, 2), (2, 1)), (_FakeStorage(4), 0, (5,), (1,)),
                                          (_FakeStorage(4), -1, (2,), (1,)), (_FakeStorage(4), 0, (2,), (1, 1))):
        with pytest.raises(CheckpointFormatError, match="storage|malformed"):
            walk_pickle(_torch_style_pickle({"w": _TensorLike(storage, offset, size, stride)}))


def test_damaged_pickles_are_format_errors():
    good = _torch_style_pickle({"a": [1, 2, 3]})
    assert walk_pickle(good) == {"a": [1, 2, 3]}
    for bad in (good[: len(good) // 2], b"\x80\x02h\x05.", b"\x80\x02(]]d."):  # cut, unknown memo, unhashable key
        with pytest.raises(CheckpointFormatError):
            walk_pickle(bad)
