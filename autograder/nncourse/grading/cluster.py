"""Grading on a Dask cluster: the workers run submissions, the instructor's process judges and records.

``python -m nncourse.grade CHAPTER --scheduler tcp://host:8786`` builds every job here (the policy
review included), sends each one that has no stored result to the cluster, where :func:`run_remote`
runs it in the worker's sandbox exactly as local grading does (``engine.run_job``, warm or cold, with
this process's probe salt), and judges what comes back here (``engine.judge_and_store``). Workers
never see the gradebook or the verdicts; they need the same course, library, data and torch as the
instructor, which each job checks before running.

A worker that dies while grading: Dask gives its submissions to another worker (each is judged and
recorded once, when its result arrives here). The scheduler lost: the submissions still out are
reported as not graded, everything judged so far is stored and recorded, and a rerun sends only
what is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import course, settings
from . import faults, results

# what a result depends on that a worker must share with the instructor (isolation and device may
# differ between machines: each result says which it had)
_SHARED = ("library", "source", "torch", "limits", "policy", "data")

# one submission at a time per worker process, however many threads the worker was started with
# (the warm start's zygotes and the child's descriptors are per process)
_ONE_AT_A_TIME = threading.Lock()
CONNECT_TIMEOUT = 15  # seconds to reach the scheduler before giving up, with nothing sent


class ClusterUnavailable(RuntimeError):
    """The scheduler cannot be reached: nothing was sent."""


def shared_environment(chapter: str) -> str:
    environment = results.environment(chapter)
    return hashlib.sha256(json.dumps({k: environment[k] for k in _SHARED}, sort_keys=True).encode()).hexdigest()


def _fault(student: str) -> None:
    """Fault injection for tests/test_cluster.py (``grading/faults.py``): the worker given this student
    kills itself once, or kills the scheduler whose process id is in <folder>/scheduler.pid."""
    faults.kill_once("NNCOURSE_FAULT_KILL_DASK_WORKER", student)
    folder = faults.target("NNCOURSE_FAULT_KILL_DASK_SCHEDULER", student)
    if folder is not None:
        os.kill(int((Path(folder) / "scheduler.pid").read_text()), signal.SIGKILL)
        time.sleep(30)  # the batch is cut off here: this result never reaches the instructor


def run_remote(job, student: str, salt: int, config, expected: str):
    """Runs on a Dask worker: the job in this machine's sandbox; returns the ``engine.Outcome``."""
    from . import engine, warm

    with _ONE_AT_A_TIME:
        settings.use(config)  # the instructor's limits and isolation
        here = shared_environment(job.chapter)
        if here != expected:
            raise RuntimeError(
                "this Dask worker has a different course, checking library, torch or data than the "
                "instructor (start the workers from the same checkout and environment)"
            )
        _fault(student)
        grading_root = Path(tempfile.mkdtemp(prefix="nncourse-grading-", dir=warm.jobs_root()))
        try:
            work = grading_root / "w"
            work.mkdir()
            start = time.monotonic()
            outcome = engine.run_job(job, work, salt)
            outcome.sandbox = f"dask worker {os.uname().nodename}: {outcome.sandbox}"
            outcome.seconds = time.monotonic() - start
            return outcome
        finally:
            shutil.rmtree(grading_root, ignore_errors=True)


@dataclass
class ClusterRun:
    results: dict = field(default_factory=dict)  # student -> SubmissionResult
    failures: dict = field(default_factory=dict)  # student -> reason (recorded as a zero with it)
    keys: dict = field(default_factory=dict)  # student -> cache key
    built: dict = field(default_factory=dict)  # student -> results.Prebuilt
    unfinished: dict = field(default_factory=dict)  # student -> why it was not graded (run again)


def grade_on_cluster(chapter: str, students: list[str], address: str, refresh: bool, progress) -> ClusterRun:
    """Grade ``students`` on the cluster behind ``address``; ``progress(student)`` after each."""
    from distributed import Client, as_completed
    from distributed.scheduler import KilledWorker

    from . import engine
    from .job import build_job, read_submission

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterUnavailable(f"the Dask scheduler at {address} cannot be reached ({e})") from e
    run = ClusterRun()
    expected = shared_environment(chapter)
    config = settings.current().as_config()
    futures = {}
    try:
        submitted = settings.current().submitted_dir
        for student in students:
            try:
                nb, problem = read_submission(course.notebook_in(submitted / student, chapter))
                job = build_job(chapter, nb, problem)
                key = engine.cache_key(job)
                stored = None if refresh else results.load_stored(key)
                if stored is None and job.unreadable:
                    stored = engine.judge_unreadable(job)
                    results.store(key, stored)
            except Exception as e:  # a bug or a resource problem here must not stop the class
                run.failures[student] = f"grading failed: {type(e).__name__}: {e}"
                progress(student)
                continue
            if stored is not None:
                _keep(run, student, job, key, stored)
                progress(student)
                continue
            future = client.submit(
                run_remote,
                job,
                student,
                engine._RUN_SALT,
                config,
                expected,
                pure=False,
                key=f"nncourse-{student}-{key[:16]}",
            )
            futures[future] = (student, job, key)
        for future in as_completed(list(futures), loop=client.loop):
            student, job, key = futures[future]
            try:
                outcome = future.result()
            except KilledWorker:
                _zero(run, student, job, "the Dask workers that ran it died each time (killed, or out of memory)")
            except (asyncio.CancelledError, Exception) as e:
                if isinstance(e, asyncio.CancelledError) or client.status != "running":
                    why = getattr(e, "reason", None) or type(e).__name__
                    run.unfinished[student] = f"not graded: the connection to the Dask scheduler was lost ({why})"
                else:
                    _zero(run, student, job, f"failed on the cluster ({type(e).__name__}: {str(e)[:300]})")
            else:
                _keep(run, student, job, key, engine.judge_and_store(job, outcome, key, outcome.seconds))
            progress(student)
    finally:
        client.close(timeout=10)
    return run


def _keep(run: ClusterRun, student: str, job, key: str, result) -> None:
    run.results[student], run.keys[student] = result, key
    run.built[student] = results.Prebuilt(job.notebook, job.notes, result)


def _zero(run: ClusterRun, student: str, job, why: str) -> None:
    """Every test of the submission scores zero with ``why``; not stored, so a rerun tries again."""
    from . import engine

    reason = f"could not be graded: {why}; run the grade command again to retry"
    outcome = engine.Outcome(failures={i: reason for i, s in enumerate(job.steps) if s.kind == "test"})
    result = engine.judge_job(job, outcome)
    result.sandbox = "not run"
    run.results[student] = result
    run.built[student] = results.Prebuilt(job.notebook, job.notes, result)
