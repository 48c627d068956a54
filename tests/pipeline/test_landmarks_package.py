"""The landmarks package's layout: each file imports only from the files below it (no import cycle can form), and
importing the package does not load MediaPipe (about a second, paid only when a graph is made)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import hsmr_backend.landmarks as L

PACKAGE = Path(L.__file__).parent
# bottom first: a file may import from the files before it in this list, never from those after it
LAYERS = ("names", "people", "relabel", "pose", "tracker", "work", "detect")


def _package_imports(path: Path) -> set[str]:
    """The package's own modules that ``path`` imports (``from .x import ...`` and ``from . import x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return {m.split(".")[0] for m in found}


def test_every_file_imports_only_from_the_layers_below():
    files = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert files == set(LAYERS), "a new file in the landmarks package needs its place in LAYERS"
    for i, name in enumerate(LAYERS):
        above = _package_imports(PACKAGE / f"{name}.py") - set(LAYERS[:i])
        assert not above, f"{name}.py imports {sorted(above)}, which are not below it"


def test_importing_the_package_leaves_mediapipe_unloaded():
    code = "import sys, hsmr_backend.landmarks; print('mediapipe' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
