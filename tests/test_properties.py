"""Property-based tests (nncourse.properties): inputs drawn with Hypothesis per grading run, the
same on both sides of the sandbox, and the smallest failing input named in the verdict."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from nncourse import probing, properties
from nncourse.registry import Mistake

SIZES = st.fixed_dictionaries({"n": st.integers(1, 8), "c": st.integers(1, 5)})


def describe(example):
    return f"a batch of {example['n']} with {example['c']} columns"


def size(example):
    return (example["n"] * example["c"], example["n"])


def judge_sum(got, ref):
    if got["total"] != ref["total"]:
        raise Mistake("the total", got=got["total"], expected=ref["total"])


def reference(example):
    return {"total": example["n"] * example["c"]}


def wrong_for_big_batches(example):  # the usual kind of mistake: right on small inputs only
    return {"total": example["n"] * example["c"] + (example["n"] > 3)}


def crashes_on_a_batch_of_one(example):
    if example["n"] == 1:
        raise IndexError("dimension 0 squeezed away")
    return reference(example)


@pytest.fixture
def salt():
    yield probing.set_salt
    probing.set_salt(None)


def test_draws_are_deterministic_and_start_with_the_simplest_input():
    first = properties.draw(SIZES, 12, seed=7)
    assert first == properties.draw(SIZES, 12, seed=7)
    assert first[0] == {"n": 1, "c": 1}
    assert len(first) == 12 and len({tuple(sorted(e.items())) for e in first}) == 12
    assert first != properties.draw(SIZES, 12, seed=8)


def test_inputs_are_fixed_in_a_notebook_and_change_with_the_grading_salt(salt):
    notebook = properties.probe_cases(SIZES, reference, count=10, seed=3)
    assert notebook == properties.probe_cases(SIZES, reference, count=10, seed=3)
    salt(1)
    one = properties.probe_cases(SIZES, reference, count=10, seed=3)
    salt(2)
    two = properties.probe_cases(SIZES, reference, count=10, seed=3)
    assert len({notebook["seed"], one["seed"], two["seed"]}) == 3
    assert one["inputs"] != two["inputs"]


def test_a_correct_answer_passes_with_the_seed_recorded():
    ref = properties.probe_cases(SIZES, reference, count=10, seed=3)
    got = properties.probe_cases(SIZES, lambda e: {"total": e["c"] * e["n"]}, count=10, seed=3)
    note = properties.judge_cases(got, ref, judge_sum, describe, size)
    assert note == f"10 inputs drawn with Hypothesis (seed {ref['seed']}) pass"


def test_the_smallest_failing_input_is_reported():
    ref = properties.probe_cases(SIZES, reference, count=30, seed=3)
    got = properties.probe_cases(SIZES, wrong_for_big_batches, count=30, seed=3)
    with pytest.raises(Mistake) as caught:
        properties.judge_cases(got, ref, judge_sum, describe, size)
    failing = [e for e in ref["inputs"] if e["n"] > 3]
    smallest = min(failing, key=size)
    text = caught.value.describe()
    assert text.startswith(f"fails for {describe(smallest)}: the total")
    drawn = len(ref["inputs"])
    assert f"({len(failing)} of the {drawn} inputs drawn with Hypothesis (seed {ref['seed']}) fail" in text
    assert f"yours   : {smallest['n'] * smallest['c'] + 1}" in text


def test_an_exception_on_one_input_fails_that_input_only():
    ref = properties.probe_cases(SIZES, reference, count=20, seed=3)
    got = properties.probe_cases(SIZES, crashes_on_a_batch_of_one, count=20, seed=3)
    ones = sum(e["n"] == 1 for e in ref["inputs"])
    assert sum(properties.ERROR_KEY in c for c in got["cases"]) == ones
    with pytest.raises(Mistake) as caught:
        properties.judge_cases(got, ref, judge_sum, describe, size)
    assert caught.value.describe().startswith(
        "fails for a batch of 1 with 1 columns: your code raised IndexError: dimension 0 squeezed away"
    )


def test_inputs_not_drawn_by_the_grader_cannot_be_judged():
    ref = properties.probe_cases(SIZES, reference, count=10, seed=3)
    got = properties.probe_cases(SIZES, reference, count=10, seed=4)  # easier inputs, chosen by the answer
    with pytest.raises(ValueError, match="drawn inputs differ"):
        properties.judge_cases(got, ref, judge_sum, describe, size)


def test_draws_are_the_same_in_every_process(tmp_path):
    """The child draws its inputs and the grader draws them again for the reference: two processes
    with different hash seeds, histories and loads must draw the same list."""
    import subprocess
    import sys

    script = """
import sys
from hypothesis import strategies as st
from nncourse import properties
if sys.argv[1] == "busy":  # another drawing first, and a module of the grader's own with constants
    properties.draw(st.lists(st.floats(0, 1)), 30, seed=1)
    sys.path.insert(0, sys.argv[2])
    import grader_side_module  # noqa: F401
strategy = st.fixed_dictionaries({"n": st.integers(1, 600), "scale": st.floats(0, 2000), "t": st.booleans()})
print(properties.draw(strategy, 40, seed=758096333))
"""
    # Hypothesis harvests literal constants from local modules: a module only one side loads
    (tmp_path / "grader_side_module.py").write_text("LIMITS = (2, 3, 4, 5, 411, 413, 1000.0, 0.5)\n")
    outputs = set()
    for hash_seed, history in (("1", "fresh"), ("2", "busy")):
        env = {"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"}
        argv = [sys.executable, "-c", script, history, str(tmp_path)]
        run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs.add(run.stdout)
    assert len(outputs) == 1 and outputs.pop().count("'n'") == 40


def test_draws_need_no_code_rewriting_and_no_files():
    """The grading child's guard refuses writes to ``__code__`` (what ``@given`` does for every
    example) and file access: drawing must need neither, once Hypothesis is imported."""
    import subprocess
    import sys

    script = """
import sys
from hypothesis import strategies as st
from nncourse import properties
properties.prepare()
def refuse(event, args):
    if (event == "object.__setattr__" and args[1] == "__code__") or event == "open":
        raise PermissionError(event)
sys.addaudithook(refuse)
inputs = properties.draw(st.lists(st.integers(1, 7), min_size=2, max_size=5), 10, seed=5)
print(len(inputs), inputs[0])
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["10", "[1,", "1]"]


def test_only_chapters_whose_checks_draw_pay_for_hypothesis():
    """The grading child imports Hypothesis (about 0.4 s) only for a chapter whose checks use it."""
    from nncourse import course

    users = {chapter for chapter in course.chapters() if properties.used_by(chapter)}
    assert users == {"01_module_basics", "05_functional_vs_modules"}
