"""The HSMR network: release key names (§0), config parsing, and a functional re-derivation of the forward pass."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hsmr_backend.hsmr import HSMRConfig, HSMRNetwork, q_to_rep, rep_to_q
from hsmr_backend.hsmr.config import HSMRConfigError
from tests.support.hsmr_release import TINY
from tests.support.reference_ops import attend, decoder_layer, layer_norm, linear


def expected_keys(bb_depth: int, dec_depth: int) -> set[str]:
    """State-dict keys written out from reference/hsmr.md §0 (module names of the release)."""
    wb = (".weight", ".bias")
    keys = {"backbone.pos_embed"}
    keys |= {m + s for m in ("backbone.patch_embed.proj", "backbone.last_norm") for s in wb}
    for i in range(bb_depth):
        for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys |= {f"backbone.blocks.{i}.{m}{s}" for s in wb}
    keys |= {"head.transformer.pos_embedding", *("head.transformer.to_token_embedding" + s for s in wb)}
    for i in range(dec_depth):
        p = f"head.transformer.transformer.layers.{i}"
        keys |= {f"{p}.{k}.norm{s}" for k in (0, 1, 2) for s in wb}
        keys |= {f"{p}.0.fn.to_qkv.weight", f"{p}.1.fn.to_q.weight", f"{p}.1.fn.to_kv.weight"}  # no biases
        keys |= {f"{p}.{k}.fn.to_out.0{s}" for k in (0, 1) for s in wb}
        keys |= {f"{p}.2.fn.net.{n}{s}" for n in (0, 3) for s in wb}
    keys |= {f"head.{d}_decoder{s}" for d in ("poses", "betas", "cam") for s in wb}
    return keys | {"head.init_poses", "head.init_betas", "head.init_cam"}


@pytest.fixture(scope="module")
def tiny_net() -> HSMRNetwork:
    torch.manual_seed(0)
    net = HSMRNetwork(HSMRConfig.from_hydra(TINY)).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.normal_(0, 0.1 if "norm" not in name else 0.3).add_(1.0 if name.endswith("norm1.weight") else 0.0)
    return net


def test_tiny_config_is_read_through_interpolations():
    cfg = HSMRConfig.from_hydra(TINY)
    assert cfg.backbone.embed_dim == 64 and cfg.backbone.depth == 2 and cfg.backbone.num_heads == 4
    assert cfg.decoder.dim == 32 and cfg.decoder.depth == 1 and cfg.decoder.context_dim == 64
    assert cfg.pd_poses_repr == "rotation_6d" and cfg.focal_length == 5000 and cfg.img_patch_size == 256


def test_decoder_width_defaults_to_the_release_value():
    import copy

    d = copy.deepcopy(TINY)
    del d["pipeline"]["cfg"]["head"]["cfg"]["transformer_decoder"]["dim"]
    assert HSMRConfig.from_hydra(d).decoder.dim == 1024


def test_release_sizes_are_vit_h():
    cfg = HSMRConfig()
    assert (cfg.backbone.embed_dim, cfg.backbone.depth, cfg.backbone.num_heads) == (1280, 32, 16)
    assert (cfg.decoder.dim, cfg.decoder.depth, cfg.decoder.heads, cfg.decoder.dim_head) == (1024, 6, 8, 64)


def test_bad_config_says_what_is_wrong():
    with pytest.raises(HSMRConfigError, match="backbone"):
        HSMRConfig.from_hydra({"pipeline": {"cfg": {"head": {}}}})


def test_state_dict_keys_follow_the_release(tiny_net):
    assert set(tiny_net.state_dict()) == expected_keys(2, 1)
    sd = tiny_net.state_dict()
    assert sd["backbone.pos_embed"].shape == (1, 16 * 12 + 1, 64)
    assert sd["backbone.patch_embed.proj.weight"].shape == (64, 3, 16, 16)
    assert sd["head.transformer.to_token_embedding.weight"].shape == (32, 1)
    assert sd["head.transformer.transformer.layers.0.1.fn.to_kv.weight"].shape == (2 * 2 * 16, 64)
    assert sd["head.poses_decoder.weight"].shape == (144, 32)
    assert sd["head.init_poses"].shape == (1, 144) and sd["head.init_cam"].shape == (1, 3)


def reference_forward(sd, x, heads_bb=4, heads_dec=2):
    """Written from reference/hsmr.md §1 with plain tensor ops, independently of the module code."""
    x = x[:, :, :, 32:-32]  # the backbone sees the 256x192 centre
    t = F.conv2d(x, sd["backbone.patch_embed.proj.weight"], sd["backbone.patch_embed.proj.bias"], stride=16,
                 padding=2)  # fmt: skip
    assert t.shape[-2:] == (16, 12)
    t = t.flatten(2).transpose(1, 2)
    pe = sd["backbone.pos_embed"]
    t = t + pe[:, 1:] + pe[:, :1]
    i = 0
    while f"backbone.blocks.{i}.norm1.weight" in sd:
        p = f"backbone.blocks.{i}"
        q, k, v = linear(layer_norm(t, sd, p + ".norm1", 1e-6), sd, p + ".attn.qkv").chunk(3, -1)
        t = t + linear(attend(q, k, v, heads_bb), sd, p + ".attn.proj")
        h = F.gelu(linear(layer_norm(t, sd, p + ".norm2", 1e-6), sd, p + ".mlp.fc1"))
        t = t + linear(h, sd, p + ".mlp.fc2")
        i += 1
    ctx = layer_norm(t, sd, "backbone.last_norm", 1e-6)
    tok = torch.zeros(x.shape[0], 1, 1)
    y = linear(tok, sd, "head.transformer.to_token_embedding") + sd["head.transformer.pos_embedding"]
    i = 0
    while f"head.transformer.transformer.layers.{i}.0.norm.weight" in sd:
        p = f"head.transformer.transformer.layers.{i}"
        y = decoder_layer(y, ctx, sd, p, heads_dec)
        i += 1
    y = y[:, 0]
    return (linear(y, sd, "head.poses_decoder") + sd["head.init_poses"],
            linear(y, sd, "head.betas_decoder") + sd["head.init_betas"],
            linear(y, sd, "head.cam_decoder") + sd["head.init_cam"])  # fmt: skip


def test_forward_matches_a_functional_rederivation(tiny_net):
    x = torch.randn(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = tiny_net.raw(x)
        want = reference_forward(tiny_net.state_dict(), x)
        out = tiny_net(x)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out["poses"], rep_to_q(want[0]), atol=1e-4, rtol=1e-4)
    assert out["poses"].shape == (3, 46) and torch.isfinite(out["poses"]).all()


def test_only_the_central_columns_matter(tiny_net):
    x = torch.randn(1, 3, 256, 256)
    y = x.clone()
    y[..., :32] = 5.0
    y[..., 224:] = -5.0
    with torch.no_grad():
        a, b = tiny_net.raw(x), tiny_net.raw(y)
        y[..., 100] += 1.0
        c = tiny_net.raw(y)
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[0], c[0])


def test_zero_read_out_gives_the_stored_mean():
    from hsmr_backend.hsmr.mean import MEAN_BETAS, MEAN_CAM, MEAN_POSES

    net = HSMRNetwork(HSMRConfig.from_hydra(TINY)).eval()
    with torch.no_grad():
        for d in (net.head.poses_decoder, net.head.betas_decoder, net.head.cam_decoder):
            d.weight.zero_()
            d.bias.zero_()
        out = net(torch.randn(2, 3, 256, 256))
    mean_q = torch.tensor(MEAN_POSES)
    wrapped = torch.remainder(out["poses"][0] - mean_q + math.pi, 2 * math.pi) - math.pi  # tilt pi ~ -pi
    assert wrapped.abs().max() < 1e-4
    np.testing.assert_allclose(out["betas"][0].numpy(), MEAN_BETAS, atol=1e-6)
    np.testing.assert_allclose(out["cam"][0].numpy(), MEAN_CAM, atol=1e-6)
    torch.testing.assert_close(net.head.init_poses, q_to_rep(mean_q[None].double()).float())
