"""Issue 11: the red-team suite. Tampering never pays; honest styles keep full marks.

Each hostile answer cell in ``tests/redteam`` is a wrong answer plus tampering. Per chapter, one
grading run (the course's real grade command) holds: the worked solution; one submission per
attack (the solution with that attack's cell in place of its exercise's answer); the twins (the
same wrong answers without the tampering, at most one per exercise per submission: exercises are
graded independently); and the honest answers (correct, in honest styles). Each attack must score
no more than its twin on its exercise, every other exercise of its submission keeps full marks,
and the solution keeps full marks. Attacks marked ``policy=False`` are graded a second time with
the static policy switched off (``NNCOURSE_POLICY=off``): the runtime layers alone must stop them.

While the suite runs, another copy of the course (worked solutions and the digits data with the
test labels) lies elsewhere on the file system — in /tmp, in the home folder and in /opt — for the
file-system attacks to find. ``test_tamper_course_copies_are_findable`` proves they would find it
without the sandbox.

Run it alone with ``pytest -k tamper``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nncourse import course

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
from .redteam import (
    ATTACK_CLASSES,
    CHAPTERS,
    FIND_WITH_OS_WALK,
    HONEST_STYLES,
    Attack,
    Honest,
    ch01,
    ch02,
    ch03,
    ch04,
    ch05,
    honest,
)

pytestmark = pytest.mark.slow  # real grading runs of whole classes

ATTACKS: list[Attack] = [*ch01.ATTACKS, *ch02.ATTACKS, *ch03.ATTACKS, *ch04.ATTACKS, *ch05.ATTACKS]
HONEST: list[Honest] = list(honest.HONEST)
BY_NAME = {a.name: a for a in ATTACKS}

# Per chapter: a short cell time limit so that hanging or slow attacks cost little (every
# solution cell, training included, finishes well within it on two cores).
# The slow attacks (progress_pipe_keepalive, torch_os_keepalive) run 14 s: over these limits.
CELL_TIME_CAP = {
    "01_module_basics": 10,
    "02_parameters": 20,
    "03_train_eval_loop": 40,
    "04_hooks": 10,
    "05_functional_vs_modules": 20,
}
# Chapter 3's worked solution trains several models: there, hostile, twin and honest submissions are the
# learner's release notebook plus only the answer under test (their other exercises are not asserted).
FROM_RELEASE = {"03_train_eval_loop"}
PARALLEL_RUNS = 5  # grading runs at a time (each one grades its submissions on every core)
POLICY_OFF = {"NNCOURSE_POLICY": "off"}


# ----------------------------------------------------------------------------- another copy of the course
def _plant(root: Path) -> Path:
    """Worked solutions and the data (test labels included) under ``root``, readable by anyone."""
    copy = root / "nn-module-course"
    copy.mkdir(parents=True)
    shutil.copytree(course.SOLUTION_DIR, copy / "solutions")
    shutil.copytree(course.DATA_DIR, copy / "data", symlinks=False)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return copy


@pytest.fixture(scope="module")
def course_copies():
    """A second clone in /tmp, one in the home folder and one in /opt (where writable)."""
    made: list[Path] = []
    for parent in (Path(tempfile.gettempdir()), Path.home(), Path("/opt")):
        try:
            root = Path(tempfile.mkdtemp(prefix="nncourse-elsewhere-", dir=parent))
        except OSError:
            continue
        made.append(root)
        _plant(root)
    yield [r / "nn-module-course" for r in made]
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- grading
def _twin_groups(attacks: list[Attack]) -> list[dict[str, str]]:
    """Distinct twins, at most one per exercise per submission."""
    groups: list[dict[str, str]] = []
    for a in attacks:
        if any(g.get(a.exercise) == a.twin for g in groups):
            continue
        for g in groups:
            if a.exercise not in g:
                g[a.exercise] = a.twin
                break
        else:
            groups.append({a.exercise: a.twin})
    return groups


def _honest_groups(answers: list[Honest]) -> list[dict[str, Honest]]:
    groups: list[dict[str, Honest]] = []
    for h in answers:
        for g in groups:
            if h.exercise not in g:
                g[h.exercise] = h
                break
        else:
            groups.append({h.exercise: h})
    return groups


def _run(course_dir: Path, chapter: str, env: dict) -> dict[str, dict[str, float]]:
    run = grade(
        course_dir, chapter, "--no-feedback", f"--Grading.cell_time_cap={CELL_TIME_CAP[chapter]}", env_extra=env
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return gradebook_scores(course_dir, chapter)


def by_exercise(scores: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for cell, points in scores.items():
        exercise = course.exercise_of(cell)
        out[exercise] = out.get(exercise, 0.0) + points
    return out


class ChapterResult:
    def __init__(self, chapter: str, scores: dict, twins: list[dict[str, str]], honest_groups, off_scores):
        self.chapter, self.scores, self.twins, self.honest_groups, self.off_scores = (
            chapter,
            scores,
            twins,
            honest_groups,
            off_scores,
        )
        self.full = by_exercise(full_marks(chapter))

    def exercise_points(self, student: str, exercise: str, off: bool = False) -> float:
        scores = self.off_scores if off else self.scores
        return by_exercise(scores[student]).get(exercise, 0.0)

    def twin_points(self, a: Attack) -> float:
        k = next(i for i, g in enumerate(self.twins) if g.get(a.exercise) == a.twin)
        return self.exercise_points(f"twin_{k + 1}", a.exercise)


def _grade_main(chapter: str, root: Path):
    attacks = [a for a in ATTACKS if a.chapter == chapter]
    solution = solution_notebook(chapter)
    base = release_notebook(chapter) if chapter in FROM_RELEASE else solution
    course_dir = make_course(root, [chapter])
    submit(course_dir, chapter, "solution", solution)
    for a in attacks:
        submit(course_dir, chapter, f"attack_{a.name}", with_answers(base, {a.exercise: a.code}))
    twins = _twin_groups(attacks)
    for k, group in enumerate(twins):
        submit(course_dir, chapter, f"twin_{k + 1}", with_answers(base, group))
    honest_groups = _honest_groups([h for h in HONEST if h.chapter == chapter])
    for k, group in enumerate(honest_groups):
        submit(course_dir, chapter, f"honest_{k + 1}", with_answers(base, {ex: h.code for ex, h in group.items()}))
    return _run(course_dir, chapter, {}), twins, honest_groups


def _grade_policy_off(chapter: str, root: Path):
    """A fresh course: stored results must not be reused across the two settings."""
    unguarded = [a for a in ATTACKS if a.chapter == chapter and not a.policy]
    if not unguarded:
        return {}
    solution = solution_notebook(chapter)
    base = release_notebook(chapter) if chapter in FROM_RELEASE else solution
    course_dir = make_course(root, [chapter])
    submit(course_dir, chapter, "solution", solution)
    for a in unguarded:
        submit(course_dir, chapter, f"attack_{a.name}", with_answers(base, {a.exercise: a.code}))
    return _run(course_dir, chapter, POLICY_OFF)


def _grade_chapter(chapter: str, root: Path) -> ChapterResult:
    """Both runs of one chapter, one after the other (for debugging a single chapter)."""
    scores, twins, honest_groups = _grade_main(chapter, root / "main")
    return ChapterResult(chapter, scores, twins, honest_groups, _grade_policy_off(chapter, root / "policy_off"))


@pytest.fixture(scope="module")
def tamper_graded(course_copies, tmp_path_factory):
    """``tamper_graded(chapter)``: every chapter's runs start at once (a few at a time); this waits for one."""
    pool = ThreadPoolExecutor(max_workers=PARALLEL_RUNS)
    jobs = {}
    for chapter in sorted(CHAPTERS, key=("03_train_eval_loop", "04_hooks").__contains__, reverse=True):
        root = tmp_path_factory.mktemp(f"tamper_{chapter}")
        jobs[chapter] = (
            pool.submit(_grade_main, chapter, root / "main"),
            pool.submit(_grade_policy_off, chapter, root / "policy_off"),
        )
    done: dict[str, ChapterResult] = {}

    def get(chapter: str) -> ChapterResult:
        if chapter not in done:
            main, off = jobs[chapter]
            scores, twins, honest_groups = main.result()
            done[chapter] = ChapterResult(chapter, scores, twins, honest_groups, off.result())
        return done[chapter]

    yield get
    pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- the corpus itself
def test_tamper_corpus_covers_every_class_and_chapter():
    names = [a.name for a in ATTACKS]
    assert len(names) == len(set(names)), "attack names must be unique"
    assert len(ATTACKS) >= 35
    for chapter in CHAPTERS:
        assert sum(a.chapter == chapter for a in ATTACKS) >= 5, chapter
    for cls in range(1, 9):
        assert sum(a.attack_class == cls for a in ATTACKS) >= 2, ATTACK_CLASSES[cls]
    assert any(a.attack_class == 9 for a in ATTACKS)
    for a in ATTACKS:
        assert a.code != a.twin and a.attack_class in ATTACK_CLASSES, a.name
        assert a.exercise in full_marks_exercises(a.chapter), a.name


def test_tamper_honest_answers_cover_every_style():
    assert len(HONEST) >= 12
    assert len({h.name for h in HONEST}) == len(HONEST)
    used = {s for h in HONEST for s in h.styles}
    assert not set(HONEST_STYLES) - used, f"styles without an honest answer: {sorted(set(HONEST_STYLES) - used)}"
    assert {h.chapter for h in HONEST} == set(CHAPTERS)


def full_marks_exercises(chapter: str) -> set[str]:
    return set(by_exercise(full_marks(chapter)))


def test_tamper_course_copies_are_findable(course_copies):
    """Without the sandbox, the file-system attacks' search finds the planted copy of the course."""
    code = FIND_WITH_OS_WALK + (
        "print(_find_copy('solutions/01_module_basics/01_module_basics.ipynb'))\n"
        "print(_find_copy('data/digits/digits.csv'))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    found = run.stdout.split()
    assert len(found) == 2 and all(f != "None" and os.path.exists(f) for f in found), run.stdout


# ----------------------------------------------------------------------------- grading: attacks
def _check_attack(result: ChapterResult, a: Attack, off: bool) -> None:
    student = f"attack_{a.name}"
    scores = result.off_scores if off else result.scores
    setting = " (static policy off)" if off else ""
    assert scores["solution"] == full_marks(a.chapter), f"the solution lost points{setting}"
    twin = result.twin_points(a)
    assert twin < result.full[a.exercise], f"the twin of {a.name} is not wrong: it scored full marks"
    got = result.exercise_points(student, a.exercise, off)
    assert got <= twin, f"{a.name}{setting}: tampering paid: {got:g} points on {a.exercise}, its twin {twin:g}"
    if a.chapter in FROM_RELEASE:
        return  # built from the release notebook: the other exercises are unanswered
    others = {ex: p for ex, p in by_exercise(scores[student]).items() if ex != a.exercise}
    lost = {ex: f"{p:g}/{result.full[ex]:g}" for ex, p in others.items() if p != result.full[ex]}
    assert not lost, f"{a.name}{setting}: other exercises of the submission lost points: {lost}"


@pytest.mark.parametrize("name", [a.name for a in ATTACKS])
def test_tamper_does_not_pay(tamper_graded, name):
    a = BY_NAME[name]
    _check_attack(tamper_graded(a.chapter), a, off=False)


@pytest.mark.parametrize("name", [a.name for a in ATTACKS if not a.policy])
def test_tamper_does_not_pay_without_the_policy(tamper_graded, name):
    a = BY_NAME[name]
    _check_attack(tamper_graded(a.chapter), a, off=True)


# ----------------------------------------------------------------------------- grading: honest answers
@pytest.mark.parametrize("name", [h.name for h in HONEST])
def test_tamper_honest_style_keeps_full_marks(tamper_graded, name):
    h = next(h for h in HONEST if h.name == name)
    result = tamper_graded(h.chapter)
    k = next(i for i, g in enumerate(result.honest_groups) if g.get(h.exercise) is h)
    student = f"honest_{k + 1}"
    expected = {
        c: p
        for c, p in full_marks(h.chapter).items()
        if h.chapter not in FROM_RELEASE or course.exercise_of(c) == h.exercise
    }
    got = {c: result.scores[student][c] for c in expected}
    assert got == expected, f"{name} ({', '.join(h.styles)}): " + str(
        {c: p for c, p in got.items() if p != expected[c]}
    )


# ----------------------------------------------------------------------------- the grader's own files
_POISON = """
import numpy as np
import os
import torch
_cache = os.environ.get("NNCOURSE_ROOT", "") + "/autograder/.cache/"
for _name in ("policy/torch-private-names-" + torch.__version__ + ".json", "results.key", "recorded/x.json"):
    try:  # "[]" as the list of torch's private names would let later answers reach `_modules` & co.
        np.savetxt(_cache + _name, np.zeros((0,)), header="[]", comments="")
    except BaseException:
        pass
"""


_CH1 = "01_module_basics"


@pytest.mark.slow
def test_tamper_cannot_poison_the_graders_caches(tmp_path):
    """The grader keeps files in the course's cache between runs (the policy's list of torch's private
    names, the key that signs results, what was recorded). An answer that writes there, with the
    policy off so that only the sandbox and the audit hook stand in the way, changes none of them,
    and the policy still refuses a private attribute on the next run."""
    course_dir = make_course(tmp_path / "course", [_CH1])
    solution = solution_notebook(_CH1)
    submit(course_dir, _CH1, "honest", solution)
    first = grade(course_dir, _CH1, "--no-feedback")
    assert first.returncode == 0, first.stdout + first.stderr
    cache = course_dir / "autograder/.cache"
    kept = {p: p.read_bytes() for p in (cache / "policy").rglob("*") if p.is_file()}
    kept[cache / "results.key"] = (cache / "results.key").read_bytes()
    assert any("policy" in p.parts for p in kept), "the policy's cache was not written"

    answer = next(c.source for c in solution.cells if course.grade_id(c) == "ex1_1_simple_nn") + _POISON
    submit(course_dir, _CH1, "poisoner", with_answers(solution, {"ex1_1_simple_nn": answer}))
    second = grade(course_dir, _CH1, "--no-feedback", env_extra={"NNCOURSE_POLICY": "off"})
    assert second.returncode == 0, second.stdout + second.stderr
    assert {p: p.read_bytes() for p in kept} == kept
    assert not (cache / "recorded/x.json").exists()  # the grader's records: only the grader writes there

    # with the real list, `self._call_impl` is torch's, not the answer's own: refused
    reach = (
        answer.replace(_POISON, "")
        + "\nclass _Reach(nn.Module):\n    def peek(self):\n        return self._call_impl\n"
    )
    submit(course_dir, _CH1, "poisoner", with_answers(solution, {"ex1_1_simple_nn": reach}))
    third = grade(course_dir, _CH1, "--no-feedback")
    assert third.returncode == 0, third.stdout + third.stderr
    line = next(row for row in third.stdout.splitlines() if row.strip().startswith("poisoner"))
    assert "refused by the grading policy" in line and "_call_impl" in line, line
