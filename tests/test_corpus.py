"""The style corpus (tests/grader_cases) is complete: for every exercise of every chapter, at least
two correct answers written differently from the reference and at least two realistic wrong ones,
each losing points. tests/test_grader.py grades them all through the grade command."""

from __future__ import annotations

import pytest

from nncourse import course

from .grader_cases import chapter_cases


@pytest.mark.parametrize("chapter", course.chapters())
def test_corpus_covers_every_exercise(chapter):
    variants = chapter_cases().get(chapter)
    assert variants, f"tests/grader_cases has no module for {chapter}"
    full = course.test_points(course.read_source(chapter))
    for exercise in course.answer_ids(course.read_source(chapter)):
        cells = {c: p for c, p in full.items() if course.exercise_of(c) == exercise}
        wrong = [v for v in variants if v.exercise == exercise and not v.correct]
        right = [v for v in variants if v.exercise == exercise and v.correct]
        assert len(right) >= 2, f"{exercise}: {len(right)} correct alternative(s), want at least 2"
        assert len(wrong) >= 2, f"{exercise}: {len(wrong)} wrong answer(s), want at least 2"
        for v in wrong:
            assert v.expect and set(v.expect) <= set(cells), (exercise, v.label, set(v.expect) - set(cells))
            got = sum(v.expect.get(c, p) for c, p in cells.items())
            assert got < sum(cells.values()), f"{exercise}: the wrong answer {v.label!r} loses nothing"
        labels = [v.label for v in variants if v.exercise == exercise]
        assert len(labels) == len(set(labels)), f"{exercise}: two variants share a label"
    known = set(course.answer_ids(course.read_source(chapter)))
    assert {v.exercise for v in variants} <= known
