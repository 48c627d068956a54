"""docs/results.md is generated from the benchmarks' figure files (benchmarks/results/*.json); this keeps it so.

Regenerate with:  python build.py results
"""

from __future__ import annotations

import json
from pathlib import Path

from tools import results_page


def test_results_page_is_up_to_date():
    text = results_page.PAGE.read_text()
    assert text == results_page.render(text), "docs/results.md is stale: run `python build.py results`"


def test_every_figure_file_has_its_command_and_machine():
    for path in sorted(results_page.RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        assert data["benchmark"] == path.stem
        for command, run in data["runs"].items():
            assert run["command"] == command and command.startswith("python -m benchmarks.")
            assert run["output"] and run["machine"]["cores"] and run["date"]


def test_a_run_shows_on_the_page_with_its_command(tmp_path: Path):
    """A figure file appears under its script, with its command; a script without one is listed as not run, with
    the command that runs it."""
    command = "python -m benchmarks.speed.bench_export --frames 9"
    run = {"command": command, "date": "2026-01-01 00:00 UTC", "seconds": 1.0, "machine": {"cpu": "x", "cores": 2},
           "output": ["csv 0.01 s"]}
    (tmp_path / "bench_export.json").write_text(json.dumps({"benchmark": "bench_export", "runs": {command: run}}))
    block = results_page.generated_block(tmp_path)
    export = block.split("### bench_export", 1)[1].split("###", 1)[0]
    assert "`python -m benchmarks.speed.bench_export --frames 9`" in export and "\ncsv 0.01 s\n" in export
    convert = block.split("### bench_convert", 1)[1].split("###", 1)[0]
    assert "Not run this session: `python build.py bench bench_convert`" in convert
