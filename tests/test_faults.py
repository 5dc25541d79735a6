"""Issue 18: every row an instructor can trust. Faults injected into real grading runs.

A class of submissions that loop, exhaust memory, end the kernel or leave a process behind is graded
beside correct ones: right scores, a reason for every zero in the CSV, the feedback and the gradebook,
and no process left. The grade command killed half-way and run again records everyone exactly once
with the same scores; an unreachable gradebook stops it before any grading; a grading worker killed
mid-batch costs nothing. Exports and stored results are untrusted bytes, read with limits and checked.
`pytest -k faults` selects these.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

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

CHAPTER = "01_module_basics"
WRONG = next(v for v in VARIANTS if v.label == "ReLU after fc2 as well")
CORRECT_ACTIVATION = """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.activation_func = activation_func

    def forward(self, x):
        return self.activation_func(x)
"""
# Cells that break the grading process rather than the checks; graded with the static policy off (it
# would refuse `import os` before the cell ran), so the runtime must cope.
FAULTS = {  # student: (exercise broken, answer code, words the reason must contain)
    "endless_loop": ("ex1_5_count_parameters", "while True:\n    pass\n", "time limit of 10 s"),
    "memory_hog": ("ex1_6_layer_names", "hog = []\nwhile True:\n    hog.append(torch.ones(2 ** 26))\n", "memory"),
    "kernel_exit": ("ex1_4_custom_activation", "import os\nos._exit(3)\n", "exit code 3"),
}
FORK = (
    "ex1_4_custom_activation",
    "import os, time\nif os.fork() == 0:\n    time.sleep(600)\n    os._exit(0)\n" + CORRECT_ACTIVATION,
)
LIMITS = ("--Grading.cell_time_cap=10", "--Grading.memory_mb=2048")
POLICY_OFF = {"NNCOURSE_POLICY": "off"}


def _children_alive(course_dir: Path) -> list[str]:
    """Grading children of this course copy (cold ones, and zygotes with the children forked from
    them) still running after the grade command ended. Other test processes grading other copies
    (pytest-xdist) are told apart by the course root in their environment."""
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found = []
    for line in ps.splitlines()[1:]:
        pid, _, args = line.strip().partition(" ")
        if "ps -eo" in args or not ("nncourse.grading.child" in args or "nncourse.grading.zygote" in args):
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read: count it
            environ = [f"NNCOURSE_ROOT={course_dir}".encode()]
        if f"NNCOURSE_ROOT={course_dir}".encode() in environ:
            found.append(line)
    return found


def _csv_rows(course_dir):
    import csv

    with open(course_dir / "autograder/grades" / f"{CHAPTER}.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def faulty_class(tmp_path_factory):
    course_dir = make_course(tmp_path_factory.mktemp("faults"), [CHAPTER])
    solution = solution_notebook(CHAPTER)
    submit(course_dir, CHAPTER, "solution", solution)
    submit(course_dir, CHAPTER, "wrong", with_answers(solution, {WRONG.exercise: WRONG.code}))
    for student, (exercise, code, _) in FAULTS.items():
        submit(course_dir, CHAPTER, student, with_answers(solution, {exercise: code}))
    submit(course_dir, CHAPTER, "fork_outlives_cell", with_answers(solution, {FORK[0]: FORK[1]}))
    run = grade(course_dir, CHAPTER, *LIMITS, env_extra=POLICY_OFF)
    return course_dir, run, gradebook_scores(course_dir, CHAPTER)


@pytest.mark.slow
def test_faults_right_scores_beside_broken_submissions(faulty_class):
    course_dir, run, scores = faulty_class
    assert run.returncode == 0, run.stdout + run.stderr
    assert scores["solution"] == full_marks(CHAPTER)
    assert scores["fork_outlives_cell"] == full_marks(CHAPTER)
    assert sum(scores["wrong"].values()) == sum(full_marks(CHAPTER).values()) - 3 + sum(WRONG.expect.values())
    for student, (exercise, _, _) in FAULTS.items():
        expected = {c: (0.0 if c.startswith(exercise) else p) for c, p in full_marks(CHAPTER).items()}
        assert scores[student] == expected, student


@pytest.mark.slow
def test_faults_every_zero_has_its_reason(faulty_class):
    """In the CSV's reason column, at the top of the feedback, and as the gradebook's comment."""
    course_dir, _, _ = faulty_class
    rows = _csv_rows(course_dir)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir}/autograder/gradebook.db") as gb:
        for student, (exercise, _, words) in FAULTS.items():
            assert exercise in rows[student]["reason"] and words in rows[student]["reason"], rows[student]
            html = (course_dir / "autograder/feedback" / student / CHAPTER / f"{CHAPTER}.html").read_text()
            assert words in html, student
            comment = gb.find_comment(exercise, CHAPTER, CHAPTER, student).manual_comment or ""
            assert words in comment, (student, comment)
    assert rows["solution"]["reason"] == "" and rows["wrong"]["reason"] == ""


@pytest.mark.slow
def test_faults_no_process_left_behind(faulty_class):
    course_dir, _, _ = faulty_class
    assert _children_alive(course_dir) == []


@pytest.mark.slow
def test_faults_sandbox_runs_in_the_strongest_mode_available(faulty_class):
    """Fails if grading ran in a weaker mode than this machine allows (e.g. rlimits where bubblewrap works)."""
    course_dir, run, _ = faulty_class
    from nncourse.grading import sandbox

    strongest = sandbox.available_modes()[0]
    assert f"isolation: {strongest.name}" in run.stdout
    assert all(row["isolation"].startswith(strongest.name) for row in _csv_rows(course_dir).values())


@pytest.mark.slow
def test_faults_documented_limits_at_their_real_values(tmp_path):
    """The README's limits as they are: 30 s per cell, 4096 MiB of memory."""
    course_dir = make_course(tmp_path, [CHAPTER])
    solution = solution_notebook(CHAPTER)
    submit(
        course_dir,
        CHAPTER,
        "endless_loop",
        with_answers(solution, {"ex1_5_count_parameters": "while True:\n    pass\n"}),
    )
    submit(course_dir, CHAPTER, "memory_hog", with_answers(solution, {"ex1_6_layer_names": FAULTS["memory_hog"][1]}))
    start = time.monotonic()
    run = grade(course_dir, CHAPTER, "--no-feedback")
    assert run.returncode == 0, run.stdout + run.stderr
    assert time.monotonic() - start > 30
    rows = _csv_rows(course_dir)
    assert "time limit of 30 s" in rows["endless_loop"]["reason"]
    assert "4096 MiB" in rows["memory_hog"]["reason"] or "was killed" in rows["memory_hog"]["reason"]


# ----------------------------------------------------------------------------- the command itself
def _start_grading(course_dir, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ, NNCOURSE_ROOT=str(course_dir), **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "nncourse.grade", CHAPTER, "--workers", "1", "--no-feedback"],
        cwd=course_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.slow
def test_faults_grade_command_killed_and_rerun(tmp_path):
    """kill -9 half-way, then the same command: everyone recorded exactly once, the same scores."""
    course_dir = make_course(tmp_path, [CHAPTER])
    solution = solution_notebook(CHAPTER)
    students = {
        f"s{i}": (solution if i % 2 == 0 else with_answers(solution, {WRONG.exercise: WRONG.code})) for i in range(5)
    }
    for name, nb in students.items():
        submit(course_dir, CHAPTER, name, nb)
    submit(course_dir, CHAPTER, "untouched", release_notebook(CHAPTER))
    results = course_dir / "autograder/.cache/results"
    proc = _start_grading(course_dir)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(results.glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(list(results.glob("*.json"))) < len(students) + 1, "the kill came too late to test anything"
    rerun = grade(course_dir, CHAPTER, "--workers", "1", "--no-feedback")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    scores = gradebook_scores(course_dir, CHAPTER)
    assert sorted(scores) == sorted([*students, "untouched"])  # exactly once each (one row per student)
    wrong_total = sum(full_marks(CHAPTER).values()) - 3 + sum(WRONG.expect.values())
    for i, name in enumerate(students):
        assert sum(scores[name].values()) == (sum(full_marks(CHAPTER).values()) if i % 2 == 0 else wrong_total)
    assert sum(scores["untouched"].values()) == 0
    assert _children_alive(course_dir) == []


@pytest.mark.slow
def test_faults_unreachable_database_stops_before_grading(tmp_path):
    course_dir = make_course(tmp_path, [CHAPTER])
    submit(course_dir, CHAPTER, "solution", solution_notebook(CHAPTER))
    run = grade(course_dir, CHAPTER, "--db", "postgresql+psycopg2://grader@127.0.0.1:9/gradebook")
    assert run.returncode == 2
    assert "cannot be reached" in run.stderr and "INCOMPLETE" in run.stderr
    assert not (course_dir / "autograder/.cache/results").exists()  # nothing was graded


@pytest.mark.slow
def test_faults_worker_killed_mid_batch(tmp_path):
    course_dir = make_course(tmp_path, [CHAPTER])
    solution = solution_notebook(CHAPTER)
    for name in ("a", "b", "c"):
        submit(course_dir, CHAPTER, name, solution)
    marker = tmp_path / "killed"
    run = grade(
        course_dir, CHAPTER, "--workers", "2", "--no-feedback", env_extra={"NNCOURSE_FAULT_KILL_WORKER": f"b:{marker}"}
    )
    assert marker.exists(), "the fault was not injected"
    assert run.returncode == 0, run.stdout + run.stderr
    assert "a grading worker died" in run.stderr
    scores = gradebook_scores(course_dir, CHAPTER)
    assert scores == {name: full_marks(CHAPTER) for name in ("a", "b", "c")}


# ----------------------------------------------------------------------------- untrusted bytes
def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_faults_exports_are_read_with_limits():
    from nncourse import plaindata

    good = plaindata.dumps({"x": torch.ones(3), "n": 2})
    assert plaindata.loads(good)["n"] == 2
    text = np.frombuffer(b'{"a": 1}', dtype=np.uint8)
    compressed = io.BytesIO()
    np.savez_compressed(compressed, __json__=text, a0=np.zeros(10**6))
    bad = {
        "oversized": b"0" * (plaindata.MAX_BYTES + 1),
        "compressed (a decompression bomb)": compressed.getvalue(),
        "object array (pickle)": _npz(__json__=text, a0=np.array([object()], dtype=object)),
        "too many arrays": _npz(__json__=text, **{f"a{i}": np.zeros(1) for i in range(plaindata.MAX_ARRAYS + 1)}),
        "too many numbers": _npz(__json__=text, a0=np.zeros(plaindata.MAX_ELEMENTS + 1, dtype=np.uint8)),
        "not a zip": b"PK\x03\x04 garbage",
        "strings": _npz(__json__=text, a0=np.array(["x"])),
    }
    for raw in bad.values():
        with pytest.raises(plaindata.PlainDataError):
            plaindata.loads(raw)


def _reader(steps):
    from nncourse.grading.engine import _Reader

    read_fd, write_fd = os.pipe()
    return _Reader(steps, set(), set(), {}, {}, 7, write_fd), read_fd


STEPS = [
    {"cell_id": "ex1_1_simple_nn", "kind": "answer", "time_limit": 5},
    {"cell_id": "ex1_1_simple_nn_test_structure", "kind": "test", "time_limit": 5},
    {"cell_id": "ex1_1_simple_nn_test_hidden", "kind": "test", "time_limit": 5},
]


@pytest.mark.parametrize(
    "stream, why",
    [
        (b"start 1\n", "out of order"),
        (b"start 0\ndata ex1_1_simple_nn_test_structure 0 3\nabc", "data for"),  # during the answer cell
        (b"start 0\nend 0\nstart 1\ndata ex1_1_simple_nn_test_hidden 0 3\nabc", "data for"),  # another cell's
        (
            b"start 0\nend 0\nstart 1\ndata ex1_1_simple_nn_test_structure 0 1\nadata ex1_1_simple_nn_test_structure 0 1\nb",
            "data for",
        ),  # written twice
        (b"start 0\nend 0\nend 0\n", "unexpected"),
        (b"start 0\nstart 0\n", "out of order"),  # restarting a step to reset its clock
        (b"start 0\n" + b"x" * 5000, "overlong"),
        (b"start 0\ndata ex1_1_simple_nn 0 999999999999\n", "more data"),
    ],
)
def test_faults_forged_exports_are_tampering(stream, why):
    from nncourse.grading.engine import _Stop

    reader, _ = _reader(STEPS)
    with pytest.raises(_Stop):
        reader.feed(stream)
    assert why in reader.run.tampering


# ----------------------------------------------------------------------------- stored results
def test_faults_stored_results_are_signed_and_keyed(tmp_path, monkeypatch):
    from nncourse.grading import results

    monkeypatch.setattr(results, "CACHE_DIR", tmp_path / "results")
    result = results.SubmissionResult(CHAPTER, {"t": results.TestResult("t", 1.0, 2.0, "half")})
    results.store("k", result)
    assert results.load_stored("k").tests["t"].points == 1.0
    raw = json.loads((tmp_path / "results/k.json").read_text())
    raw["result"] = raw["result"].replace('"points": 1.0', '"points": 2.0')  # forged: full marks
    (tmp_path / "results/k.json").write_text(json.dumps(raw))
    assert results.load_stored("k") is None
    assert oct((tmp_path / "results.key").stat().st_mode & 0o777) == "0o600"

    # that changing each input misses the cache: tests/test_settings.py, input by input
