"""docs/adding-a-chapter.md, followed end to end in a throwaway copy of the course.

A sixth chapter is started with ``tools.new_chapter``, checked with ``tools.verify``, generated with
``tools.generate`` and graded with the grade command: the solution gets full marks, the untouched
learner notebook zero and each wrong answer exactly its points, with no change to the engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nncourse import course

pytestmark = pytest.mark.slow

CHAPTER = "06_custom_layers"
EXERCISE = "ex6_1_scale"


def _copy_of_the_course(root: Path) -> Path:
    """The package, the tools, the grader cases' base and the config: no chapter at all."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(course.AUTOGRADER / "nncourse", root / "autograder" / "nncourse", ignore=ignore)
    (root / "autograder" / "source").mkdir()
    shutil.copytree(course.REPO_ROOT / "tools", root / "tools", ignore=ignore)
    (root / "tests" / "grader_cases").mkdir(parents=True)
    shutil.copy(course.REPO_ROOT / "tests" / "__init__.py", root / "tests" / "__init__.py")
    shutil.copy(course.REPO_ROOT / "tests" / "grader_cases" / "__init__.py", root / "tests" / "grader_cases")
    shutil.copy(course.REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    (root / "data").symlink_to(course.DATA_DIR)
    return root


def _run(root: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NNCOURSE_ROOT"}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "autograder"), str(root)])
    return subprocess.run([sys.executable, *argv], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def test_new_chapter_end_to_end(tmp_path):
    root = _copy_of_the_course(tmp_path / "course")
    made = _run(root, "-m", "tools.new_chapter", CHAPTER, "Custom layers")
    assert made.returncode == 0, made.stderr
    again = _run(root, "-m", "tools.new_chapter", CHAPTER, "Custom layers")
    assert again.returncode == 2 and "is taken" in again.stderr

    listed = _run(
        root,
        "-c",
        "from nncourse import course, registry; print(course.chapters(), "
        "[e.id for e in registry.exercises_of(course.chapters()[0])])",
    )
    assert listed.stdout.strip() == f"['{CHAPTER}'] ['{EXERCISE}']", listed.stdout + listed.stderr

    verified = _run(root, "-m", "tools.verify", CHAPTER)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("ok ") == 3, verified.stdout

    generated = _run(root, "-m", "tools.generate")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    release = nbformat.read(root / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    solution = nbformat.read(root / "solutions" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    assert "BEGIN SOLUTION" not in str(release) and "HIDDEN TESTS" not in str(release)
    assert "nn.Parameter(torch.ones(()))" in str(solution)

    # a class: the solution, the untouched notebook and each wrong answer of the grader cases
    cases = _load_cases(root)
    submissions = {"solution": solution, "untouched": release}
    for i, variant in enumerate(v for v in cases if not v["correct"]):
        nb = nbformat.from_dict(solution)
        for cell in nb.cells:
            if course.grade_id(cell) == EXERCISE:
                cell.source = variant["code"]
        submissions[f"wrong_{i}"] = nb
    for student, nb in submissions.items():
        folder = root / "autograder" / "submitted" / student / CHAPTER
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{CHAPTER}.ipynb")
    graded = _run(root, "-m", "nncourse.grade", CHAPTER, "--no-feedback")
    assert graded.returncode == 0, graded.stdout + graded.stderr

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root}/autograder/gradebook.db") as gb:
        scores = {
            s.student.id: {g.name: g.score for g in s.notebooks[0].grades} for s in gb.assignment_submissions(CHAPTER)
        }
    full = {f"{EXERCISE}_test_forward": 1.0, f"{EXERCISE}_test_parameter": 1.0}
    assert scores["solution"] == full
    assert scores["untouched"] == dict.fromkeys(full, 0.0)
    for i, variant in enumerate(v for v in cases if not v["correct"]):
        assert scores[f"wrong_{i}"] == {k: float(p) for k, p in variant["expect"].items()}, variant["label"]


def _load_cases(root: Path) -> list[dict]:
    """The copy's grader cases for the new chapter (read in the copy, as its own tests would)."""
    code = (
        "import json, importlib\n"
        "m = importlib.import_module('tests.grader_cases.ch06')\n"
        "print(json.dumps([dict(label=v.label, code=v.code, expect=v.expect, correct=v.correct) "
        "for v in m.VARIANTS]))"
    )
    run = _run(root, "-c", code)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)
