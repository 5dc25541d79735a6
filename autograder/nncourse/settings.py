"""The grade command's settings, as traitlets configuration beside nbgrader's.

Every setting has a documented default (``python -m nncourse.grade --help-settings`` lists them).
Override it in ``nbgrader_config.py``::

    c.Grading.workers = 8
    c.Grading.memory_mb = 8192

or for one run on the command line: ``python -m nncourse.grade 01_module_basics --Grading.workers=8``.
The command line wins over the file, the file over the default. Where the gradebook lives and the
course's folders are nbgrader's own settings (``c.CourseDirectory.db_url``,
``c.CourseDirectory.submitted_directory`` ...), read from the same file, so nbgrader and the grade
command always agree.

Grading code reads :func:`current`; the grade command builds the settings once with :func:`load`,
installs them with :func:`use`, and hands them to its worker processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from traitlets import Bool, Enum, Float, Integer, TraitError, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

from . import course

ISOLATION_MODES = ("auto", "required", "bubblewrap", "rlimits", "none")


class Grading(Configurable):
    """Settings of ``python -m nncourse.grade``."""

    workers = Integer(0, help="Submissions graded in parallel; 0 means one per CPU core.").tag(config=True)
    isolation = Enum(
        ISOLATION_MODES,
        "auto",
        help=(
            "How each submission is sandboxed. auto: the strongest this machine allows (bubblewrap when user "
            "namespaces work), with a loud warning when the file system cannot be isolated; required: refuse "
            "to grade without file-system isolation; bubblewrap: the same as required; rlimits (or "
            "none): resource limits and the audit hook only, no file-system isolation (for measuring)."
        ),
    ).tag(config=True)
    warm_start = Bool(
        True,
        help=(
            "Fork each submission's process from a prepared one per chapter (torch and the checks imported "
            "once) instead of starting Python for each: the same isolation, about a tenth of the time. Used "
            "when this machine allows it (Linux, no GPU visible); otherwise, or when False, cold starts."
        ),
    ).tag(config=True)
    memory_mb = Integer(4096, help="Address-space limit of one submission's process, in MiB.").tag(config=True)
    file_size_mb = Integer(64, help="Largest file a submission may write, in MiB.").tag(config=True)
    max_processes = Integer(512, help="Processes and threads a submission may run (torch's pools count).").tag(
        config=True
    )
    tmpfs_mb = Integer(256, help="Size of the submission's private /tmp and /dev/shm, each, in MiB.").tag(config=True)
    setup_time_limit = Float(60.0, help="Seconds the set-up and given cells may run, each.").tag(config=True)
    cell_time_cap = Float(
        math.inf,
        help=(
            "Upper bound on every cell's time limit, in seconds (each exercise declares its own limit, "
            "30 s unless it trains a model); lower it to grade faster when answers are known to be quick."
        ),
    ).tag(config=True)
    startup_limit = Float(
        90.0, help="Seconds a sandbox may take to start (importing torch) before the first cell."
    ).tag(config=True)
    between_steps_limit = Float(30.0, help="Seconds from the end of one cell to the start of the next.").tag(
        config=True
    )
    max_export_mb = Integer(256, help="Most data a submission's checks may export to the grader, in MiB.").tag(
        config=True
    )
    grades_directory = Unicode(
        "autograder/grades", help="Where the CSV of points is written (relative to the course root)."
    ).tag(config=True)
    db_url = Unicode("", help="The gradebook's URL; empty means nbgrader's CourseDirectory.db_url.").tag(config=True)
    submitted_directory = Unicode(
        "", help="Submissions folder; empty means nbgrader's CourseDirectory.submitted_directory."
    ).tag(config=True)
    scheduler = Unicode(
        "",
        help=(
            "Address of a Dask scheduler (tcp://host:8786) whose workers run the submissions; judging and "
            "recording stay in the grade command's process. Empty: grade on this machine with `workers`."
        ),
    ).tag(config=True)

    # ----------------------------------------------------------------- derived values in the units code uses
    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 2**20

    @property
    def file_bytes(self) -> int:
        return self.file_size_mb * 2**20

    @property
    def tmpfs_bytes(self) -> int:
        return self.tmpfs_mb * 2**20

    @property
    def max_export_bytes(self) -> int:
        return self.max_export_mb * 2**20

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def folder(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else course.REPO_ROOT / path

    @property
    def grades_dir(self) -> Path:
        return self.folder(self.grades_directory)

    @property
    def submitted_dir(self) -> Path:
        return self.folder(self.submitted_directory or "autograder/submitted")

    def as_config(self) -> Config:
        """These settings as a Config (to rebuild them in another process)."""
        return Config({"Grading": {name: getattr(self, name) for name in self.trait_names(config=True)}})

    def describe(self) -> str:
        """Every setting, its value and its help: what ``--help-settings`` prints."""
        lines = []
        for name in sorted(self.trait_names(config=True)):
            trait = self.traits()[name]
            lines.append(f"--Grading.{name}={getattr(self, name)!r}  (default {trait.default_value!r})")
            lines.append(f"    {trait.help}")
        return "\n".join(lines)


def file_config(root: Path | None = None) -> Config:
    """What ``nbgrader_config.py`` of the course sets (an empty Config when there is none)."""
    folder = root or course.REPO_ROOT
    if not (folder / "nbgrader_config.py").is_file():
        return Config()
    return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()


def parse_overrides(argv: list[str]) -> tuple[Config, list[str]]:
    """``--Grading.name=value`` arguments as a Config, and the arguments that are not settings."""
    config, rest = Config(), []
    traits = Grading.class_traits(config=True)
    for arg in argv:
        if not arg.startswith("--Grading."):
            rest.append(arg)
            continue
        name, sep, value = arg[len("--Grading.") :].partition("=")
        if name not in traits or not sep:
            raise ValueError(
                f"{arg}: expected --Grading.<setting>=<value>, with a setting among {', '.join(sorted(traits))}"
            )
        try:
            config.Grading[name] = traits[name].from_string(value)
        except (TraitError, ValueError) as e:
            raise ValueError(f"{arg}: {e}") from None
    return config, rest


def load(overrides: Config | None = None, root: Path | None = None) -> Grading:
    """Defaults, then ``nbgrader_config.py``, then ``overrides`` (the command line)."""
    config = file_config(root)
    if overrides is not None:
        config.merge(overrides)
    settings = Grading(config=config)
    directory = config.get("CourseDirectory", {})
    if not settings.db_url:
        settings.db_url = directory.get("db_url") or f"sqlite:///{course.AUTOGRADER / 'gradebook.db'}"
    if not settings.submitted_directory and directory.get("submitted_directory"):
        settings.submitted_directory = directory["submitted_directory"]
    return settings


_current: list[Grading] = []


def current() -> Grading:
    """The settings in force in this process (loaded from the course's config on first use)."""
    if not _current:
        _current.append(load())
    return _current[0]


def use(settings: Grading | Config) -> Grading:
    """Install settings for this process (the grade command, and each of its workers)."""
    if isinstance(settings, Config):
        settings = Grading(config=settings)
    _current[:] = [settings]
    return settings
