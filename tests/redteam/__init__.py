"""The red-team corpus of issue 11: hostile answer cells, each paired with its plain wrong twin.

Every :class:`Attack` is an answer cell that is *wrong* (its ``twin``, the same wrong answer without
the tampering, loses points) and that tampers with the grading in order to score more than the
twin. ``tests/test_tamper.py`` grades each one through the course's real grade command and
asserts that tampering never pays. Attack classes (issue 11):

1. probe forging through the module table (``sys.modules``: the checking library's helpers)
2. patching what the probe itself calls (``torch.equal``, ``torch.is_grad_enabled``, private
   handles to banned functions)
3. predictable probe inputs (answers right only on the fixed inputs of the probes)
4. rewriting the exported probe data
5. beating the clock (keeping the progress channel alive)
6. reading what it should not (another copy of the course on the file system)
7. hiding structure from the inspector
8. lifetime tricks (hooks that claim to be removed)
9. other ideas: frames, IPython, ``__subclasses__``, torch function modes, global hooks, ...

:class:`Honest` answers are correct and written in the honest styles the static policy must not
punish; they must keep full marks.

The chapter modules (``ch01`` … ``ch05``, ``honest``) define ``ATTACKS`` / ``HONEST`` lists.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

CHAPTERS = ("01_module_basics", "02_parameters", "03_train_eval_loop", "04_hooks", "05_functional_vs_modules")
ATTACK_CLASSES = {
    1: "probe forging through the module table",
    2: "patching what the probe calls",
    3: "predictable probe inputs",
    4: "rewriting exports",
    5: "beating the clock",
    6: "reading what it should not",
    7: "hiding structure from the inspector",
    8: "lifetime tricks",
    9: "other",
}
# every honest style issue 11 lists, plus the ones the brief asks for
HONEST_STYLES = (
    "copy",
    "math",
    "collections",
    "functools",
    "itertools",
    "typing",
    "dataclasses",
    "numpy",
    "matplotlib",
    "torch.nn.init",
    "torch.func",
    "torch.nn.utils",
    "list_comprehension",
    "dict_comprehension",
    "lambda",
    "property",
    "super_with_args",
    "super_without_args",
    "ModuleList",
    "ModuleDict",
    "Sequential",
    "print",
    "plotting",
    "private_helper",
    "private_attribute",
    "getattr_setattr_self",
    "warnings",
    "f_string",
    "type_hints",
    "isinstance",
    "no_grad",
    "generator_expression",
)


@dataclass(frozen=True)
class Attack:
    name: str  # unique, snake_case
    chapter: str  # e.g. "01_module_basics"
    exercise: str  # the answer cell's grade_id
    attack_class: int  # 1..8 = the classes of issue 11, 9 = another idea
    code: str  # the hostile answer cell: a WRONG answer plus the tampering
    twin: str  # exactly the same wrong answer without the tampering
    policy: bool = True  # False: also graded with NNCOURSE_POLICY=off (runtime layers alone must stop it)


@dataclass(frozen=True)
class Honest:
    name: str
    chapter: str
    exercise: str
    styles: tuple[str, ...]
    code: str  # a CORRECT answer


def variant(chapter_module: str, label: str) -> str:
    """The code of a realistic wrong answer from tests/grader_cases (reused as a twin)."""
    cases = importlib.import_module(f"tests.grader_cases.{chapter_module}")
    for v in cases.VARIANTS:
        if v.label == label:
            return v.code.strip("\n") + "\n"
    raise KeyError(f"no grader case {label!r} in {chapter_module}")


def attack(name, chapter, exercise, attack_class, twin, tamper, *, after=False, policy=True) -> Attack:
    """An attack made of the twin plus tampering code (before it, or ``after`` it)."""
    twin = twin.strip("\n") + "\n"
    tamper = tamper.strip("\n") + "\n"
    code = twin + "\n" + tamper if after else tamper + "\n" + twin
    return Attack(name, chapter, exercise, attack_class, code, twin, policy)


# ----------------------------------------------------------------------------- shared tampering
# Where another copy of the course may lie (a second clone, a home folder, /opt): the test session
# puts one in each of these (tests/test_tamper.py, fixture ``course_copies``).
SEARCH_ROOTS = ("/tmp", "/opt", "/root", "/home", "/srv", "/work", "/mnt", "/var/tmp")

# Defines _find_copy(relative_path) -> absolute path or None, walking with os.walk.
FIND_WITH_OS_WALK = """
import os as _os

def _find_copy(rel, roots=%r, depth=4):
    skip = {".venv", ".git", "site-packages", "node_modules", "__pycache__", ".cache", "proc", "sys", "dev"}
    for root in roots:
        base = root.rstrip("/").count("/")
        for here, dirs, files in _os.walk(root):
            if here.count("/") - base >= depth:
                dirs[:] = []
            dirs[:] = [d for d in dirs if d not in skip]
            candidate = _os.path.join(here, rel)
            try:
                with open(candidate, "rb") as f:
                    f.read(1)
                return candidate
            except Exception:
                continue
    return None
""" % (SEARCH_ROOTS,)

# Runs the answer cell of EXERCISE from the worked-solution notebook found at path _nb.
EXEC_SOLUTION_CELL = """
def _exec_solution(path, exercise, namespace):
    import json as _json
    with open(path) as f:
        nb = _json.load(f)
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == exercise:
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            exec(source, namespace)
            return True
    return False
"""

# Keeps the grader's per-cell clock from ever running out: "end" lines on the progress pipe.
KEEPALIVE_SLEEP = """
import os, time
_fd = int(os.environ.get("NNCOURSE_PROGRESS_FD", "-1"))

def _still_working():
    if _fd >= 0:
        try:
            os.write(_fd, b"end 0\\n")
        except OSError:
            pass
"""
