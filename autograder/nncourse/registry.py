"""The register of exercises: what a chapter's checks module declares.

A chapter's checks live in one module of :mod:`nncourse.exercises` (see
``docs/adding-a-chapter.md``). It declares each graded exercise with :func:`exercise` and each of
its tests with ``@ex.test(name)`` (the probe) and ``@test.judge`` (the judge)::

    ex = exercise("ex6_1", "06_my_chapter")

    @ex.test("output")
    def probe(Net):                         # runs on the learner's objects, returns plain data
        return {"y": Net()(torch.ones(2, 3))}

    @probe.judge
    def judge(got, ref):                    # runs in the trusted grader; raises Mistake
        expect_close(got["y"], ref["y"], "Net()(x)")

:func:`load_exercises` imports every such module and returns the register. This module imports no
other module of the course (it finds the checks modules by name, at run time), so the chapters'
checks, the checking library and the reference solutions all depend on it and not on each other.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

_MISSING = object()


class Mistake(Exception):
    """Raised by a judge: what is wrong, the learner's value beside the expected one, a hint.

    ``credit`` is the fraction of the test's points still earned (0 unless partial credit).
    """

    def __init__(
        self, what: str, *, got: Any = _MISSING, expected: Any = _MISSING, hint: str | None = None, credit: float = 0.0
    ):
        super().__init__(what)
        self.what, self.got, self.expected, self.hint, self.credit = what, got, expected, hint, credit

    def describe(self) -> str:
        lines = [self.what]
        if self.got is not _MISSING:
            lines.append(_labelled("yours   ", self.got))
        if self.expected is not _MISSING:
            lines.append(_labelled("expected", self.expected))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


def _labelled(label: str, value: Any) -> str:
    text = format_value(value)
    pad = " " * (len(label) + 4)
    return f"  {label}: " + text.replace("\n", "\n" + pad)


def format_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.is_floating_point():
            t = t.float()
        with _printoptions():
            return repr(t)
    if isinstance(value, float):
        return f"{value:.4f}"
    return repr(value)


class _printoptions:
    def __enter__(self):
        self._saved = torch._tensor_str.PRINT_OPTS.__dict__.copy()
        torch.set_printoptions(precision=4, threshold=24, edgeitems=3, linewidth=88, sci_mode=False)

    def __exit__(self, *exc):
        torch._tensor_str.PRINT_OPTS.__dict__.update(self._saved)


@dataclass
class Test:
    exercise: str
    name: str
    probe: Callable[..., dict]
    needs_reference: bool = True
    judge_fn: Callable[[dict, dict | None], Any] | None = None

    def judge(self, fn):
        """Decorator: set the judge ``fn(got, ref)``; it returns None or a note, or raises Mistake."""
        self.judge_fn = fn
        return fn


@dataclass
class Exercise:
    id: str
    chapter: str
    time_limit: float = 30.0  # seconds the answer cell may run at grading time
    tests: dict[str, Test] = field(default_factory=dict)
    # the grading policy (nncourse.policy) for this exercise's answer cell: names it may use beyond
    # the common allowlist (e.g. torch.save), and names its contract forbids (e.g. F.cross_entropy)
    allow: frozenset = frozenset()
    deny: frozenset = frozenset()

    def test(self, name: str, *, reference: bool = True):
        """Decorator registering a probe as the test ``name`` of this exercise."""

        def register(probe):
            t = Test(self.id, name, probe, needs_reference=reference)
            self.tests[name] = t
            return t

        return register


EXERCISES: dict[str, Exercise] = {}


def exercise(exercise_id: str, chapter: str, time_limit: float = 30.0, *, allow=(), deny=()) -> Exercise:
    if exercise_id in EXERCISES:
        raise ValueError(
            f"exercise {exercise_id!r} is declared twice (chapters {EXERCISES[exercise_id].chapter} and {chapter})"
        )
    ex = Exercise(exercise_id, chapter, time_limit, allow=frozenset(allow), deny=frozenset(deny))
    EXERCISES[exercise_id] = ex
    return ex


def load_exercises() -> dict[str, Exercise]:
    """Every exercise of the course, by id: imports each checks module of ``nncourse.exercises`` once."""
    if not _loaded:
        from . import exercises

        for info in sorted(pkgutil.iter_modules(exercises.__path__), key=lambda i: i.name):
            importlib.import_module(f"{exercises.__name__}.{info.name}")
        _loaded.append(True)
    return EXERCISES


def exercises_of(chapter: str) -> list[Exercise]:
    """A chapter's exercises, in the order its checks module declares them."""
    return [ex for ex in load_exercises().values() if ex.chapter == chapter]


def get_test(exercise_id: str, test_name: str) -> Test:
    try:
        return load_exercises()[exercise_id].tests[test_name]
    except KeyError:
        raise KeyError(f"no check named {test_name!r} for exercise {exercise_id!r}") from None


_loaded: list[bool] = []
