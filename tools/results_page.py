"""docs/results.md from the figures the benchmarks wrote to benchmarks/results/*.json (`python build.py results`).

The page's text above the generated block is written by hand; the block itself is made here: one section per
benchmark script (speed, then accuracy), each run with the command that printed it, the machine, the date and
the printed figures. A script without a results file is listed as not run, with the command that runs it.
tests/tools/test_results_page.py checks that the committed page equals what this makes now.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"
RESULTS = ROOT / "benchmarks" / "results"
GROUPS = (("speed", "Speed"), ("accuracy", "Accuracy"))
BEGIN, END = "<!-- BEGIN GENERATED RESULTS -->", "<!-- END GENERATED RESULTS -->"


def summary(script: Path) -> str:
    """The first line of a script's docstring: what it measures."""
    doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def machine_line(run: dict) -> str:
    m = run.get("machine", {})
    parts = [f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"]
    if "load_average_1min" in m:
        parts.append(f"load average {m['load_average_1min']}")
    if "torch" in m:
        parts.append(f"torch {m['torch']}")
    parts.append(f"GPU {m['cuda']}" if m.get("cuda") else "no GPU")
    return f"{run['date']}; {'; '.join(parts)}; {run['seconds']} s"


def section(script: Path, results: Path) -> list[str]:
    name = script.stem
    lines = [f"### {name}", "", summary(script), ""]
    path = results / f"{name}.json"
    runs = list(json.loads(path.read_text())["runs"].values()) if path.exists() else []
    if not runs:
        module = f"benchmarks.{script.parent.name}.{name}"
        lines += [f"Not run this session: `python build.py bench {name}` (or `python -m {module}`).", ""]
    for run in runs:
        lines += [f"`{run['command']}`", "", f"{machine_line(run)}", "", "```", *run["output"], "```", ""]
    return lines


def generated_block(results: Path = RESULTS) -> str:
    lines: list[str] = []
    for folder, title in GROUPS:
        lines += [f"## {title}", ""]
        for script in sorted((ROOT / "benchmarks" / folder).glob("bench_*.py")):
            lines += section(script, results)
    return "\n".join(lines).rstrip() + "\n"


def render(current: str, results: Path = RESULTS) -> str:
    """``current`` with its generated block replaced by one made from ``results``."""
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{generated_block(results)}{END}{tail}"


def write() -> Path:
    PAGE.write_text(render(PAGE.read_text()))
    return PAGE


if __name__ == "__main__":
    print(f"wrote {write().relative_to(ROOT)}")
