"""nbgrader preprocessors that plug the trusted grader into ``nbgrader autograde``.

nbgrader_config.py replaces autograde's sanitizing step with :class:`RebuildFromSource` and its
``Execute`` step with :class:`TrustedExecute`; nbgrader's own ``SaveAutoGrades`` then records the
points per test cell in the gradebook, so the formgrader, feedback and export work as usual.

The grade command runs autograde in its own process after its workers graded each submission: it
hands their rebuilt notebooks and results over in :data:`PREBUILT`, so recording builds and grades
nothing again (and never imports torch). Run as plain ``nbgrader autograde``, the preprocessors
build and grade each submission themselves.
"""

from __future__ import annotations

import copy
import functools

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_markdown_cell, new_output
from traitlets import Bool

from .. import course
from .results import PREBUILT, Prebuilt, SubmissionResult

NOTES_KEY = "nncourse"


def _prebuilt(resources) -> Prebuilt | None:
    """What the grade command handed over for this submission (None: build and grade it here)."""
    info = resources["nbgrader"]
    return PREBUILT.get((info["assignment"], info.get("student")))


@functools.cache  # read once per grading run, not once per student
def _release_answer_metadata(chapter: str) -> dict[str, dict]:
    """Answer-cell metadata of the learner notebook (nbgrader's checksums for 'No response.')."""
    path = course.release_notebook(chapter)
    if not path.exists():
        return {}
    nb = nbformat.read(path, as_version=4)
    return {gid: c.metadata for c in nb.cells if course.is_answer(c) and (gid := course.grade_id(c))}


class RebuildFromSource(Preprocessor):
    """Keep only the learner's answer cells; take every other cell from the instructor source."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        chapter = resources["nbgrader"]["assignment"]
        prebuilt = _prebuilt(resources)
        if prebuilt is not None:
            rebuilt, notes = nbformat.from_dict(copy.deepcopy(prebuilt.notebook)), list(prebuilt.notes)
        else:
            from .job import build_job

            problem = nb.metadata.get(NOTES_KEY, {}).get("problem")
            job = build_job(chapter, None if problem else nb, problem)
            rebuilt, notes = job.notebook, job.notes
        release = _release_answer_metadata(chapter)
        for cell in rebuilt.cells:
            gid = course.grade_id(cell)
            if course.is_answer(cell) and gid in release:
                cell.metadata = copy.deepcopy(release[gid])
        rebuilt.metadata[NOTES_KEY] = {"notes": notes}
        return rebuilt, resources


class TrustedExecute(Preprocessor):
    """Grade in the sandbox, then write each verdict as the output of its test cell."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        prebuilt = _prebuilt(resources)
        if prebuilt is not None:
            result = prebuilt.result
        else:
            from . import engine
            from .job import build_job

            job = build_job(resources["nbgrader"]["assignment"], nb)  # nb is rebuilt: this collects the steps
            job.notes = list(nb.metadata.get(NOTES_KEY, {}).get("notes", []))
            result = engine.grade_job(job)
        write_outputs(nb, result)
        return nb, resources


def write_outputs(nb, result: SubmissionResult) -> None:
    for cell in nb.cells:
        gid = course.grade_id(cell)
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        if course.is_test(cell) and gid in result.tests:
            test = result.tests[gid]
            if test.points >= test.max_points:
                cell.outputs.append(new_output("stream", name="stdout", text=test.message + "\n"))
            elif test.points > 0:  # partial credit: nbgrader reads a number as the points earned
                cell.outputs.append(new_output("stream", name="stdout", text=test.message + "\n"))
                cell.outputs.append(
                    new_output("execute_result", data={"text/plain": str(test.points)}, execution_count=None)
                )
            else:
                lines = test.message.splitlines() or ["failed"]
                cell.outputs.append(new_output("error", ename="CheckFailed", evalue=lines[0], traceback=lines))
        elif course.is_answer(cell) and gid in result.answer_errors:
            error = result.answer_errors[gid]
            cell.outputs.append(new_output("error", ename=error.split(":")[0], evalue=error, traceback=[error]))
    notes = [f"{exercise}: {why}" for exercise, why in sorted(result.reasons.items())] + list(result.notes)
    if notes:
        text = "**Grading notes**\n\n" + "\n".join(f"- {n}" for n in notes)
        nb.cells.insert(0, new_markdown_cell(text))
