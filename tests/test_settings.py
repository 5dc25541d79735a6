"""Settings as traitlets configuration, and the result cache key that depends on them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nncourse import course, settings
from nncourse.grading import engine, results, sandbox
from nncourse.grading.job import build_job

from .helpers import make_course, solution_notebook

CHAPTER = "01_module_basics"


def test_settings_defaults_file_and_command_line(tmp_path):
    """Default < nbgrader_config.py < command line."""
    copy = make_course(tmp_path / "course", [])
    assert settings.load(root=copy).memory_mb == 4096
    with open(copy / "nbgrader_config.py", "a") as f:
        f.write("\nc.Grading.memory_mb = 1024\nc.Grading.workers = 3\n")
    from_file = settings.load(root=copy)
    assert (from_file.memory_mb, from_file.workers) == (1024, 3)
    overrides, rest = settings.parse_overrides(["--Grading.memory_mb=2048", "--refresh"])
    both = settings.load(overrides, root=copy)
    assert (both.memory_mb, both.workers, rest) == (2048, 3, ["--refresh"])
    assert both.memory_bytes == 2048 * 2**20


def test_settings_read_nbgraders_course_directory(tmp_path):
    """The gradebook and the submissions folder come from nbgrader's own settings unless overridden."""
    copy = make_course(tmp_path / "course", [])
    with open(copy / "nbgrader_config.py", "a") as f:
        f.write(
            "\nc.CourseDirectory.db_url = 'sqlite:////elsewhere/gb.db'\n"
            "c.CourseDirectory.submitted_directory = 'inbox'\n"
        )
    loaded = settings.load(root=copy)
    assert loaded.db_url == "sqlite:////elsewhere/gb.db"
    assert loaded.submitted_dir == course.REPO_ROOT / "inbox"
    overrides, _ = settings.parse_overrides(["--Grading.db_url=sqlite:////x.db"])
    assert settings.load(overrides, root=copy).db_url == "sqlite:////x.db"


@pytest.mark.parametrize(
    "argument, message",
    [
        ("--Grading.memory=10", "expected --Grading.<setting>=<value>"),
        ("--Grading.memory_mb=ten", "invalid literal"),
        ("--Grading.memory_mb", "expected --Grading.<setting>=<value>"),
    ],
)
def test_settings_bad_command_line_is_named(argument, message):
    with pytest.raises(ValueError, match="--Grading") as raised:
        settings.parse_overrides([argument])
    assert message in str(raised.value)


@pytest.mark.slow
def test_settings_grade_command_lists_and_refuses():
    listing = subprocess.run(
        [sys.executable, "-m", "nncourse.grade", "--help-settings", "--Grading.workers=5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert "--Grading.workers=5  (default 0)" in listing.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nncourse.grade", CHAPTER, "--Grading.isolation=sometimes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "'isolation' trait" in bad.stderr and "'sometimes'" in bad.stderr


def test_settings_documented_with_their_defaults():
    """docs/settings.md names every setting with its default, as `--help-settings` prints it."""
    text = (course.REPO_ROOT / "docs" / "settings.md").read_text()
    defaults = settings.Grading()
    for name in defaults.trait_names(config=True):
        assert f"`{name}`" in text, name
        assert f"`{getattr(defaults, name)!r}`" in text, (name, getattr(defaults, name))


# ----------------------------------------------------------------------------- the result cache key
@pytest.fixture
def key_of(monkeypatch, grading_settings):
    grading_settings()
    job = build_job(CHAPTER, solution_notebook(CHAPTER))
    monkeypatch.setattr(results, "_DATA_HASH", [])
    monkeypatch.setattr(results, "_LIBRARY_HASH", [])

    def key():
        results._DATA_HASH.clear()
        results._LIBRARY_HASH.clear()
        return engine.cache_key(job)

    return key


def test_cache_key_is_stable(key_of):
    assert key_of() == key_of()


def test_cache_key_misses_when_torch_changes(key_of, monkeypatch):
    import torch

    before = key_of()
    monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    assert key_of() != before


def test_cache_key_misses_when_device_changes(key_of, monkeypatch):
    monkeypatch.setenv("NNCOURSE_DEVICE", "cpu")
    before = key_of()
    monkeypatch.setenv("NNCOURSE_DEVICE", "cuda")
    assert key_of() != before


@pytest.mark.parametrize(
    "name, value",
    [
        ("memory_mb", 1024),
        ("file_size_mb", 8),
        ("max_processes", 64),
        ("tmpfs_mb", 16),
        ("setup_time_limit", 5.0),
        ("cell_time_cap", 5.0),
        ("startup_limit", 10.0),
        ("between_steps_limit", 5.0),
        ("max_export_mb", 8),
    ],
)
def test_cache_key_misses_when_a_limit_changes(key_of, grading_settings, name, value):
    before = key_of()
    grading_settings(**{name: value})
    assert key_of() != before


def test_cache_key_ignores_how_the_class_is_run(key_of, grading_settings):
    before = key_of()
    grading_settings(workers=7, db_url="sqlite:////tmp/other.db")
    assert key_of() == before


def test_cache_key_misses_when_isolation_changes(key_of, monkeypatch):
    before = key_of()
    current = sandbox.mode()
    other = "rlimits" if current.name != "rlimits" else "bubblewrap"
    monkeypatch.setattr(sandbox, "mode", lambda: sandbox.Mode(other, "test", other == "bubblewrap"))
    assert key_of() != before


def test_cache_key_misses_when_data_changes(key_of, monkeypatch, tmp_path):
    before = key_of()
    data = tmp_path / "data"
    shutil.copytree(course.DATA_DIR, data)
    assert key_of() == before
    monkeypatch.setattr(course, "DATA_DIR", data)
    assert key_of() == before, "a copy of the same data is the same data"
    digits = data / "digits" / "digits.csv"
    digits.write_bytes(digits.read_bytes() + b"\n")
    assert key_of() != before


def test_cache_key_misses_when_the_library_changes(key_of, monkeypatch, tmp_path):
    import nncourse

    before = key_of()
    monkeypatch.setattr(nncourse, "__version__", nncourse.__version__ + ".post1")
    assert key_of() != before
    monkeypatch.undo()
    package = tmp_path / "nncourse"
    shutil.copytree(results.library_dir(), package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(results, "library_dir", lambda: package)
    assert key_of() == before
    (package / "expect.py").write_text((package / "expect.py").read_text() + "\n# changed\n")
    assert key_of() != before
