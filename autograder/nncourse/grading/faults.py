"""Fault injection for the grader's own tests (tests/test_faults.py, tests/test_cluster.py).

Read from the grading process's environment, which learner code never sees: ``NAME=student:marker``
makes the process grading that student kill itself once (the marker file records that it did).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def target(name: str, student: str) -> str | None:
    """What follows ``student:`` in the variable ``name`` when it names this student, else None."""
    value = os.environ.get(name, "")
    head, sep, rest = value.partition(":")
    return rest if sep and head == student else None


def kill_once(name: str, student: str) -> None:
    marker = target(name, student)
    if marker is not None and not Path(marker).exists():
        Path(marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
