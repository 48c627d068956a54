"""A file laid out in a Hugging Face hub cache folder as if it had been downloaded, for offline loading tests."""

from __future__ import annotations

import os
from pathlib import Path


def populate_hub_cache(hub: Path, checkpoint: Path, repo: str, filename: str) -> Path:
    """Lay ``checkpoint`` out as huggingface_hub caches a download (refs/main, blobs, snapshots link)."""
    repo_dir = hub / ("models--" + repo.replace("/", "--"))
    sha = "0123456789abcdef0123456789abcdef01234567"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(sha)
    blob = repo_dir / "blobs" / ("b" * 40)
    blob.parent.mkdir(exist_ok=True)
    blob.write_bytes(checkpoint.read_bytes())
    snap = repo_dir / "snapshots" / sha / filename
    snap.parent.mkdir(parents=True, exist_ok=True)
    snap.symlink_to(os.path.relpath(blob, snap.parent))
    return snap
