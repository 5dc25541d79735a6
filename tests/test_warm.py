"""Issue 19, the warm start: children forked from a prepared zygote (``grading/zygote.py``, ``warm.py``).

What a cold child guarantees must hold for a forked one (its isolation is proved beside the cold
child's in tests/test_isolation.py); here: exit statuses and kills reach the engine as they do from
a cold child, nothing outlives the grader, a dead zygote is replaced, the learner's process holds no
descriptor but its own, a GPU or the setting means cold starts, and a class graded warm gets exactly
the results it gets cold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from nncourse import course
from nncourse.grading import engine, results, sandbox, warm

from .grader_cases import chapter_cases, submissions
from .helpers import solution_notebook, with_answers

CHAPTER = "01_module_basics"


def _constant_env(job_dir: Path) -> dict[str, str]:
    return {k: v for k, v in engine.child_env(job_dir).items() if k not in warm._PER_JOB}


@pytest.fixture(scope="module")
def zygote():
    if warm.unavailable():
        pytest.skip(f"no warm start here: {warm.unavailable()}")
    made = warm.Zygote(CHAPTER, False, _constant_env(Path("/nonexistent")))
    yield made
    made.close()


def _run(zygote, code: str, timeout: float = 60, kill_after: float | None = None) -> tuple[int, str, str]:
    """Run ``code`` in a child forked from ``zygote``: (return code, what it wrote to fd 3, its log)."""
    grading_root = Path(tempfile.mkdtemp(prefix="nncourse-grading-", dir=warm.jobs_root()))
    job_dir = grading_root / "w" / "job"
    sandbox.prepare_job_dir(job_dir, data=False)
    read_fd, write_fd = os.pipe()
    control_read, control_write = os.pipe()
    with open(grading_root / "child.log", "wb") as log:
        child = zygote.start(
            job_dir, grading_root, engine.child_env(job_dir), (write_fd, control_read, log.fileno()), code
        )
    os.close(write_fd)
    os.close(control_read)
    if kill_after is not None:
        os.read(read_fd, 3)  # the child says it is up
        time.sleep(kill_after)
        child.kill()
    code_ = child.wait(timeout)
    said = b""
    while chunk := os.read(read_fd, 1 << 16):
        said += chunk
    os.close(read_fd)
    os.close(control_write)
    return code_, said.decode(), (grading_root / "child.log").read_text()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),
        ("raise SystemExit(3)", 3),
        ("import os; os._exit(0)", 0),
        ("1 / 0", 1),
    ],
)
def test_warm_exit_statuses_reach_the_engine_as_from_a_cold_child(zygote, code, expected):
    assert _run(zygote, code)[0] == expected


def test_warm_kill_ends_the_child_and_what_it_started(zygote):
    marker = f"nncourse-marker-{uuid.uuid4().hex}"
    code = f"import os, time  # {marker}\nos.write(3, b'up ')\ntime.sleep(600)"
    start = time.monotonic()
    returncode, _, _ = _run(zygote, code, kill_after=0.2)
    assert returncode == -signal.SIGKILL and time.monotonic() - start < 30
    assert _alive(marker) == []
    assert zygote.alive()  # and it serves the next one
    assert _run(zygote, "import os; os.write(3, b'next')")[:2] == (0, "next")


def test_warm_child_holds_only_its_own_descriptors(zygote):
    """fds 0-4 (null, the log twice, the two pipes): not the zygote's socket, not another job's files."""
    code = "import os, json; os.write(3, json.dumps(sorted(int(f) for f in os.listdir('/proc/self/fd'))).encode())"
    returncode, said, log = _run(zygote, code)
    assert returncode == 0, log
    fds = set(eval(said)) - {max(eval(said))}  # the listing's own descriptor is the highest
    assert fds == {0, 1, 2, 3, 4}


def test_warm_child_sees_a_fresh_tmp_and_no_other_job(zygote):
    first = _run(zygote, "import os; open('/tmp/left-behind', 'w').write('x'); os.write(3, os.getcwd().encode())")
    assert first[0] == 0, first[2]
    code = textwrap.dedent(
        f"""
        import os
        seen = os.listdir('/tmp') + os.listdir({str(warm.jobs_root())!r})
        os.write(3, repr(seen).encode())
        """
    )
    returncode, said, log = _run(zygote, code)
    assert returncode == 0, log
    assert "left-behind" not in said and Path(first[1]).parent.parent.name not in said


def test_warm_nothing_outlives_the_grader(tmp_path):
    """The grading process dies with a child running: the zygote and the child go with it."""
    if warm.unavailable():
        pytest.skip(warm.unavailable())
    marker = f"nncourse-marker-{uuid.uuid4().hex}"
    script = textwrap.dedent(
        f"""
        import os, sys, tempfile
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from tests.test_warm import _constant_env
        from nncourse.grading import engine, results, sandbox, warm
        zygote = warm.Zygote({CHAPTER!r}, False, _constant_env(Path("/nonexistent")))
        root = Path(tempfile.mkdtemp(dir=warm.jobs_root()))
        job = root / "w" / "job"
        sandbox.prepare_job_dir(job, data=False)
        r, w = os.pipe()
        c, _ = os.pipe()
        zygote.start(job, root, engine.child_env(job), (w, c, 1), "import time, os  # {marker}\\nos.write(3, b'up')\\ntime.sleep(600)")
        os.read(r, 2)
        print("zygote", zygote.proc.pid, flush=True)
        os._exit(0)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "zygote" in run.stdout, run.stderr
    zygote_pid = int(run.stdout.split()[-1])
    for _ in range(100):
        if not _alive(marker) and not _exists(zygote_pid):
            break
        time.sleep(0.1)
    assert _alive(marker) == [] and not _exists(zygote_pid)


def test_warm_a_dead_zygote_is_replaced(tmp_path, grading_settings):
    grading_settings()
    if warm.unavailable():
        pytest.skip(warm.unavailable())
    first = engine.grade(CHAPTER, _solution(tmp_path), refresh=True)
    assert "warm start" in first.sandbox and first.total > 0
    for zygote in list(warm._zygotes.values()):
        os.killpg(zygote.proc.pid, signal.SIGKILL)
        zygote.proc.wait()
    again = engine.grade(CHAPTER, _solution(tmp_path), refresh=True)
    assert "warm start" in again.sandbox and again.total == first.total


def test_warm_a_new_worker_starts_its_zygote_before_its_first_submission(tmp_path, grading_settings):
    """A grading worker starts its zygote as it starts (``warm.prestart``), from what an earlier run of
    the same library found about the chapter, without waiting for it; the first submission then
    uses that zygote. With nothing found yet, nothing is started early."""
    grading_settings()
    if warm.unavailable():
        pytest.skip(warm.unavailable())
    warm._flags().unlink(missing_ok=True)
    warm._REMEMBERED.clear()
    warm.close_all()
    warm.prestart(CHAPTER)
    assert not warm._zygotes, "started without knowing how"
    first = engine.grade(CHAPTER, _solution(tmp_path), refresh=True)
    assert "warm start" in first.sandbox and first.total > 0
    warm.close_all()
    warm.prestart(CHAPTER)
    (early,) = warm._zygotes.values()
    assert early.alive() and not early.ready
    again = engine.grade(CHAPTER, _solution(tmp_path), refresh=True)
    assert list(warm._zygotes.values()) == [early] and early.ready
    assert "warm start" in again.sandbox and again.total == first.total


def test_warm_start_needs_the_library_outside_tmp(monkeypatch, grading_settings):
    """Each warm child gets a fresh, empty /tmp: a course or environment kept there (a clone in /tmp)
    would vanish from under it, so such a course grades with cold starts, saying why."""
    grading_settings()
    monkeypatch.setattr(sys, "prefix", "/usr")  # the environment elsewhere: the library decides
    monkeypatch.setattr(results, "library_dir", lambda: Path("/tmp/clone/autograder/nncourse"))
    assert "/tmp/clone/autograder/nncourse lies under /tmp" in warm.status(CHAPTER)
    assert warm.status(CHAPTER).startswith("cold start:")


def test_warm_start_off_or_a_gpu_means_cold(monkeypatch, grading_settings, tmp_path):
    grading_settings(warm_start=False)
    assert "cold start: turned off" in warm.status(CHAPTER)
    result = engine.grade(CHAPTER, _solution(tmp_path), refresh=True)
    assert "cold start: turned off" in result.sandbox and result.total > 0
    grading_settings()
    monkeypatch.setattr(sandbox, "_gpu_devices", lambda: ["/dev/nvidia0"])
    assert warm.status(CHAPTER).startswith("cold start: a GPU is visible")
    assert (
        warm.start_child(CHAPTER, False, warm.jobs_root() / "x" / "job", warm.jobs_root() / "x", {}, (0, 0, 0)) is None
    )


@pytest.mark.slow
@pytest.mark.parametrize("chapter", course.chapters())
def test_warm_grades_the_style_corpus_exactly_as_cold(chapter, grading_settings, tmp_path):
    """Submissions graded with the same probe inputs both ways get the same points and the same
    messages, cell by cell: the solution of every chapter, and in chapter 1 every submission built
    from tests/grader_cases (tests/test_grader.py grades the whole corpus of every chapter, warm,
    against the points each variant must get)."""
    if warm.unavailable():
        pytest.skip(warm.unavailable())
    solution = solution_notebook(chapter)
    class_ = {"solution": solution}
    for name, variants in submissions(chapter_cases()[chapter]).items() if chapter == CHAPTER else []:
        class_[name] = with_answers(solution, {ex: v.code for ex, v in variants.items()})
    results = {}
    for start in ("warm", "cold"):
        grading_settings(warm_start=start == "warm")
        for name, nb in class_.items():
            path = tmp_path / f"{name}.ipynb"
            path.write_text(__import__("nbformat").writes(nb))
            result = engine.grade(chapter, path, refresh=True)
            assert start in result.sandbox.split("; ")[-1], result.sandbox
            results[start, name] = {c: (t.points, t.message) for c, t in result.tests.items()}
    for name in class_:
        assert results["warm", name] == results["cold", name], name


# ----------------------------------------------------------------------------- helpers
def _solution(tmp_path: Path) -> Path:
    path = tmp_path / "solution.ipynb"
    path.write_text(__import__("nbformat").writes(solution_notebook(CHAPTER)))
    return path


def _alive(pattern: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if pattern in line and "ps -eo" not in line]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")  # a zombie is gone
