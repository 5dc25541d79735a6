"""Reading the course's notebooks: which cell is which, in nbgrader's terms."""
from __future__ import annotations

import ast

import nbformat

from . import paths


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer(cell) -> bool:
    """An autograded answer cell: the learner writes here."""
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("solution")) and not m.get("grade")


def is_test(cell) -> bool:
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_read_only(cell) -> bool:
    """A locked code cell that is neither answer nor test: setup and given code."""
    m = nbgrader_meta(cell)
    return (cell.get("cell_type") == "code" and bool(m.get("locked"))
            and not m.get("grade") and not m.get("solution"))


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def read_source(chapter: str):
    return nbformat.read(paths.source_notebook(chapter), as_version=4)


def checks_in(source: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The ``check("exercise", "test", name=obj, ...)`` calls of a test cell, in order.

    Read from the trusted source text with ``ast``, so the grader knows what a test cell asks
    for without running it.
    """
    calls = []
    nodes = sorted((n for n in ast.walk(ast.parse(strip_magics(source))) if isinstance(n, ast.Call)),
                   key=lambda n: (n.lineno, n.col_offset))
    for node in nodes:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"
                and len(node.args) >= 2 and all(isinstance(a, ast.Constant) for a in node.args[:2])):
            calls.append((node.args[0].value, node.args[1].value,
                          tuple(k.arg for k in node.keywords if k.arg)))
    return calls


def strip_magics(source: str) -> str:
    """Drop IPython-only lines (%magic, !shell) so the text is plain Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def points(cell) -> float:
    return float(nbgrader_meta(cell).get("points", 0))
