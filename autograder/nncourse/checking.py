"""Checks shared by every chapter: a probe runs the learner's code, a judge compares.

An exercise's test is two functions:

* the **probe** receives the learner's objects (a class, a function, a model), exercises
  them on seeded inputs and returns plain data (tensors and JSON values);
* the **judge** compares that data with the same probe run on the reference solution and
  raises :class:`Mistake` with the learner's value beside the expected one.

In a notebook, ``check(exercise_id, test_name, **objects)`` runs both and prints the verdict.
At grading time the probe runs inside the sandboxed child that executes the submission and
only its plain data leaves it; the judge runs in the trusted grader (see ``nncourse.grading``).
"""

from __future__ import annotations

import linecache
import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import plaindata
from .probing import reseed
from .registry import Mistake, Test, format_value, get_test, load_exercises  # noqa: F401  (Mistake for judges)

ERROR_KEY = "__error__"
WARNINGS_KEY = "__warnings__"


@dataclass
class Verdict:
    exercise: str
    test: str
    credit: float  # fraction of the test's points earned, in [0, 1]
    message: str

    @property
    def passed(self) -> bool:
        return self.credit >= 1.0


class CheckFailed(AssertionError):
    """A failed check. IPython shows only its message, not a traceback into the library."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.message)
        self.verdict = verdict

    def _render_traceback_(self):
        return [
            "\x1b[0;31mCheckFailed\x1b[0m: " + self.verdict.message.splitlines()[0],
            *self.verdict.message.splitlines()[1:],
        ]


# --------------------------------------------------------------------------- probing
_LIBRARY_DIRS = (os.path.dirname(__file__), os.path.dirname(torch.__file__))


def _learner_frame(tb) -> str:
    """The last traceback line that belongs to the learner's code (not torch's, not ours)."""
    found = ""
    for frame in traceback.extract_tb(tb):
        if not frame.filename.startswith(_LIBRARY_DIRS) and "/lib/python" not in frame.filename:
            line = frame.line or (linecache.getline(frame.filename, frame.lineno).strip() if frame.lineno else "")
            found = f"in {frame.name}, line {frame.lineno}: {line}"
    return found


def run_probe(test: Test, objects: dict) -> dict:
    """Run a probe on some objects and return plain data, as the scorer would receive it.

    The learner's exceptions become data; warnings are recorded, never printed (a warning is
    not a mistake, and stock nbgrader would zero a test cell that writes to stderr).
    The probe runs under a forked RNG so checking never shifts the notebook's random stream.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with warnings.catch_warnings(record=True) as caught, torch.random.fork_rng(devices=devices):
        warnings.simplefilter("always")
        reseed(1234)
        try:
            data = dict(test.probe(**objects))
        except Exception as e:  # the learner's code failed; say how
            where = _learner_frame(e.__traceback__)
            data = {ERROR_KEY: f"{type(e).__name__}: {e}" + (f"\n  ({where})" if where else "")}
    data[WARNINGS_KEY] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    try:
        return plaindata.roundtrip(data)
    except plaindata.PlainDataError as e:
        return {ERROR_KEY: f"the probe produced data that cannot be exported ({e})"}


def judge(test: Test, got: Any, ref: dict | None) -> Verdict:
    """Compare a probe's data with the reference's. Never raises: anything odd fails the test."""
    head = f"{test.exercise} · {test.name}"
    if not isinstance(got, dict):
        return Verdict(test.exercise, test.name, 0.0, f"✘ {head}: no usable result was exported.")
    if got.get(ERROR_KEY):
        return Verdict(
            test.exercise, test.name, 0.0, f"✘ {head}: calling your code raised an exception.\n  {got[ERROR_KEY]}"
        )
    try:
        if test.judge_fn is None:  # a registration mistake: caught below like any judge that fails
            raise TypeError(f"the test {test.name!r} has no judge")
        note = test.judge_fn(got, ref)
    except Mistake as m:
        return Verdict(test.exercise, test.name, max(0.0, min(1.0, m.credit)), f"✘ {head}: {m.describe()}")
    except Exception as e:  # malformed data: a probe that did not finish, or tampering
        return Verdict(
            test.exercise, test.name, 0.0, f"✘ {head}: the result could not be judged ({type(e).__name__}: {e})."
        )
    message = f"✔ {head}" + (f": {note}" if note else "")
    return Verdict(test.exercise, test.name, 1.0, message)


# --------------------------------------------------------------------------- the notebook API
# Set by the grading child: where ``check`` sends probe data instead of judging it.
_export: dict[str, Any] = {"sink": None, "cell": None, "count": 0}


def export_to(sink: Callable[[str, int, bytes], None] | None, cell_id: str | None = None) -> None:
    """Used by the grading child: from now on ``check`` hands probe data to ``sink(cell, index, bytes)``."""
    _export.update(sink=sink, cell=cell_id, count=0)


def _answer_cell(objects: dict) -> str | None:
    """In a notebook: the source of the latest cell that defined one of the checked names."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not objects:
        return None
    from . import policy

    history = list(getattr(shell.history_manager, "input_hist_raw", None) or [])
    for source in reversed(history[:-1] if history else []):  # [-1] is the check cell itself
        if policy.defines(source, set(objects)):
            return source
    return None


def _grading_would_fail(exercise_id: str, source: str) -> str:
    """What grading would do differently from this notebook with this answer cell, if anything.

    Grading reviews the answer cell before running it (``nncourse.policy``), and runs the set-up,
    given and answer cells but never the demos. The visible check says both here, at the line,
    so a learner does not hear of them first in the feedback.
    """
    from IPython import get_ipython

    from . import course, policy

    shell = get_ipython()
    refusals = policy.review_answer(exercise_id, source, policy.Context.from_namespace(shell.user_ns))
    if refusals:
        return "grading refuses your answer cell (this exercise would score zero):\n" + "\n".join(
            "  " + r.describe() for r in refusals
        )
    chapter = load_exercises()[exercise_id].chapter
    try:
        demo_names = course.demo_only_names(chapter)
    except OSError:  # the instructor notebook is not beside this install: nothing to compare with
        return ""
    used = sorted(course.free_names(source) & demo_names)
    if used:
        names = ", ".join(f"`{n}`" for n in used)
        return (
            f"your answer cell uses {names}, which only a demo cell of this notebook defines. Grading "
            "runs the set-up, given and answer cells but not the demos, so there it would fail with "
            "NameError: define what you need in your answer cell (or take it as a parameter)."
        )
    return ""


def reference_data(test: Test, names) -> dict | None:
    """The probe's data on the reference solution's objects of the same names (cached)."""
    if not test.needs_reference:
        return None
    from .probing import _salt

    key = (test.exercise, test.name, tuple(sorted(names)), _salt[0])  # inputs differ per grading run
    if key not in _reference_cache:
        from . import reference

        chapter = load_exercises()[test.exercise].chapter
        _reference_cache[key] = run_probe(test, reference.objects(chapter, test.exercise, names))
    return _reference_cache[key]


_reference_cache: dict[tuple, dict] = {}


def check(exercise_id: str, test_name: str, **objects) -> None:
    """Check one aspect of an exercise and say plainly what is wrong, if anything."""
    test = get_test(exercise_id, test_name)
    got = run_probe(test, objects)
    if _export["sink"]:
        index = _export["count"]
        _export["count"] += 1
        got["__check__"] = [exercise_id, test_name]
        _export["sink"](_export["cell"], index, plaindata.dumps(got))
        return
    source = _answer_cell(objects)
    problem = _grading_would_fail(exercise_id, source) if source is not None else ""
    if problem:
        raise CheckFailed(Verdict(exercise_id, test_name, 0.0, f"✘ {exercise_id} · {test_name}: {problem}"))
    verdict = judge(test, got, reference_data(test, objects))
    for w in got.get(WARNINGS_KEY) or []:
        print(f"  (note: your code warned — {w})")
    if not verdict.passed:
        raise CheckFailed(verdict)
    print(verdict.message)
