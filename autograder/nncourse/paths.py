"""Where the course's folders are, found from this package's location (an editable install)."""
import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("NNCOURSE_ROOT", Path(__file__).resolve().parents[2]))
AUTOGRADER = REPO_ROOT / "autograder"
SOURCE_DIR = AUTOGRADER / "source"
RELEASE_DIR = REPO_ROOT / "notebooks"
SOLUTION_DIR = REPO_ROOT / "solutions"
DATA_DIR = REPO_ROOT / "data"
CHAPTERS = (
    "01_module_basics",
    "02_parameters",
    "03_train_eval_loop",
    "04_hooks",
    "05_functional_vs_modules",
)


def source_notebook(chapter: str) -> Path:
    return SOURCE_DIR / chapter / f"{chapter}.ipynb"


def existing_chapters() -> list[str]:
    """Chapters whose instructor notebook exists, in course order."""
    return [c for c in CHAPTERS if source_notebook(c).exists()]
