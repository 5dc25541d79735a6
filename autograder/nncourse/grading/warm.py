"""The grader's side of the warm start (``zygote.py``): which zygote serves a job, and its children.

``start_child`` forks a child for a job from this process's zygote of that chapter (started on first
use, replaced when it dies, at most two kept), or answers None when a cold start must be used:
the setting ``Grading.warm_start`` is off, a GPU is visible (CUDA does not survive a fork), or the
zygote could not start or failed its first set-up (the reason is in :func:`status`).

Job folders of warm children must lie under :func:`jobs_root`, the one folder the zygotes see.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from .. import course, settings
from . import results, sandbox

# Imported by torch on first use (the first backward that builds its default gradient, the first
# optimizer): about 1.5 s a child would pay again and again. Importing them runs no learner code.
WARM_UP = ("torch.fx.experimental.symbolic_shapes", "torch._dynamo", "torch.optim")
KEEP = 2  # zygotes kept per grading process (one per chapter graded lately)
_zygotes: OrderedDict[tuple, Zygote] = OrderedDict()
_refused: dict[tuple, str] = {}  # key -> why its zygote could not be used (not retried in this process)
_root: list[Path] = []
_FRESH_IN_EACH_CHILD = ("/tmp", "/dev/shm")  # tmpfs mounted anew in every child (zygote.py)


def jobs_root() -> Path:
    """This process's folder for job folders (removed when it exits)."""
    if not _root or not _root[0].is_dir():
        _root[:] = [Path(tempfile.mkdtemp(prefix="nncourse-warm-"))]
        _root[0].chmod(0o755)
        atexit.register(shutil.rmtree, _root[0], True)
    return _root[0]


def unavailable() -> str | None:
    """Why no warm start is possible here at all (None: it is, for chapters whose zygote starts)."""
    if not settings.current().warm_start:
        return "turned off (Grading.warm_start = False)"
    if sandbox._gpu_devices():
        return "a GPU is visible, and CUDA cannot be used in a process forked after it started"
    if not hasattr(os, "pidfd_open") or not sys.platform.startswith("linux"):
        return "needs Linux 5.3 or later"
    for needed in (sys.prefix, str(results.library_dir())):
        where = os.path.realpath(needed)
        if any(where == top or where.startswith(top + "/") for top in _FRESH_IN_EACH_CHILD):
            return f"{where} lies under /tmp or /dev/shm, which each warm child gets fresh and empty"
    return None


def status(chapter: str | None = None) -> str:
    """How children start, in words, for the output and the CSV."""
    why = unavailable()
    if why is None and chapter is not None:
        why = next((w for k, w in _refused.items() if k[0] == chapter), None)
    return "cold start: " + why if why else "warm start (forked from a prepared process)"


def chapter_imports(chapter: str) -> tuple[str, ...]:
    """The modules the chapter's given (read-only) cells import, for the zygote to import first."""
    names: list[str] = []
    for cell in course.read_source(chapter).cells:
        if cell.cell_type != "code" or not course.is_read_only(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return tuple(dict.fromkeys(names))


class Zygote:
    """One running zygote and the socket to it."""

    def __init__(self, chapter: str, hypothesis: bool, env: dict[str, str], wait: bool = True):
        """Start the zygote; with ``wait``, also wait until it can serve (else: :meth:`wait_ready`)."""
        root = jobs_root()
        self.stage = Path(tempfile.mkdtemp(prefix="zygote-", dir=root))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.owner = os.getpid()  # a forked grading worker must start its own
        options = {"hypothesis": hypothesis, "modules": [*chapter_imports(chapter), *WARM_UP]}
        cage = sandbox.zygote_cage(
            [sys.executable, "-m", "nncourse.grading.zygote", json.dumps(options)], root, self.stage
        )
        zygote_env = dict(env, HOME="/tmp", TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib")
        zygote_env["NNCOURSE_ZYGOTE_FD"] = str(theirs.fileno())
        if cage.argv[0] == sys.executable:  # no cage (rlimits mode): the zygote's files stay in its stage
            zygote_env.update(HOME=str(self.stage), TMPDIR=str(self.stage), MPLCONFIGDIR=str(self.stage / "mpl"))
        self.log = open(self.stage / "zygote.log", "ab")  # noqa: SIM115 - open while the zygote lives
        self.proc = subprocess.Popen(
            cage.argv,
            cwd=root,
            env=zygote_env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
            preexec_fn=cage.preexec_fn,
        )
        theirs.close()
        self.ready = False
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the zygote has imported everything and has set one child up (once); OSError,
        the zygote closed, when it cannot serve."""
        if self.ready:
            return
        ready = self._receive(settings.current().startup_limit)
        if not ready or not ready.get("ready"):
            why = (ready or {}).get("why") or self._log_tail() or "it did not answer"
            self.close()
            raise OSError(f"the zygote did not start: {why}")
        self._first_setup()
        self.ready = True

    def _log_tail(self) -> str:
        try:
            return (self.stage / "zygote.log").read_text(errors="replace").strip().splitlines()[-1][:300]
        except (OSError, IndexError):
            return ""

    def _receive(self, timeout: float | None) -> dict | None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        try:
            message = self.sock.recv(4096)
        except OSError:
            return None
        return json.loads(message) if message else None

    def _first_setup(self) -> None:
        """Set one child up before serving: one that cannot be isolated exactly so must never grade."""
        job_dir = Path(tempfile.mkdtemp(prefix="probe-", dir=jobs_root())) / "job"
        sandbox.prepare_job_dir(job_dir, data=False)
        read_fd, write_fd = os.pipe()
        control_read, control_write = os.pipe()
        log = job_dir.parent / "probe.log"
        try:
            with open(log, "ab") as log_file:
                code = "import os; os.write(3, str(os.getpid()).encode())"
                child = self.start(job_dir, job_dir.parent, {}, (write_fd, control_read, log_file.fileno()), code)
            os.close(write_fd)
            os.close(control_read)
            returncode = child.wait(60)
            said = os.read(read_fd, 100).decode()
        finally:
            for fd in (read_fd, control_write):
                os.close(fd)
        expected = "2" if sandbox.mode().name == "bubblewrap" else said
        if returncode != 0 or not said or said != expected:
            said_where = log.read_text(errors="replace") + (self.stage / "zygote.log").read_text(errors="replace")
            why = said_where.strip().splitlines()[-1:] or [f"exit code {returncode}, pid {said}"]
            self.close()
            raise OSError(f"a child could not be set up: {why[0][:300]}")
        shutil.rmtree(job_dir.parent, ignore_errors=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(
        self,
        job_dir: Path,
        grading_root: Path,
        env: dict[str, str],
        fds: tuple[int, int, int],
        code: str | None = None,
        argv: list[str] | None = None,
    ) -> WarmChild:
        """Fork a child for ``job_dir`` (under :func:`jobs_root`) with the grader's three descriptors
        (progress pipe, control pipe, log), which stay open here: the caller closes its copies.
        The child runs the job, or ``code`` with ``argv`` in the same set-up (the grader's tests)."""
        passwd, group = sandbox.write_identity(grading_root / "identity", job_dir)
        mode = sandbox.mode()
        job = {
            "job_dir": str(job_dir),
            "jobs_root": str(jobs_root()),
            "passwd": str(passwd),
            "group": str(group),
            "env": env,
            "limits": [[k, v] for k, v in sandbox.limits().items()],
            "tmpfs_bytes": settings.current().tmpfs_bytes,
            "namespaces": mode.name == "bubblewrap",
            "nobody": sandbox.NOBODY if mode.name == "bubblewrap" and os.geteuid() == 0 else None,
            "code": code,
            "argv": argv or [],
        }
        socket.send_fds(self.sock, [json.dumps({"job": job}).encode()], list(fds))
        answer = self._receive(settings.current().startup_limit)
        if not answer or not answer.get("started"):
            self.close()
            raise OSError("the zygote did not start the child")
        return WarmChild(self)

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            self.log.close()
            shutil.rmtree(self.stage, ignore_errors=True)


class WarmChild:
    """A forked child as the engine uses a ``subprocess.Popen`` (``wait``, ``poll``, ``returncode``),
    with ``kill`` for the whole child. Its exit status comes from the zygote."""

    def __init__(self, zygote: Zygote):
        self.zygote = zygote
        self.returncode: int | None = None

    def _collect(self, timeout: float | None) -> None:
        if self.returncode is not None:
            return
        answer = self.zygote._receive(timeout)
        if answer is None and not self.zygote.alive():
            self.returncode = -9  # the zygote died, and its child with it
            self.zygote.close()
        elif answer is not None:
            self.returncode = int(answer["exit"]) if "exit" in answer else -9

    def poll(self) -> int | None:
        self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("grading child", timeout or 0)
            self._collect(left if left is None else min(left, 1.0))
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                self.zygote.sock.send(json.dumps({"kill": True}).encode())
            except OSError:
                pass


def _key(chapter: str, hypothesis: bool, env: dict[str, str]) -> tuple[dict[str, str], tuple]:
    """The zygote's environment (what no job changes) and the key of the zygote that serves it."""
    constant = {k: v for k, v in env.items() if k not in _PER_JOB}
    return constant, (chapter, hypothesis, sandbox.mode().name, json.dumps(constant, sort_keys=True))


def start_child(
    chapter: str, hypothesis: bool, job_dir: Path, grading_root: Path, env: dict[str, str], fds: tuple[int, int, int]
) -> WarmChild | None:
    """A warm child for the job, or None: start this one cold (``status`` says why)."""
    if unavailable() is not None or not str(job_dir).startswith(str(jobs_root()) + os.sep):
        return None
    constant, key = _key(chapter, hypothesis, env)
    if key in _refused:
        return None
    _remember(chapter, hypothesis)
    for _attempt in range(2):  # a zygote that died since its last child is replaced once
        zygote = _zygotes.get(key)
        if zygote is not None and zygote.owner != os.getpid():  # inherited through a fork: not ours to use
            _zygotes.clear()
            zygote = None
        try:
            if zygote is None or not zygote.alive():
                zygote = _zygotes[key] = Zygote(chapter, hypothesis, constant, wait=False)
                while len(_zygotes) > KEEP:
                    _zygotes.popitem(last=False)[1].close()
            zygote.wait_ready()
        except OSError as e:
            _zygotes.pop(key, None)
            _refused[key] = str(e)
            print(f"grading: {status(chapter)}", file=sys.stderr)
            return None
        _zygotes.move_to_end(key)
        try:
            return zygote.start(job_dir, grading_root, env, fds)
        except OSError:
            _zygotes.pop(key, None)
    return None


# ----------------------------------------------------------------------------- starting early
# Whether a chapter's zygote prepares Hypothesis is known for sure only once its checks are imported
# (torch and all); a grading worker's first submission pays those imports anyway. What the last run
# of the same library found is kept in the course's cache, so a new worker can start its zygote
# before its own imports and the two (about two seconds each) overlap.
_REMEMBERED: dict[str, bool] = {}


def _flags() -> Path:
    return course.CACHE_DIR / "zygote" / f"{results.library_hash()}.json"


def _remember(chapter: str, hypothesis: bool) -> None:
    if _REMEMBERED.get(chapter) == hypothesis:
        return
    _REMEMBERED[chapter] = hypothesis
    try:
        flags = json.loads(_flags().read_text())
    except (OSError, ValueError):
        flags = {}
    if isinstance(flags, dict) and flags.get(chapter) == hypothesis:
        return
    try:
        course.write_whole(_flags(), json.dumps({**(flags if isinstance(flags, dict) else {}), chapter: hypothesis}))
    except OSError:
        pass  # only a later start is slower


def prestart(chapter: str) -> None:
    """Start the chapter's zygote now without waiting for it, if an earlier run of this library said
    how (else the first submission starts it, as usual). Called as a grading worker starts."""
    try:
        hypothesis = json.loads(_flags().read_text()).get(chapter)
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(hypothesis, bool) or unavailable() is not None:
        return
    constant, key = _key(chapter, hypothesis, sandbox.child_env(jobs_root() / "job"))
    if key in _zygotes or key in _refused:
        return
    try:
        _zygotes[key] = Zygote(chapter, hypothesis, constant, wait=False)
    except OSError as e:
        _refused[key] = str(e)


def close_all() -> None:
    while _zygotes:
        zygote = _zygotes.popitem()[1]
        if zygote.owner == os.getpid():
            zygote.close()


atexit.register(close_all)

# environment entries that differ between jobs; the rest is the zygote's own environment
_PER_JOB = {"HOME", "TMPDIR", "MPLCONFIGDIR", "NNCOURSE_GRADING_DATA"}
