"""The course in a real browser: what a learner and an instructor do, click by click.

One JupyterLab server (free loopback port, token, every Jupyter directory in a temporary folder)
and one headless Chromium serve every chapter:

* learner: open the chapter's notebook with the answer cells filled from the worked solutions,
  Run > Run All Cells, wait until every cell ran, check there is no error output and every
  visible check printed ✔; press nbgrader's Validate button on one notebook and read its verdict.
* instructor: a temporary copy of the course with a class of three submissions graded by
  ``python -m nncourse.grade`` (started in the background when the module starts); open the
  formgrader from the Nbgrader menu, see the chapter, the students and their scores, open one
  graded submission and its feedback.

Needs Debian's Chromium at /usr/bin/chromium (``make setup`` installs it when run as root);
the tests skip otherwise. ``NNCOURSE_SCREENSHOTS=DIR`` also writes the README's pictures to
DIR (``make screenshots`` does this for docs/img).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from nncourse import course
from tools.coursecopy import make_course

from . import browser_support as bs
from .browser_support import expect

REASON = bs.browser_unavailable_reason()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=f"browser tests skipped: {REASON}"),
]

CHAPTERS = course.chapters()
FIRST = CHAPTERS[0] if CHAPTERS else None
# the chapter whose first figure goes into the README (first one that exists)
FIGURE_CHAPTER = next((c for c in ("03_train_eval_loop", "01_module_basics") if c in CHAPTERS), FIRST)
SCREENSHOTS = Path(os.environ["NNCOURSE_SCREENSHOTS"]) if os.environ.get("NNCOURSE_SCREENSHOTS") else None
CHAPTER_TIMEOUT = 300  # seconds for Run All of one chapter (the notebooks aim at ~20 s)

# the class graded for the instructor flow: (id, first name, last name)
STUDENTS = [("ada", "Ada", "Lovelace"), ("grace", "Grace", "Hopper"), ("alan", "Alan", "Turing")]


def learner_notebook(chapter: str) -> Path:
    return course.release_notebook(chapter)


def solution_notebook(chapter: str) -> Path:
    return course.solution_notebook(chapter)


def snap(page, name: str, **kwargs) -> None:
    """Write a README picture when NNCOURSE_SCREENSHOTS is set."""
    if SCREENSHOTS is not None:
        size = bs.save_png(page.screenshot(**kwargs), SCREENSHOTS / f"{name}.png")
        print(f"screenshot {SCREENSHOTS / name}.png ({size // 1024} KB)")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def playwright_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = bs.launch_browser(p)
        # one context: JupyterLab's scripts are fetched once and cached for every page
        context = browser.new_context(viewport=bs.VIEWPORT)
        context.set_default_timeout(60_000)
        yield context
        context.close()
        browser.close()


@pytest.fixture
def lab_page(playwright_browser):
    """A fresh browser tab, closed after the test."""
    pages: list = []

    def make(lab: bs.JupyterLab) -> bs.LabPage:
        page = playwright_browser.new_page()
        pages.append(page)
        return bs.LabPage(page, lab)

    yield make
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def learner_lab(workdir):
    """A learner's JupyterLab: every chapter's notebook, answered with the worked solutions."""
    root = workdir / "learner"
    for chapter in CHAPTERS:
        if not (learner_notebook(chapter).exists() and solution_notebook(chapter).exists()):
            continue  # test_learner_runs_chapter says so
        filled = bs.filled_notebook(learner_notebook(chapter), solution_notebook(chapter))
        bs.write_notebook(filled, course.notebook_in(root / "notebooks", chapter))
    lab = bs.JupyterLab(root, workdir / "learner-jupyter")
    yield lab
    lab.stop()


class ChapterRuns:
    """Each chapter's notebook open in its own tab, Run All started one chapter ahead.

    While the test of chapter k waits for its cells, chapter k+1 is already loading and
    starting its kernel: the two cores stay busy and the suite takes less time. A failure while
    starting a chapter ahead is reported by that chapter's own test.
    """

    def __init__(self, lab: bs.JupyterLab, context, order: list[str]):
        self.lab, self.context, self.order = lab, context, order
        self.pages: dict[str, bs.LabPage] = {}
        self.failed: dict[str, BaseException] = {}

    @staticmethod
    def path(chapter: str) -> str:
        return f"notebooks/{chapter}/{chapter}.ipynb"

    def start(self, chapter: str) -> None:
        if chapter in self.pages or chapter in self.failed:
            return
        if not (self.lab.root_dir / self.path(chapter)).exists():
            return
        page = self.context.new_page()
        lab = bs.LabPage(page, self.lab)
        self.pages[chapter] = lab
        try:
            lab.open_lab(f"learner-{chapter}", self.path(chapter))
            lab.start_run_all()
        except Exception as e:  # noqa: BLE001  (re-raised by the chapter's own test)
            self.failed[chapter] = e

    def begin(self, chapter: str) -> bs.LabPage:
        """The tab of ``chapter`` with Run All started; start the next chapter too."""
        self.start(chapter)
        later = self.order[self.order.index(chapter) + 1 :] if chapter in self.order else []
        if later:
            self.start(later[0])
        if chapter in self.failed:
            raise self.failed[chapter]
        return self.pages[chapter]

    def end(self, chapter: str) -> None:
        lab = self.pages.pop(chapter, None)
        if lab is not None:
            lab.page.close()
        self.lab.shutdown_kernels(self.path(chapter))  # a torch kernel per chapter adds up

    def close(self) -> None:
        for chapter in list(self.pages):
            self.end(chapter)


@pytest.fixture(scope="module")
def chapter_runs(request, learner_lab, playwright_browser):
    # the chapters this session tests, in order (``-k`` may select a few)
    order = [
        item.callspec.params["chapter"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_learner_runs_chapter"
    ]
    runs = ChapterRuns(learner_lab, playwright_browser, order)
    yield runs
    runs.close()


# ---- the instructor's class, graded in the background while the learner tests run
def _course_copy(course_dir: Path, chapter: str) -> None:
    """What grading one chapter needs, in a folder of its own (never the real gradebook)."""
    make_course(course_dir, [chapter])


def _wrong_variants(chapter: str) -> dict:
    """The first known wrong answer of every exercise (tests/grader_cases), if the chapter has them."""
    import importlib

    from . import grader_cases

    try:
        module = importlib.import_module(f"tests.grader_cases.ch{chapter[:2]}")
    except Exception:  # noqa: BLE001  (none yet, or being written: grace then hands in the solutions)
        return {}
    return grader_cases.submissions(module.VARIANTS).get("wrong_1", {})


def _test_points(chapter: str) -> dict[str, float]:
    nb = json.loads(course.source_notebook(chapter).read_text(encoding="utf-8"))
    return {
        c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    }


def _class_submissions(course_dir: Path, chapter: str) -> dict[str, float]:
    """Write three submissions; return the score each must get.

    ada: the worked solutions; grace: the first known mistake in every exercise (full marks
    where the chapter has no grader cases); alan: only the first half of the exercises answered.
    """
    points = _test_points(chapter)
    maximum = sum(points.values())
    learner, solution = learner_notebook(chapter), solution_notebook(chapter)
    answers = bs.answer_ids(learner)
    submitted = course_dir / "autograder" / "submitted"
    expected = {}

    def exercise_points(exercise: str) -> float:
        return sum(p for gid, p in points.items() if gid.startswith(exercise + "_test"))

    bs.write_notebook(bs.filled_notebook(learner, solution), course.notebook_in(submitted / "ada", chapter))
    expected["ada"] = maximum

    wrong = _wrong_variants(chapter)
    nb = bs.filled_notebook(learner, solution)
    score = maximum
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in wrong and cell["metadata"]["nbgrader"].get("solution"):
            variant = wrong[gid]
            cell["source"] = variant.code.strip()
            got = sum(variant.expect.get(t, p) for t, p in points.items() if t.startswith(gid + "_test"))
            score -= exercise_points(gid) - got
    bs.write_notebook(nb, course.notebook_in(submitted / "grace", chapter))
    expected["grace"] = score

    unanswered = frozenset(answers[(len(answers) + 1) // 2 :])
    bs.write_notebook(
        bs.filled_notebook(learner, solution, skip=unanswered), course.notebook_in(submitted / "alan", chapter)
    )
    expected["alan"] = maximum - sum(exercise_points(e) for e in unanswered)
    return expected


def _grade_class(course_dir: Path, chapter: str, env: dict, db: str, log: Path) -> None:
    roster = course_dir / "students.csv"
    roster.write_text("id,first_name,last_name\n" + "".join(f"{i},{first},{last}\n" for i, first, last in STUDENTS))
    with open(log, "w") as out:
        for argv in (
            [
                sys.executable,
                "-m",
                "nbgrader",
                "db",
                "student",
                "import",
                str(roster),
                f"--db={db}",
                "--log-level=WARN",
            ],
            [sys.executable, "-m", "nncourse.grade", chapter, f"--db={db}"],
        ):
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            run = subprocess.run(argv, cwd=course_dir, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600)
            if run.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[1:4])} failed; its log:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module", autouse=True)
def graded_class(request, workdir):
    """Start grading the instructor's class at once; the instructor test waits for it."""
    wanted = any(getattr(item, "originalname", "").startswith("test_instructor") for item in request.session.items)
    if not CHAPTERS or not wanted:
        yield None
        return
    course_dir = workdir / "course"
    chapter = FIRST
    _course_copy(course_dir, chapter)
    expected = _class_submissions(course_dir, chapter)
    db = f"sqlite:///{course_dir / 'autograder' / 'gradebook.db'}"
    env = bs.jupyter_env(workdir / "grading-jupyter")
    env.update(NNCOURSE_ROOT=str(course_dir), NNCOURSE_DB_URL=db)
    pool = ThreadPoolExecutor(max_workers=1)
    future: Future = pool.submit(_grade_class, course_dir, chapter, env, db, workdir / "grading.log")
    yield {"course": course_dir, "chapter": chapter, "env": env, "expected": expected, "future": future}
    pool.shutdown(wait=True)


# --------------------------------------------------------------------------- learner
def _executable_cells(notebook: dict) -> list[int]:
    """Indices of the code cells JupyterLab runs (it skips empty ones)."""
    return [i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code" and bs._source(c).strip()]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_learner_runs_chapter(chapter, learner_lab, chapter_runs):
    """Open the answered notebook, Run All, and see every cell run and every check pass."""
    for generated in (learner_notebook(chapter), solution_notebook(chapter)):
        if not generated.exists():
            pytest.fail(f"{generated.relative_to(course.REPO_ROOT)} is missing: run `make generate`")
    on_disk = learner_lab.root_dir / ChapterRuns.path(chapter)
    notebook = json.loads(on_disk.read_text(encoding="utf-8"))
    executable = _executable_cells(notebook)
    checks = {
        i: c["metadata"]["nbgrader"]["grade_id"]
        for i, c in enumerate(notebook["cells"])
        if c.get("metadata", {}).get("nbgrader", {}).get("grade") and "check(" in bs._source(c)
    }
    assert checks, f"{chapter}: the learner notebook has no visible check cell"

    try:
        lab = chapter_runs.begin(chapter)
        cells = lab.wait_run_all(len(executable), timeout=CHAPTER_TIMEOUT)
        assert len(cells) == len(notebook["cells"]), "not every cell is in the page"

        not_run = [i for i in executable if not bs.EXECUTED.match(cells[i]["prompt"])]
        if not_run:
            stopped = [o["text"] for c in cells for o in c["outputs"] if o["mime"] == "application/vnd.jupyter.stderr"]
            pytest.fail(
                f"{chapter}: Run All stopped; cells {not_run} did not run. Last error output:\n"
                + (stopped[-1][-2000:] if stopped else "(none)")
            )
        for i, grade_id in checks.items():
            shown = " ".join(o["text"] for o in cells[i]["outputs"])
            assert "✔" in shown and "✘" not in shown, f"{chapter}: visible check {grade_id} says {shown!r}"

        # what the learner would hand in: saved by the browser, read back from disk
        lab.save()
        saved = json.loads(on_disk.read_text(encoding="utf-8"))
        errors = [
            (i, o.get("ename"), o.get("evalue"))
            for i, c in enumerate(saved["cells"])
            if c["cell_type"] == "code"
            for o in c.get("outputs", [])
            if o["output_type"] == "error"
        ]
        assert not errors, f"{chapter}: error output in cells {errors}"
        assert all(saved["cells"][i].get("execution_count") for i in executable)

        if chapter == FIRST:
            # the file browser shows the course: go up from the chapter's folder to notebooks/
            lab.page.locator(".jp-FileBrowser .jp-BreadCrumbs-item", has_text="notebooks").click()
            lab.page.locator(".jp-DirListing-item", has_text=chapter).first.wait_for()
            lab.scroll_to_cell(0)
            snap(lab.page, "lab-course")
            first_check = min(checks)
            answer = max(i for i in range(first_check) if saved["cells"][i]["cell_type"] == "code")
            lab.scroll_to_cell(answer - 1)
            snap(lab.page, "lab-checks")
        if chapter == FIGURE_CHAPTER:
            figures = [i for i, c in enumerate(cells) if any(o["mime"] == "image/png" for o in c["outputs"])]
            assert figures, f"{chapter} shows no figure"
            figure = lab.page.locator(".jp-Notebook .jp-Cell").nth(figures[0])
            figure.locator('.jp-OutputArea-output[data-mime-type="image/png"]').first.evaluate(
                "el => el.scrollIntoView({block: 'center'})"
            )
            lab.page.wait_for_timeout(300)
            snap(lab.page, "chapter-figure")
    finally:
        chapter_runs.end(chapter)


@pytest.mark.skipif(not CHAPTERS, reason="no chapter yet")
def test_validate_button_accepts_answered_notebook(learner_lab, lab_page):
    """nbgrader's Validate button (notebook toolbar) runs the notebook and reports success."""
    if not (learner_lab.root_dir / ChapterRuns.path(FIRST)).exists():
        pytest.fail(f"the notebooks of {FIRST} are missing: run `make generate`")
    path = ChapterRuns.path(FIRST)
    lab = lab_page(learner_lab)
    lab.open_lab("learner-validate", path)
    try:
        lab.wait_kernel_idle()
        button = lab.page.locator(".jp-NotebookPanel-toolbar .validate-button")
        button.click()
        dialog = lab.page.locator(".jp-Dialog")
        dialog.wait_for(timeout=240_000)  # the server runs the whole notebook in a new kernel
        expect(dialog.locator(".jp-Dialog-header")).to_have_text("Validation Results")
        text = dialog.inner_text()
        assert dialog.locator(".validation-success").count() == 1, f"Validate says:\n{text}"
        assert "Success! Your notebook passes all the tests." in text
        snap(lab.page, "validate")
        dialog.get_by_role("button", name="Ok").click()
    finally:
        learner_lab.shutdown_kernels(path)


# --------------------------------------------------------------------------- instructor
@pytest.fixture(scope="module")
def instructor_lab(workdir, graded_class):
    if graded_class is None:
        pytest.skip("no chapter yet")
    graded_class["future"].result(timeout=900)  # re-raises a grading failure
    course_dir = graded_class["course"]
    # the formgrader reads nbgrader_config.py from the server's working directory
    lab = bs.JupyterLab(course_dir, workdir / "instructor-jupyter", cwd=course_dir, env=graded_class["env"])
    yield lab
    lab.stop()


def test_instructor_sees_grades_in_formgrader(instructor_lab, graded_class, lab_page):
    chapter, expected = graded_class["chapter"], graded_class["expected"]
    course_dir = graded_class["course"]
    lab = lab_page(instructor_lab)
    lab.open_lab("instructor")
    lab.menu("Nbgrader", "nbgrader:open-formgrader")
    frame = lab.page.frame_locator("#formgrader-iframe iframe")

    # Manage Assignments: the chapter with its submissions, and no warning about the setup
    # (nbgrader_config.py puts the exchange in the course's autograder/exchange)
    row = frame.locator("tr", has=frame.locator("td.name", has_text=chapter))
    expect(row.locator("td.num-submissions")).to_have_text(str(len(expected)))
    warnings = frame.locator(".alert-warning")
    assert warnings.count() == 0, f"formgrader warns: {warnings.all_inner_texts()}"

    # Manage Students: everyone, with the score grading must have given
    frame.get_by_role("link", name="Manage Students").click()
    maximum = expected["ada"]
    for student, score in expected.items():
        student_row = frame.locator("tr", has=frame.locator("td.id", has_text=re.compile(rf"^{student}$")))
        expect(student_row.locator("td.score")).to_have_text(f"{score:g} / {maximum:g}")
    if SCREENSHOTS is not None:
        # more room for the table: fold the file browser away (click its active side tab)
        lab.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        frame.locator("table").first.evaluate("el => el.scrollIntoView({block: 'center'})")
        lab.page.wait_for_timeout(300)
        snap(lab.page, "formgrader-grades")

    # one submission, as graded: the student's page, the chapter, the notebook
    student = "grace" if expected["grace"] < expected["ada"] else "alan"
    # (links picked by where they lead, so a click never lands on the page being left)
    frame.locator(f'td.name a[href$="/formgrader/manage_students/{student}"]').click()
    frame.locator(f'td a[href$="/formgrader/manage_students/{student}/{chapter}"]').click()
    frame.locator('td a[href*="/formgrader/submissions/"]').first.click()
    frame.locator(".nbgrader_cell").first.wait_for()
    body = frame.locator("body").inner_text()
    assert "✘" in body, "the graded submission shows no failed check"

    # the feedback the student gets: generated by the grading command
    feedback = course_dir / "autograder" / "feedback" / student / chapter / f"{chapter}.html"
    assert feedback.exists(), f"no feedback at {feedback}"
    page = lab.page.context.new_page()
    try:
        page.goto(instructor_lab.url(f"/files/autograder/feedback/{student}/{chapter}/{chapter}.html"))
        score = expected[student]
        page.get_by_text(f"Score: {score:.1f} / {maximum:.1f}").first.wait_for()
        failed = page.locator("pre", has_text="✘").first  # the first failed check says why
        failed.wait_for()
        failed.evaluate("el => el.scrollIntoView({block: 'center'})")
        snap(page, "feedback")
    finally:
        page.close()
