"""Refresh the README's pictures (docs/img/*.png): the browser tests take them.

    python -m tools.screenshots            # or: make screenshots
    python -m tools.screenshots --out DIR  # somewhere else

Runs tests/test_browser.py (JupyterLab in headless Chromium: every chapter run by a learner,
nbgrader's Validate button, the formgrader with a graded class) with ``NNCOURSE_SCREENSHOTS``
set, so the tests also save what they see as small palette PNGs (1280x800). The pictures
replace the old ones only when every browser test passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nncourse import course
from tests import browser_support

OUT = course.REPO_ROOT / "docs" / "img"
# name -> what it shows (the README's alt text)
PICTURES = {
    "lab-course": "a chapter open in JupyterLab, the course's notebooks in the file browser",
    "lab-checks": "an exercise answered, its visible checks passed",
    "chapter-figure": "a figure of a chapter",
    "validate": "nbgrader's Validate button: the notebook passes all the tests",
    "formgrader-grades": "the formgrader: a graded class and its scores",
    "feedback": "the feedback a student gets: scores and what went wrong",
}
MAX_BYTES = 200_000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default: {OUT})")
    args = parser.parse_args(argv)

    reason = browser_support.browser_unavailable_reason()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NNCOURSE_SCREENSHOTS=tmp)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_browser.py", "-m", "browser", "-q", "-s", "-x"],
            cwd=course.REPO_ROOT,
            env=env,
        )
        if run.returncode != 0:
            print("browser tests failed: the pictures were not replaced", file=sys.stderr)
            return run.returncode
        taken = {p.stem: p for p in Path(tmp).glob("*.png")}
        missing = sorted(set(PICTURES) - set(taken))
        if missing:
            print(f"no picture taken for: {', '.join(missing)}", file=sys.stderr)
            return 1
        args.out.mkdir(parents=True, exist_ok=True)
        too_big = []
        for name, path in sorted(taken.items()):
            size = path.stat().st_size
            shutil.copy(path, args.out / path.name)
            print(f"{args.out / path.name}  {size // 1024} KB  {PICTURES.get(name, '')}")
            if size > MAX_BYTES:
                too_big.append(name)
    if too_big:
        print(f"larger than {MAX_BYTES // 1000} KB: {', '.join(too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
