"""Grading on a real Dask cluster (``pytest -k dask``).

Each test starts a real scheduler and two real workers as separate processes on this machine
(``dask scheduler``, ``dask worker``), grades a small class with ``--scheduler`` and compares the
gradebook with the one the local path writes for the same submissions. Faults are real too: a worker
that kills itself (SIGKILL) while grading, a scheduler killed in the middle of a batch.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .grader_cases import chapter_cases
from .helpers import grade, gradebook_scores, make_course, release_notebook, solution_notebook, submit, with_answers

pytest.importorskip("distributed", reason="dask[distributed] is not installed (requirements-dev.txt)")
pytestmark = pytest.mark.slow  # real clusters and grading runs

CHAPTER = "01_module_basics"


class Cluster:
    """A scheduler and two single-threaded workers, started as `dask scheduler` and `dask worker`."""

    def __init__(self, folder: Path, course_dir: Path, worker_env: dict[str, str] | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = folder / "scheduler.json"
        env = dict(os.environ, NNCOURSE_ROOT=str(course_dir), **(worker_env or {}))
        self.logs = folder
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file)]
            + ["--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
            stdout=open(folder / "scheduler.log", "wb"),  # noqa: SIM115 - the process owns it
            stderr=subprocess.STDOUT,
            env=env,
        )
        (folder / "scheduler.pid").write_text(str(self.scheduler.pid))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline and self.scheduler.poll() is None, self.log("scheduler")
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        self.workers = [
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--name", f"worker{i}"]
                + ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                stdout=open(folder / f"worker{i}.log", "wb"),  # noqa: SIM115 - the process owns it
                stderr=subprocess.STDOUT,
                env=env,
            )
            for i in range(2)
        ]
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def clusters():
    started: list[Cluster] = []

    def start(*args, **kwargs) -> Cluster:
        started.append(Cluster(*args, **kwargs))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


def _class(course_dir: Path) -> list[str]:
    solution = solution_notebook(CHAPTER)
    wrong = [v for v in chapter_cases()[CHAPTER] if not v.correct]
    submit(course_dir, CHAPTER, "a_right", solution)
    submit(course_dir, CHAPTER, "b_blank", release_notebook(CHAPTER))
    submit(course_dir, CHAPTER, "c_wrong", with_answers(solution, {wrong[0].exercise: wrong[0].code}))
    submit(course_dir, CHAPTER, "d_wrong", with_answers(solution, {wrong[1].exercise: wrong[1].code}))
    submit(course_dir, CHAPTER, "e_right", solution)
    return ["a_right", "b_blank", "c_wrong", "d_wrong", "e_right"]


def _csv(course_dir: Path) -> dict[str, dict[str, str]]:
    with open(course_dir / "autograder/grades" / f"{CHAPTER}.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def local_scores(tmp_path_factory) -> dict:
    """The gradebook the local path writes for the class."""
    course_dir = make_course(tmp_path_factory.mktemp("local"), [CHAPTER])
    _class(course_dir)
    run = grade(course_dir, CHAPTER, "--no-feedback")
    assert run.returncode == 0, run.stdout + run.stderr
    return gradebook_scores(course_dir, CHAPTER)


def test_dask_grades_like_the_local_path_when_a_worker_dies_mid_batch(tmp_path, clusters, local_scores):
    course_dir = make_course(tmp_path / "course", [CHAPTER])
    students = _class(course_dir)
    marker = tmp_path / "killed"
    cluster = clusters(tmp_path / "cluster", course_dir, {"NNCOURSE_FAULT_KILL_DASK_WORKER": f"c_wrong:{marker}"})

    run = grade(course_dir, CHAPTER, "--no-feedback", "--scheduler", cluster.address)
    assert run.returncode == 0, run.stdout + run.stderr
    assert marker.exists(), "no worker was killed: the fault was not injected"
    assert sum(w.poll() is not None for w in cluster.workers) == 1, "one worker died, the other graded the rest"
    # each submission recorded once, with the scores the local path gives
    assert gradebook_scores(course_dir, CHAPTER) == local_scores
    rows = _csv(course_dir)
    assert sorted(rows) == students
    assert all("dask worker" in row["isolation"] and "bubblewrap" in row["isolation"] for row in rows.values()), rows
    # nothing redone, and the cluster not even contacted, on a regrade
    again = grade(course_dir, CHAPTER, "--no-feedback", "--scheduler", "tcp://127.0.0.1:9")
    assert again.returncode == 0 and "(5 submissions, 5 already recorded" in again.stdout, again.stdout + again.stderr


def test_dask_scheduler_lost_keeps_what_was_graded_and_a_rerun_grades_the_rest(tmp_path, clusters, local_scores):
    course_dir = make_course(tmp_path / "course", [CHAPTER])
    _class(course_dir)
    # the worker given the last submission kills the scheduler before grading it: the batch is cut off
    first = clusters(
        tmp_path / "first", course_dir, {"NNCOURSE_FAULT_KILL_DASK_SCHEDULER": f"e_right:{tmp_path / 'first'}"}
    )
    cut = grade(course_dir, CHAPTER, "--no-feedback", "--scheduler", first.address)
    assert first.scheduler.poll() is not None, "the scheduler was not killed: the fault was not injected"
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert "not graded" in cut.stderr and "scheduler" in cut.stderr and "e_right" in cut.stderr, cut.stderr
    assert "INCOMPLETE" in cut.stderr
    kept = gradebook_scores(course_dir, CHAPTER)
    assert "e_right" not in kept and kept == {s: local_scores[s] for s in kept}

    second = clusters(tmp_path / "second", course_dir)
    rerun = grade(course_dir, CHAPTER, "--no-feedback", "--scheduler", second.address)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"(5 submissions, {len(kept)} already recorded" in rerun.stdout, rerun.stdout
    assert gradebook_scores(course_dir, CHAPTER) == local_scores


def test_dask_scheduler_unreachable_is_one_clear_error(tmp_path):
    course_dir = make_course(tmp_path / "course", [CHAPTER])
    _class(course_dir)
    run = grade(course_dir, CHAPTER, "--no-feedback", "--scheduler", "tcp://127.0.0.1:9")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "the Dask scheduler at tcp://127.0.0.1:9 cannot be reached" in run.stderr
    assert not (course_dir / "autograder/grades" / f"{CHAPTER}.csv").exists()
