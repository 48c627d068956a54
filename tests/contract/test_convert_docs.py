"""docs/result-format.md is generated from result_format.FIELDS; this keeps it up to date.

Regenerate with:  PYTHONPATH=backend:backend/contract:. .venv/bin/python -m tests.contract.test_convert_docs
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "result-format.md"
BEGIN, END = "<!-- BEGIN GENERATED FIELD TABLE -->", "<!-- END GENERATED FIELD TABLE -->"


def render(current: str) -> str:
    from hsmr_contract import result_format

    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{result_format.markdown_table()}\n{END}{tail}"


def test_result_format_doc_is_up_to_date():
    text = DOC.read_text()
    assert text == render(text), ("docs/result-format.md is stale: run `PYTHONPATH=backend:backend/contract:. "
                                  ".venv/bin/python -m tests.contract.test_convert_docs`")


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    print(f"wrote {DOC}")
