"""Start a new chapter: its instructor notebook, its checks module and its grader cases.

    python -m tools.new_chapter 06_custom_layers "Custom layers"

writes three files, each holding one small worked exercise to replace with your own
(``docs/adding-a-chapter.md`` walks through the rest):

* ``autograder/source/06_custom_layers/06_custom_layers.ipynb``: the set-up cell, a prompt, an
  answer cell (the reference solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) and
  two test cells, one visible and one hidden, with nbgrader's metadata set;
* ``autograder/nncourse/exercises/ch06_custom_layers.py``: the exercise declared with
  :func:`nncourse.registry.exercise`, a probe and a judge per test cell;
* ``tests/grader_cases/ch06.py``: two wrong answers and one correct alternative, with the points
  each must get.

Nothing else needs to change: the chapter list, the grade command, ``make generate`` and the
grader tests discover the chapter from its folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nncourse import course

SETUP = """\
import torch
from torch import nn

from nncourse import check, device, seed_everything, show

seed_everything(0)
print(f"torch {torch.__version__}, running on {device}")"""

PROMPT = """\
## Exercise {n}.1 — a learnable scale

Write a module `Scale` with one learnable scalar, `weight`, created in `__init__` as an
`nn.Parameter` holding `1.0` (a tensor of shape `()`), whose `forward(x)` returns `weight * x`.
Registered as a parameter, `weight` appears in `parameters()`, is trained by an optimizer and is
saved in `state_dict()`."""

SOLUTION = """\
### BEGIN SOLUTION
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.weight * x
### END SOLUTION"""

CHECKS = '''\
"""Chapter {n}: {title}. The checks behind every graded exercise (probe + judge)."""

import torch

from ..expect import expect_close, expect_equal
from ..probing import randn
from ..registry import exercise

CHAPTER = "{chapter}"

# --------------------------------------------------------------------- {exercise}
# Misreadings the probes separate: a plain tensor attribute instead of an nn.Parameter (not
# registered: no parameters, no gradient); weight + x instead of weight * x; a weight that is not a
# scalar (shape (1,) broadcasts to the same output but is another parameter).
scale = exercise("{exercise}", CHAPTER)


@scale.test("forward")
def scale_forward(Scale):
    x = randn(3, 4, seed=61)
    return {{"output": Scale()(x)}}


@scale_forward.judge
def _(got, ref):
    expect_close(got["output"], ref["output"], "Scale()(x)", hint="forward returns self.weight * x.")


@scale.test("parameter")
def scale_parameter(Scale):
    model = Scale()
    shapes = [[name, list(p.shape)] for name, p in model.named_parameters()]
    x = randn(5, seed=62)
    model(x).sum().backward()
    grads = {{name: p.grad for name, p in model.named_parameters()}}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return {{"shapes": shapes, "grads": grads, "after_update": model(x)}}


@scale_parameter.judge
def _(got, ref):
    hint = "create the weight with nn.Parameter(torch.ones(())) so the module registers it."
    expect_equal(got["shapes"], ref["shapes"], "the parameters (name, shape)", hint)
    for name, grad in ref["grads"].items():
        expect_close(got["grads"].get(name), grad, f"the gradient of {{name}}", hint)
    expect_close(got["after_update"], ref["after_update"], "the output after the weight is multiplied by 3", hint)
'''

CASES = '''\
"""Chapter {n} submissions: realistic mistakes and correct answers in other styles."""

from . import Variant

CHAPTER = "{chapter}"

FORWARD, PARAMETER = "{exercise}_test_forward", "{exercise}_test_parameter"

VARIANTS = [
    Variant(
        "{exercise}",
        "a plain tensor, not a parameter",
        """
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.ones(())

    def forward(self, x):
        return self.weight * x
""",
        {{FORWARD: 1, PARAMETER: 0}},
    ),
    Variant(
        "{exercise}",
        "adds the weight",
        """
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x + self.weight
""",
        {{FORWARD: 0, PARAMETER: 0}},
    ),
    Variant(
        "{exercise}",
        "torch.tensor(1.0) and torch.mul",
        """
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        return torch.mul(x, self.weight)
""",
    ),
]
'''


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, points: int = 0) -> dict:
    locked = not solution
    nbgrader = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        nbgrader["points"] = points
    meta: dict = {"nbgrader": nbgrader}
    if locked:
        meta.update(deletable=False, editable=False)
    return meta


def notebook(chapter: str, title: str, exercise_id: str) -> nbformat.NotebookNode:
    n = int(chapter[:2])
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [
        new_code_cell(SETUP, metadata=_meta("setup")),
        new_markdown_cell(f"# Chapter {n} — {title}"),
        new_markdown_cell(PROMPT.format(n=n)),
        new_code_cell(SOLUTION, metadata=_meta(exercise_id, solution=True)),
        new_code_cell(
            f'check("{exercise_id}", "forward", Scale=Scale)',
            metadata=_meta(f"{exercise_id}_test_forward", grade=True, points=1),
        ),
        new_code_cell(
            f'### BEGIN HIDDEN TESTS\ncheck("{exercise_id}", "parameter", Scale=Scale)\n### END HIDDEN TESTS',
            metadata=_meta(f"{exercise_id}_test_parameter", grade=True, points=1),
        ),
    ]
    return nb


def paths_for(chapter: str, root: Path) -> dict[str, Path]:
    n = chapter[:2]
    return {
        "notebook": course.notebook_in(root / "autograder" / "source", chapter),
        "checks": root / "autograder" / "nncourse" / "exercises" / f"ch{n}_{chapter[3:]}.py",
        "cases": root / "tests" / "grader_cases" / f"ch{n}.py",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", help="NN_name, e.g. 06_custom_layers (lower case, digits and _)")
    parser.add_argument("title", help='the chapter\'s title, e.g. "Custom layers"')
    args = parser.parse_args(argv)
    chapter = args.chapter
    if not course.CHAPTER_NAME.match(chapter):
        parser.error(f"{chapter!r}: a chapter is named NN_name (two digits, then lower-case letters, digits and _)")
    if chapter in course.chapters() or any(c[:2] == chapter[:2] for c in course.chapters()):
        parser.error(f"chapter number {chapter[:2]} is taken: {', '.join(course.chapters())}")
    exercise_id = f"ex{int(chapter[:2])}_1_scale"
    files = paths_for(chapter, course.REPO_ROOT)
    taken = [str(p) for p in files.values() if p.exists()]
    if taken:
        parser.error(f"would overwrite {', '.join(taken)}")
    values = {"n": int(chapter[:2]), "title": args.title, "chapter": chapter, "exercise": exercise_id}
    files["notebook"].parent.mkdir(parents=True)
    nbformat.write(notebook(chapter, args.title, exercise_id), files["notebook"])
    files["checks"].write_text(CHECKS.format(**values))
    files["cases"].write_text(CASES.format(**values))
    for path in files.values():
        print(f"wrote {path.relative_to(course.REPO_ROOT)}")
    print(f"next: python -m tools.verify {chapter}, then make generate (docs/adding-a-chapter.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
