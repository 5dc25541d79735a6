"""An audit hook for the grading child: the in-process layer of the sandbox.

Installed after the child has imported what it needs and before any learner code runs. Audit
hooks cannot be removed from Python; they refuse here, by raising PermissionError:
network sockets, new programs (subprocess, os.system, exec, spawn), loading native libraries
with ctypes, SQLite connections (the gradebook), and opening files outside the allowed folders
(writes only inside the job folder; reads nowhere inside the repository or the grading area
except the virtual environment, ``data/`` and the checking library).
"""

from __future__ import annotations

import os
import sys

_BLOCKED = {
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "pty.spawn",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "sqlite3.connect",
    "os.kill",
    "os.killpg",
    "sys._current_frames",
    "webbrowser.open",
}
# Replacing a function's code or defaults, or a class's bases, rewires code the checks call.
_REWIRING = {"__code__"}  # not __defaults__ (namedtuple sets it) nor __bases__ (matplotlib does)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.symlink",
    "os.link",
    "shutil.rmtree",
    "os.utime",
}


def install(job_dir: str, hidden: list[str], readable: list[str]) -> None:
    job_dir = os.path.realpath(job_dir)
    hidden_roots = tuple(os.path.realpath(p) for p in hidden)
    readable_roots = tuple(os.path.realpath(p) for p in readable) + (job_dir,)
    realpath, fsdecode = os.path.realpath, os.fsdecode

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r + os.sep) for r in roots)

    def refuse(what: str):
        raise PermissionError(f"not allowed while grading: {what}")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            if path is None or isinstance(path, int):
                return
            full = realpath(fsdecode(path))
            writing = (mode is not None and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            if writing and not (inside(full, (job_dir,)) or full == "/dev/null"):
                refuse(f"writing {full}")
            if inside(full, hidden_roots) and not inside(full, readable_roots):
                refuse(f"reading {full}")
        elif event in _BLOCKED:
            refuse(event)
        elif event == "object.__setattr__" and len(args) > 1 and args[1] in _REWIRING:
            refuse(f"setting {args[1]}")
        elif event in _PATH_EVENTS:
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)) and not inside(realpath(fsdecode(arg)), (job_dir,)):
                    refuse(f"{event} on {fsdecode(arg)}")

    sys.addaudithook(hook)
