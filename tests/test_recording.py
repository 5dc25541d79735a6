"""The grade command records exactly what ``nbgrader autograde`` records.

The grade command grades in worker processes and then runs nbgrader's autograde converter in its own
process, handing it the workers' rebuilt notebooks and results (nothing is built or graded twice).
Plain ``nbgrader autograde`` with the course's configuration builds and grades each submission
itself. On the same submissions both must leave the same gradebook, field by field, and the same
autograded notebooks; the one difference by design is the grade command's reason for each zero,
written as the manual comment of the answer cell (the formgrader shows it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from nncourse import course

from .grader_cases import chapter_cases
from .helpers import grade, make_course, release_notebook, solution_notebook, submit, with_answers

pytestmark = pytest.mark.slow  # two grading runs of a small class

CHAPTER = "01_module_basics"


def _nbgrader(course_dir: Path, *args: str) -> None:
    env = dict(os.environ, NNCOURSE_ROOT=str(course_dir))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
        cwd=course_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def _class(root: Path) -> Path:
    course_dir = make_course(root, [CHAPTER])
    solution = solution_notebook(CHAPTER)
    wrong = [v for v in chapter_cases()[CHAPTER] if not v.correct][:2]
    submit(course_dir, CHAPTER, "right", solution)
    submit(course_dir, CHAPTER, "blank", release_notebook(CHAPTER))
    submit(course_dir, CHAPTER, "wrong", with_answers(solution, {v.exercise: v.code for v in wrong}))
    late = course_dir / "autograder/submitted/wrong" / CHAPTER / "timestamp.txt"
    late.write_text("2099-01-01 00:00:00.000000 UTC")  # nbgrader's own format; after any due date
    with tempfile.TemporaryDirectory() as release:
        _nbgrader(
            course_dir, "generate_assignment", CHAPTER, "--force", f"--CourseDirectory.release_directory={release}"
        )
    return course_dir


def _rows(course_dir: Path) -> dict:
    """Every field nbgrader keeps for each submission of the chapter, by student."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(f"sqlite:///{course_dir}/autograder/gradebook.db") as gb:
        for submission in gb.assignment_submissions(CHAPTER):
            notebook = submission.notebooks[0]
            rows[submission.student.id] = {
                "timestamp": submission.timestamp,
                "extension": submission.extension,
                "score": submission.score,
                "max_score": submission.max_score,
                "late_penalty": notebook.late_submission_penalty,
                "needs_manual_grade": notebook.needs_manual_grade,
                "flagged": notebook.flagged,
                "grades": sorted(
                    (g.name, g.auto_score, g.manual_score, g.extra_credit, g.max_score, g.needs_manual_grade)
                    for g in notebook.grades
                ),
                "comments": sorted((c.name, c.auto_comment) for c in notebook.comments),
                "manual_comments": {c.name: c.manual_comment for c in notebook.comments if c.manual_comment},
            }
    return rows


def _autograded(course_dir: Path, student: str) -> str:
    """The autograded notebook's cells and outputs, numbers blanked out: each grading process draws
    its own probe inputs, so a wrong answer's differences (and the seeds) vary from run to run."""
    path = course.notebook_in(course_dir / "autograder/autograded" / student, CHAPTER)
    nb = nbformat.read(path, as_version=4)
    cells = json.dumps([(c.cell_type, c.source, c.get("outputs")) for c in nb.cells], indent=0)
    return re.sub(r"\s+", "", re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", cells))  # tensors pad numbers by width


def test_grade_command_records_what_nbgrader_autograde_records(tmp_path):
    ours, stock = _class(tmp_path / "ours"), _class(tmp_path / "stock")
    run = grade(ours, CHAPTER, "--no-feedback")
    assert run.returncode == 0, run.stdout + run.stderr
    _nbgrader(stock, "autograde", CHAPTER, "--force", "--Autograde.create_student=True")

    recorded, expected = _rows(ours), _rows(stock)
    assert set(recorded) == set(expected) == {"right", "blank", "wrong"}
    assert recorded["right"]["score"] == recorded["right"]["max_score"] > recorded["wrong"]["score"] > 0
    assert recorded["wrong"]["late_penalty"] == expected["wrong"]["late_penalty"]
    reasons_in_csv = (ours / "autograder/grades" / f"{CHAPTER}.csv").read_text()
    for student in expected:
        # the one difference: each zero's reason (as in the CSV), as a comment for the formgrader
        assert expected[student].pop("manual_comments") == {}
        for comment in recorded[student].pop("manual_comments").values():
            assert comment in reasons_in_csv
        assert recorded[student] == expected[student], student
        assert _autograded(ours, student) == _autograded(stock, student), student
