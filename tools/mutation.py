"""Mutation testing of the graded checks against the reference solutions (``make mutation``).

    python -m tools.mutation [chapters...] [--sample K] [--seed S] [--jobs J] [--min-score X]
                             [--timeout SECONDS] [--list] [--verbose]

Each *mutant* is the reference answer cell of one exercise with one small change (an operator
swapped, a constant moved, a call dropped, ...). The mutant replaces that answer cell and the
exercise's test cells are scored as grading scores them (``tools.verify.run_variant``'s rules: the
read-only cells and the answer cells run in notebook order, the grading policy reviews the answer
cell first, a check earns its points times its credit). A mutant is **killed** when some test cell
of its exercise earns fewer points than with the unmutated reference, or when it runs past the time
limit (grading has time limits too); otherwise it **survived**: a wrong answer the checks accept.
The mutation score is killed / (mutants - reviewed equivalents); ``tests/mutation_equivalents.txt``
lists the mutants that no check respecting the exercise's contract could tell apart from the reference.

Why our own mutator and not mutmut or cosmic-ray: those mutate the files of a package and run a
test command per mutant, while our references are notebook cells graded in-process. Mutating the
syntax tree of one cell's solution code is a few lines of ``ast``, and scoring it needs no file
rewritten and no test session started: a worker process (``--jobs`` of them, each taking a share of
the chapters) runs a chapter's cells once and forks a child per mutant from the state just before
the mutated cell, so a mutant costs only its own cell and its exercise's checks. Each child has a
time limit (``--timeout``, 60 s); running past it kills the mutant.

What is mutated: only code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the given
scaffolding around it is not the learner's), never a ``print(...)`` call or its arguments (printed
output is not graded), never docstrings or f-string text. A mutant whose source does not compile, or
that repeats an earlier mutant's source, is not generated. Mutants are enumerated in source order, so
their ids (``ex1_1_simple_nn#12 BinOp Add->Sub line 8``, the line of the answer cell as stored) stay
the same until the reference itself changes.

The workers run on the CPU with one thread: children are forked, and CUDA does not survive a fork.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import functools
import io
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from nncourse import course

EQUIVALENTS_FILE = course.REPO_ROOT / "tests" / "mutation_equivalents.txt"
DEFAULT_TIMEOUT_S = 60.0
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"

# ------------------------------------------------------------------------------------ mutant model


@dataclass(frozen=True)
class Mutant:
    chapter: str
    exercise: str
    index: int  # 1-based, in source order within the exercise
    operator: str  # what was changed, e.g. "BinOp Add->Sub"
    line: int  # line of the answer cell as stored in the notebook (markers included)
    old: str  # the changed source line(s), stripped
    new: str
    code: str  # the whole mutated answer cell, solution markers removed

    @property
    def id(self) -> str:
        return f"{self.exercise}#{self.index} {self.operator} line {self.line}"

    @property
    def diff(self) -> str:
        return f"{self.old}  →  {self.new}"


@dataclass
class _Edit:
    """One candidate change: ``node`` (of the original tree) becomes ``replacement``."""

    node: ast.AST
    replacement: ast.AST
    operator: str


def solution_code(cell_source: str) -> tuple[str, set[int], dict[int, int]]:
    """The answer cell without its marker lines, the lines (1-based) that are solution code, and
    the map from those lines to the lines of the cell as stored."""
    kept: list[str] = []
    solution_lines: set[int] = set()
    cell_line: dict[int, int] = {}
    inside = False
    for number, line in enumerate(cell_source.splitlines(), start=1):
        marker = line.strip()
        if marker.startswith(BEGIN):
            inside = True
            continue
        if marker.startswith(END):
            inside = False
            continue
        kept.append(line)
        cell_line[len(kept)] = number
        if inside:
            solution_lines.add(len(kept))
    return "\n".join(kept) + "\n", solution_lines, cell_line


# ------------------------------------------------------------------------------------ the operators
_BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
_COMPARE_SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_INPLACE_PAIRS = {"add_": "add", "sub_": "sub", "mul_": "mul", "div_": "div", "clamp_": "clamp", "lerp_": "lerp"}
_INPLACE_PAIRS.update({v: k for k, v in list(_INPLACE_PAIRS.items())})
# receivers whose methods of those names are functions of a module, not tensor methods
_MODULE_NAMES = {"torch", "nn", "F", "math", "np", "numpy", "init"}
# methods whose result is a tensor: a return of such a call is one a learner could .detach()
_TENSOR_METHODS = {"mean", "sum", "squeeze", "unsqueeze", "clamp", "norm", "view", "reshape", "relu", "exp", "log"}


def _name(node: ast.AST) -> str:
    return type(node).__name__


def _callee(call: ast.Call) -> str:
    text = ast.unparse(call.func)
    return text if len(text) <= 40 else text[:37] + "..."


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_print(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"


def _is_super_init(call: ast.Call) -> bool:
    f = call.func
    return (
        isinstance(f, ast.Attribute)
        and f.attr == "__init__"
        and isinstance(f.value, ast.Call)
        and isinstance(f.value.func, ast.Name)
        and f.value.func.id == "super"
    )


def _with(node: ast.AST, **fields) -> ast.AST:
    new = copy.deepcopy(node)
    for key, value in fields.items():
        setattr(new, key, value)
    return new


def _looks_like_tensor(value: ast.AST, function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> bool:
    """Heuristic for ``AddDetach``: is this return value a tensor (not a tuple, a number, a closure)?"""
    if isinstance(value, ast.Tuple | ast.List | ast.Dict | ast.Set | ast.Constant | ast.ListComp | ast.DictComp):
        return False
    if function is None:
        return False
    nested = {n.name for n in function.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if isinstance(value, ast.Name) and value.id in nested:
        return False  # a hook factory returns its hook
    if isinstance(value, ast.BinOp) and any(isinstance(v, ast.Tuple) for v in (value.left, value.right)):
        return False
    if function.name == "forward" or "hook" in function.name:
        return True
    if isinstance(value, ast.Call):
        f = value.func
        if isinstance(f, ast.Attribute):  # a method of a tensor, or a function (not a class) of torch
            return f.attr in _TENSOR_METHODS or (_root_name(f) in {"F", "torch"} and not f.attr[:1].isupper())
        return isinstance(f, ast.Name) and f.id == "functional_call"
    return False


class _Enumerator(ast.NodeVisitor):
    """Collects the candidate edits of one tree, restricted to the solution lines."""

    def __init__(self, solution_lines: set[int]):
        self.solution_lines = solution_lines
        self.edits: list[_Edit] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.skip: set[int] = set()  # ids of nodes not to mutate (docstrings, f-string parts)

    def _in_solution(self, node: ast.AST) -> bool:
        start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        return start is not None and all(n in self.solution_lines for n in range(start, (end or start) + 1))

    def add(self, node: ast.AST, replacement: ast.AST, operator: str) -> None:
        if self._in_solution(node):
            self.edits.append(_Edit(node, replacement, operator))

    # ----------------------------------------------------------------------- walking
    def visit_Call(self, node: ast.Call) -> None:
        if _is_print(node):
            return  # printed output is not graded: nothing in a print is mutated
        self._call_edits(node)
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Call) and not _is_print(node.value):
            label = "DropSuperInit" if _is_super_init(node.value) else f"DropCall {_callee(node.value)}"
            self.add(node, ast.Pass(), label)
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            self.skip.add(id(node.value))  # a docstring
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for part in ast.walk(node):
            if isinstance(part, ast.Constant):
                self.skip.add(id(part))
        self.generic_visit(node)

    def _visit_loop(self, node: ast.For | ast.While | ast.AsyncFor) -> None:
        for statement in node.body:
            self.add(statement, ast.Pass(), f"DropLoopStmt {_name(statement)}")
        self.generic_visit(node)

    visit_For = _visit_loop
    visit_AsyncFor = _visit_loop
    visit_While = _visit_loop

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = _BINOP_SWAPS.get(type(node.op))
        if swap:
            self.add(node, _with(node, op=swap()), f"BinOp {_name(node.op)}->{swap.__name__}")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        swap = _BINOP_SWAPS.get(type(node.op))
        if swap:
            self.add(node, _with(node, op=swap()), f"AugAssign {_name(node.op)}->{swap.__name__}")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap:
                ops = [swap() if j == i else copy.deepcopy(o) for j, o in enumerate(node.ops)]
                self.add(node, _with(node, ops=ops), f"Compare {_name(op)}->{swap.__name__}")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        self.add(node, _with(node, op=swap()), f"BoolOp {_name(node.op)}->{swap.__name__}")
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.add(node, copy.deepcopy(node.operand), "RemoveNot")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self.skip:
            return
        value = node.value
        if isinstance(value, bool):
            changed: list[bool | int | float | str] = [not value]
        elif isinstance(value, int):
            changed = [value + 1, value - 1]
        elif isinstance(value, float):
            changed = [0.0, value * 2] if value else [1.0]
        elif isinstance(value, str):
            changed = [value + "x"]
        else:
            return
        for new in changed:
            self.add(node, ast.Constant(new), f"Constant {value!r}->{new!r}")

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
            self.add(node, ast.Return(ast.Constant(None)), "ReturnNone")
            function = self.functions[-1] if self.functions else None
            if _looks_like_tensor(value, function):
                detached = ast.Call(ast.Attribute(copy.deepcopy(value), "detach", ast.Load()), [], [])
                self.add(node, ast.Return(detached), "AddDetach")
        self.generic_visit(node)

    # ----------------------------------------------------------------------- calls
    def _call_edits(self, node: ast.Call) -> None:
        func = node.func
        positional = node.args
        if len(positional) >= 2 and not any(isinstance(a, ast.Starred) for a in positional[:2]):
            if ast.dump(positional[0]) != ast.dump(positional[1]):
                swapped = [copy.deepcopy(positional[1]), copy.deepcopy(positional[0]), *copy.deepcopy(positional[2:])]
                self.add(node, _with(node, args=swapped), f"SwapArgs {_callee(node)}")
        for i, keyword in enumerate(node.keywords):
            if keyword.arg is not None:
                kept = [copy.deepcopy(k) for j, k in enumerate(node.keywords) if j != i]
                self.add(node, _with(node, keywords=kept), f"DropKeyword {keyword.arg}")
        if isinstance(func, ast.Name) and func.id == "range" and positional:
            stop = 0 if len(positional) == 1 else 1
            args = copy.deepcopy(positional)
            args[stop] = ast.BinOp(args[stop], ast.Sub(), ast.Constant(1))
            self.add(node, _with(node, args=args), "RangeMinusOne")
        if not isinstance(func, ast.Attribute):
            return
        no_arguments = not positional and not node.keywords
        if func.attr in ("eval", "train") and no_arguments:
            other = "train" if func.attr == "eval" else "eval"
            self.add(node, _with(node, func=_with(func, attr=other)), f"TrainEval {func.attr}->{other}")
        if func.attr == "detach" and no_arguments:
            self.add(node, copy.deepcopy(func.value), "RemoveDetach")
        if func.attr in _INPLACE_PAIRS and _root_name(func) not in _MODULE_NAMES:
            other = _INPLACE_PAIRS[func.attr]
            self.add(node, _with(node, func=_with(func, attr=other)), f"InPlace {func.attr}->{other}")
        if func.attr == "zero_" and no_arguments:
            self.add(node, copy.deepcopy(func.value), "RemoveZero")


# ------------------------------------------------------------------------------------ rendering
def _replace(tree: ast.AST, target: ast.AST, replacement: ast.AST) -> None:
    """Put ``replacement`` where ``target`` is in ``tree`` (in place)."""
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, field, replacement)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is target:
                        value[i] = replacement
                        return
    raise LookupError("node not found")


def _splice(code: str, node: ast.AST, text: str) -> str:
    """``code`` with the source span of ``node`` replaced by ``text`` (offsets are UTF-8 bytes)."""
    lines = code.encode().splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    data = code.encode()
    begin = starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
    end = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
    return (data[:begin] + text.encode() + data[end:]).decode()


def _render(code: str, tree: ast.Module, edit: _Edit) -> str | None:
    """The mutated source, or None when no text gives the intended tree (or it does not compile)."""
    index = next(i for i, n in enumerate(ast.walk(tree)) if n is edit.node)
    expected = copy.deepcopy(tree)
    _replace(expected, list(ast.walk(expected))[index], copy.deepcopy(edit.replacement))
    wanted = ast.dump(expected)
    text = ast.unparse(ast.fix_missing_locations(copy.deepcopy(edit.replacement)))
    candidates = [text] if isinstance(edit.node, ast.stmt) else [text, f"({text})"]
    for candidate in candidates:
        mutated = _splice(code, edit.node, candidate)
        try:
            if ast.dump(ast.parse(mutated)) == wanted:
                compile(mutated, "<mutant>", "exec")
                return mutated
        except (SyntaxError, ValueError):
            continue
    return None


def _changed_lines(code: str, mutated: str) -> tuple[str, str]:
    """The lines that differ (each side joined into one, stripped): old and new."""
    old, new = code.splitlines(), mutated.splitlines()
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1

    def join(lines: list[str]) -> str:
        return " ".join(line.strip() for line in lines) or "(nothing)"

    return join(old[head : len(old) - tail]), join(new[head : len(new) - tail])


def mutants_of_cell(chapter: str, exercise: str, cell_source: str) -> list[Mutant]:
    """Every mutant of one answer cell, in a stable order (position in the source, then operator)."""
    code, solution_lines, cell_line = solution_code(cell_source)
    tree = ast.parse(code)
    enumerator = _Enumerator(solution_lines)
    enumerator.visit(tree)
    order = {id(n): i for i, n in enumerate(ast.walk(tree))}
    edits = sorted(
        enumerate(enumerator.edits),
        key=lambda pair: (pair[1].node.lineno, pair[1].node.col_offset, order[id(pair[1].node)], pair[0]),  # type: ignore[attr-defined]
    )
    seen: set[str] = set()
    mutants: list[Mutant] = []
    for _, edit in edits:
        mutated = _render(code, tree, edit)
        if mutated is None or mutated in seen or mutated == code:
            continue
        seen.add(mutated)
        line = edit.node.lineno  # type: ignore[attr-defined]
        old, new = _changed_lines(code, mutated)
        mutants.append(Mutant(chapter, exercise, len(mutants) + 1, edit.operator, cell_line[line], old, new, mutated))
    return mutants


def enumerate_mutants(chapters: list[str] | None = None) -> list[Mutant]:
    """Every mutant of the given chapters (all by default), chapter by chapter in notebook order."""
    found: list[Mutant] = []
    for chapter in chapters or course.chapters():
        for cell in course.read_source(chapter).cells:
            if course.is_answer(cell) and (exercise := course.grade_id(cell)):
                found.extend(mutants_of_cell(chapter, exercise, cell.source))
    return found


def read_equivalents(path: Path = EQUIVALENTS_FILE) -> dict[str, str]:
    """``{mutant id: why it is equivalent}`` from the reviewed file (``<id>  # why`` per line)."""
    found: dict[str, str] = {}
    if not path.is_file():
        return found
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        mutant_id, _, why = raw.partition("  #")
        found[mutant_id.strip()] = why.strip()
    return found


def sample(mutants: list[Mutant], per_chapter: int, seed: int, exclude: Collection[str] = ()) -> list[Mutant]:
    """``per_chapter`` mutants of each chapter, drawn with ``seed`` from those not in ``exclude``."""
    picked: list[Mutant] = []
    chapters = sorted({m.chapter for m in mutants})
    for chapter in chapters:
        pool = [m for m in mutants if m.chapter == chapter and m.id not in exclude]
        rng = random.Random(f"{seed}:{chapter}")
        chosen = {m.id for m in rng.sample(pool, min(per_chapter, len(pool)))}
        picked.extend(m for m in pool if m.id in chosen)
    return picked


# ------------------------------------------------------------------------------------ scoring
@dataclass
class Outcome:
    mutant_id: str
    killed: bool
    reason: str  # the first test cell that lost points and why, "timeout", or "" when it survived
    seconds: float


@dataclass
class ChapterRun:
    chapter: str
    reference: dict[str, dict[str, float]]  # exercise -> test cell -> points of the unmutated reference
    full: dict[str, float]  # test cell -> the points it is worth
    outcomes: dict[str, Outcome]
    seconds: float
    error: str = ""


def _assign(chapters: list[str], mutants: list[Mutant], jobs: int) -> list[list[str]]:
    """Chapters per worker: the costliest first, each to the least loaded worker (a chapter's cells and
    references cost about as much as 20 mutants)."""
    cost = {c: 20 + sum(m.chapter == c for m in mutants) for c in chapters}
    workers: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(chapters))))]
    load = [0] * len(workers)
    for chapter in sorted(chapters, key=lambda c: -cost[c]):
        least = load.index(min(load))
        workers[least].append(chapter)
        load[least] += cost[chapter]
    return [sorted(w) for w in workers if w]


def score(
    mutants: list[Mutant], chapters: list[str], jobs: int = 1, timeout: float = DEFAULT_TIMEOUT_S
) -> list[ChapterRun]:
    """Score the mutants with ``jobs`` worker processes, each taking a share of the chapters.

    Every chapter's references are scored too: the baseline a mutant must fall below."""
    env = dict(os.environ, NNCOURSE_DEVICE="cpu", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    runs: dict[str, ChapterRun] = {}
    with tempfile.TemporaryDirectory(prefix="mutation-") as folder:
        running: list[tuple[list[str], subprocess.Popen, Path]] = []
        try:
            for number, share in enumerate(_assign(chapters, mutants, jobs)):
                job = Path(folder) / f"worker{number}.json"
                todo = [
                    {"id": m.id, "chapter": m.chapter, "exercise": m.exercise, "code": m.code}
                    for m in mutants
                    if m.chapter in share
                ]
                job.write_text(json.dumps({"chapters": share, "mutants": todo, "timeout": timeout}))
                argv = [sys.executable, "-m", "tools.mutation", "--worker", str(job)]
                # a session of its own: on interruption the worker and its forked children go together
                process = subprocess.Popen(
                    argv, cwd=course.REPO_ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True
                )
                running.append((share, process, job))
            for share, process, job in running:
                process.wait()
                result_file = job.with_suffix(".out.json")
                found = json.loads(result_file.read_text()) if result_file.is_file() else {}
                for chapter in share:
                    failed = f"the worker failed (exit status {process.returncode})"
                    runs[chapter] = _read_run(chapter, found[chapter]) if chapter in found else _failed(chapter, failed)
        finally:  # interrupted: leave no worker behind
            for _, process, _ in running:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    return [runs[c] for c in chapters]


def _failed(chapter: str, why: str) -> ChapterRun:
    return ChapterRun(chapter, {}, {}, {}, 0.0, why)


def _read_run(chapter: str, data: dict) -> ChapterRun:
    reference = data["reference"]
    outcomes = {}
    for mutant_id, result in data["results"].items():
        exercise = result["exercise"]
        if result.get("timeout"):
            outcomes[mutant_id] = Outcome(mutant_id, True, "timeout", result["seconds"])
            continue
        if "scores" not in result:
            outcomes[mutant_id] = Outcome(mutant_id, True, result.get("error", "crashed"), result["seconds"])
            continue
        reason = ""
        for cell, points in reference.get(exercise, {}).items():
            got = result["scores"].get(cell, 0.0)
            if got < points:
                reason = f"{cell}: {got:g}/{points:g} {result['scores'].get(cell + ':why', '')}".strip()
                break
        outcomes[mutant_id] = Outcome(mutant_id, bool(reason), reason, result["seconds"])
    return ChapterRun(chapter, reference, data["full"], outcomes, data["seconds"])


# ------------------------------------------------------------------------------------ the worker
def _exec_cell(source: str, name: str, namespace: dict) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(course.strip_magics(source), name, "exec"), namespace)


def _test_cells_of(nb, exercise: str) -> list[int]:
    """Indices of the exercise's test cells."""
    return [
        i
        for i, c in enumerate(nb.cells)
        if course.is_test(c) and course.exercise_of(course.grade_id(c) or "") == exercise
    ]


def _score_exercise(nb, start: int, exercise: str, code: str, *, namespace: dict, context) -> dict[str, float | str]:
    """In a forked child: the exercise's answer cell as ``code``, then the cells up to its last test
    cell (read-only and answer cells as they are, only this exercise's test cells), as run_variant."""
    from nncourse import policy
    from nncourse.checking import CheckFailed
    from nncourse.grading.job import POLICY_ON

    scores: dict[str, float | str] = {}
    tests = _test_cells_of(nb, exercise)
    refusals = policy.review_answer(exercise, code, context) if POLICY_ON else []
    if refusals:
        for i in tests:
            gid = course.grade_id(nb.cells[i]) or ""
            scores[gid], scores[gid + ":why"] = 0.0, "refused by the grading policy: " + refusals[0].describe()
        return scores
    for i in range(start, (max(tests) if tests else start) + 1):
        cell = nb.cells[i]
        gid = course.grade_id(cell) or ""
        if i == start or course.is_read_only(cell) or course.is_answer(cell):
            try:
                _exec_cell(code if i == start else cell.source, gid, namespace)
            except Exception:
                pass  # as at grading time: the checks then find what is missing or wrong
        elif i in tests:
            try:
                _exec_cell(cell.source, gid, namespace)
                scores[gid] = course.points(cell)
            except CheckFailed as e:
                scores[gid] = course.points(cell) * e.verdict.credit
                scores[gid + ":why"] = e.verdict.message.splitlines()[0][:200]
            except Exception as e:
                scores[gid], scores[gid + ":why"] = 0.0, f"{type(e).__name__}: {e}"[:200]
    return scores


def _in_child(work, timeout: float) -> dict:
    """Fork, run ``work()`` in the child with its output silenced, return its JSON result (or why not)."""
    started = time.monotonic()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        status = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            payload = json.dumps(work()).encode()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        except BaseException:
            status = 1
        os._exit(status)
    os.close(write_end)
    chunks: list[bytes] = []
    timed_out = False
    deadline = started + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_end], [], [], left)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = round(time.monotonic() - started, 2)
    if timed_out:
        return {"timeout": True, "seconds": seconds}
    try:
        return {"scores": json.loads(b"".join(chunks)), "seconds": seconds}
    except ValueError:
        return {"error": f"the child crashed (exit code {os.waitstatus_to_exitcode(status)})", "seconds": seconds}


def _prepare_references(nb, exercise: str) -> None:
    """Compute (and cache, for every child) the reference data of the exercise's checks, leaving the
    random generators as they were: in run_variant this happens after the answer cell has run."""
    import torch

    from nncourse.checking import reference_data
    from nncourse.registry import get_test

    python_state, torch_state = random.getstate(), torch.get_rng_state()
    try:
        for index in _test_cells_of(nb, exercise):
            for exercise_id, test, names in course.checks_in(nb.cells[index].source):
                with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
                    reference_data(get_test(exercise_id, test), names)
    finally:
        random.setstate(python_state)
        torch.set_rng_state(torch_state)


def _score_chapter(chapter: str, mutants: list[dict], timeout: float) -> dict:
    """Score one chapter's mutants: run its cells once, fork a child per mutant at its answer cell."""
    from nncourse import policy

    started = time.monotonic()
    by_exercise: dict[str, list[dict]] = {}
    for m in mutants:
        by_exercise.setdefault(m["exercise"], []).append(m)
    nb = course.read_source(chapter)
    context = policy.Context.from_setup([c.source for c in nb.cells if course.is_read_only(c)])
    for cell in nb.cells:  # warm the policy's caches once here, not in every child (it imports torch._dynamo)
        if course.is_answer(cell):
            policy.review_answer(course.grade_id(cell) or "", solution_code(cell.source)[0], context)
    namespace: dict = {"__name__": "__main__"}
    reference: dict[str, dict[str, float]] = {}
    results: dict[str, dict] = {}
    for index, cell in enumerate(nb.cells):
        gid = course.grade_id(cell) or ""
        if course.is_answer(cell):
            _prepare_references(nb, gid)
            code = solution_code(cell.source)[0]
            run = functools.partial(_score_exercise, nb, index, gid, namespace=namespace, context=context)
            baseline = _in_child(functools.partial(run, code), timeout)
            reference[gid] = {k: v for k, v in baseline.get("scores", {}).items() if not k.endswith(":why")}
            for m in by_exercise.get(gid, []):
                result = _in_child(functools.partial(run, m["code"]), timeout)
                results[m["id"]] = {"exercise": gid, **result}
        if course.is_read_only(cell) or course.is_answer(cell):
            try:
                _exec_cell(solution_code(cell.source)[0] if course.is_answer(cell) else cell.source, gid, namespace)
            except Exception as e:
                print(f"{chapter}: cell {gid} raised {type(e).__name__}: {e}", file=sys.stderr)
    seconds = round(time.monotonic() - started, 1)
    return {"reference": reference, "full": course.test_points(nb), "results": results, "seconds": seconds}


def worker(job_file: Path) -> int:
    """A worker process: its share of the chapters, one after the other (torch is imported once)."""
    import torch

    torch.set_num_threads(1)  # a light neighbour on a shared machine; forked children stay single-threaded
    job = json.loads(job_file.read_text())
    out = {}
    for chapter in job["chapters"]:
        mine = [m for m in job["mutants"] if m["chapter"] == chapter]
        out[chapter] = _score_chapter(chapter, mine, float(job["timeout"]))
    job_file.with_suffix(".out.json").write_text(json.dumps(out))
    return 0


# ------------------------------------------------------------------------------------ the report
@dataclass
class Summary:
    killed: int
    counted: int  # mutants run that are not reviewed equivalents
    survivors: list[Mutant]

    @property
    def score(self) -> float:
        return self.killed / self.counted if self.counted else 1.0


def summarize(mutants: list[Mutant], runs: list[ChapterRun], equivalents: dict[str, str]) -> Summary:
    outcomes = {mid: o for run in runs for mid, o in run.outcomes.items()}
    counted = [m for m in mutants if m.id not in equivalents and m.id in outcomes]
    killed = sum(outcomes[m.id].killed for m in counted)
    return Summary(killed, len(counted), [m for m in counted if not outcomes[m.id].killed])


def reference_problems(runs: list[ChapterRun]) -> list[str]:
    """Test cells where the unmutated reference does not earn full marks (it always should)."""
    problems = []
    for run in runs:
        if run.error:
            problems.append(f"{run.chapter}: {run.error}")
        for cell, worth in run.full.items():
            got = run.reference.get(course.exercise_of(cell), {}).get(cell)
            if got != worth:
                problems.append(f"{run.chapter}: reference scores {got} of {worth} on {cell}")
    return problems


def report(
    mutants: list[Mutant], runs: list[ChapterRun], equivalents: dict[str, str], verbose: bool = False
) -> Summary:
    for run in runs:
        mine = [m for m in mutants if m.chapter == run.chapter]
        summary = summarize(mine, [run], equivalents)
        skipped = sum(m.id in equivalents for m in mine)
        print(
            f"{run.chapter}: mutation score: {summary.killed}/{summary.counted}"
            f" ({len(mine)} mutants, {skipped} reviewed equivalent, {run.seconds:.0f} s)"
        )
        for m in summary.survivors:
            print(f"  SURVIVED {m.id}: {m.diff}")
        if verbose:
            for m in mine:
                outcome = run.outcomes.get(m.id)
                if outcome and outcome.killed:
                    print(
                        f"  killed   {m.id} ({outcome.seconds:.1f} s): {m.diff}\n           by {outcome.reason[:160]}"
                    )
        for m in mine:
            outcome = run.outcomes.get(m.id)
            if m.id in equivalents and outcome and outcome.killed:
                print(f"  listed as equivalent but KILLED ({outcome.reason}): {m.id}: {m.diff}")
    for problem in reference_problems(runs):
        print(f"  REFERENCE PROBLEM {problem}")
    total = summarize(mutants, runs, equivalents)
    print(f"overall mutation score: {total.killed}/{total.counted} ({100 * total.score:.1f}%)")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapters to test (default: all)")
    parser.add_argument("--sample", type=int, metavar="K", help="score K mutants per chapter, drawn with --seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes, each scoring a share of the chapters (default 1)"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per mutant (default 60)")
    parser.add_argument("--min-score", type=float, metavar="X", help="exit 1 below X (a fraction, or a percentage)")
    parser.add_argument("--list", action="store_true", help="list the mutants without running them")
    parser.add_argument("--verbose", action="store_true", help="also list the killed mutants and what killed them")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    chapters = args.chapters or course.chapters()
    unknown = sorted(set(chapters) - set(course.chapters()))
    if unknown:
        parser.error(f"no such chapter: {', '.join(unknown)}")
    mutants = enumerate_mutants(chapters)
    equivalents = read_equivalents()
    if args.list:
        for m in mutants:
            print(f"{m.id}{'  (equivalent)' if m.id in equivalents else ''}: {m.diff}")
        print(f"{len(mutants)} mutants")
        return 0
    if args.sample is not None:
        mutants = sample(mutants, args.sample, args.seed, set(equivalents))
    started = time.monotonic()
    runs = score(mutants, chapters, jobs=args.jobs, timeout=args.timeout)
    summary = report(mutants, runs, equivalents, args.verbose)
    print(f"({len(mutants)} mutants run in {time.monotonic() - started:.0f} s)")
    if args.min_score is not None:  # a gate: a reference that loses points, or a chapter not scored, fails it too
        threshold = args.min_score / 100 if args.min_score > 1 else args.min_score
        return 0 if summary.score >= threshold and not reference_problems(runs) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
