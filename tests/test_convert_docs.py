"""docs/result-format.md is generated from result_format.FIELDS; this keeps it up to date.

Regenerate with:  PYTHONPATH=backend:backend/contract .venv/bin/python tests/test_convert_docs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "result-format.md"
BEGIN, END = "<!-- BEGIN GENERATED FIELD TABLE -->", "<!-- END GENERATED FIELD TABLE -->"


def render(current: str) -> str:
    from hsmr_contract import result_format

    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{result_format.markdown_table()}\n{END}{tail}"


def test_result_format_doc_is_up_to_date():
    text = DOC.read_text()
    assert text == render(text), "docs/result-format.md is stale: run `python tests/test_convert_docs.py`"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "backend"))
    DOC.write_text(render(DOC.read_text()))
    print(f"wrote {DOC}")
