"""A throwaway copy of the course (its own gradebook and submitted/ area), for tests and benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path

from nncourse import course


def make_course(root: Path, chapters) -> Path:
    """Copy the config and the chapters' notebooks into ``root``; ``data/`` is linked, not copied."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(course.REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    (root / "data").symlink_to(course.DATA_DIR)
    for chapter in chapters:
        for sub in ("autograder/source", "notebooks", "solutions"):
            shutil.copytree(course.REPO_ROOT / sub / chapter, root / sub / chapter)
    return root
