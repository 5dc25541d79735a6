"""Parallel grading loses no grade, with the gradebook in a real PostgreSQL server.

The test starts its own server (Unix socket only, in a temporary folder) and stops it after.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from .grader_cases import chapter_cases, submissions
from .helpers import (
    full_marks,
    grade,
    gradebook_scores,
    make_course,
    release_notebook,
    solution_notebook,
    submit,
    with_answers,
)

pytestmark = pytest.mark.slow  # real grading runs of whole classes

CHAPTER = "01_module_basics"
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def as_postgres_user() -> list[str]:
    # PostgreSQL refuses to run as root
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    if not BIN or not shutil.which("setpriv"):
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    bin_dir = BIN[-1]
    root = Path(tempfile.mkdtemp(prefix="nncourse-pg-"))  # pytest's own temp folders are root-only
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        os.chown(root, 65534, 65534)
        os.chown(sock, 65534, 65534)
    user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def run(*a):
        return subprocess.run([*as_postgres_user(), *a], check=True, capture_output=True, text=True)

    run(f"{bin_dir}/initdb", "-D", str(data), "--auth=trust", "-U", user)
    run(
        f"{bin_dir}/pg_ctl",
        "-D",
        str(data),
        "-l",
        str(root / "log"),
        "-w",
        "start",
        "-o",
        f"-k {sock} -c listen_addresses='' -p 54329",
    )
    try:
        run(f"{bin_dir}/createdb", "-h", str(sock), "-p", "54329", "-U", user, "gradebook")
        yield f"postgresql+psycopg2://{user}@/gradebook?host={sock}&port=54329"
    finally:
        run(f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_parallel_grading_into_postgres_loses_nothing(postgres, tmp_path):
    course_dir = make_course(tmp_path, [CHAPTER])
    solution = solution_notebook(CHAPTER)
    planned = submissions(chapter_cases()[CHAPTER])
    class_ = {"solution": solution, "untouched": release_notebook(CHAPTER)}
    for name in ("wrong_1", "wrong_2", "alt_1"):
        class_[name] = with_answers(solution, {ex: v.code for ex, v in planned[name].items()})
    for student, nb in class_.items():
        submit(course_dir, CHAPTER, student, nb)
    start = time.monotonic()
    run = grade(course_dir, CHAPTER, "--workers", "2", "--db", postgres, "--no-feedback")
    assert run.returncode == 0, run.stdout + run.stderr
    scores = gradebook_scores(course_dir, CHAPTER, postgres)
    assert sorted(scores) == sorted(class_)
    for student in class_:
        expected = full_marks(CHAPTER)
        if student == "untouched":
            expected = {c: 0.0 for c in expected}
        for v in planned.get(student, {}).values():
            expected.update(v.expect or {})
        assert scores[student] == expected, student
    print(f"graded {len(class_)} submissions with 2 workers into PostgreSQL in {time.monotonic() - start:.1f} s")
