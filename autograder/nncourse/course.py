"""The course's layout and conventions, in one place.

Everything that knows where a chapter lives, which cells of a notebook are which, which exercise a
test cell belongs to, or how nbgrader is run goes through this module:

* **Folders.** ``autograder/source/<chapter>/<chapter>.ipynb`` is a chapter's instructor notebook
  (the one source of truth); ``notebooks/`` and ``solutions/`` hold what ``make generate`` makes
  from it; ``data/`` the datasets. ``NNCOURSE_ROOT`` points the library at another copy.
* **Chapters** are discovered, not listed: every folder of ``autograder/source`` named
  ``NN_name`` that holds ``NN_name.ipynb`` is a chapter, in the order of its number.
* **Cells** are told apart by nbgrader's metadata: an *answer* cell (``solution``, not graded) is
  where the learner writes and its ``grade_id`` is the exercise id; a *test* cell (graded, not a
  solution) is named ``<exercise id>_test...``; a *read-only* cell (locked, neither) is set-up or
  given code; other cells are prose and demos.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
import re
import subprocess
import symtable
import sys
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------------------- folders
REPO_ROOT = Path(os.environ.get("NNCOURSE_ROOT") or Path(__file__).resolve().parents[2])
AUTOGRADER = REPO_ROOT / "autograder"
SOURCE_DIR = AUTOGRADER / "source"
RELEASE_DIR = REPO_ROOT / "notebooks"
SOLUTION_DIR = REPO_ROOT / "solutions"
DATA_DIR = REPO_ROOT / "data"
SUBMITTED_DIR = AUTOGRADER / "submitted"
FEEDBACK_DIR = AUTOGRADER / "feedback"
CACHE_DIR = AUTOGRADER / ".cache"

CHAPTER_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+$")


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part,
    however many processes write it at once (a file beside it, then renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


def chapters(source_dir: Path | None = None) -> list[str]:
    """The course's chapters, in order: folders ``NN_name`` of the source holding ``NN_name.ipynb``."""
    root = source_dir or SOURCE_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if CHAPTER_NAME.match(p.name) and (p / f"{p.name}.ipynb").is_file())


def notebook_in(folder: Path, chapter: str) -> Path:
    """``folder/<chapter>/<chapter>.ipynb``: where a chapter's notebook sits in each of nbgrader's folders
    (source, release, solutions, and per student in submitted/, autograded/ and feedback/)."""
    return folder / chapter / f"{chapter}.ipynb"


def source_notebook(chapter: str) -> Path:
    return notebook_in(SOURCE_DIR, chapter)


def release_notebook(chapter: str) -> Path:
    return notebook_in(RELEASE_DIR, chapter)


def solution_notebook(chapter: str) -> Path:
    return notebook_in(SOLUTION_DIR, chapter)


def read_source(chapter: str):
    import nbformat  # here: a regrade that reads no notebook does not pay for importing it

    return nbformat.read(source_notebook(chapter), as_version=4)


# ------------------------------------------------------------------------------------------- cells
def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer(cell) -> bool:
    """An autograded answer cell: the learner writes here."""
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("solution")) and not m.get("grade")


def is_test(cell) -> bool:
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_read_only(cell) -> bool:
    """A locked code cell that is neither answer nor test: set-up and given code."""
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("locked")) and not m.get("grade") and not m.get("solution")


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def points(cell) -> float:
    return float(nbgrader_meta(cell).get("points", 0))


TEST_SUFFIX = "_test"


def exercise_of(test_cell_id: str) -> str:
    """The exercise a test cell belongs to: ``ex1_2_test_shapes`` → ``ex1_2``."""
    return test_cell_id.split(TEST_SUFFIX, 1)[0]


def test_points(notebook) -> dict[str, float]:
    """Points of every test cell of a notebook, by cell id."""
    return {gid: points(c) for c in notebook.cells if is_test(c) and (gid := grade_id(c))}


def answer_ids(notebook) -> list[str]:
    """The exercise ids of a notebook's answer cells, in order."""
    return [gid for c in notebook.cells if is_answer(c) and (gid := grade_id(c))]


def strip_magics(source: str) -> str:
    """Drop IPython-only lines (%magic, !shell) so the text is plain Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def bound_names(source: str) -> set[str]:
    """Names a cell binds at its top level (assignment, def, class, import, for, with ...)."""
    try:
        table = symtable.symtable(strip_magics(source), "<cell>", "exec")
    except SyntaxError:
        return set()
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}


def free_names(source: str) -> set[str]:
    """Global names a cell reads without binding them itself, in its own code or in the functions
    and classes it defines (their locals and parameters excluded). Builtins included."""
    try:
        table = symtable.symtable(strip_magics(source), "<cell>", "exec")
    except SyntaxError:
        return set()
    used = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    scopes = list(table.get_children())
    while scopes:
        scope = scopes.pop()
        scopes.extend(scope.get_children())
        used |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
    return used - bound_names(source)


@functools.cache
def demo_only_names(chapter: str) -> frozenset[str]:
    """Names that only demo cells of a chapter define. Grading runs the set-up, given and answer
    cells, never the demos, so an answer that reads one of these fails there with NameError."""
    graded: set[str] = set()
    demo: set[str] = set()
    for cell in read_source(chapter).cells:
        if cell.get("cell_type") != "code" or is_test(cell):
            continue
        (graded if is_read_only(cell) or is_answer(cell) else demo).update(bound_names(cell.source))
    return frozenset(demo - graded - set(dir(builtins)))


def checks_in(source: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The ``check("exercise", "test", name=obj, ...)`` calls of a test cell, in order.

    Read from the trusted source text with ``ast``, so the grader knows what a test cell asks
    for without running it.
    """
    # Any: the two literals are str in any well-formed test cell; other constants are kept, not dropped
    # (the grader then fails that check instead of finding no check in the cell)
    calls: list[tuple[Any, Any, tuple[str, ...]]] = []
    nodes = sorted(
        (n for n in ast.walk(ast.parse(strip_magics(source))) if isinstance(n, ast.Call)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    for node in nodes:
        if not (isinstance(node.func, ast.Name) and node.func.id == "check" and len(node.args) >= 2):
            continue
        exercise, test = node.args[0], node.args[1]
        if isinstance(exercise, ast.Constant) and isinstance(test, ast.Constant):
            calls.append((exercise.value, test.value, tuple(k.arg for k in node.keywords if k.arg)))
    return calls


# ---------------------------------------------------------------------------------------- nbgrader
def nbgrader_env() -> dict:
    """nbgrader calls the ``alembic`` script: make this interpreter's scripts findable."""
    env = dict(os.environ)
    scripts, path = os.path.dirname(sys.executable), env.get("PATH", "")
    if path.split(os.pathsep)[0] != scripts:  # once: the grade command calls this for every phase
        env["PATH"] = scripts + os.pathsep + path
    return env


def nbgrader(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course folder (where ``nbgrader_config.py`` is); raises
    ``RuntimeError`` with nbgrader's output when the command fails."""
    argv = [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"]
    result = subprocess.run(argv, cwd=cwd or REPO_ROOT, env=nbgrader_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


_CONVERTERS = {
    "generate_assignment": "GenerateAssignment",
    "autograde": "Autograde",
    "generate_feedback": "GenerateFeedback",
}


def run_converter(command: str, assignment: str, root: Path | None = None, **overrides: dict) -> str | None:
    """Run one of nbgrader's converters in this process; None on success, else what went wrong.

    The same code as ``nbgrader <command> <assignment>``, configured by the course's
    ``nbgrader_config.py`` plus ``overrides`` (``{"CourseDirectory": {"db_url": ...}}``), without
    starting a Python and importing nbgrader again for each phase of a grading run.
    """
    import logging
    import warnings

    import nbgrader.converters
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log
    from sqlalchemy.exc import SAWarning
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    folder = root or REPO_ROOT
    config = PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()
    config.merge(Config(overrides))
    os.environ["PATH"] = nbgrader_env()["PATH"]  # nbgrader runs the alembic script to set up the gradebook
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    converter = getattr(nbgrader.converters, _CONVERTERS[command])(coursedir=coursedir, config=config)
    converter.log.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own ORM use warns on every submission
        result = capture_log(converter)
    if result["success"]:
        return None
    return (result.get("log", "") + result.get("error", "")).strip()[-3000:] or f"nbgrader {command} failed"
