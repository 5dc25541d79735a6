"""For chapter authors: run every check of a chapter on answer variants, in this process.

    python -m tools.verify 01_module_basics [--salts N]

runs the solution (all checks must pass) and every variant of ``tests/grader_cases`` for that
chapter, printing the credit of each test cell beside the expected points. It is a quick
loop for writing checks; the grader tests prove the same through ``nbgrader autograde``.

At grading time every test cell draws its probe inputs from a fresh salt. ``--salts N`` grades
everything again under N fixed salts, so a check whose verdict depends on the inputs drawn (a
wrong answer that passes on some inputs, a right one that fails on some) shows up here, with the
salt to replay it.
"""

from __future__ import annotations

import argparse
import contextlib
import io

from nncourse import course, policy, probing
from nncourse.checking import CheckFailed
from nncourse.grading.job import POLICY_ON
from tests.grader_cases import chapter_cases


def run_variant(chapter: str, replacements: dict[str, str]) -> dict[str, float]:
    """Points of every test cell when the answer cells are replaced (solution elsewhere).

    As at grading time, an answer cell the grading policy refuses is not run, and its exercise's
    test cells score zero.
    """
    nb = course.read_source(chapter)
    context = policy.Context.from_setup([c.source for c in nb.cells if course.is_read_only(c)])
    ns: dict = {"__name__": "__main__"}
    scores: dict = {}
    refused: dict[str, str] = {}
    for cell in nb.cells:
        gid = course.grade_id(cell)
        if course.is_test(cell) and gid and course.exercise_of(gid) in refused:
            scores[gid], scores[gid + ":why"] = 0.0, refused[course.exercise_of(gid)]
        elif course.is_read_only(cell) or course.is_answer(cell):
            code = replacements.get(gid or "", cell.source)
            refusals = policy.review_answer(gid, code, context) if course.is_answer(cell) and POLICY_ON else []
            if refusals and gid:
                refused[gid] = "refused by the grading policy: " + refusals[0].describe()
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(course.strip_magics(code), course.grade_id(cell), "exec"), ns)
            except Exception as e:
                print(f"    [{course.grade_id(cell)} raised {type(e).__name__}: {e}]")
        elif course.is_test(cell) and gid:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(course.strip_magics(cell.source), gid, "exec"), ns)
                scores[gid] = course.points(cell)
            except CheckFailed as e:
                scores[gid] = course.points(cell) * e.verdict.credit
                scores[gid + ":why"] = e.verdict.message.splitlines()[0]
            except Exception as e:
                scores[gid] = 0.0
                scores[gid + ":why"] = f"{type(e).__name__}: {e}"
    return scores


def verify(chapter: str, label: str = "") -> int:
    """Grade the solution and every variant once; print one line per variant. 0 when all as expected."""
    ok = True
    solution = run_variant(chapter, {})
    for gid, pts in solution.items():
        if gid.endswith(":why"):
            ok = False
            print(f"{label}SOLUTION FAILS {gid[:-4]}: {pts}")
    full = {g: p for g, p in solution.items() if not g.endswith(":why")}
    for v in chapter_cases().get(chapter, []):
        scores = run_variant(chapter, {v.exercise: v.code})
        expected = dict(full)
        if v.expect:
            expected.update(v.expect)
        bad = {g: (scores.get(g), expected[g]) for g in expected if scores.get(g) != expected[g]}
        status = "ok " if not bad else "BAD"
        ok &= not bad
        print(f"{label}{status} {v.exercise:28s} {v.label}")
        for g, (got, exp) in bad.items():
            print(f"      {g}: got {got}, expected {exp}   {scores.get(g + ':why', '')}")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", choices=course.chapters())
    parser.add_argument(
        "--salts",
        type=int,
        default=0,
        help="also grade under N grading salts (the probe inputs of N grading runs), to find checks "
        "whose verdict depends on the inputs drawn",
    )
    args = parser.parse_args(argv)
    failed = verify(args.chapter)
    for n in range(args.salts):
        salt = 1_000 + 7_919 * n  # fixed, so a failure can be replayed
        probing.set_salt(salt)
        try:
            failed |= verify(args.chapter, label=f"[salt {salt}] ")
        finally:
            probing.set_salt(None)
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
