"""Helpers for the grader tests: a throwaway copy of the course and submissions to put in it."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from nncourse import course
from tools.coursecopy import make_course  # noqa: F401  (re-exported for the tests)


def solution_notebook(chapter: str):
    return nbformat.read(course.solution_notebook(chapter), as_version=4)


def release_notebook(chapter: str):
    return nbformat.read(course.release_notebook(chapter), as_version=4)


def with_answers(nb, answers: dict[str, str]):
    """A copy of a learner notebook whose answer cells hold the given code."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if course.is_answer(cell) and course.grade_id(cell) in answers:
            cell.source = answers[course.grade_id(cell)].strip("\n")
    return nb


def submit(course_dir: Path, chapter: str, student: str, nb=None, raw: str | None = None) -> None:
    path = course.notebook_in(course_dir / "autograder" / "submitted" / student, chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_text(raw)
    elif nb is not None:
        nbformat.write(nb, path)


def grade(course_dir: Path, chapter: str, *extra: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NNCOURSE_ROOT=str(course_dir), **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "nncourse.grade", chapter, *extra],
        cwd=course_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def gradebook_scores(course_dir: Path, chapter: str, db_url: str | None = None) -> dict[str, dict[str, float]]:
    """{student: {test cell grade_id: points}} as nbgrader's gradebook recorded them."""
    from nbgrader.api import Gradebook

    url = db_url or f"sqlite:///{course_dir}/autograder/gradebook.db"
    out: dict[str, dict[str, float]] = {}
    with Gradebook(url) as gb:
        for submission in gb.assignment_submissions(chapter):
            notebook = submission.notebooks[0]
            out[submission.student.id] = {g.name: g.score for g in notebook.grades}
    return out


def full_marks(chapter: str) -> dict[str, float]:
    return course.test_points(course.read_source(chapter))
