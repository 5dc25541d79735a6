"""How fast grading is: prints seconds per submission, medians over several runs, and ratios.

    python -m tools.bench [--chapter 01_module_basics] [--students 6] [--repeats 3]

For one class of generated submissions (the worked solution and answers of the grader tests,
cycled) in a throwaway copy of the course, it measures in the same run:

* plain execution of each notebook top to bottom (nbclient, one kernel per notebook): the baseline;
* stock ``nbgrader autograde`` (nbgrader's own preprocessors, learner code in the grading kernel);
* this course's grading (sandboxed child, judged outside), serial (1 worker) and parallel (N workers);
* the same, 1 worker, without file-system isolation (``--isolation rlimits``): the cost of isolation.

Grading is timed on fresh results (``--refresh``) and without feedback generation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from nncourse import course
from nncourse.grading import sandbox
from tests.grader_cases import chapter_cases, submissions  # the grader tests' submissions
from tools.coursecopy import make_course

STOCK_CONFIG = """
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec", "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata"]
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata"]
"""


def build_class(course_dir: Path, chapter: str, students: int) -> list[str]:

    solution = nbformat.read(course.solution_notebook(chapter), as_version=4)
    variants = [{}] + [
        {ex: v.code for ex, v in vs.items()} for vs in submissions(chapter_cases().get(chapter, [])).values()
    ]
    names = []
    for i in range(students):
        nb = nbformat.from_dict(solution)
        for cell in nb.cells:
            if course.is_answer(cell) and course.grade_id(cell) in variants[i % len(variants)]:
                cell.source = variants[i % len(variants)][course.grade_id(cell)]
        name = f"student{i:02d}"
        path = course.notebook_in(course_dir / "autograder" / "submitted" / name, chapter)
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        names.append(name)
    return names


def run(argv, cwd: Path, env_extra=None, phases: dict | None = None) -> float:
    env = dict(os.environ, NNCOURSE_ROOT=str(cwd), **(env_extra or {}))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if phases is not None:  # the grade command's own split: "seconds: setup=.. sandbox=.. record=.."
        line = next(row for row in result.stdout.splitlines() if row.startswith("seconds:"))
        phases.update({k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:] if "=" in kv)})
    return elapsed


def plain_execution(course_dir: Path, chapter: str, students: list[str]) -> float:
    """Each submission executed top to bottom in its own kernel, one after another."""
    code = (
        "import sys, nbformat\nfrom nbclient import NotebookClient\n"
        "for path in sys.argv[1:]:\n"
        "    nb = nbformat.read(path, as_version=4)\n"
        "    NotebookClient(nb, timeout=600, kernel_name='python3', allow_errors=True).execute()\n"
    )
    files = [str(course.notebook_in(course_dir / "autograder/submitted" / s, chapter)) for s in students]
    return run([sys.executable, "-c", code, *files], course_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    chapters = course.chapters()
    parser.add_argument(
        "--chapter",
        default=chapters[0] if chapters else None,
        choices=chapters,
        help="the chapter whose class is graded (default: the first)",
    )
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    chapter = args.chapter
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ours = make_course(Path(tmp, "ours"), [chapter])
        students = build_class(ours, chapter, args.students)
        stock = make_course(Path(tmp, "stock"), [chapter])
        with open(stock / "nbgrader_config.py", "a") as f:
            f.write(STOCK_CONFIG)
        shutil.copytree(ours / "autograder/submitted", stock / "autograder/submitted")
        nbgrader = [sys.executable, "-m", "nbgrader"]
        for copy_dir in (ours, stock):  # put the chapter in each gradebook once, outside the timings
            with tempfile.TemporaryDirectory() as release:
                course.nbgrader(
                    "generate_assignment",
                    chapter,
                    "--force",
                    f"--CourseDirectory.release_directory={release}",
                    cwd=copy_dir,
                )
        grade = [sys.executable, "-m", "nncourse.grade", chapter, "--refresh", "--no-feedback"]
        phases: dict = {1: {}, args.workers: {}, "rlimits": {}}
        measures = {
            "plain execution": lambda: plain_execution(ours, chapter, students),
            "stock nbgrader autograde": lambda: run(
                [*nbgrader, "autograde", chapter, "--force", "--Autograde.create_student=True"], stock
            ),
            "sandboxed grading, 1 worker": lambda: run([*grade, "--workers", "1"], ours, phases=phases[1]),
            f"sandboxed grading, {args.workers} workers": lambda: run(
                [*grade, "--workers", str(args.workers)], ours, phases=phases[args.workers]
            ),
            # the same without file-system isolation: what the isolation costs, measured in this run
            "grading without isolation, 1 worker": lambda: run(
                [*grade, "--workers", "1", "--isolation", "rlimits"], ours, phases=phases["rlimits"]
            ),
        }
        for r in range(args.repeats):
            for name, measure in measures.items():
                timings.setdefault(name, []).append(measure() / len(students))
                print(f"  run {r + 1}/{args.repeats} {name}: {timings[name][-1]:.2f} s/submission", flush=True)
            for w in phases:  # the parallel part alone: running and judging in the sandbox
                label = "without isolation, 1 worker" if w == "rlimits" else f"{w} worker(s)"
                timings.setdefault(f"  of which sandbox phase, {label}", []).append(
                    phases[w]["sandbox"] / len(students)
                )
    base = statistics.median(timings["plain execution"])
    serial = statistics.median(timings["sandboxed grading, 1 worker"])
    print(f"\n{chapter}: {args.students} submissions, median of {args.repeats} runs, {os.cpu_count()} cores")
    serial_phase = statistics.median(timings["  of which sandbox phase, 1 worker(s)"])
    print(f"{'':40s} {'s/submission':>12s} {'vs plain':>9s} {'speed-up':>9s}")
    for name, values in timings.items():
        m = statistics.median(values)
        reference = serial_phase if "phase" in name else serial
        speedup = f"{reference / m:8.2f}x" if "grading" in name or "phase" in name else ""
        print(f"{name:40s} {m:12.2f} {m / base:8.2f}x {speedup:>9s}")
    print(
        "speed-up: against the same measure with 1 worker; the rest of a grading run (registering the "
        "chapter, nbgrader recording the scores one by one) is serial"
    )
    isolated = serial_phase
    bare = statistics.median(timings["  of which sandbox phase, without isolation, 1 worker"])
    print(f"\nisolation mode: {sandbox.mode()}")
    print(
        f"cost of isolation: {isolated - bare:+.2f} s/submission in the sandbox phase "
        f"({isolated:.2f} isolated vs {bare:.2f} with rlimits and the audit hook only, 1 worker, same run)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
