"""The warm start: a prepared process that forks one fresh grading child per submission.

    python -m nncourse.grading.zygote SETTINGS_JSON     (started by ``warm.py``, never by hand)

Starting Python and importing torch, matplotlib and IPython is about three quarters of what a cold
grading child costs, and identical for every learner. The zygote pays it once: it imports what
``child.prepare`` imports and what the chapter's given cells import (it runs no cell, no learner
code, holds no reference solution, no verdict logic and no other learner's data), then serves
requests from the grader over a socket it inherited, one at a time:

* ``{"job": ...}`` with three descriptors (progress pipe, control pipe, log file): fork a child
  for that job folder; answered by ``{"started": true}`` and, when the child has ended,
  ``{"exit": RETURNCODE}`` (negative: killed by that signal, as ``subprocess`` reports it);
* ``{"kill": true}`` while a child runs: kill it and everything it started.

It lives in the same bubblewrap cage as a cold child (``sandbox.zygote_cage``), except that the
folder bound read-write is the grading process's folder of job folders, and that it keeps the
capabilities needed to give each child its own view: every child is set up as a cold child is —

1. its own mount, PID, network, IPC and UTS namespaces;
2. a tmpfs over the folder of job folders with only its own job folder bound back (read-write),
   a fresh size-capped ``/tmp`` and ``/dev/shm``, its own ``/etc/passwd``, and a fresh ``/proc``
   that shows its own PID namespace only (the learner's process is PID 2, as under bwrap);
3. the rlimits of a cold child, a new session, and (as root) the ``nobody`` user, or (not root)
   the grader's uid; every capability dropped, the bounding set emptied, ``no_new_privs`` set;
4. the grader's descriptors only, the environment of a cold child, then ``child.run``.

The fork happens before any CUDA initialisation could: on a machine with GPUs visible the grader
uses cold starts (``warm.py``). A child that cannot be set up exactly so never runs: the zygote
tries one set-up when it starts and reports failure instead of serving.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
_ATIME_FLAGS = 1024 | 2048  # MS_NOATIME, MS_NODIRATIME (statvfs reports them with the same bits)
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SETUP_FAILED = 125  # exit code of a child that could not be set up (it ran nothing)
PROGRESS_FD, CONTROL_FD = 3, 4  # where a child finds the grader's pipes


class _Kernel:
    """The system calls Python 3.11 has no wrapper for. Made in the forked child and dropped before
    the learner's code runs (a cold child's guard refuses loading native libraries)."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def unshare(self, flags: int) -> None:
        self._check(self.libc.unshare(ctypes.c_int(flags)), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        def b(text):
            return None if text is None else os.fsencode(text)

        self._check(
            self.libc.mount(b(source), b(target), b(fstype), ctypes.c_ulong(flags), b(data)), f"mount on {target}"
        )

    def prctl(self, option: int, arg: int, arg2: int = 0) -> None:
        self._check(
            self.libc.prctl(
                ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0)
            ),
            f"prctl {option}",
        )

    def clear_capabilities(self) -> None:
        """Empty the effective, permitted and inheritable sets (capset, version 3)."""
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        data = (ctypes.c_uint32 * 6)()
        self._check(self.libc.capset(header, data), "capset")


# ----------------------------------------------------------------------------- one child
def _die_with_parent(kernel: _Kernel, parent: int | None) -> None:
    """SIGKILL when the parent ends; ``parent``: its pid as this process sees it (None: not visible,
    the parent of PID 1 lives outside the new PID namespace)."""
    kernel.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:  # it ended before the line above
        os._exit(SETUP_FAILED)


def _relay(pid: int) -> None:
    """Wait for ``pid`` and end with its status (a signal N as 128 + N, as a shell reports it)."""
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code & 0xFF)


def _arrange_descriptors(progress: int, control: int, log: int) -> None:
    """0: /dev/null, 1 and 2: the log, 3 and 4: the grader's pipes; nothing else stays open."""
    import fcntl

    # above 0-4 and below the open-files limit
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in (progress, control, log)]
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(high[2], 1)
    os.dup2(high[2], 2)
    os.dup2(high[0], PROGRESS_FD)
    os.dup2(high[1], CONTROL_FD)
    os.closerange(CONTROL_FD + 1, os.sysconf("SC_OPEN_MAX"))


def _filesystem_view(kernel: _Kernel, job: dict) -> None:
    """Inside the child's new mount namespace: a fresh /tmp and /dev/shm, its own job folder and
    identity files, and nothing else of the folder of job folders."""
    job_dir, jobs_root = job["job_dir"], job["jobs_root"]
    kernel.mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = {  # reachable through these after the mounts below hide their folders
        "job": os.open(job_dir, os.O_PATH | os.O_DIRECTORY),
        "passwd": os.open(job["passwd"], os.O_PATH),
        "group": os.open(job["group"], os.O_PATH),
    }
    for folder in ("/tmp", "/dev/shm"):
        if os.path.isdir(folder):
            kernel.mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={job['tmpfs_bytes']}")
    covered = os.path.isdir(jobs_root)  # still there when it is not under /tmp: cover it too
    if covered:
        kernel.mount("tmpfs", jobs_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    os.makedirs(job_dir, mode=0o755)  # the way to the job folder: root's, not the learner's to write
    kernel.mount(f"/proc/self/fd/{keep['job']}", job_dir, None, MS_BIND | MS_REC)
    if covered:
        kernel.mount(None, jobs_root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for name in ("passwd", "group"):
        kernel.mount(f"/proc/self/fd/{keep[name]}", f"/etc/{name}", None, MS_BIND)
        # a remount keeps the flags the mount beneath has (a user namespace may not clear them)
        kept = os.statvfs(f"/etc/{name}").f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | _ATIME_FLAGS)
        kernel.mount(None, f"/etc/{name}", None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)
    for fd in keep.values():
        os.close(fd)


def _apply_limits(job: dict) -> None:
    import resource

    for which, value in job["limits"]:
        resource.setrlimit(which, (value, value))


def _drop_privileges(kernel: _Kernel, job: dict) -> None:
    _apply_limits(job)
    kernel.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    cap = 0
    while True:  # empty the bounding set: no later exec can regain a capability
        try:
            kernel.prctl(PR_CAPBSET_DROP, cap)
        except OSError as e:
            if e.errno == 22:  # EINVAL: past the last capability this kernel knows
                break
            raise
        cap += 1
    if job["nobody"] is not None:
        os.setgroups([])
        os.setresgid(job["nobody"], job["nobody"], job["nobody"])
        os.setresuid(job["nobody"], job["nobody"], job["nobody"])
    kernel.clear_capabilities()
    kernel.prctl(PR_SET_NO_NEW_PRIVS, 1)
    with open("/proc/self/status") as f:
        caps = {k: v.strip() for k, v in (line.split(":", 1) for line in f if line.startswith("Cap"))}
    if any(int(caps[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if k in caps):
        raise OSError(f"capabilities left after dropping them: {caps}")


def _child(job: dict, fds: list[int], sock: socket.socket, zygote: int) -> None:
    """The forked process (never returns). With namespaces: this process (A) makes them and the
    file-system view, forks B (PID 1 of the new PID namespace, mounts its /proc), which forks C
    (PID 2), the learner's process. A and B only wait and pass C's exit status on."""
    os.close(sock.detach())
    os.setsid()
    kernel = _Kernel()
    try:
        _die_with_parent(kernel, zygote)
        _arrange_descriptors(*fds)
        if job["namespaces"]:
            kernel.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
            _filesystem_view(kernel, job)
            b = os.fork()
            if b:
                os.closerange(0, CONTROL_FD + 1)
                _relay(b)
            _die_with_parent(kernel, None)
            kernel.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            c = os.fork()
            if c:
                os.closerange(0, CONTROL_FD + 1)
                _relay(c)
            _die_with_parent(kernel, 1)
            os.setsid()
            _drop_privileges(kernel, job)
        else:  # the rlimits mode: a cold child there keeps the grader's user too
            _apply_limits(job)
        os.chdir(job["job_dir"])
    except BaseException as e:  # noqa: BLE001 - nothing may run after a failed set-up
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1]
        os.write(2, f"grading zygote: the child could not be set up: {e} (line {where.lineno})\n".encode())
        os._exit(SETUP_FAILED)
    del kernel  # the learner's code gets no handle on libc from here
    os.environ.clear()
    os.environ.update(job["env"], NNCOURSE_PROGRESS_FD=str(PROGRESS_FD), NNCOURSE_CONTROL_FD=str(CONTROL_FD))
    try:
        if job.get("code") is not None:  # the grader's own tests of this set-up (tests/test_isolation.py)
            sys.argv = ["-c", *job.get("argv", [])]
            exec(compile(job["code"], "<zygote test>", "exec"), {"__name__": "__main__"})
            sys.stdout.flush()
            os._exit(0)
        import tempfile

        from nncourse.grading import child

        # what a cold child would hold: the temporary folder found from its own TMPDIR, its argv
        tempfile.tempdir = None
        sys.argv = [child.__file__, job["job_dir"]]
        child.run(job["job_dir"])
    except SystemExit as e:
        sys.stdout.flush()
        os._exit(e.code if isinstance(e.code, int) else 1)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


# ----------------------------------------------------------------------------- serving
def _returncode(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return -(code - 128) if 128 < code <= 128 + 64 else code


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode())


def _serve_one(sock: socket.socket, job: dict, fds: list[int]) -> bool:
    """Fork a child for ``job`` and wait for its end or for the grader's kill. False: the grader left."""
    sys.stdout.flush()
    sys.stderr.flush()
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(job, fds, sock, zygote)
    for fd in fds:
        os.close(fd)
    _send(sock, {"started": True})
    watch = os.pidfd_open(pid)
    grader_here = True
    try:
        while True:
            ready, _, _ = select.select([sock.fileno(), watch], [], [])
            if watch in ready:
                break
            message = sock.recv(4096)
            if not message:  # the grader is gone: nothing may outlive it
                grader_here = False
            if not message or json.loads(message).get("kill"):
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(watch)
    if grader_here:
        _send(sock, {"exit": _returncode(status)})
    return grader_here


def serve(settings: dict) -> None:
    sock = socket.socket(fileno=int(os.environ.pop("NNCOURSE_ZYGOTE_FD")))
    from nncourse.grading import child

    try:
        child.prepare(settings["hypothesis"], tuple(settings["modules"]))
    except BaseException as e:  # noqa: BLE001
        _send(sock, {"ready": False, "why": f"could not import what the child needs: {e}"})
        return
    # Every object so far is shared with the children: a collection in a child would walk (and so
    # copy, page by page) the whole prepared heap. Frozen objects are left out of collections.
    gc.collect()
    gc.freeze()
    _send(sock, {"ready": True})
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        if request.get("kill") and not fds:
            continue  # a kill that crossed the end of the child it was meant for
        if "job" not in request or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            return  # not the grader's protocol: stop serving
        if not _serve_one(sock, request["job"], fds):
            return


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the grader, which ends the zygote
    serve(json.loads(sys.argv[1]))
    os._exit(0)
