"""Regenerate the learner notebooks (notebooks/) and worked solutions (solutions/).

    python -m tools.generate            # rewrite notebooks/ and solutions/
    python -m tools.generate --check    # exit 1 and list the files that are stale

Both come from autograder/source through nbgrader's own ``generate_assignment`` (solutions and
hidden tests stripped, outputs cleared) and ``generate_solution`` (solutions kept, hidden tests
stripped). A throwaway gradebook is used, so the course's gradebook is not touched.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nncourse import course


def generate_chapter(chapter: str, release_dir: Path, solution_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"--db=sqlite:///{tmp}/generate.db"
        course.nbgrader(
            "generate_assignment", chapter, "--force", db, f"--CourseDirectory.release_directory={release_dir}"
        )
        course.nbgrader(
            "generate_solution", chapter, "--force", db, f"--CourseDirectory.solution_directory={solution_dir}"
        )


def generate_all(release_dir: Path, solution_dir: Path) -> list[str]:
    chapters = course.chapters()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda c: generate_chapter(c, release_dir, solution_dir), chapters))
    return chapters


def stale_files() -> list[str]:
    """Generated files that differ from what is committed (missing or extra ones included)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_release, fresh_solution = Path(tmp, "notebooks"), Path(tmp, "solutions")
        generate_all(fresh_release, fresh_solution)
        stale = []
        for fresh, committed in [(fresh_release, course.RELEASE_DIR), (fresh_solution, course.SOLUTION_DIR)]:
            names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
            names |= {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
            for name in sorted(names):
                a, b = fresh / name, committed / name
                if not (a.exists() and b.exists() and filecmp.cmp(a, b, shallow=False)):
                    stale.append(str(committed.relative_to(course.REPO_ROOT) / name))
        return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale generated files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print("stale:", name)
        if stale:
            print("Run `make generate` and commit the result.")
        return 1 if stale else 0
    for chapter in generate_all(course.RELEASE_DIR, course.SOLUTION_DIR):
        print(f"generated notebooks/{chapter} and solutions/{chapter}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
