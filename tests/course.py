"""Helpers for the grader tests: a throwaway copy of the course and submissions to put in it."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from nncourse import notebooks, paths
from nncourse.coursecopy import make_course  # noqa: F401  (re-exported for the tests)


def solution_notebook(chapter: str):
    return nbformat.read(paths.SOLUTION_DIR / chapter / f"{chapter}.ipynb", as_version=4)


def release_notebook(chapter: str):
    return nbformat.read(paths.RELEASE_DIR / chapter / f"{chapter}.ipynb", as_version=4)


def with_answers(nb, answers: dict[str, str]):
    """A copy of a learner notebook whose answer cells hold the given code."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if notebooks.is_answer(cell) and notebooks.grade_id(cell) in answers:
            cell.source = answers[notebooks.grade_id(cell)].strip("\n")
    return nb


def submit(course: Path, chapter: str, student: str, nb=None, raw: str | None = None) -> None:
    folder = course / "autograder" / "submitted" / student / chapter
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}.ipynb"
    if raw is not None:
        path.write_text(raw)
    elif nb is not None:
        nbformat.write(nb, path)


def grade(course: Path, chapter: str, *extra: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NNCOURSE_ROOT=str(course), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "nncourse.grade", chapter, *extra],
                          cwd=course, env=env, capture_output=True, text=True, timeout=1800)


def gradebook_scores(course: Path, chapter: str, db_url: str | None = None) -> dict[str, dict[str, float]]:
    """{student: {test cell grade_id: points}} as nbgrader's gradebook recorded them."""
    from nbgrader.api import Gradebook
    url = db_url or f"sqlite:///{course}/autograder/gradebook.db"
    out: dict[str, dict[str, float]] = {}
    with Gradebook(url) as gb:
        for submission in gb.assignment_submissions(chapter):
            notebook = submission.notebooks[0]
            out[submission.student.id] = {g.name: g.score for g in notebook.grades}
    return out


def full_marks(chapter: str) -> dict[str, float]:
    source = notebooks.read_source(chapter)
    return {notebooks.grade_id(c): notebooks.points(c) for c in source.cells if notebooks.is_test(c)}
