"""The grader, proved through real `nbgrader autograde` on a class of known submissions.

For every chapter: the worked solution gets full marks, the untouched learner notebook gets zero
(and is graded, not crashed), each realistic wrong answer loses exactly the points listed in
tests/grader_cases on its own exercise only, and correct answers written differently (one of
them emitting a UserWarning) get full marks.
"""

from __future__ import annotations

import pytest

from nncourse import course

from .grader_cases import chapter_cases, submissions
from .helpers import (
    full_marks,
    grade,
    gradebook_scores,
    make_course,
    release_notebook,
    solution_notebook,
    submit,
    with_answers,
)

pytestmark = pytest.mark.slow  # real grading runs of whole classes

CHAPTERS = [c for c in course.chapters() if c in chapter_cases()]


@pytest.fixture(scope="module", params=CHAPTERS)
def graded_class(request, tmp_path_factory):
    chapter = request.param
    course_dir = make_course(tmp_path_factory.mktemp(chapter), [chapter])
    solution = solution_notebook(chapter)
    submit(course_dir, chapter, "solution", solution)
    submit(course_dir, chapter, "untouched", release_notebook(chapter))
    planned = submissions(chapter_cases()[chapter])
    for name, variants in planned.items():
        submit(course_dir, chapter, name, with_answers(solution, {ex: v.code for ex, v in variants.items()}))
    run = grade(course_dir, chapter, "--no-feedback")
    assert run.returncode == 0, run.stdout + run.stderr
    return chapter, course_dir, planned, gradebook_scores(course_dir, chapter), run.stdout


def test_solution_gets_full_marks(graded_class):
    chapter, _, _, scores, _ = graded_class
    assert scores["solution"] == full_marks(chapter)


def test_untouched_notebook_gets_zero(graded_class):
    chapter, _, _, scores, _ = graded_class
    assert scores["untouched"] == {cell: 0.0 for cell in full_marks(chapter)}


def test_each_variant_gets_exactly_its_points(graded_class):
    chapter, _, planned, scores, _ = graded_class
    problems = []
    for name, variants in planned.items():
        expected = full_marks(chapter)
        for v in variants.values():
            expected.update(v.expect or {})
        for cell, points in expected.items():
            if scores[name][cell] != points:
                owner = variants.get(cell.split("_test")[0])
                problems.append(
                    f"{name} / {cell}: got {scores[name][cell]}, expected {points} "
                    f"({owner.label if owner else 'solution'})"
                )
    assert not problems, "\n".join(problems)


def test_a_warning_costs_nothing(graded_class):
    chapter, _, planned, scores, _ = graded_class
    warning = [(name, v) for name, vs in planned.items() for v in vs.values() if v.correct and "warn" in v.code]
    assert warning, "each chapter has a correct answer that emits a warning"
    for name, v in warning:
        assert all(scores[name][c] == p for c, p in full_marks(chapter).items() if c.startswith(v.exercise))
