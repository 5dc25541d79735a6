"""Nothing redone: a regrade records and feeds back only the submissions whose result changed.

A result is keyed by everything it depends on (the submission, the checks and the library, the
source notebook, torch, the device, the limits, the isolation mode, the data). When the gradebook
already holds a student's result under the same key, and the feedback written from it is there, the
grade command leaves both alone; anything else (a changed submission, a gradebook that lost the
entry, deleted feedback, ``--refresh``) is recorded again.
"""

from __future__ import annotations

import re
import shutil

import pytest

from nncourse import grade as grade_command

from .grader_cases import chapter_cases
from .helpers import full_marks, grade, gradebook_scores, make_course, solution_notebook, submit, with_answers

pytestmark = pytest.mark.slow  # six grading runs of two submissions

CHAPTER = "01_module_basics"


def recorded_again(run) -> int:
    """How many submissions the run recorded, from its summary line."""
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(r"\((\d+) submissions, (\d+) already recorded as they are", run.stdout)
    assert found, run.stdout
    return int(found.group(1)) - int(found.group(2))


def imported(run) -> set[str]:
    """The modules a run imported, from ``PYTHONPROFILEIMPORTTIME``'s report."""
    return {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


def stamps(course_dir) -> dict[str, float]:
    """Modification times of what recording and feedback write, per student."""
    out = {}
    for folder in ("autograded", "feedback"):
        for path in (course_dir / "autograder" / folder).rglob(f"{CHAPTER}.*"):
            out[str(path.relative_to(course_dir))] = path.stat().st_mtime_ns
    return out


def test_regrade_records_only_what_changed(tmp_path):
    course_dir = make_course(tmp_path, [CHAPTER])
    solution = solution_notebook(CHAPTER)
    wrong = next(v for v in chapter_cases()[CHAPTER] if not v.correct)
    submit(course_dir, CHAPTER, "alice", solution)
    submit(course_dir, CHAPTER, "bob", with_answers(solution, {wrong.exercise: wrong.code}))

    assert recorded_again(grade(course_dir, CHAPTER)) == 2
    first_scores, first_files = gradebook_scores(course_dir, CHAPTER), stamps(course_dir)
    assert first_scores["alice"] == full_marks(CHAPTER) and first_scores["bob"] != full_marks(CHAPTER)

    # nothing changed: nothing recorded, no file rewritten, the same gradebook and CSV
    csv = (course_dir / "autograder/grades" / f"{CHAPTER}.csv").read_text()
    assert recorded_again(grade(course_dir, CHAPTER)) == 0
    assert stamps(course_dir) == first_files
    assert gradebook_scores(course_dir, CHAPTER) == first_scores
    assert (course_dir / "autograder/grades" / f"{CHAPTER}.csv").read_text() == csv
    # ... known from the files alone: no job built, neither torch nor nbgrader imported
    quick = grade(course_dir, CHAPTER, env_extra={"PYTHONPROFILEIMPORTTIME": "1"})
    assert recorded_again(quick) == 0
    heavy = imported(quick) & {"torch", "nbgrader.api", "nbconvert", "nncourse.grading.engine"}
    assert heavy == set(), f"an unchanged regrade imported {heavy}"
    assert (course_dir / "autograder/grades" / f"{CHAPTER}.csv").read_text() == csv

    # the gradebook queries the grade command makes without nbgrader.api agree with nbgrader.api
    db = f"sqlite:///{course_dir / 'autograder/gradebook.db'}"
    assert grade_command._not_recorded(CHAPTER, ["alice", "bob", "carol"], db) == ["carol"]
    assert set(first_scores) == {"alice", "bob"}
    assert grade_command._gradebook_has(CHAPTER, db) and not grade_command._gradebook_has("no_such_chapter", db)

    # new bytes, same answers (the learner re-saved): graded from the stored result, nothing recorded
    resaved = solution_notebook(CHAPTER)
    resaved.metadata["resaved"] = True
    submit(course_dir, CHAPTER, "alice", resaved)
    assert recorded_again(grade(course_dir, CHAPTER)) == 0
    assert stamps(course_dir) == first_files
    # the same notebook handed in again later: recorded again, since nbgrader's late penalty may change
    (course_dir / "autograder/submitted/alice" / CHAPTER / "timestamp.txt").write_text("2026-12-08 09:00:00 UTC")
    assert recorded_again(grade(course_dir, CHAPTER)) == 1
    assert recorded_again(grade(course_dir, CHAPTER)) == 0
    first_files = stamps(course_dir)

    # bob fixes his answer: only bob is recorded and fed back again
    submit(course_dir, CHAPTER, "bob", solution)
    assert recorded_again(grade(course_dir, CHAPTER)) == 1
    files = stamps(course_dir)
    assert {k for k in files if files[k] != first_files.get(k)} == {k for k in files if "/bob/" in k}
    assert gradebook_scores(course_dir, CHAPTER)["bob"] == full_marks(CHAPTER)

    # feedback someone deleted is written again; a gradebook that lost its entries is filled again
    shutil.rmtree(course_dir / "autograder/feedback/alice")
    assert recorded_again(grade(course_dir, CHAPTER)) == 1
    assert (course_dir / "autograder/feedback/alice" / CHAPTER / f"{CHAPTER}.html").is_file()
    (course_dir / "autograder/gradebook.db").unlink()
    assert recorded_again(grade(course_dir, CHAPTER)) == 2
    assert gradebook_scores(course_dir, CHAPTER) == {"alice": full_marks(CHAPTER), "bob": full_marks(CHAPTER)}
    assert recorded_again(grade(course_dir, CHAPTER, "--refresh")) == 2  # everyone, whatever is stored
