"""Build the browsable site of the course (``make book``) into ``_build/html/``.

    python -m tools.book           # build _build/html/index.html and one page per chapter

Each chapter's page is its learner notebook (answer cells blank, hidden tests absent) with the
outputs stored in the instructor notebook for every cell that is not an answer or a check, so a
reader sees every demo's output and figure without running anything and without the solutions.
Nothing is executed and nothing is downloaded.

Built with Jupyter Book 1 (Sphinx), which works offline. Jupyter Book 2 (MyST) was tried first: its
HTML build fetches its site theme from api.mystmd.org at build time, which an offline machine (and
this project's CI) cannot reach, and the theme is not published on a package registry.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from nncourse import course

BUILD_DIR = course.REPO_ROOT / "_build"

CONFIG = """\
title: "torch.nn.Module, from first class to hooks"
author: the course's contributors
only_build_toc_files: true
execute:
  execute_notebooks: "off"
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
sphinx:
  config:
    html_show_copyright: false
    html_last_updated_fmt: ""
"""


# the jupyter-book command of this interpreter's environment (its module has no __main__)
JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; main()"


def title_of(notebook) -> str:
    """The chapter's title: the first markdown heading of its notebook."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError("a chapter notebook without a '# ' title")


def page_of(chapter: str):
    """The learner notebook with the instructor notebook's stored outputs on its demo and given cells."""
    page = nbformat.read(course.release_notebook(chapter), as_version=4)
    stored = {cell.get("id"): cell for cell in course.read_source(chapter).cells if cell.cell_type == "code"}
    for cell in page.cells:
        if cell.cell_type != "code":
            continue
        source = stored.get(cell.get("id"))
        if source is not None and not course.is_answer(cell) and not course.is_test(cell):
            cell.outputs = source.get("outputs", [])
            cell.execution_count = source.get("execution_count")
    return page


def index_page(titles: dict[str, str]) -> str:
    lines = [
        "# torch.nn.Module, from first class to hooks",
        "",
        "A hands-on course on PyTorch's `nn.Module`: what a module is, parameters and buffers, the training and",
        "evaluation loop, hooks, and `torch.nn.functional` against `nn` layers. Each chapter is a Jupyter",
        "notebook with runnable demos and graded exercises.",
        "",
        "These pages show every chapter as a learner receives it, with the demos' outputs as stored: the answer",
        "cells are blank and the checks have not run. To do the exercises, clone the repository and run",
        "`make lab`, which opens the course in JupyterLab.",
        "",
        "## Chapters",
        "",
    ]
    lines += [f"{n}. [{title}]({chapter}.ipynb)" for n, (chapter, title) in enumerate(titles.items(), 1)]
    return "\n".join(lines) + "\n"


def write_sources(folder: Path) -> dict[str, str]:
    """The book's sources (pages, index, configuration, table of contents); the chapters' titles."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    titles = {}
    for chapter in course.chapters():
        page = page_of(chapter)
        titles[chapter] = title_of(page)
        nbformat.write(page, folder / f"{chapter}.ipynb")
    (folder / "index.md").write_text(index_page(titles))
    (folder / "_config.yml").write_text(CONFIG)
    toc = ["format: jb-book", "root: index", "chapters:", *[f"  - file: {c}" for c in titles]]
    (folder / "_toc.yml").write_text("\n".join(toc) + "\n")
    return titles


def build(output: Path = BUILD_DIR) -> Path:
    """Build the site into ``output/html`` (sources and Sphinx's work files beside it); its folder."""
    sources, work, html = output / "book-source", output / "book-work", output / "html"
    write_sources(sources)
    shutil.rmtree(html, ignore_errors=True)
    run = subprocess.run(
        [sys.executable, "-c", JUPYTER_BOOK, "build", str(sources), "--path-output", str(work)],
        capture_output=True,
        text=True,
    )
    built = work / "_build" / "html"
    if run.returncode != 0 or not (built / "index.html").is_file():
        raise RuntimeError(f"jupyter-book build failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    shutil.move(built, html)
    return html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=BUILD_DIR, help="folder to build in (default: _build)")
    html = build(parser.parse_args(argv).output)
    print(f"built {html / 'index.html'} ({len(course.chapters())} chapters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
