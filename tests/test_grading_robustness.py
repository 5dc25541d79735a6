"""Learners cannot raise their grade by tampering, and no submission stops the class: the runtime layers.

Every attack rides on a wrong answer to ex1_1 (ReLU after fc2, which earns 1 of 3 points) and
must score no higher than that wrong answer alone. Every crash breaks one exercise of an
otherwise correct notebook and must cost that exercise only. The rest of the class is graded
normally in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .grader_cases.ch01 import VARIANTS
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

CHAPTER = "01_module_basics"
WRONG = next(v for v in VARIANTS if v.label == "ReLU after fc2 as well")
WRONG_SCORE = sum(WRONG.expect.values())

ATTACKS = {
    "allclose_always_true": "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n",
    "relu_patched_for_the_reference_too": "import torch\ntorch.relu = lambda x: x.clamp(min=0) * 0 + x\nF.relu = torch.relu\n",
    "input_transformer_blanks_cells": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n",
    "showtraceback_silenced": "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\nip._showtraceback = lambda *a, **k: None\n",
    "check_redefined": "def check(*args, **kwargs):\n    print('✔ passed')\nimport nncourse.checking as c\nc.judge = lambda *a, **k: None\n",
    "builtins_patched": "import builtins\nbuiltins.isinstance = lambda *a: True\n",
    "gradebook_written_with_sql": (
        "import sqlite3, nncourse.course as p\n"
        "try:\n"
        "    db = sqlite3.connect(str(p.AUTOGRADER / 'gradebook.db'))\n"
        "    db.execute('UPDATE grade SET auto_score = 100')\n"
        "    db.commit()\n"
        "except Exception as e:\n"
        "    print('blocked:', e)\n"
    ),
    "network_and_subprocess": (
        "import socket, subprocess\n"
        "for attempt in (lambda: socket.create_connection(('127.0.0.1', 5432), timeout=1),\n"
        "                lambda: subprocess.run(['cat', '/etc/hostname'])):\n"
        "    try:\n"
        "        attempt()\n"
        "    except Exception as e:\n"
        "        print('blocked:', e)\n"
    ),
}

# Each of these answers ex1_4 correctly only if it can read (or write) what it must not.
FORBIDDEN = {
    "reads_worked_solutions": "open(p.SOLUTION_DIR / '01_module_basics' / '01_module_basics.ipynb').read()",
    "reads_instructor_source": "open(p.SOURCE_DIR / '01_module_basics' / '01_module_basics.ipynb').read()",
    "reads_other_students_work": "open(p.AUTOGRADER / 'submitted' / 'solution' / '01_module_basics' / '01_module_basics.ipynb').read()",
    "reads_the_test_labels": "open(p.DATA_DIR / 'digits' / 'digits.csv').read()",
    "test_labels_from_the_loader": "assert __import__('nncourse.data').data.load_digits('test')[1] is not None",
    "writes_the_gradebook": "open(p.AUTOGRADER / 'gradebook.db', 'ab').write(b'')",
    "writes_outside_its_folder": "open(p.REPO_ROOT / 'planted.txt', 'w').write('x')",
}
LEAK_ANSWER = """
import nncourse.course as p
try:
    {action}
    LEAKED = True
except Exception:
    LEAKED = False

class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.f = activation_func if LEAKED else torch.relu

    def forward(self, x):
        return self.f(x)
"""

CRASHES = {  # student: (exercise broken, answer code)
    "crash_exit": ("ex1_4_custom_activation", "import os\nos._exit(3)\n"),
    "crash_endless_loop": (
        "ex1_5_count_parameters",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
    ),
    "crash_memory": ("ex1_6_layer_names", "hog = []\nwhile True:\n    hog.append(torch.ones(2 ** 26))\n"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course_dir = make_course(tmp_path_factory.mktemp("robust"), [CHAPTER])
    solution = solution_notebook(CHAPTER)
    submit(course_dir, CHAPTER, "solution", solution)
    submit(course_dir, CHAPTER, "wrong_alone", with_answers(solution, {WRONG.exercise: WRONG.code}))
    for name, attack in ATTACKS.items():
        submit(course_dir, CHAPTER, name, with_answers(solution, {WRONG.exercise: attack + WRONG.code}))
    # tampering with the notebook itself: edited, deleted and duplicated test cells
    edited = with_answers(solution, {WRONG.exercise: WRONG.code})
    tests = [c for c in edited.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    for cell in tests:
        if cell.metadata.nbgrader["grade_id"].startswith(WRONG.exercise):
            cell.source = "print('✔ all good')"
    edited.cells = [
        c
        for c in edited.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "ex1_1_simple_nn_test_hidden"
    ] + [tests[0], tests[0]]
    submit(course_dir, CHAPTER, "test_cells_edited_deleted_duplicated", edited)
    for name, (exercise, code) in CRASHES.items():
        submit(course_dir, CHAPTER, name, with_answers(solution, {exercise: code}))
    for name, action in FORBIDDEN.items():
        submit(
            course_dir,
            CHAPTER,
            name,
            with_answers(solution, {"ex1_4_custom_activation": LEAK_ANSWER.format(action=action)}),
        )
    raw = (course_dir / "autograder/submitted/solution" / CHAPTER / f"{CHAPTER}.ipynb").read_text()
    submit(course_dir, CHAPTER, "invalid_json", raw=raw[: len(raw) // 2])
    (course_dir / "autograder/submitted/missing_notebook" / CHAPTER).mkdir(parents=True)
    submit(course_dir, CHAPTER, "untouched", release_notebook(CHAPTER))
    # The static policy would refuse most of these cells before they run (tests/test_tamper.py and
    # tests/test_policy.py prove that); here it is off, so the sandbox, the audit hook and the integrity
    # check must stop the attacks and survive the crashes on their own.
    run = grade(
        course_dir,
        CHAPTER,
        "--Grading.cell_time_cap=10",
        "--Grading.memory_mb=2048",
        env_extra={"NNCOURSE_POLICY": "off"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return course_dir, gradebook_scores(course_dir, CHAPTER), run.stdout


def total(scores):
    return sum(scores.values())


def test_rest_of_the_class_is_graded_normally(graded):
    _, scores, _ = graded
    assert scores["solution"] == full_marks(CHAPTER)
    assert total(scores["wrong_alone"]) == total(full_marks(CHAPTER)) - 3 + WRONG_SCORE


@pytest.mark.parametrize("attack", [*ATTACKS, "test_cells_edited_deleted_duplicated"])
def test_tampering_does_not_pay(graded, attack):
    _, scores, _ = graded
    ex1_1 = {c: p for c, p in scores[attack].items() if c.startswith(WRONG.exercise)}
    assert total(ex1_1) <= WRONG_SCORE, ex1_1
    assert total(scores[attack]) <= total(scores["wrong_alone"])


@pytest.mark.parametrize("student", list(FORBIDDEN))
def test_the_sandbox_refuses_forbidden_files(graded, student):
    """The answer would be right only if the access worked: ex1_4 must score zero, the rest full."""
    course_dir, scores, _ = graded
    expected = {c: (0.0 if c.startswith("ex1_4") else p) for c, p in full_marks(CHAPTER).items()}
    assert scores[student] == expected
    assert not (course_dir / "planted.txt").exists()


@pytest.mark.parametrize("student", list(CRASHES))
def test_a_crash_costs_only_its_exercise(graded, student):
    _, scores, _ = graded
    exercise = CRASHES[student][0]
    expected = {c: (0.0 if c.startswith(exercise) else p) for c, p in full_marks(CHAPTER).items()}
    assert scores[student] == expected


@pytest.mark.parametrize(
    "student, reason", [("invalid_json", "not valid JSON"), ("missing_notebook", "no notebook was submitted")]
)
def test_unreadable_submissions_get_zero_with_a_reason(graded, student, reason):
    course_dir, scores, stdout = graded
    assert total(scores[student]) == 0
    csv = (course_dir / "autograder/grades" / f"{CHAPTER}.csv").read_text()
    assert any(line.startswith(student) and reason in line for line in csv.splitlines()), csv


@pytest.mark.parametrize("student", ["wrong_alone", "crash_exit"])
def test_regrading_gives_the_same_scores(graded, student, monkeypatch):
    """Grade again from scratch (no stored result) and compare with what the gradebook holds."""
    course_dir, scores, _ = graded
    monkeypatch.setenv("NNCOURSE_ROOT", str(course_dir))
    code = (
        "import json, sys\n"
        "from traitlets.config import Config\n"
        "from nncourse import settings\n"
        "from nncourse.grading import engine\n"
        "settings.use(settings.load(Config({'Grading': {'cell_time_cap': 10.0}})))\n"
        "r = engine.grade(sys.argv[1], sys.argv[2], refresh=True)\n"
        "print(json.dumps({k: t.points for k, t in r.tests.items()}))\n"
    )
    path = course_dir / "autograder/submitted" / student / CHAPTER / f"{CHAPTER}.ipynb"
    run = subprocess.run(
        [sys.executable, "-c", code, CHAPTER, str(path)],
        capture_output=True,
        text=True,
        cwd=course_dir,
        env={**os.environ, "NNCOURSE_POLICY": "off"},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == scores[student]


def test_feedback_is_written_for_every_student(graded):
    course_dir, scores, _ = graded
    for student in scores:
        html = course_dir / "autograder/feedback" / student / CHAPTER / f"{CHAPTER}.html"
        assert html.exists(), student
    assert (
        "not valid JSON" in (course_dir / "autograder/feedback/invalid_json" / CHAPTER / f"{CHAPTER}.html").read_text()
    )
