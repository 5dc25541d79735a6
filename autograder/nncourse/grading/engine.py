"""Grade one submission: run it in the sandbox, judge what it exported, here.

``grade(chapter, notebook_path)`` returns a :class:`SubmissionResult` with the points of every
test cell and the reasons behind each loss. Results are cached by the content of the job and of
the checking library, so regrading the same submission gives the same scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import checking, course, plaindata, probing, properties, settings
from . import results, sandbox, warm
from .job import Job, build_job, read_submission
from .results import SubmissionResult, TestResult, load_stored, store
from .sandbox import child_env

# The seed of this grading process's probe inputs: drawn here, sent to the child only when a test
# cell starts (see child.py), so answers cannot be written for the inputs they will meet.
_RUN_SALT = secrets.randbelow(2**31 - 1)


# ----------------------------------------------------------------------------- running the child
def _describe_exit(code: int) -> str:
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGKILL:
            return "was killed (out of memory, or stopped by the system)"
        if sig == signal.SIGXFSZ:
            return "wrote a file larger than the grading limit"
        return f"crashed (signal {sig.name})"
    return f"ended the kernel (exit code {code}: exit(), os._exit() or a crash)"


# what the grader accepts from one child in all, whatever it claims


@dataclass
class ChildRun:
    """What one run of the child told the grader, as the grader saw it."""

    finished: bool = False
    failed: int | None = None  # index of the step that hung, crashed or tampered
    reason: str = ""
    tampering: str = ""  # set when the failure is tampering (integrity or protocol)


class _Reader:
    """Parses the child's stream and holds it to the protocol (see child.py).

    Exports are accepted only for the test step that is running, each check index once; anything
    out of order is tampering. Time limits come from this process's clock, set when a step starts
    and never extended by what the child says.
    """

    def __init__(
        self, steps: list[dict], skip: set[int], done: set[str], exports: dict, errors: dict, salt: int, control_fd: int
    ):
        self.steps, self.skip, self.done, self.exports, self.errors = steps, skip, done, exports, errors
        self.salt, self.control_fd = salt, control_fd
        self.buffer = bytearray()  # grows by chunks; consumed from the front
        self.current: int | None = None
        self.last_started = -1
        self.received = 0
        self.run = ChildRun()
        grading = settings.current()
        self.between_steps = grading.between_steps_limit
        self.max_bytes = grading.max_export_bytes
        self.deadline = time.monotonic() + grading.startup_limit
        self.limit = grading.startup_limit

    def violation(self, what: str) -> None:
        self.run.tampering = f"the grading protocol was broken ({what})"
        raise _Stop()

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        while True:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                if len(self.buffer) > 4096:
                    self.violation("an overlong line")
                return
            words = self.buffer[:newline].decode(errors="replace").split(" ")
            size = 0
            if words[0] in ("data", "error", "tamper"):
                try:
                    size = int(words[-1])
                except ValueError:
                    self.violation("a malformed frame")
                if size < 0 or self.received + size > self.max_bytes:
                    self.violation("more data than the grader accepts")
                if len(self.buffer) < newline + 1 + size:
                    return  # wait for the whole payload
            payload = bytes(self.buffer[newline + 1 : newline + 1 + size])
            del self.buffer[: newline + 1 + size]
            self.received += size
            self.handle(words, payload)

    def handle(self, words: list[str], payload: bytes) -> None:
        word = words[0]
        now = time.monotonic()
        if word == "start" and len(words) == 2 and words[1].isdigit():
            index = int(words[1])
            expected = next((i for i in range(self.last_started + 1, len(self.steps)) if i not in self.skip), None)
            if self.current is not None or index != expected:
                self.violation(f"step {index} started out of order")
            self.current, self.last_started = index, index
            self.limit = self.steps[index]["time_limit"]
            self.deadline = now + self.limit
            if self.steps[index]["kind"] == "test" and self.steps[index]["cell_id"] not in self.done:
                os.write(self.control_fd, f"salt {self.salt}\n".encode())
        elif word == "end" and len(words) == 2 and self.current is not None and words[1] == str(self.current):
            self.current = None
            self.limit = self.between_steps
            self.deadline = now + self.between_steps
        elif word == "data" and len(words) == 4 and self.current is not None:
            step = self.steps[self.current]
            key = (words[1], words[2])
            if step["kind"] != "test" or words[1] != step["cell_id"] or not words[2].isdigit() or key in self.exports:
                self.violation(f"data for {words[1]} while step {self.current} ran")
            self.exports[key] = payload
        elif (
            word == "error"
            and len(words) == 3
            and self.current is not None
            and words[1] == self.steps[self.current]["cell_id"]
        ):
            self.errors[words[1]] = payload[:5000]
        elif word == "tamper" and len(words) == 3 and self.current is not None:
            self.run.tampering = payload[:2000].decode(errors="replace")
            raise _Stop()
        elif word == "finished" and len(words) == 1 and self.current is None:
            self.run.finished = True
        else:
            self.violation(f"an unexpected message {' '.join(words)[:60]!r}")


class _Stop(Exception):
    pass


def _run_child(
    spec: dict, job_dir: Path, grading_root: Path, exports: dict, errors: dict, salt: int, chapter: str | None = None
) -> ChildRun:
    """Run the child once, collecting its exports into ``exports``/``errors``: forked from the chapter's
    zygote (``warm.py``) when it can be, else started cold."""
    (job_dir / "job.json").write_text(json.dumps(spec))
    read_fd, write_fd = os.pipe()
    control_read, control_write = os.pipe()
    stage = Path(tempfile.mkdtemp(prefix="nncourse-stage-"))
    env = child_env(job_dir)
    steps = spec["steps"]
    reader = _Reader(steps, set(spec["skip"]), set(spec["done"]), exports, errors, salt, control_write)
    with open(job_dir / "child.log", "ab") as log:
        proc: subprocess.Popen | warm.WarmChild | None = None
        if chapter is not None:
            proc = warm.start_child(
                chapter, bool(spec["hypothesis"]), job_dir, grading_root, env, (write_fd, control_read, log.fileno())
            )
        if proc is None:
            cage = sandbox.cage(
                [sys.executable, "-m", "nncourse.grading.child", str(job_dir)], job_dir, grading_root, stage
            )
            proc = subprocess.Popen(
                cage.argv,
                cwd=job_dir,
                env=dict(env, NNCOURSE_PROGRESS_FD=str(write_fd), NNCOURSE_CONTROL_FD=str(control_read)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd, control_read),
                start_new_session=True,
                preexec_fn=cage.preexec_fn,
            )
    os.close(write_fd)
    os.close(control_read)
    grading = settings.current()
    total_deadline = (
        time.monotonic()
        + grading.startup_limit
        + sum(s["time_limit"] for s in steps)
        + grading.between_steps_limit * len(steps)
    )
    timed_out = False
    try:
        while True:
            deadline = min(reader.deadline, total_deadline)
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                timed_out = True
                break
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            reader.feed(chunk)
    except _Stop:
        pass
    except OSError:  # the control pipe closed: the child is gone
        pass
    finally:
        os.close(read_fd)
        os.close(control_write)
        try:
            proc.wait(timeout=10 if reader.run.finished else 0.1)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            if isinstance(proc, warm.WarmChild):
                proc.kill()
            else:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        shutil.rmtree(stage, ignore_errors=True)
    run = reader.run
    if run.tampering:
        run.finished, run.failed = False, reader.current if reader.current is not None else reader.last_started
        run.reason = "was stopped for tampering: " + run.tampering
        return run
    if run.finished and proc.returncode == 0:
        return run
    run.finished, run.failed = False, reader.current
    if timed_out:
        run.reason = f"ran longer than its time limit of {reader.limit:.0f} s and was stopped"
    else:
        run.reason = _describe_exit(-signal.SIGKILL if proc.returncode is None else proc.returncode)
    return run


@dataclass
class Outcome:
    """Everything the judges need from running a job: exports and what went wrong where."""

    exports: dict = field(default_factory=dict)  # (test cell id, check index) -> bytes
    errors: dict = field(default_factory=dict)  # cell id -> JSON bytes of its exception
    failures: dict = field(default_factory=dict)  # step index -> reason
    tampering: dict = field(default_factory=dict)  # exercise -> what was refused
    sandbox: str = ""
    seconds: float = 0.0  # wall time of the runs (set where they ran: here, or on a cluster worker)


def _exercise_of_step(steps: list, index: int) -> str | None:
    """The exercise a step belongs to; for a given cell, the answer cell before it."""
    for i in range(index, -1, -1):
        step = steps[i]
        if step["kind"] in ("answer", "test"):
            return course.exercise_of(step["cell_id"])
    return None


def run_job(job: Job, work_root: Path, salt: int | None = None) -> Outcome:
    """Run every step, restarting the child past any step that hangs, kills it or tampers."""
    job_dir = work_root / "job"
    sandbox.prepare_job_dir(job_dir)
    steps = [asdict_step(s) for s in job.steps]
    outcome = Outcome()
    salt = _RUN_SALT if salt is None else salt
    hidden = [str(p) for p in sandbox.hidden_roots(work_root.parent)]
    readable = [str(p) for p in sandbox.visible_paths(job_dir)]
    refused = {i for i, s in enumerate(job.steps) if course.exercise_of(s.cell_id) in job.refused}
    hypothesis = properties.used_by(job.chapter)
    for _ in range(len(steps) + 1):
        skip = set(outcome.failures) | refused
        for exercise in outcome.tampering:
            skip |= {i for i, s in enumerate(steps) if course.exercise_of(s["cell_id"]) == exercise}
        done = sorted({cell for cell, _ in outcome.exports})
        spec = {
            "steps": steps,
            "skip": sorted(skip),
            "done": done,
            "hidden": hidden,
            "readable": readable,
            "hypothesis": hypothesis,
        }
        run = _run_child(spec, job_dir, work_root.parent, outcome.exports, outcome.errors, salt, job.chapter)
        if run.finished:
            break
        if run.failed is None or run.failed < 0:  # died before the first cell: nothing can be graded
            outcome.failures.update(
                {
                    i: f"the grading process {run.reason} before running any cell"
                    for i in range(len(steps))
                    if i not in skip
                }
            )
            break
        if run.tampering:
            exercise = _exercise_of_step(steps, run.failed)
            if exercise is None:
                outcome.failures[run.failed] = run.reason
            else:
                outcome.tampering[exercise] = run.tampering
                for key in [k for k in outcome.exports if course.exercise_of(k[0]) == exercise]:
                    del outcome.exports[key]
            continue
        outcome.failures[run.failed] = run.reason
    # after the runs, so a zygote refused on first use is reported as the cold start it became
    outcome.sandbox = f"{sandbox.mode()}; {warm.status(job.chapter)}"
    return outcome


def asdict_step(step) -> dict:
    return {"cell_id": step.cell_id, "kind": step.kind, "source": step.source, "time_limit": step.time_limit}


# ----------------------------------------------------------------------------- judging, outside
def judge_job(job: Job, outcome: Outcome) -> SubmissionResult:
    points = {course.grade_id(c): course.points(c) for c in job.notebook.cells if course.is_test(c)}
    failures = outcome.failures
    blocked: dict[str, str] = {}  # exercise -> why none of its tests could count
    answer_errors: dict[str, str] = {}
    for exercise, why in job.refused.items():
        blocked[exercise] = f"your answer cell was {why}"
    for exercise, what in outcome.tampering.items():
        blocked.setdefault(exercise, f"your answer changed what the grader relies on, which is not allowed: {what}")
    for index, step in enumerate(job.steps):
        if step.kind != "answer" or step.cell_id in blocked:
            continue
        if index in failures:
            blocked[step.cell_id] = f"your answer cell {failures[index]}"
            answer_errors[step.cell_id] = blocked[step.cell_id]
        elif step.cell_id in outcome.errors:
            answer_errors[step.cell_id] = _read_error(outcome.errors[step.cell_id])
    for exercise, why in blocked.items():
        answer_errors.setdefault(exercise, why)
    tests: dict[str, TestResult] = {}
    for index, step in enumerate(job.steps):
        if step.kind != "test":
            continue
        exercise = course.exercise_of(step.cell_id)
        max_points = points.get(step.cell_id, 0.0)
        messages, credit = [], 1.0
        if exercise in blocked:
            messages, credit = [f"✘ {blocked[exercise].rstrip('.')}. This test could not count."], 0.0
        elif index in failures:
            messages, credit = [f"✘ this test {failures[index]}"], 0.0
        else:
            for i, (exercise_id, test_name, names) in enumerate(course.checks_in(step.source)):
                verdict = _judge_export(
                    outcome.exports.get((step.cell_id, str(i))),
                    exercise_id,
                    test_name,
                    names,
                    outcome.errors.get(step.cell_id),
                    answer_errors.get(exercise),
                )
                messages.append(verdict.message)
                credit = min(credit, verdict.credit)
        tests[step.cell_id] = TestResult(step.cell_id, round(max_points * credit, 4), max_points, "\n".join(messages))
    result = SubmissionResult(job.chapter, tests, answer_errors, list(job.notes))
    result.tampering = {
        **{e: f"refused: {why}" for e, why in job.refused.items()},
        **{e: f"changed at run time: {what}" for e, what in outcome.tampering.items()},
    }
    result.reasons = _reasons(job, outcome, blocked, answer_errors, tests)
    return result


def _reasons(job: Job, outcome: Outcome, blocked: dict, answer_errors: dict, tests: dict) -> dict[str, str]:
    """Why an exercise lost all its points, in one sentence a learner understands (exercise -> sentence).

    Only causes outside the checks' own verdicts: refusals, tampering, time-outs, memory, a kernel
    that died, a check that could not run. A plain wrong answer is explained by its checks' messages.
    """
    reasons: dict[str, str] = {}
    for exercise, why in blocked.items():
        reasons[exercise] = why[0].upper() + why[1:] + ("" if why.endswith(".") else ".")
    for exercise, error in answer_errors.items():
        if exercise not in reasons and _is_memory_error(error):
            reasons[exercise] = (
                f"Your answer cell ran out of memory (the limit is {settings.current().memory_mb} MiB): {error[:200]}"
            )
    for index, step in enumerate(job.steps):
        exercise = course.exercise_of(step.cell_id)
        if step.kind == "test" and index in outcome.failures and exercise not in reasons and not job.unreadable:
            reasons[exercise] = f"The check {step.cell_id} {outcome.failures[index]}."
    return {
        e: r for e, r in reasons.items() if sum(t.points for c, t in tests.items() if course.exercise_of(c) == e) == 0
    }


def _is_memory_error(error: str) -> bool:
    return error.startswith("MemoryError") or "can't allocate memory" in error or "not enough memory" in error


def _read_error(raw: bytes) -> str:
    try:
        data = json.loads(raw[:5000])
        return f"{data.get('ename', 'Error')}: {data.get('evalue', '')}"
    except (ValueError, AttributeError, TypeError):
        return "an error (unreadable details)"


def _judge_export(raw: bytes | None, exercise_id: str, test_name: str, names, error: bytes | None, answer_error):
    test = checking.get_test(exercise_id, test_name)
    head = f"{exercise_id} · {test_name}"
    if raw is None:
        why = _read_error(error) if error else "the check did not run"
        hint = f" Your answer cell raised {answer_error}." if answer_error else ""
        return checking.Verdict(exercise_id, test_name, 0.0, f"✘ {head}: {why}.{hint}")
    try:
        got = plaindata.loads(raw)
    except plaindata.PlainDataError as e:
        return checking.Verdict(exercise_id, test_name, 0.0, f"✘ {head}: {e}")
    if not isinstance(got, dict) or got.get("__check__") != [exercise_id, test_name]:
        return checking.Verdict(exercise_id, test_name, 0.0, f"✘ {head}: the exported result is not this check's.")
    return checking.judge(test, got, checking.reference_data(test, names))


# ----------------------------------------------------------------------------- the entry point
def cache_inputs(job: Job) -> dict[str, str]:
    """Everything a stored result depends on besides the job itself; a change in any misses the cache."""
    return results.environment(job.chapter)


def cache_key(job: Job) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(cache_inputs(job), sort_keys=True).encode())
    h.update(job.fingerprint().encode())
    h.update(json.dumps(job.notes).encode())
    return h.hexdigest()


def grade_job(job: Job, refresh: bool = False) -> SubmissionResult:
    """Grade a job, or return the stored result of the identical job (unless ``refresh``)."""
    key = cache_key(job)
    stored = None if refresh else load_stored(key)
    if stored is not None:
        return stored
    if job.unreadable:  # stored too: a regrade then knows it from its stamp, as any other
        result = judge_unreadable(job)
        store(key, result)
        return result
    start = time.monotonic()
    grading_root = Path(tempfile.mkdtemp(prefix="nncourse-grading-", dir=warm.jobs_root()))
    try:
        work = grading_root / "w"
        work.mkdir()
        outcome = run_job(job, work)
    finally:
        shutil.rmtree(grading_root, ignore_errors=True)
    return judge_and_store(job, outcome, key, time.monotonic() - start)


def judge_unreadable(job: Job) -> SubmissionResult:
    """Nothing of the learner's to run: every test scores zero, with the reason."""
    failures = {
        i: "could not run: " + (job.notes[0] if job.notes else "no notebook")
        for i, s in enumerate(job.steps)
        if s.kind == "test"
    }
    result = judge_job(job, Outcome(failures=failures))
    result.sandbox = "not run"
    return result


def judge_and_store(job: Job, outcome: Outcome, key: str, seconds: float) -> SubmissionResult:
    """Judge what this process's salt made the child export (here, or on a cluster worker), and
    store the result under ``key``."""
    probing.set_salt(_RUN_SALT)  # the reference runs on the same inputs as the child's probes
    try:
        result = judge_job(job, outcome)
    finally:
        probing.set_salt(None)
    result.sandbox = outcome.sandbox
    result.seconds = round(seconds, 2)
    store(key, result)
    return result


def grade(chapter: str, notebook_path, refresh: bool = False) -> SubmissionResult:
    nb, problem = read_submission(notebook_path)
    return grade_job(build_job(chapter, nb, problem), refresh)
