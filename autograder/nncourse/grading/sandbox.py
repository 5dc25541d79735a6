"""The child's cage: limits from Linux, no container engine needed.

Always: a new session (the whole process group is killed on time-out), rlimits (address space,
file size, process count, open files, no core dumps), a throwaway working directory, a scrubbed
environment, and an audit hook inside the child (``guard.py``) that refuses network, subprocesses,
native-library loading and file access outside the allowed folders.

When running as root with ``unshare`` available (CI, a grading server), also: new mount, network
and PID namespaces. The repository and every other student's job folder are covered by empty
tmpfs mounts; only the virtual environment and the checking library are mounted back,
read-only, beside the student's own job folder. The child then drops to the ``nobody`` user with
no capabilities, so it cannot undo the mounts or write anywhere else.

In production a course should add a container per submission (its own root file system,
seccomp, cgroup memory and CPU limits): rlimits cap address space rather than resident memory,
and an unprivileged fallback relies on the in-process audit hook, which determined native code
could bypass. The scores are safe either way, since they are computed outside the child.
"""
from __future__ import annotations

import functools
import os
import resource
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import paths

NOBODY = 65534
MEMORY_BYTES = int(os.environ.get("NNCOURSE_GRADING_MEMORY_MB", "4096")) * 1024 * 1024
FILE_BYTES = 64 * 1024 * 1024
MAX_PROCESSES = 512      # threads count too (torch's thread pools)


@dataclass
class Cage:
    argv: list[str]
    preexec_fn: object


@functools.lru_cache(maxsize=None)
def namespaces_available() -> bool:
    if os.geteuid() != 0 or os.environ.get("NNCOURSE_NO_NAMESPACES"):
        return False
    try:
        return subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))


def visible_paths(job_dir: Path) -> list[Path]:
    """What the child may read besides its job folder: the interpreter's environment and the checking
    library. Data comes as files in the job folder (``nncourse.data.grading_files``): ``data/`` holds
    test labels the child must not see."""
    keep = [Path(sys.prefix).resolve(), Path(__file__).resolve().parents[1]]
    return [p for p in keep if p.exists()]


def hidden_roots(grading_root: Path) -> list[Path]:
    """The course (and the repository the library lives in, if another) and every job folder."""
    library_repo = Path(__file__).resolve().parents[3]
    return sorted({paths.REPO_ROOT.resolve(), library_repo, grading_root.resolve()})


NAMESPACE_MODE = "namespaces (mount, network, pid) + nobody user + rlimits + audit hook"
FALLBACK_MODE = "rlimits + audit hook (no namespaces: not root or unshare unavailable)"


def mode() -> str:
    return NAMESPACE_MODE if namespaces_available() else FALLBACK_MODE


def cage(child_argv: list[str], job_dir: Path, grading_root: Path, stage_dir: Path) -> Cage:
    """The command that runs ``child_argv`` inside the cage."""
    if not namespaces_available():
        return Cage(child_argv, _limits)
    keep = visible_paths(job_dir)
    lines = ["set -e"]
    for i, path in enumerate(keep):                       # stage what stays visible
        lines.append(f"mkdir -p {stage_dir}/{i} && mount --bind {shlex.quote(str(path))} {stage_dir}/{i}")
    lines.append(f"mkdir -p {stage_dir}/job && mount --bind {shlex.quote(str(job_dir))} {stage_dir}/job")
    for root in hidden_roots(grading_root):               # cover the repository and all job folders
        lines.append(f"mount -t tmpfs -o size=1m,mode=755 tmpfs {shlex.quote(str(root))}")
    for i, path in enumerate(keep):                       # and put back the allowed ones, read-only
        q = shlex.quote(str(path))
        lines.append(f"mkdir -p {q} && mount --bind {stage_dir}/{i} {q} && mount -o remount,bind,ro {q}")
    q = shlex.quote(str(job_dir))
    lines.append(f"mkdir -p {q} && mount --bind {stage_dir}/job {q}")
    lines.append(f"mount -t tmpfs -o size=1m tmpfs {stage_dir}")
    lines.append("exec setpriv --reuid=%d --regid=%d --clear-groups --no-new-privs --inh-caps=-all "
                 "--bounding-set=-all -- %s" % (NOBODY, NOBODY, " ".join(shlex.quote(a) for a in child_argv)))
    argv = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
            "sh", "-c", "\n".join(lines)]
    return Cage(argv, _limits)


def prepare_job_dir(job_dir: Path) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("out", "tmp", "home", "data"):
        (job_dir / sub).mkdir(exist_ok=True)
    from ..data import grading_files
    for name, content in grading_files().items():
        (job_dir / "data" / name).write_bytes(content)
    if namespaces_available():
        for p in [job_dir, *job_dir.rglob("*")]:
            os.chown(p, NOBODY, NOBODY)
