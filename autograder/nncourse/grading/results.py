"""Results and what they depend on: the stored, signed result of each job, and the stamp that tells
a grading run, before it builds or runs anything, that a submission is already recorded as it is.

Light on purpose (no torch, no nbformat): the grade command reads it at start-up, and a regrade in
which nothing changed must not pay the imports of a grading run.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import course, settings

CACHE_DIR = course.AUTOGRADER / ".cache" / "results"

# The grading policy can be switched off only by the grader's own environment, to test the layers
# beneath it one at a time (tests/test_tamper.py); learner code never sees this process.
POLICY_ON = os.environ.get("NNCOURSE_POLICY", "on") != "off"


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
    tampering: dict[str, str] = field(default_factory=dict)  # exercise -> what the policy or the child refused
    reasons: dict[str, str] = field(default_factory=dict)  # exercise -> why it scored zero (not a check's verdict)

    def reason_text(self) -> str:
        """Every zero's reason and every grading note, for the CSV and the top of the feedback."""
        return " | ".join([*(f"{e}: {r}" for e, r in sorted(self.reasons.items())), *self.notes])

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tests.values())

    def by_exercise(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        for cell_id, t in self.tests.items():
            exercise = course.exercise_of(cell_id)
            scores[exercise] = scores.get(exercise, 0.0) + t.points
        return scores

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SubmissionResult:
        raw = json.loads(text)
        raw["tests"] = {k: TestResult(**v) for k, v in raw["tests"].items()}
        return cls(**raw)


@dataclass
class Prebuilt:
    """What a grading worker made of one submission: the rebuilt notebook, its notes, its result."""

    notebook: Any  # nbformat.NotebookNode
    notes: list[str]
    result: SubmissionResult


# (chapter, student) -> Prebuilt: handed by the grade command to nbgrader's autograde, which it runs
# in its own process (nbgrader_plugins.py), for one recording run
PREBUILT: dict[tuple[str, str], Prebuilt] = {}


# ----------------------------------------------------------------------------- what a result depends on
_LIBRARY_HASH: list[str] = []
_DATA_HASH: list[str] = []

# settings that change what a submission may do, so its result; not workers, paths or the database
RESULT_SETTINGS = (
    "memory_mb",
    "file_size_mb",
    "max_processes",
    "tmpfs_mb",
    "setup_time_limit",
    "cell_time_cap",
    "startup_limit",
    "between_steps_limit",
    "max_export_mb",
)


def library_dir() -> Path:
    """The checking library and grading engine: the nncourse package."""
    return Path(__file__).resolve().parents[1]


def library_hash() -> str:
    if not _LIBRARY_HASH:
        h = hashlib.sha256()
        root = library_dir()
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        _LIBRARY_HASH.append(h.hexdigest())
    return _LIBRARY_HASH[0]


def data_hash() -> str:
    """Every file of data/ (names and bytes): the datasets the checks and the notebooks load."""
    if not _DATA_HASH:
        h = hashlib.sha256()
        for path in sorted(p for p in course.DATA_DIR.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(course.DATA_DIR)).encode() + b"\0" + path.read_bytes())
        _DATA_HASH.append(h.hexdigest())
    return _DATA_HASH[0]


def torch_version() -> str:
    """The installed torch's version, read without importing torch where it is not imported yet
    (a regrade that runs nothing must not pay that import; both read the same string)."""
    torch = sys.modules.get("torch")
    return torch.__version__ if torch is not None else importlib.metadata.version("torch")


def environment(chapter: str) -> dict[str, str]:
    """Everything a stored result depends on besides the submission; a change in any misses the cache."""
    from .. import __version__
    from . import sandbox

    grading = settings.current()
    return {
        "library": f"{__version__} {library_hash()}",  # checks, probes, policy, engine: every .py
        "source": hashlib.sha256(course.source_notebook(chapter).read_bytes()).hexdigest(),
        "torch": torch_version(),
        # what picks the device the checks run on (runtime.device): the override, else whether CUDA
        # can be reached (the GPUs this process could hand to a child, and which of them it may use)
        "device": os.environ.get("NNCOURSE_DEVICE")
        or "auto: " + " ".join([*sandbox._gpu_devices(), os.environ.get("CUDA_VISIBLE_DEVICES", "-")]),
        "isolation": sandbox.mode().name,
        "limits": " ".join(f"{name}={getattr(grading, name)}" for name in RESULT_SETTINGS),
        "policy": "on" if POLICY_ON else "off",
        "data": data_hash(),
    }


def submission_stamps(chapter: str, notebooks: dict[str, Path]) -> dict[str, str | None]:
    """What each submission's recorded result depends on, read from its files alone (None: unreadable).

    Equal stamps mean the same notebook bytes and the same nbgrader timestamp graded in the same
    environment, so the same job and the same cache key: a regrade can skip the submission before
    building its job.
    """
    env = hashlib.sha256(json.dumps(environment(chapter), sort_keys=True).encode()).digest()
    stamps: dict[str, str | None] = {}
    for name, notebook in notebooks.items():
        h = hashlib.sha256(env)
        try:
            h.update(hashlib.sha256(notebook.read_bytes()).digest())
            timestamp = notebook.parent / "timestamp.txt"  # nbgrader's late-submission bookkeeping
            h.update(timestamp.read_bytes() if timestamp.is_file() else b"-")
        except OSError:
            stamps[name] = None
            continue
        stamps[name] = h.hexdigest()
    return stamps


# ----------------------------------------------------------------------------- stored results
def _cache_secret() -> bytes:
    """The key that signs stored results. It lives with the course (mode 0600), which the grading
    child never sees (the sandbox hides the course; without it the audit hook refuses reading it)."""
    path = CACHE_DIR.parent / "results.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # first writer wins; everyone then reads the same key
        except FileExistsError:
            pass
        os.unlink(tmp)
        return path.read_bytes()


def _signature(key: str, text: str) -> str:
    return hmac.new(_cache_secret(), f"{key}\n{text}".encode(), hashlib.sha256).hexdigest()


def load_stored(key: str) -> SubmissionResult | None:
    """The stored result for this key, if present and signed by this course's key."""
    try:
        raw = json.loads((CACHE_DIR / f"{key}.json").read_text())
        text, mac = raw["result"], raw["mac"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not hmac.compare_digest(mac, _signature(key, text)):
        return None  # forged or damaged: grade again
    return SubmissionResult.from_json(text)


def store(key: str, result: SubmissionResult) -> None:
    """Write atomically: a grading run killed half-way leaves either the whole result or none."""
    text = result.to_json()
    course.write_whole(CACHE_DIR / f"{key}.json", json.dumps({"result": text, "mac": _signature(key, text)}))
