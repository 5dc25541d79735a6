"""The reference solution of each exercise, read from the instructor notebook.

The solution cell of ``autograder/source/<chapter>/<chapter>.ipynb`` is the one reference
implementation: it is executed here, in a fresh namespace, together with the read-only cells
before it (the setup cell and given code). Demo cells are not run.
"""

from __future__ import annotations

import contextlib
import io

from . import course

_namespaces: dict[str, dict] = {}


def namespace(chapter: str, exercise_id: str) -> dict:
    if exercise_id not in _namespaces:
        nb = course.read_source(chapter)
        code = []
        for cell in nb.cells:
            if course.is_read_only(cell):
                code.append(cell.source)
            elif course.is_answer(cell) and course.grade_id(cell) == exercise_id:
                code.append(cell.source)
                break
        else:
            raise LookupError(f"no solution cell {exercise_id!r} in the {chapter} instructor notebook")
        ns: dict = {"__name__": f"reference_{exercise_id}"}
        with contextlib.redirect_stdout(io.StringIO()):
            for source in code:
                exec(compile(course.strip_magics(source), f"<reference {exercise_id}>", "exec"), ns)
        _namespaces[exercise_id] = ns
    return _namespaces[exercise_id]


def objects(chapter: str, exercise_id: str, names) -> dict:
    ns = namespace(chapter, exercise_id)
    return {name: ns[name] for name in names}
