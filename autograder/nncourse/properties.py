"""Property-based tests: inputs drawn with Hypothesis for each grading run, judged one by one.

An exercise with a numeric contract (any batch size, any layer sizes, logits of any magnitude)
is best tested on many inputs nobody chose by hand. A probe calls :func:`probe_cases` with a
Hypothesis strategy of *plain* inputs (sizes, scales, seeds for tensor values) and a function that
runs the learner's code on one input. Hypothesis draws ``count`` inputs, always starting with the
strategy's simplest one (a batch of 1, the shortest list), from a seed mixed with the run's salt:
in a notebook the inputs are fixed, at grading time they change from run to run, and the seed is
recorded in the verdict so a run can be replayed with :func:`draw`.

The trust model is the one of every probe: the probe runs in the grading sandbox and returns plain
data, the same probe runs on the reference solution in the trusted grader with the same salt (so it
draws the same inputs), and :func:`judge_cases` compares them case by case there. Shrinking as
Hypothesis does it would need the learner's code and the verdict in one process, so instead the
judge reports the *smallest* failing input that was drawn (by the exercise's ``size``), with how
many failed: "fails for logits of shape (2, 3) ...".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .probing import mixed
from .registry import Mistake

ERROR_KEY = "__case_error__"


def used_by(chapter: str) -> bool:
    """Does any check of this chapter draw inputs with Hypothesis (its checks module imports this one)?"""
    import sys

    from .registry import load_exercises

    modules = {t.probe.__module__ for e in load_exercises().values() if e.chapter == chapter for t in e.tests.values()}
    return any(vars(sys.modules[name]).get("properties") is sys.modules[__name__] for name in modules)


def prepare() -> None:
    """Import Hypothesis's drawing machinery. The grading child does it before its guard (the import
    itself rewrites ``__code__``), and only for a chapter that uses it (about 0.4 s with torch loaded)."""
    import hypothesis.control  # noqa: F401
    import hypothesis.internal.conjecture.data  # noqa: F401


@functools.cache
def _provider():
    """Hypothesis's provider of choices, without its pools of "interesting" constants.

    Hypothesis mixes in constants it harvests from the source of the modules loaded in the process,
    which differ between the grading child and the grader: with them, the same seed drew other
    inputs on the two sides.
    """
    from hypothesis.internal.conjecture.providers import HypothesisProvider

    class SeededProvider(HypothesisProvider):
        def _maybe_draw_constant(self, *args, **kwargs):
            return None

    return SeededProvider


def draw(strategy, count: int, seed: int) -> list:
    """``count`` distinct inputs (or fewer, when the strategy has fewer) from a Hypothesis ``strategy``.

    The first is the strategy's simplest input; each other one is drawn on its own from a random
    generator seeded with (seed, its index), so the same seed gives the same inputs in every
    process (Hypothesis's adaptive engine does not promise that across processes, and ``@given``
    rewrites ``__code__``, which the grading child's guard refuses), with no constants harvested
    from the modules loaded (see ``_provider``). Hypothesis is pinned in
    requirements-dev.txt: another version may draw other inputs from the same seed.
    """
    import random

    from hypothesis.control import BuildContext
    from hypothesis.errors import StopTest
    from hypothesis.internal.conjecture.choice import ChoiceTemplate
    from hypothesis.internal.conjecture.data import ConjectureData

    provider = _provider()

    def one(data) -> tuple[bool, object]:
        def run():
            with BuildContext(data, wrapped_test=run):
                return data.draw(strategy)

        try:
            return True, run()
        except StopTest:  # this random choice sequence was rejected (a filter, an overrun): next
            return False, None

    drawn: list = []
    attempts = [
        ConjectureData(random=random.Random(0), provider=provider, prefix=[ChoiceTemplate("simplest", count=None)])
    ]
    attempts += (ConjectureData(random=random.Random(f"{seed}:{i}"), provider=provider) for i in range(count * 10))
    for data in attempts:
        ok, example = one(data)
        if ok and example not in drawn:
            drawn.append(example)
            if len(drawn) == count:
                break
    return drawn


def probe_cases(strategy, run_one: Callable[[Any], dict], *, count: int, seed: int) -> dict:
    """Run ``run_one(input)`` on each drawn input. An exception on one input is recorded for that
    input (as the learner's code would fail there) and the others still run."""
    used_seed = mixed(seed)
    inputs = draw(strategy, count, used_seed)
    cases = []
    for example in inputs:
        try:
            cases.append(dict(run_one(example)))
        except Exception as e:  # the learner's code failed on this input
            cases.append({ERROR_KEY: f"{type(e).__name__}: {e}"})
    return {"seed": used_seed, "inputs": inputs, "cases": cases}


def judge_cases(
    got: dict,
    ref: dict,
    judge_one: Callable[[dict, dict], None],
    describe: Callable[[Any], str],
    size: Callable[[Any], Any],
) -> str:
    """Judge every drawn case with ``judge_one(got_case, ref_case)`` (raises Mistake).

    Passes with a note naming the number of inputs and the seed; fails with the mistake found on the
    smallest failing input (smallest ``size(input)``), labelled with ``describe(input)``.
    """
    inputs, seed = ref["inputs"], ref["seed"]
    if got.get("inputs") != inputs or len(got.get("cases", [])) != len(inputs):
        raise ValueError("the drawn inputs differ from the grader's")  # not drawn by this probe: tampering
    failures: list[tuple[Any, Mistake]] = []
    for example, got_case, ref_case in zip(inputs, got["cases"], ref["cases"]):
        if ERROR_KEY in ref_case:  # a strategy that draws inputs outside the contract
            raise ValueError(f"the reference fails for {describe(example)}: {ref_case[ERROR_KEY]}")
        if ERROR_KEY in got_case:
            failures.append((example, Mistake(f"your code raised {got_case[ERROR_KEY]}")))
            continue
        try:
            judge_one(got_case, ref_case)
        except Mistake as m:
            failures.append((example, m))
    if not failures:
        return f"{len(inputs)} inputs drawn with Hypothesis (seed {seed}) pass"
    example, first = min(failures, key=lambda f: size(f[0]))
    tally = f"{len(failures)} of the {len(inputs)} inputs drawn with Hypothesis (seed {seed}) fail"
    first.what = f"fails for {describe(example)}: {first.what}\n  ({tally}; this is the smallest)"
    first.credit = 0.0
    raise first
