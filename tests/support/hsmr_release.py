"""A tiny HSMR network in the official release's layout, for the network and pipeline tests."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from hsmr_backend.hsmr import HSMRConfig, HSMRNetwork

# A tiny config in the release's layout (values in `.hydra/config.yaml` of reference/hsmr.md §0-§1).
TINY = {
    "_hub_": {"models": {"backbones": {"vit_h": {
        "_target_": "lib.modeling.networks.backbones.ViT", "img_size": [256, 192], "patch_size": 16,
        "embed_dim": 64, "depth": 2, "num_heads": 4, "ratio": 1, "use_checkpoint": False, "mlp_ratio": 4,
        "qkv_bias": True, "drop_path_rate": 0.55}}}},
    "policy": {"img_patch_size": 256, "focal_length": 5000, "img_mean": [0.485, 0.456, 0.406],
               "img_std": [0.229, 0.224, 0.225], "bbox_shape": None},
    "pipeline": {"_target_": "lib.modeling.pipelines.HSMRPipeline", "name": "HSMR", "cfg": {
        "pd_poses_repr": "rotation_6d", "sp_poses_repr": "rotation_matrix",
        "backbone": "${_hub_.models.backbones.vit_h}", "backbone_ckpt": "${_pm_.inputs}/backbone/x.pth",
        "head": {"_target_": "lib.modeling.networks.heads.SKELTransformerDecoderHead", "cfg": {
            "pd_poses_repr": "${...pd_poses_repr}",
            "transformer_decoder": {"depth": 1, "heads": 2, "mlp_dim": 48, "dim_head": 16, "dropout": 0.0,
                                    "emb_dropout": 0.0, "norm": "layer", "context_dim": 64, "dim": 32}}},
        "policy": "${policy}"}},
}  # fmt: skip


def random_net(seed: int = 0) -> HSMRNetwork:
    torch.manual_seed(seed)
    net = HSMRNetwork(HSMRConfig.from_hydra(TINY)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    return net


def write_release(root: Path, net: HSMRNetwork, extra: dict | None = None, drop: str | None = None) -> Path:
    """``root/HSMR-ViTH-r1d1/{.hydra/config.yaml, checkpoints/hsmr.ckpt}`` like the release tarball's content."""
    rel = root / "HSMR-ViTH-r1d1"
    (rel / ".hydra").mkdir(parents=True)
    (rel / "checkpoints").mkdir()
    (rel / ".hydra" / "config.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    state = {f"{k}": v.clone() for k, v in net.state_dict().items()}
    # the pipeline's body-model buffers ride along in the Lightning checkpoint (one of them sparse)
    state["skel_model.skin_template_v"] = torch.randn(10, 3)
    state["skel_model.J_regressor_osim"] = torch.eye(4).to_sparse()
    state.update(extra or {})
    if drop:
        del state[drop]
    ckpt = {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.1.0", "state_dict": state,
            "optimizer_states": [], "lr_schedulers": []}  # fmt: skip
    torch.save(ckpt, rel / "checkpoints" / "hsmr.ckpt")
    return rel
