"""notebooks/ and solutions/ must be exactly what `make generate` makes from autograder/source."""

import nbformat
import pytest

from nncourse import course, registry
from tools import generate


@pytest.mark.slow
def test_generated_notebooks_are_up_to_date():
    stale = generate.stale_files()
    assert not stale, f"stale generated files (run `make generate`): {stale}"


def test_every_chapter_follows_the_grading_contract():
    """One answer cell per registered exercise, test cells named <exercise>_test*, each worth >= 1 point."""
    assert course.chapters(), "no chapter found under autograder/source"
    for chapter in course.chapters():
        nb = course.read_source(chapter)
        answers = course.answer_ids(nb)
        assert sorted(answers) == sorted(ex.id for ex in registry.exercises_of(chapter)), chapter
        assert nb.cells[0].metadata["nbgrader"]["grade_id"] == "setup", "the first cell is the setup cell"
        for cell in nb.cells:
            if course.is_test(cell):
                gid = course.grade_id(cell)
                assert course.exercise_of(gid) in answers, gid
                assert course.points(cell) >= 1, gid
                calls = course.checks_in(cell.source)
                assert calls and all(c[0] == course.exercise_of(gid) for c in calls), gid
        release = nbformat.read(course.release_notebook(chapter), as_version=4)
        assert "BEGIN SOLUTION" not in str(release) and "BEGIN HIDDEN TESTS" not in str(release)


def test_every_registered_exercise_belongs_to_a_chapter():
    chapters = set(course.chapters())
    assert {ex.chapter for ex in registry.load_exercises().values()} <= chapters
