"""Turn a submission into what the sandbox runs: the source notebook with the learner's answers.

Only answer cells come from the submission (matched by nbgrader ``grade_id``). Every other cell —
setup, given code, demos, and every test cell — comes from the instructor's source, so edited,
deleted, duplicated or added test cells change nothing. Demo cells are not run at grading time:
answers may depend only on the setup and read-only cells.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field

import nbformat

from .. import course, policy, settings
from .results import POLICY_ON


@dataclass
class Step:
    """One cell the child runs."""

    cell_id: str  # grade_id
    kind: str  # "given" | "answer" | "test"
    source: str
    time_limit: float


@dataclass
class Job:
    chapter: str
    notebook: nbformat.NotebookNode  # the rebuilt notebook (source structure)
    steps: list[Step]
    notes: list[str] = field(default_factory=list)  # what the instructor should know
    unreadable: bool = False  # no notebook to grade: nothing runs
    refused: dict[str, str] = field(default_factory=dict)  # exercise -> why the policy refused its answer

    def fingerprint(self) -> str:
        return json.dumps(
            [[[s.cell_id, s.kind, s.source, s.time_limit] for s in self.steps], self.refused], sort_keys=True
        )


def _exercise_of(cell_id: str) -> str | None:
    from ..registry import load_exercises  # here: reading a submission needs no torch

    exercises = load_exercises()
    if cell_id in exercises:
        return cell_id
    head = course.exercise_of(cell_id)
    return head if head in exercises else None


def read_submission(path) -> tuple[nbformat.NotebookNode | None, str | None]:
    """The submitted notebook, or None and a reason an instructor can read."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None, "no notebook was submitted"
    except (OSError, UnicodeDecodeError) as e:
        return None, f"the notebook could not be read ({e})"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises several kinds for broken JSON
        return None, f"the notebook is not valid JSON (truncated or corrupted?): {str(e).splitlines()[0][:200]}"
    if not isinstance(nb.get("cells"), list):
        return None, "the file is not a Jupyter notebook (no cells)"
    return nb, None


@functools.cache  # parsed once per grading process; build_job copies it
def _source(chapter: str) -> nbformat.NotebookNode:
    return course.read_source(chapter)


def build_job(chapter: str, submitted: nbformat.NotebookNode | None, problem: str | None = None) -> Job:
    from ..registry import load_exercises  # here: reading a submission needs no torch

    exercises = load_exercises()
    grading = settings.current()
    source = _source(chapter)
    notes = [problem] if problem else []
    answers: dict[str, list] = {}
    if submitted is not None:
        for cell in submitted.cells:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            gid = course.grade_id(cell)
            if gid and course.is_answer(cell):
                answers.setdefault(gid, []).append(cell)
    rebuilt = copy.deepcopy(source)
    steps: list[Step] = []
    refused: dict[str, str] = {}
    context = _policy_context(chapter)
    for cell in rebuilt.cells:
        gid = course.grade_id(cell)
        if cell.cell_type != "code" or not gid:
            continue  # markdown and demos: kept for the feedback, not run
        exercise = _exercise_of(gid)
        limit = min(exercises[exercise].time_limit if exercise else grading.setup_time_limit, grading.cell_time_cap)
        if course.is_answer(cell):
            found = answers.get(gid, [])
            if submitted is not None and not found:
                notes.append(f"answer cell {gid} is missing from the submission: graded as unanswered")
            if len(found) > 1:
                notes.append(f"answer cell {gid} appears {len(found)} times: the first one was graded")
            if found:
                cell.source = _text(found[0].get("source", ""))
            else:
                cell.source = "# (no answer submitted)\nraise NotImplementedError()"
            refusals = policy.review_answer(gid, cell.source, context) if POLICY_ON else []
            if found and refusals:
                refused[gid] = policy.explain(refusals)
            steps.append(Step(gid, "answer", cell.source, limit))
        elif course.is_test(cell):
            steps.append(Step(gid, "test", cell.source, limit))
        elif course.is_read_only(cell):
            steps.append(Step(gid, "given", cell.source, min(grading.setup_time_limit, grading.cell_time_cap)))
    for cell in rebuilt.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return Job(chapter, rebuilt, steps, notes, unreadable=submitted is None, refused=refused)


@functools.cache
def _policy_context(chapter: str) -> policy.Context:
    """Module aliases and checking-library names that the read-only cells define."""
    return policy.Context.from_setup([c.source for c in _source(chapter).cells if course.is_read_only(c)])


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)
