"""Issue 11, isolation by default: the grading child sees a file-system allowlist, no network, no root.

A tiny program runs through ``sandbox.cage`` exactly as ``engine._run_child`` runs the grading
child (same environment, job folder from ``sandbox.prepare_job_dir``, progress descriptor passed
along) and reports what it could reach. Another copy of the course is planted in the places a
hostile answer would look (/tmp, the home folder, /opt, /srv) while it runs. Everything here is
fast and needs no nbgrader; ``pytest -k isolation`` selects it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from traitlets import TraitError

from nncourse import course
from nncourse.grading import sandbox

REPO = course.REPO_ROOT.resolve()
LIBRARY = Path(sandbox.__file__).resolve().parents[1]
TEST_USER = "nncourse-grader"

# Run in the cage: report, as JSON, what this process can reach.
PROBE = r"""
import json, os, socket, sys
report = {"uid": os.getuid(), "euid": os.geteuid(), "progress_fd": False, "pid": os.getpid(),
          "processes": sorted(p for p in os.listdir("/proc") if p.isdigit())}
report["capabilities"] = [line.split()[1] for line in open("/proc/self/status") if line.startswith("Cap")]
try:
    import torch, nncourse, numpy
    report["imports"] = [torch.__name__, nncourse.__name__, float(torch.ones(3) @ torch.ones(3))]
except Exception as e:
    report["imports"] = repr(e)
try:
    os.write(int(os.environ["NNCOURSE_PROGRESS_FD"]), b"hello\n")
    report["progress_fd"] = True
except Exception as e:
    report["progress_fd"] = repr(e)
secrets = json.loads(sys.argv[1])
report["reached"] = {}
for path in secrets:
    got = []
    for how in (lambda p: os.listdir(p), lambda p: open(p, "rb").read(1), lambda p: os.stat(p)):
        try:
            how(path)
            got.append("yes")
        except OSError as e:
            got.append(type(e).__name__)
    report["reached"][path] = got
job = os.getcwd()
report["writes"] = {}
import nncourse
for folder in [job, "/", "/tmp", "/etc", "/usr/lib", sys.prefix, os.path.dirname(nncourse.__file__),
               os.path.realpath(sys.executable), "/work", "/root", "/home", "/dev/shm"] + json.loads(sys.argv[2]):
    target = folder if not os.path.isdir(folder) else os.path.join(folder, "planted-by-the-child")
    try:
        with open(target, "ab") as f:
            f.write(b"x")
        report["writes"][folder] = "yes"
    except OSError as e:
        report["writes"][folder] = type(e).__name__
seen = []
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/dev", "/sys") or root.startswith(("/proc/", "/dev/", "/sys/")):
        dirs[:] = []
        continue
    keep = []
    for d in dirs:
        full = os.path.join(root, d)
        if any(full == a or full.startswith(a + "/") for a in json.loads(sys.argv[3])):
            seen.append(full)          # an allowlisted tree: no need to walk it
        else:
            keep.append(d)
    dirs[:] = keep
    seen += [os.path.join(root, f) for f in files] + [root]
report["visible"] = sorted(set(seen))
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[4])), timeout=2).close()
    report["network"] = "connected"
except OSError as e:
    report["network"] = type(e).__name__
print("REPORT" + json.dumps(report))
"""

# Run as the grader (root or not): set up a job like the engine does, run PROBE in the cage.
DRIVER = r"""
import json, os, subprocess, sys, tempfile
from pathlib import Path
from nncourse.grading import sandbox
args = json.loads(sys.argv[1])
grading_root = Path(tempfile.mkdtemp(prefix="nncourse-grading-"))
job_dir = grading_root / "w" / "job"
sandbox.prepare_job_dir(job_dir)
stage = Path(tempfile.mkdtemp(prefix="nncourse-stage-"))
read_fd, write_fd = os.pipe()
env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "HOME": str(job_dir / "home"),
       "TMPDIR": str(job_dir / "tmp"), "MPLCONFIGDIR": str(job_dir / "home"), "OMP_NUM_THREADS": "1",
       "LANG": "C.UTF-8", "NNCOURSE_PROGRESS_FD": str(write_fd), "NNCOURSE_ROOT": os.environ.get("NNCOURSE_ROOT", ""),
       "NNCOURSE_GRADING_DATA": str(job_dir / "data")}
if args["warm"]:  # forked from a zygote, as the engine's warm start does
    from nncourse.grading import engine, warm
    grading_root = Path(tempfile.mkdtemp(prefix="nncourse-grading-", dir=warm.jobs_root()))
    job_dir = grading_root / "w" / "job"
    sandbox.prepare_job_dir(job_dir)
    env = engine.child_env(job_dir)
    zygote = warm.Zygote("01_module_basics", False, {k: v for k, v in env.items() if k not in warm._PER_JOB})
    control_read, control_write = os.pipe()
    with open(grading_root / "out.log", "wb") as log:
        child = zygote.start(job_dir, grading_root, env, (write_fd, control_read, log.fileno()), args["probe"],
                             args["argv"])
    os.close(control_read)
    rc = child.wait(300)
    stdout, stderr = (grading_root / "out.log").read_text(), ""
else:
    cage = sandbox.cage([sys.executable, "-c", args["probe"], *args["argv"]], job_dir, grading_root, stage)
    proc = subprocess.run(cage.argv, cwd=job_dir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          pass_fds=(write_fd,), start_new_session=True, preexec_fn=cage.preexec_fn, timeout=300)
    rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
os.close(write_fd)
progress = os.read(read_fd, 100).decode()
print("DRIVER" + json.dumps({"rc": rc, "stdout": stdout[-200000:], "stderr": stderr[-3000:],
                              "progress": progress, "mode": sandbox.mode().name, "job_dir": str(job_dir),
                              "written": sorted(p.name for p in job_dir.iterdir())}))
"""


def _strongest_or_skip() -> sandbox.Mode:
    best = sandbox.available_modes()[0]
    if best.name != "bubblewrap":
        pytest.skip(f"no file-system isolation possible here: {best.description}")
    return best


@pytest.fixture()
def course_copies(tmp_path):
    """Another copy of the course (a solution notebook and labels) where a hostile answer would look."""
    home = Path(os.path.expanduser("~"))
    yield from _plant([Path(tempfile.gettempdir()), home, Path("/opt"), Path("/srv")])


def _plant(places: list[Path]):
    made, secrets = [], []
    for place in places:
        if not place.is_dir():
            continue
        root = place / f"course-copy-{uuid.uuid4().hex[:8]}"
        try:
            (root / "solutions").mkdir(parents=True)
        except OSError:
            continue
        (root / "solutions" / "01_module_basics.ipynb").write_text('{"solution": true}')
        (root / "digits.csv").write_text("label\n7\n")
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        made.append(root)
        secrets += [str(root), str(root / "solutions" / "01_module_basics.ipynb"), str(root / "digits.csv")]
    yield secrets
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


def _repo_secrets() -> list[str]:
    wanted = [
        REPO,
        REPO / "solutions",
        REPO / "autograder" / "source",
        REPO / "data" / "digits",
        REPO / "data" / "digits" / "digits.csv",
        REPO / "autograder" / "gradebook.db",
        REPO / "README.md",
        Path("/root"),
        Path("/home"),
        Path("/opt"),
        Path("/srv"),
        Path("/mnt"),
        Path("/work"),
        Path("/etc/shadow"),
        Path("/etc/hostname"),
    ]
    return [str(p) for p in wanted]


@pytest.fixture()
def listener():
    """A host port that accepts connections: the child must not reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


def _run_driver(secrets: list[str], port: int, as_user: str | None = None, env_extra=None, warm=False) -> dict:
    allowed = [path for _, path in sandbox.allowlist()]
    args = {
        "warm": warm,
        "probe": PROBE,
        "argv": [
            json.dumps(secrets),
            json.dumps([s for s in secrets if os.path.isdir(s)]),
            json.dumps(allowed),
            str(port),
        ],
    }
    env = {**os.environ, **(env_extra or {})}
    command = [sys.executable, "-c", DRIVER, json.dumps(args)]
    if as_user:
        command = _as_user_command(as_user, command)
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd="/")
    line = next((row for row in run.stdout.splitlines() if row.startswith("DRIVER")), None)
    assert line, run.stdout[-3000:] + run.stderr[-3000:]
    driver = json.loads(line[len("DRIVER") :])
    report = next((row for row in driver["stdout"].splitlines() if row.startswith("REPORT")), None)
    assert driver["rc"] == 0 and report, driver
    return {**driver, "report": json.loads(report[len("REPORT") :])}


def _assert_isolated(result: dict, secrets: list[str], expect_uid: int | None = None):
    report, job_dir = result["report"], result["job_dir"]
    assert result["mode"] == "bubblewrap"
    assert report["imports"][:2] == ["torch", "nncourse"], report["imports"]
    assert report["progress_fd"] is True and result["progress"] == "hello\n"
    assert report["uid"] != 0 and report["euid"] != 0
    if expect_uid is not None:
        assert report["uid"] == expect_uid
    skeleton = {str(a) for _, p in sandbox.allowlist() for a in Path(p).parents}
    for path, reached in report["reached"].items():
        if path in skeleton:  # e.g. /root, /work/main: bare folders leading to the interpreter and library,
            continue  # checked by the walk below
        assert reached == ["FileNotFoundError"] * 3, (path, reached)
    # writes land in the job folder (and the child's private /tmp) only
    for folder, how in report["writes"].items():
        if folder.startswith("/tmp/") and folder != job_dir:
            continue  # the child's private /tmp: writable or not, nothing reaches the host (below)
        allowed = folder == job_dir or folder in ("/tmp", "/dev/shm")
        assert (how == "yes") == allowed, (folder, how)
    assert "planted-by-the-child" in result["written"]
    for secret in secrets:
        if os.path.isdir(secret):
            assert sorted(os.listdir(secret)) == ["digits.csv", "solutions"] or not secret.startswith(
                tuple(str(p) for p in Path(secret).parents if p.name.startswith("course-copy"))
            ), secret
            assert not (Path(secret) / "planted-by-the-child").exists()
    assert not (REPO / "planted-by-the-child").exists() and not Path("/tmp/planted-by-the-child").exists()
    assert report["network"] in ("ConnectionRefusedError", "OSError", "TimeoutError"), report["network"]
    # the whole visible file system is the allowlist, the job folder and the folders leading to them
    allowed = [p for _, p in sandbox.allowlist()] + [job_dir, "/tmp", "/etc/passwd", "/etc/group"]
    assert any(p.endswith("/job/home") for p in report["visible"]) or job_dir in report["visible"]
    ancestors = {str(a) for p in allowed for a in Path(p).parents}
    stray = [
        p
        for p in report["visible"]
        if p not in ancestors and not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed)
    ]
    assert not stray, stray[:20]


def test_isolation_strongest_mode_is_used(monkeypatch, grading_settings):
    grading_settings()
    monkeypatch.delenv("NNCOURSE_NO_NAMESPACES", raising=False)
    best = _strongest_or_skip()
    assert sandbox.mode().name == best.name == "bubblewrap"
    assert sandbox.mode().filesystem


def _warm_or_skip(start: str) -> None:
    from nncourse.grading import warm

    if start == "warm" and warm.unavailable():
        pytest.skip(f"no warm start here: {warm.unavailable()}")


@pytest.mark.parametrize("start", ["cold", "warm"])
def test_isolation_hides_the_machine_as_the_grader(course_copies, listener, start):
    """The same probe, started cold in the cage and forked from a zygote (``grading/zygote.py``)."""
    _strongest_or_skip()
    _warm_or_skip(start)
    secrets = course_copies + _repo_secrets()
    result = _run_driver(secrets, listener, warm=start == "warm")
    _assert_isolated(result, secrets, expect_uid=sandbox.NOBODY if os.geteuid() == 0 else os.getuid())
    if start == "warm":  # its own PID namespace, as under bwrap: its init is PID 1, it is PID 2
        assert result["report"]["pid"] == 2 and result["report"]["processes"] == ["1", "2"]
        assert result["report"]["capabilities"] == ["0000000000000000"] * 5


def _as_user_command(user: str, command: list[str]) -> list[str]:
    """Run ``command`` as ``user``. The interpreter may live where that user cannot reach (pyenv under
    /root, mode 0700): in a private mount namespace, the closed folder is replaced by an open one holding
    only the way to the interpreter. Nothing changes on the host."""
    entry = pwd.getpwnam(user)
    lines = ["set -e", "mount --make-rprivate /"]
    exe = Path(os.path.realpath(sys.executable))
    for closed in reversed(exe.parents):
        if str(closed) != "/" and not (closed.stat().st_mode & 0o001):
            inner = exe.relative_to(closed).parts[0]
            stage = tempfile.mkdtemp(prefix="nncourse-open-")
            lines += [
                f"mount -t tmpfs -o mode=755 tmpfs {stage}",
                f"mkdir {stage}/{inner}",
                f"mount --rbind {closed}/{inner} {stage}/{inner}",
                f"mount --move {stage} {closed}",
            ]
            break
    env = f"HOME={entry.pw_dir} USER={user} PATH=/usr/bin:/bin TMPDIR=/tmp NNCOURSE_ROOT={REPO}"
    lines.append(
        f"exec setpriv --reuid={entry.pw_uid} --regid={entry.pw_gid} --init-groups --reset-env "
        f"-- env {env} " + " ".join(_quote(a) for a in command)
    )
    return ["unshare", "--mount", "sh", "-c", "\n".join(lines)]


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@pytest.fixture()
def grader_user():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a non-root grader account (as a non-root user, the test above is that case)")
    created = False
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], capture_output=True, text=True
        )
        if made.returncode != 0:
            pytest.skip(f"useradd failed: {made.stderr.strip()}")
        created = True
    yield TEST_USER
    if created:
        subprocess.run(["userdel", "--remove", TEST_USER], capture_output=True)


@pytest.mark.parametrize("start", ["cold", "warm"])
def test_isolation_as_a_non_root_grader(grader_user, listener, start):
    _warm_or_skip(start)
    if shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("needs unshare and setpriv (util-linux) to run as another user")
    entry = pwd.getpwnam(grader_user)
    probe = subprocess.run(
        _as_user_command(
            grader_user,
            [sys.executable, "-c", "from nncourse.grading import sandbox; print(sandbox.available_modes()[0])"],
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    if not probe.stdout.startswith("bubblewrap"):
        pytest.skip(f"a non-root grader gets no file-system isolation here: {probe.stdout.strip()}")
    planted = _plant([Path(tempfile.gettempdir()), Path(entry.pw_dir), Path("/opt"), Path("/srv")])
    secrets = next(planted)
    try:
        home_copy = next(Path(s) for s in secrets if s.startswith(entry.pw_dir))
        for p in [home_copy, *home_copy.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)
        result = _run_driver(secrets + _repo_secrets(), listener, as_user=grader_user, warm=start == "warm")
        _assert_isolated(result, secrets, expect_uid=entry.pw_uid)
    finally:
        next(planted, None)


def test_isolation_child_exit_signals_reach_the_engine(tmp_path):
    """bwrap turns 'killed by SIGKILL' into exit code 137; the cage gives the engine -9 back."""
    _strongest_or_skip()
    job = tmp_path / "w" / "job"
    sandbox.prepare_job_dir(job, data=False)
    for sig, code in ((signal.SIGKILL, -9), (signal.SIGTERM, -signal.SIGTERM)):
        cage = sandbox.cage(
            [sys.executable, "-c", f"import os; os.kill(os.getpid(), {int(sig)})"], job, tmp_path, tmp_path / "stage"
        )
        run = subprocess.run(
            cage.argv, cwd=job, preexec_fn=cage.preexec_fn, start_new_session=True, capture_output=True
        )
        assert run.returncode == code, run
    cage = sandbox.cage([sys.executable, "-c", "raise SystemExit(3)"], job, tmp_path, tmp_path / "stage")
    assert subprocess.run(cage.argv, cwd=job, preexec_fn=cage.preexec_fn).returncode == 3


def test_isolation_killing_the_group_kills_the_child(tmp_path):
    """The engine kills the cage's process group on time-out: nothing of the child may survive."""
    _strongest_or_skip()
    job = tmp_path / "w" / "job"
    sandbox.prepare_job_dir(job, data=False)
    marker = f"nncourse-marker-{uuid.uuid4().hex}"
    cage = sandbox.cage(
        [sys.executable, "-c", f"import time  # {marker}\nprint('up', flush=True)\ntime.sleep(600)"],
        job,
        tmp_path,
        tmp_path / "stage",
    )
    proc = subprocess.Popen(
        cage.argv, cwd=job, preexec_fn=cage.preexec_fn, start_new_session=True, stdout=subprocess.PIPE
    )
    assert proc.stdout.readline().strip() == b"up"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(50):
        alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        if not alive:
            break
        time.sleep(0.1)
    assert not alive


def test_isolation_settings(monkeypatch, grading_settings):
    monkeypatch.delenv("NNCOURSE_NO_NAMESPACES", raising=False)
    job = Path("/nonexistent/job")
    for value in ("rlimits", "none"):
        grading_settings(isolation=value)
        assert sandbox.mode().name == "rlimits" and not sandbox.mode().filesystem
        assert sandbox.cage(["python", "-c", "1"], job, job.parent, job.parent).argv == ["python", "-c", "1"]
    grading_settings(isolation="auto")
    monkeypatch.setenv("NNCOURSE_NO_NAMESPACES", "1")  # the test switch: same as rlimits
    assert sandbox.mode().name == "rlimits"
    monkeypatch.delenv("NNCOURSE_NO_NAMESPACES")
    with pytest.raises(TraitError):
        grading_settings(isolation="sometimes")


def test_isolation_required_refuses_without_bubblewrap(monkeypatch, capsys, grading_settings):
    monkeypatch.delenv("NNCOURSE_NO_NAMESPACES", raising=False)
    monkeypatch.setattr(sandbox, "bwrap_binary", lambda: None)
    for cache in (sandbox._probe_bwrap, sandbox._resolve):
        cache.cache_clear()
    monkeypatch.setattr(sandbox, "_WARNED", [])
    try:
        grading_settings(isolation="required")
        with pytest.raises(sandbox.IsolationUnavailable, match="no bwrap binary"):
            sandbox.cage(["python"], Path("/x/job"), Path("/x"), Path("/x/stage"))
        grading_settings(isolation="auto")
        assert sandbox.mode().name == "rlimits"
        assert "WITHOUT file-system isolation" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        for cache in (sandbox._probe_bwrap, sandbox._resolve):
            cache.cache_clear()


def test_isolation_documented_limits_apply_in_the_cage(tmp_path, grading_settings):
    """The README's limits: 4 GiB of address space, a file-size and a process limit, no core dumps,
    30 s per cell by default and 60–120 s for chapter 3's training exercises."""
    from nncourse.registry import load_exercises

    EXERCISES = load_exercises()
    grading = grading_settings()
    assert (grading.memory_mb, grading.setup_time_limit, grading.cell_time_cap) == (4096, 60.0, float("inf"))
    training = {"ex3_4_adder", "ex3_5_digits_classifier"}
    assert {e.time_limit for e in EXERCISES.values() if e.id not in training} == {30.0}
    assert all(60 <= EXERCISES[e].time_limit <= 120 for e in training)
    job = tmp_path / "w" / "job"
    sandbox.prepare_job_dir(job, data=False)
    code = (
        "import resource, json; print(json.dumps({n: resource.getrlimit(getattr(resource, n))[0] for n in "
        "('RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_NPROC', 'RLIMIT_CORE')}))"
    )
    cage = sandbox.cage([sys.executable, "-c", code], job, tmp_path, tmp_path / "stage")
    run = subprocess.run(
        cage.argv,
        cwd=job,
        preexec_fn=cage.preexec_fn,
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    limits = json.loads(run.stdout.strip().splitlines()[-1])
    assert limits == {"RLIMIT_AS": 4096 * 2**20, "RLIMIT_FSIZE": 64 * 2**20, "RLIMIT_NPROC": 512, "RLIMIT_CORE": 0}
