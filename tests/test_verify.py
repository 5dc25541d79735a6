"""tools.verify, the chapter author's loop: the solution and every variant, also under fixed salts."""

from __future__ import annotations

import pytest

from tools import verify

from .grader_cases import chapter_cases

pytestmark = pytest.mark.slow  # runs every check of a chapter twice


def test_verify_grades_every_variant_under_each_salt(capsys):
    chapter = "01_module_basics"
    assert verify.main([chapter, "--salts", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    variants = len(chapter_cases()[chapter])
    assert sum(line.startswith("ok ") for line in lines) == variants
    assert sum(line.startswith("[salt 1000] ok ") for line in lines) == variants
