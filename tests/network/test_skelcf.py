"""SKEL-CF: the release's key names and config, a functional re-derivation of the forward pass, loading a tiny
release-layout checkpoint by path, folder and Hugging Face repo id, ONNX vs torch, the predictor's crop and camera."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hsmr_backend.hsmr import (
    HSMRWeightsError,
    SKELCFConfig,
    SKELCFNetwork,
    find_skelcf_cached,
    is_skelcf_checkpoint,
    load_skelcf,
    network_kind,
    rep_to_q,
)
from hsmr_backend.hsmr.config import HSMRConfigError
from hsmr_backend.hsmr.export import export_skelcf_onnx, read_onnx_config
from hsmr_backend.hsmr.runtime import OnnxHSMR
from hsmr_backend.hsmr.skelcf_predictor import SKELCFPredictor, bbox_info, box_to_square, crop_patch, full_cam_t
from tests.support.hub_cache import populate_hub_cache
from tests.support.reference_ops import attend, decoder_layer, layer_norm, linear
from tests.support.skelcf_release import TINY_CFG, random_network, write_checkpoint

REPO = "Intellindust/SKEL_CF_vitpose_H"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[SKELCFNetwork, Path]:
    """(the network, the path of a release-layout checkpoint holding it)."""
    net = random_network()
    return net, write_checkpoint(tmp_path_factory.mktemp("skelcf") / "release" / "best.pth", net)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HSMR_CACHE", str(tmp_path / "hsmr-cache"))


def _inputs(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 256, 256, generator=g), torch.randn(n, 3, generator=g) * 0.3


def expected_decoder_keys(depth: int) -> set[str]:
    """``decoder.*`` keys written out from reference/skelcf.md "Network" (124 for the release's 6 layers)."""
    wb = (".weight", ".bias")
    keys = {"decoder.transformer.pos_embedding", "decoder.mean_poses", "decoder.mean_betas", "decoder.mean_cam"}
    for part in ("poses", "betas", "cam"):
        keys |= {f"decoder.{part}_decoder.{i}{s}" for i in (0, 2) for s in wb}
    for emb in ("pose", "betas", "cam"):
        keys |= {f"decoder.to_{emb}_embedding{s}" for s in wb}
    for i in range(depth):
        p = f"decoder.transformer.layers.{i}"
        keys |= {f"{p}.{k}.norm{s}" for k in (0, 1, 2) for s in wb}
        keys |= {f"{p}.0.fn.to_qkv.weight", f"{p}.1.fn.to_q.weight", f"{p}.1.fn.to_kv.weight"}
        keys |= {f"{p}.{k}.fn.to_out.0{s}" for k in (0, 1) for s in wb}
        keys |= {f"{p}.2.fn.net.{n}{s}" for n in (0, 3) for s in wb}
    return keys


def test_keys_and_sizes_follow_the_release(tiny):
    net, _ = tiny
    sd = net.state_dict()
    assert {k for k in sd if k.startswith("decoder.")} == expected_decoder_keys(2)
    assert len(expected_decoder_keys(6)) == 124
    assert sum(k.startswith("backbone.") for k in sd) == 5 + 12 * 2  # 389 for ViT-H's 32 blocks
    assert sd["decoder.to_pose_embedding.weight"].shape == (64, 147)
    assert sd["decoder.to_betas_embedding.weight"].shape == (64, 13)
    assert sd["decoder.to_cam_embedding.weight"].shape == (64, 6)
    assert sd["decoder.transformer.pos_embedding"].shape == (1, 1, 64)
    assert sd["decoder.poses_decoder.0.weight"].shape == (256, 64)
    assert sd["decoder.transformer.layers.1.1.fn.to_kv.weight"].shape == (2 * 2 * 16, 64)
    release = SKELCFNetwork(SKELCFConfig()).state_dict()
    assert sum(k.startswith("backbone.") for k in release) == 389
    assert sum(k.startswith("decoder.") for k in release) == 124
    assert release["decoder.to_pose_embedding.weight"].shape == (1280, 147)


def test_config_comes_from_the_checkpoint_cfg():
    cfg = SKELCFConfig.from_training_config(TINY_CFG)
    assert (cfg.backbone.embed_dim, cfg.backbone.depth, cfg.backbone.num_heads) == (64, 2, 4)
    assert (cfg.decoder.dim, cfg.decoder.context_dim, cfg.decoder.depth, cfg.decoder.heads) == (64, 64, 2, 2)
    bad = copy.deepcopy(TINY_CFG)
    bad["hub"]["skel_head"]["pd_poses_repr"] = "euler_angle"
    with pytest.raises(HSMRConfigError, match="rotation_6d"):
        SKELCFConfig.from_training_config(bad)
    with pytest.raises(HSMRConfigError, match="hub.backbones.vit_h"):
        SKELCFConfig.from_training_config({"hub": {}})


def _vit_tokens(sd: dict, x: torch.Tensor, heads: int) -> torch.Tensor:
    t = F.conv2d(x[:, :, :, 32:-32], sd["backbone.patch_embed.proj.weight"], sd["backbone.patch_embed.proj.bias"],
                 stride=16, padding=2).flatten(2).transpose(1, 2)  # fmt: skip
    t = t + sd["backbone.pos_embed"][:, 1:] + sd["backbone.pos_embed"][:, :1]
    i = 0
    while f"backbone.blocks.{i}.norm1.weight" in sd:
        p = f"backbone.blocks.{i}"
        q, k, v = linear(layer_norm(t, sd, p + ".norm1", 1e-6), sd, p + ".attn.qkv").chunk(3, -1)
        t = t + linear(attend(q, k, v, heads), sd, p + ".attn.proj")
        t = t + linear(F.gelu(linear(layer_norm(t, sd, p + ".norm2", 1e-6), sd, p + ".mlp.fc1")), sd, p + ".mlp.fc2")
        i += 1
    return layer_norm(t, sd, "backbone.last_norm", 1e-6)


def reference_forward(sd: dict, x: torch.Tensor, box: torch.Tensor, heads_bb: int = 4, heads_dec: int = 2):
    """reference/skelcf.md "Network" with plain tensor ops, independently of the module code."""
    ctx = _vit_tokens(sd, x, heads_bb)
    mlp = lambda name, t: linear(F.gelu(linear(t, sd, f"decoder.{name}.0")), sd, f"decoder.{name}.2")  # noqa: E731
    pooled = ctx.mean(1)
    pose = mlp("poses_decoder", pooled) + sd["decoder.mean_poses"]
    betas = mlp("betas_decoder", pooled) + sd["decoder.mean_betas"]
    cam = mlp("cam_decoder", pooled) + sd["decoder.mean_cam"]

    def embed(pose, betas, cam):
        return torch.stack([linear(torch.cat([v, box], -1), sd, f"decoder.to_{n}_embedding")
                            for v, n in ((pose, "pose"), (betas, "betas"), (cam, "cam"))], 1)  # fmt: skip

    y = embed(pose, betas, cam) + sd["decoder.transformer.pos_embedding"]
    i = 0
    while f"decoder.transformer.layers.{i}.0.norm.weight" in sd:
        p = f"decoder.transformer.layers.{i}"
        y = decoder_layer(y, ctx, sd, p, heads_dec)
        pose = pose + mlp("poses_decoder", y[:, 0])
        betas = betas + mlp("betas_decoder", y[:, 1])
        cam = cam + mlp("cam_decoder", y[:, 2])
        y = embed(pose, betas, cam)
        i += 1
    return pose, betas, cam


def test_forward_matches_a_functional_rederivation(tiny):
    net, _ = tiny
    x, box = _inputs(3)
    with torch.no_grad():
        got, want, out = net.raw(x, box), reference_forward(net.state_dict(), x, box), net(x, box)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out["poses"], rep_to_q(want[0]), atol=1e-4, rtol=1e-4)
    assert out["poses"].shape == (3, 46) and out["betas"].shape == (3, 10) and out["cam"].shape == (3, 3)
    with torch.no_grad():  # the box conditioning reaches every output
        moved = net.raw(x, box + 0.1)
    assert all(not torch.allclose(a, b) for a, b in zip(got, moved, strict=True))


def _same(a: SKELCFNetwork, b: SKELCFNetwork) -> None:
    x, box = _inputs(2, seed=5)
    with torch.no_grad():
        for u, v in zip(a.raw(x, box), b.raw(x, box), strict=True):
            torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_load_by_path_folder_and_repo_id(tiny, tmp_path, monkeypatch):
    net, ckpt = tiny
    _same(load_skelcf(ckpt), net)
    _same(load_skelcf(ckpt.parent), net)  # the folder holding best.pth
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", no_network)
    with pytest.raises(HSMRWeightsError, match="could not fetch") as e:
        load_skelcf(REPO)  # not cached: asks the hub, which fails with one line
    assert "\n" not in str(e.value)
    assert find_skelcf_cached() is None
    populate_hub_cache(tmp_path / "hub", ckpt, REPO, "best.pth")
    assert find_skelcf_cached() is not None and find_skelcf_cached().name == "best.pth"
    _same(load_skelcf(REPO), net)  # from the cache, no network
    _same(load_skelcf(f"hf://{REPO}/best.pth"), net)
    with pytest.raises(HSMRWeightsError, match="not in the Hugging Face cache"):
        load_skelcf(REPO, "other.pth", allow_download=False)


def test_checkpoint_layout_detection(tiny, tmp_path):
    _, ckpt = tiny
    assert is_skelcf_checkpoint(ckpt) and is_skelcf_checkpoint(ckpt.parent)
    torch.save({"state_dict": {"backbone.pos_embed": torch.zeros(3)}}, tmp_path / "hsmr.ckpt")
    (tmp_path / "notes.txt").write_text("hello")
    assert not is_skelcf_checkpoint(tmp_path / "hsmr.ckpt")
    assert not is_skelcf_checkpoint(tmp_path / "notes.txt")
    assert not is_skelcf_checkpoint(tmp_path / "missing.pth")
    assert network_kind(ckpt) == "skelcf" and network_kind(tmp_path / "hsmr.ckpt") == "hsmr"


# ---------------------------------------------------------------- ONNX and the predictor


@pytest.fixture(scope="module")
def onnx_model(tiny, tmp_path_factory):
    net, _ = tiny
    return export_skelcf_onnx(net, tmp_path_factory.mktemp("onnx") / "skelcf.onnx")


def test_onnx_matches_torch_within_1e4(tiny, onnx_model):
    net, _ = tiny
    sess = OnnxHSMR(onnx_model, device="cpu", batch_size=4)
    assert sess.needs_box and sess.provider == "CPUExecutionProvider"
    x, box = _inputs(5, seed=2)  # 5 > batch_size: two runs of a size unlike the export's
    with torch.no_grad():
        want = net.raw(x, box)
    for got, w in zip(sess.run(x.numpy(), box.numpy()), want, strict=True):
        np.testing.assert_allclose(got, w.numpy(), atol=1e-4)
    cfg, fp16 = read_onnx_config(onnx_model)
    assert cfg == net.cfg and not fp16
    with pytest.raises(ValueError, match="bbox_info"):
        sess.run(x.numpy())
    assert network_kind(onnx_model) == "skelcf"


def test_crop_box_conditioning_and_camera_by_hand():
    ramp = np.tile(np.arange(400, dtype=np.float64)[None, :, None] * 0.5, (300, 1, 3)).astype(np.uint8)
    sq = box_to_square(np.array([[150.0, 60, 250, 260]]))
    np.testing.assert_allclose(sq, [[200, 160, 200]])  # centre and the longer side, no aspect expansion
    patch = crop_patch(ramp, *sq[0])
    # patch column u samples image column cx + (u - 128) * side / 256 (bilinear on a ramp: exact up to rounding)
    u = np.array([40, 128, 200])
    np.testing.assert_allclose(patch[150, u, 0], np.round((200 + (u - 128) * 200 / 256) * 0.5), atol=1)
    info = bbox_info(sq, np.array([640, 360]), 800.0)
    np.testing.assert_allclose(info, [[(200 - 320) / 800, (160 - 180) / 800, 200 / 800]], rtol=1e-6)
    t = full_cam_t(np.array([[0.8, 0.1, -0.2]]), sq, np.array([640, 360]), 800.0)
    sb = 0.8 * 200
    np.testing.assert_allclose(t, [[0.1 + 2 * (200 - 320) / sb, -0.2 + 2 * (160 - 180) / sb, 2 * 800 / sb]])


def test_predictor_onnx_and_torch_agree(tiny, onnx_model):
    net, ckpt = tiny
    img = np.random.default_rng(3).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    boxes = np.array([[100, 40, 260, 350], [400, 100, 600, 300], [-50, -20, 90, 200]], float)
    a = SKELCFPredictor(onnx_model, device="cpu", batch_size=2).predict(img, boxes, focal_px=900.0)
    b = SKELCFPredictor(ckpt, device="cpu", backend="torch").predict([img] * 3, boxes, focal_px=900.0)
    for k in ("poses", "betas", "cam", "cam_t_full", "crop_boxes", "bbox_info"):
        np.testing.assert_allclose(a[k], b[k], atol=1e-4, rtol=1e-5, err_msg=k)
    assert a["poses"].shape == (3, 46) and np.isfinite(a["poses"]).all()
    z = 2 * 900.0 / (b["cam"][:, 0].astype(np.float64) * b["crop_boxes"][:, 2])
    np.testing.assert_allclose(b["cam_t_full"][:, 2], z, rtol=1e-5)
    empty = SKELCFPredictor(onnx_model, device="cpu").predict(img, np.zeros((0, 4)), focal_px=900.0)
    assert empty["poses"].shape == (0, 46) and empty["cam_t_full"].shape == (0, 3)


def test_export_onnx_command_takes_a_skelcf_checkpoint(tiny, tmp_path, capsys):
    import argparse

    from hsmr_backend.hsmr.export import add_cli_arguments, run_cli

    net, ckpt = tiny
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    out = tmp_path / "cli" / "skelcf.onnx"
    assert run_cli(parser.parse_args([str(ckpt), "-o", str(out)])) == 0
    cfg, _ = read_onnx_config(out)
    assert cfg == net.cfg and OnnxHSMR(out, device="cpu").needs_box
    assert run_cli(parser.parse_args([str(ckpt), "-o", str(out), "--int8"])) == 1
    assert "HSMR exports only" in capsys.readouterr().err


def test_predictor_exports_a_checkpoint_once(tiny, tmp_path):
    _, ckpt = tiny
    p = SKELCFPredictor(ckpt, device="cpu")
    assert len(list((tmp_path / "hsmr-cache" / "onnx").glob("skelcf-*.onnx"))) == 1
    out = p.predict(np.zeros((300, 300, 3), np.uint8), np.array([[50.0, 20, 200, 280]]), focal_px=math.hypot(300, 300))
    assert np.isfinite(out["poses"]).all()
