"""Grade one submission: run it in the sandbox, judge what it exported, here.

``grade(chapter, notebook_path)`` returns a :class:`SubmissionResult` with the points of every
test cell and the reasons behind each loss. Results are cached by the content of the job and of
the checking library, so regrading the same submission gives the same scores.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import checking, notebooks, paths, plaindata
from . import sandbox
from .job import Job, build_job, read_submission

STARTUP_LIMIT = 90.0          # importing torch inside the sandbox, before the first cell
CACHE_DIR = paths.AUTOGRADER / ".cache" / "results"


@dataclass
class TestResult:
    cell_id: str
    points: float
    max_points: float
    message: str


@dataclass
class SubmissionResult:
    chapter: str
    tests: dict[str, TestResult]
    answer_errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sandbox: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tests.values())

    def by_exercise(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        for cell_id, t in self.tests.items():
            exercise = cell_id.split("_test", 1)[0]
            scores[exercise] = scores.get(exercise, 0.0) + t.points
        return scores

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "SubmissionResult":
        raw = json.loads(text)
        raw["tests"] = {k: TestResult(**v) for k, v in raw["tests"].items()}
        return cls(**raw)


# ----------------------------------------------------------------------------- running the child
def _describe_exit(code: int) -> str:
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGKILL:
            return "was killed (SIGKILL: out of memory or killed by the system)"
        if sig == signal.SIGXFSZ:
            return "wrote a file larger than the grading limit"
        return f"was stopped by signal {sig.name}"
    return f"exited with code {code} (the kernel died: exit(), os._exit() or a crash)"


def _run_child(spec: dict, job_dir: Path, grading_root: Path) -> tuple[bool, int | None, str]:
    """Run the child once. Returns (finished, index of the step it failed in, reason)."""
    (job_dir / "job.json").write_text(json.dumps(spec))
    out = job_dir / "out"
    out.mkdir(exist_ok=True)
    read_fd, write_fd = os.pipe()
    stage = Path(tempfile.mkdtemp(prefix="nncourse-stage-"))
    cage = sandbox.cage([sys.executable, "-m", "nncourse.grading.child", str(job_dir)], job_dir, grading_root, stage)
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
        "HOME": str(job_dir / "home"), "TMPDIR": str(job_dir / "tmp"), "MPLCONFIGDIR": str(job_dir / "home"),
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8",
        "NNCOURSE_PROGRESS_FD": str(write_fd), "NNCOURSE_ROOT": str(paths.REPO_ROOT),
        "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore", "NNCOURSE_GRADING_DATA": str(job_dir / "data"),
    }
    for name in ("NNCOURSE_DEVICE", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "PYTHONPATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    steps = spec["steps"]
    with open(job_dir / "child.log", "ab") as log:
        proc = subprocess.Popen(cage.argv, cwd=job_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, pass_fds=(write_fd,), start_new_session=True,
                                preexec_fn=cage.preexec_fn)
    os.close(write_fd)
    current, deadline, limit = None, time.monotonic() + STARTUP_LIMIT, STARTUP_LIMIT
    finished, buffer, reason = False, b"", ""
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                reason = f"timed out after {limit:.0f} s"
                break
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                word, _, arg = line.decode(errors="replace").partition(" ")
                if word == "start" and arg.isdigit() and int(arg) < len(steps):
                    current = int(arg)
                    limit = steps[current]["time_limit"]
                    deadline = time.monotonic() + limit
                elif word == "end":
                    deadline = time.monotonic() + STARTUP_LIMIT
                elif word == "finished":
                    finished = True
    finally:
        os.close(read_fd)
        try:
            proc.wait(timeout=10 if not reason else 0.1)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        shutil.rmtree(stage, ignore_errors=True)
    if finished and proc.returncode == 0:
        return True, None, ""
    if not reason:
        reason = _describe_exit(proc.returncode)
    return False, current, reason


def run_job(job: Job, work_root: Path) -> tuple[Path, dict[int, str], str]:
    """Run every step, restarting the child past any step that hangs or kills it.

    Returns the folder of exports, {step index: what went wrong there}, and the sandbox mode.
    """
    job_dir = work_root / "job"
    sandbox.prepare_job_dir(job_dir)
    steps = [asdict_step(s) for s in job.steps]
    failures: dict[int, str] = {}
    hidden = [str(p) for p in sandbox.hidden_roots(work_root.parent)]
    readable = [str(p) for p in sandbox.visible_paths(job_dir)]
    for _ in range(len(steps) + 1):
        done = sorted({p.name.split("__")[0] for p in (job_dir / "out").glob("*__*")} if (job_dir / "out").exists() else set())
        spec = {"steps": steps, "skip": sorted(failures), "done": done, "hidden": hidden, "readable": readable}
        finished, failed, reason = _run_child(spec, job_dir, work_root.parent)
        if finished:
            break
        if failed is None:   # died before the first cell: nothing can be graded
            failures.update({i: f"the grading process {reason} before running any cell"
                             for i in range(len(steps)) if i not in failures})
            break
        failures[failed] = reason
    return job_dir / "out", failures, sandbox.mode()


def asdict_step(step) -> dict:
    return {"cell_id": step.cell_id, "kind": step.kind, "source": step.source, "time_limit": step.time_limit}


# ----------------------------------------------------------------------------- judging, outside
def judge_job(job: Job, out_dir: Path, failures: dict[int, str]) -> SubmissionResult:
    points = {notebooks.grade_id(c): notebooks.points(c) for c in job.notebook.cells if notebooks.is_test(c)}
    answer_failure: dict[str, str] = {}
    answer_errors: dict[str, str] = {}
    for index, step in enumerate(job.steps):
        error_file = out_dir / f"{step.cell_id}__error.json"
        if step.kind == "answer":
            if index in failures:
                answer_failure[step.cell_id] = f"your answer cell {failures[index]}"
                answer_errors[step.cell_id] = answer_failure[step.cell_id]
            elif error_file.exists():
                answer_errors[step.cell_id] = _read_error(error_file)
    tests: dict[str, TestResult] = {}
    for index, step in enumerate(job.steps):
        if step.kind != "test":
            continue
        exercise = step.cell_id.split("_test", 1)[0]
        max_points = points.get(step.cell_id, 0.0)
        messages, credit = [], 1.0
        calls = notebooks.checks_in(step.source)
        if index in failures:
            messages, credit = [f"✘ this test {failures[index]}"], 0.0
        elif exercise in answer_failure:
            messages, credit = [f"✘ {answer_failure[exercise]}, so this test could not run."], 0.0
        else:
            for i, (exercise_id, test_name, names) in enumerate(calls):
                verdict = _judge_export(out_dir / f"{step.cell_id}__{i}.npz", exercise_id, test_name, names,
                                        out_dir / f"{step.cell_id}__error.json", answer_errors.get(exercise))
                messages.append(verdict.message)
                credit = min(credit, verdict.credit)
        tests[step.cell_id] = TestResult(step.cell_id, round(max_points * credit, 4), max_points, "\n".join(messages))
    return SubmissionResult(job.chapter, tests, answer_errors, list(job.notes))


def _read_error(path: Path) -> str:
    try:
        raw = json.loads(path.read_text()[:5000])
        return f"{raw.get('ename', 'Error')}: {raw.get('evalue', '')}"
    except (OSError, ValueError, AttributeError):
        return "an error (unreadable details)"


def _judge_export(path: Path, exercise_id: str, test_name: str, names, error_file: Path, answer_error):
    test = checking.get_test(exercise_id, test_name)
    head = f"{exercise_id} · {test_name}"
    if not path.exists():
        why = _read_error(error_file) if error_file.exists() else "the check did not run"
        hint = f" Your answer cell raised {answer_error}." if answer_error else ""
        return checking.Verdict(exercise_id, test_name, 0.0, f"✘ {head}: {why}.{hint}")
    try:
        got = plaindata.load(path)
    except plaindata.PlainDataError as e:
        return checking.Verdict(exercise_id, test_name, 0.0, f"✘ {head}: {e}")
    if not isinstance(got, dict) or got.get("__check__") != [exercise_id, test_name]:
        return checking.Verdict(exercise_id, test_name, 0.0, f"✘ {head}: the exported result is not this check's.")
    return checking.judge(test, got, checking.reference_data(test, names))


# ----------------------------------------------------------------------------- the entry point
_LIBRARY_HASH: list[str] = []


def _library_hash() -> str:
    if not _LIBRARY_HASH:
        h = hashlib.sha256()
        for path in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):
            h.update(path.read_bytes())
        _LIBRARY_HASH.append(h.hexdigest())
    return _LIBRARY_HASH[0]


def cache_key(job: Job) -> str:
    h = hashlib.sha256()
    h.update(_library_hash().encode())
    h.update(paths.source_notebook(job.chapter).read_bytes())
    h.update(job.fingerprint().encode())
    h.update(json.dumps(job.notes).encode())
    return h.hexdigest()


def grade_job(job: Job, refresh: bool = False) -> SubmissionResult:
    """Grade a job, or return the stored result of the identical job (unless ``refresh``)."""
    key = cache_key(job)
    cached = CACHE_DIR / f"{key}.json"
    if not refresh and cached.exists():
        return SubmissionResult.from_json(cached.read_text())
    start = time.monotonic()
    if job.unreadable:   # nothing of the learner's to run: every test scores zero, with the reason
        failures = {i: "could not run: " + (job.notes[0] if job.notes else "no notebook")
                    for i, s in enumerate(job.steps) if s.kind == "test"}
        result = judge_job(job, Path("/nonexistent"), failures)
        result.sandbox = "not run"
        return result
    grading_root = Path(tempfile.mkdtemp(prefix="nncourse-grading-"))
    try:
        work = grading_root / "w"
        work.mkdir()
        out_dir, failures, mode = run_job(job, work)
        result = judge_job(job, out_dir, failures)
    finally:
        shutil.rmtree(grading_root, ignore_errors=True)
    result.sandbox = mode
    result.seconds = round(time.monotonic() - start, 2)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(result.to_json())
    os.replace(tmp, cached)
    return result


def grade(chapter: str, notebook_path, refresh: bool = False) -> SubmissionResult:
    nb, problem = read_submission(notebook_path)
    return grade_job(build_job(chapter, nb, problem), refresh)
