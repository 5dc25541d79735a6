"""How fast grading is: medians of several runs, every figure measured in the same run.

    python -m tools.bench [--chapter 01_module_basics] [--students 40] [--repeats 3] [--baseline 6]

For a class of generated submissions (the worked solution and the grader tests' answers, cycled;
one in twenty a broken file) in a throwaway copy of the course, it runs the whole documented command
(``python -m nncourse.grade CHAPTER``, feedback included) and prints:

* ``sandbox: X s/submission``: the sandbox phase (running and judging) per submission, 1 worker,
  warm start; beside it the same with cold starts (``--Grading.warm_start=False``);
* ``fixed: X s/run``: the intercept of the whole command's wall time against the number of
  submissions (a run of all the students and one of a quarter of them, 1 worker);
* ``whole command``: seconds per submission with 1 and with 2 workers, and the speed-up;
* ``unchanged regrade: X s``: the same command again with nothing changed;
* ``import torch``: what a cold start pays before anything else (``python -c "import torch"``);
* stock ``nbgrader autograde`` and plain execution (nbclient) of ``--baseline`` submissions, per
  submission, and the ratio of the whole command to stock nbgrader;
* with ``--chapters``, every chapter's sandbox phase per submission (1 worker, ``--baseline`` each).
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
        name = f"student{i:03d}"
        path = course.notebook_in(course_dir / "autograder" / "submitted" / name, chapter)
        path.parent.mkdir(parents=True)
        if i % 20 == 19:  # one in twenty broken: cut off half-way, as a failed upload leaves it
            path.write_text(nbformat.writes(nb)[:2000])
        else:
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


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _class(tmp: Path, name: str, chapter: str, students: int) -> tuple[Path, list[str]]:
    """A course copy with ``students`` submissions and the chapter already in its gradebook."""
    copy_dir = make_course(tmp / name, [chapter])
    names = build_class(copy_dir, chapter, students)
    with tempfile.TemporaryDirectory() as release:
        course.nbgrader(
            "generate_assignment", chapter, "--force", f"--CourseDirectory.release_directory={release}", cwd=copy_dir
        )
    return copy_dir, names


def _fresh(copy_dir: Path) -> None:
    """Forget what the last run recorded (the results cache stays: --refresh bypasses it)."""
    shutil.rmtree(copy_dir / "autograder" / "feedback", ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    chapters = course.chapters()
    parser.add_argument("--chapter", default=chapters[0] if chapters else None, choices=chapters)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=6, help="submissions for stock nbgrader and plain runs")
    parser.add_argument("--chapters", action="store_true", help="also every chapter's sandbox cost")
    args = parser.parse_args(argv)
    chapter, n = args.chapter, args.students
    small = max(2, n // 4)
    t: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        t.setdefault(name, []).append(value)
        print(f"  {name}: {value:.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ours, _ = _class(tmp, "ours", chapter, n)
        few, _ = _class(tmp, "few", chapter, small)
        base, base_students = _class(tmp, "base", chapter, args.baseline)
        stock, _ = _class(tmp, "stock", chapter, args.baseline)
        with open(stock / "nbgrader_config.py", "a") as f:
            f.write(STOCK_CONFIG)
        grade = [sys.executable, "-m", "nncourse.grade", chapter]
        others = {c: _class(tmp, f"chapter-{c}", c, args.baseline)[0] for c in chapters if args.chapters}
        for r in range(args.repeats):
            print(f"run {r + 1}/{args.repeats}", flush=True)
            add("import torch (s)", run([sys.executable, "-c", "import torch"], ours))
            for workers in (1, 2):
                _fresh(ours)
                phases: dict = {}
                wall = run([*grade, "--refresh", "--workers", str(workers)], ours, phases=phases)
                add(f"whole command, {workers} worker(s) (s/submission)", wall / n)
                if workers == 1:
                    add("sandbox, warm (s/submission)", phases["sandbox"] / n)
                    add("recording (s/submission)", phases["record"] / n)
                    add("feedback (s/submission)", phases["feedback"] / n)
                    add("wall, all students (s)", wall)
            add("unchanged regrade (s)", run([*grade, "--workers", "1"], ours))
            _fresh(few)
            add("wall, a quarter of them (s)", run([*grade, "--refresh", "--workers", "1"], few))
            phases = {}
            run(
                [*grade, "--refresh", "--workers", "1", "--no-feedback", "--Grading.warm_start=False"],
                base,
                phases=phases,
            )
            add("sandbox, cold (s/submission)", phases["sandbox"] / args.baseline)
            add(
                "stock nbgrader autograde (s/submission)",
                run(
                    [
                        sys.executable,
                        "-m",
                        "nbgrader",
                        "autograde",
                        chapter,
                        "--force",
                        "--Autograde.create_student=True",
                    ],
                    stock,
                )
                / args.baseline,
            )
            add("plain execution (s/submission)", plain_execution(base, chapter, base_students) / args.baseline)
            for other, copy_dir in others.items():
                phases = {}
                run(
                    [sys.executable, "-m", "nncourse.grade", other, "--refresh", "--workers", "1", "--no-feedback"],
                    copy_dir,
                    phases=phases,
                )
                add(f"sandbox {other} (s/submission)", phases["sandbox"] / args.baseline)
    m = {name: _median(values) for name, values in t.items()}
    slope = (m["wall, all students (s)"] - m["wall, a quarter of them (s)"]) / (n - small)
    fixed = m["wall, all students (s)"] - slope * n
    print(f"\n{chapter}: {n} submissions, median of {args.repeats} runs, {os.cpu_count()} cores")
    print(f"isolation: {sandbox.mode()}")
    print(
        f"sandbox: {m['sandbox, warm (s/submission)']:.2f} s/submission (1 worker, warm start; "
        f"cold start {m['sandbox, cold (s/submission)']:.2f}, "
        f"{m['sandbox, cold (s/submission)'] / m['sandbox, warm (s/submission)']:.1f}x slower)"
    )
    print(
        f"fixed: {fixed:.2f} s/run (intercept of wall time against submissions: {small} and {n}; "
        f"{slope:.2f} s per added submission)"
    )
    one, two = m["whole command, 1 worker(s) (s/submission)"], m["whole command, 2 worker(s) (s/submission)"]
    print(f"whole command: {one:.2f} s/submission with 1 worker, {two:.2f} with 2: speed-up {one / two:.2f}")
    print(
        f"recording: {m['recording (s/submission)']:.3f} s/submission; feedback: {m['feedback (s/submission)']:.3f} "
        "s/submission"
    )
    print(f"unchanged regrade: {m['unchanged regrade (s)']:.2f} s ({n} submissions)")
    print(f"import torch: {m['import torch (s)']:.2f} s (the floor of every cold start)")
    stock_per = m["stock nbgrader autograde (s/submission)"]
    print(
        f"stock nbgrader autograde: {stock_per:.2f} s/submission ({args.baseline} submissions); "
        f"the whole command with 1 worker takes {one / stock_per:.2f}x its time, with 2 workers {two / stock_per:.2f}x"
    )
    print(f"plain execution (nbclient, no grading): {m['plain execution (s/submission)']:.2f} s/submission")
    for other in others:
        print(f"sandbox {other}: {m[f'sandbox {other} (s/submission)']:.2f} s/submission (1 worker, warm)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
