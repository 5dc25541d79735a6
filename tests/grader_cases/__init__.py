"""Known submissions per chapter, and the points each must get.

Each chapter module (``tests/grader_cases/ch01.py`` …) defines ``CHAPTER`` and ``VARIANTS``:
answer-cell replacements for one exercise with the points every test cell of that exercise
must then earn. ``expect=None`` means full marks (a correct answer written differently).

The grader tests build whole submissions from the solution notebook: submission ``wrong_1``
takes the first wrong variant of every exercise, ``wrong_2`` the second, and so on, and
``alt_1`` … the correct alternatives. Exercises are graded independently, so every other
exercise of such a submission must keep full marks.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    exercise: str
    label: str
    code: str
    # points per test cell grade_id of this exercise; None = full marks everywhere
    expect: dict[str, float] | None = None

    @property
    def correct(self) -> bool:
        return self.expect is None


def chapter_cases() -> dict[str, list[Variant]]:
    """{chapter id: variants} for every chapter that has a case module."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.CHAPTER] = module.VARIANTS
    return found


def submissions(variants: list[Variant]) -> dict[str, dict[str, Variant]]:
    """{submission name: {exercise id: variant}}: the k-th wrong / alternative of each exercise."""
    out: dict[str, dict[str, Variant]] = {}
    for kind in ("wrong", "alt"):
        per_exercise: dict[str, list[Variant]] = {}
        for v in variants:
            if (kind == "alt") == v.correct:
                per_exercise.setdefault(v.exercise, []).append(v)
        for k in range(max((len(vs) for vs in per_exercise.values()), default=0)):
            out[f"{kind}_{k + 1}"] = {ex: vs[k] for ex, vs in per_exercise.items() if k < len(vs)}
    return out
