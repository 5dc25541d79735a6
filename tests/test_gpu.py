"""On a CUDA machine: every chapter's checks hold on the GPU (skipped where there is none).

The nbval run of the instructor notebooks covers the stored outputs; this covers the checks:
each chapter's solution and every submission of the grader tests, judged with the GPU as the
course's device.
"""

import os
import subprocess
import sys

import pytest

from nncourse import course

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("chapter", course.chapters())
def test_checks_agree_on_cuda(chapter):
    run = subprocess.run(
        [sys.executable, "-m", "tools.verify", chapter],
        capture_output=True,
        text=True,
        env={**os.environ, "NNCOURSE_DEVICE": "cuda"},
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
