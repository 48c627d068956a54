"""House rules the code must keep: no ``sys.path`` edits in tests/ or benchmarks/, no function over 100 lines."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 100
# list methods that change a list in place
_MUTATORS = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "__setitem__", "__iadd__"}


def _is_sys_path(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
            and node.value.id == "sys")


def _target_is_sys_path(target: ast.AST) -> bool:
    while isinstance(target, ast.Subscript):
        target = target.value
    return _is_sys_path(target)


def sys_path_edits(source: str) -> list[int]:
    """Line numbers where code edits ``sys.path``: assigns to it or a slice of it, or calls a list mutator on it,
    or calls ``site.addsitedir``. Code inside string literals (a child process's script) is not code here."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_target_is_sys_path(t) for t in targets):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if (f.attr in _MUTATORS and _is_sys_path(f.value)) or (
                    f.attr == "addsitedir" and isinstance(f.value, ast.Name) and f.value.id == "site"):
                lines.append(node.lineno)
    return sorted(lines)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than ``limit`` lines, decorators excluded."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > limit]


def _python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_the_scan_finds_every_kind_of_sys_path_edit():
    code = textwrap.dedent("""
        import site, sys
        sys.path.insert(0, "a")
        sys.path[:0] = ["b"]
        sys.path = ["c"]
        sys.path += ["d"]
        sys.path.append("e")
        site.addsitedir("f")
        print(sys.path, list(sys.path))
        code = "import sys; sys.path.insert(0, 'g')"
        other.path.append("h")
    """)
    assert sys_path_edits(code) == [3, 4, 5, 6, 7, 8]


def test_no_file_in_tests_or_benchmarks_edits_sys_path():
    files = _python_files("tests", "benchmarks", "synthetic")
    assert len(files) > 50
    found = {str(p.relative_to(ROOT)): lines for p in files if (lines := sys_path_edits(p.read_text()))}
    assert not found, (f"sys.path edited at {found}: import the installed packages, or name a folder in pyproject's "
                       "pytest pythonpath, or give a child process its PYTHONPATH")


def test_the_length_check_counts_a_function_from_def_to_its_last_line():
    body = "\n".join(f"    x{i} = {i}" for i in range(99))
    assert long_functions(f"def f():\n{body}\n") == []
    assert long_functions(f"class A:\n    def g(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
                          "        return 0\n") == [("g", 101)]


def test_no_product_function_is_longer_than_a_hundred_lines():
    files = _python_files("backend", "hsmr_blender")
    assert len(files) > 50
    found = {f"{p.relative_to(ROOT)}:{name}": n for p in files for name, n in long_functions(p.read_text())}
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines (split them): {found}"
