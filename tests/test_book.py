"""make book: the browsable site of the course (tools/book.py), built offline and opened in a browser."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from html.parser import HTMLParser

import nbformat
import pytest

from nncourse import course
from tools import book

from . import browser_support as bs

pytestmark = pytest.mark.slow  # a Sphinx build of every chapter


class _Text(HTMLParser):
    """The text a reader sees on a page (code highlighting splits code into many spans)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def page_text(path) -> str:
    parser = _Text()
    parser.feed(path.read_text())
    return "".join(parser.parts)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return book.build(tmp_path_factory.mktemp("book"))


def test_book_has_an_index_and_a_page_per_chapter(site):
    index = (site / "index.html").read_text()
    for chapter in course.chapters():
        assert (site / f"{chapter}.html").is_file()
        assert f'href="{chapter}.html"' in index
        title = book.title_of(course.read_source(chapter))
        assert title.replace("`", "") in page_text(site / f"{chapter}.html")


@pytest.mark.parametrize("chapter", course.chapters())
def test_book_shows_stored_outputs_and_no_solutions(site, chapter):
    text = page_text(site / f"{chapter}.html")
    source = course.read_source(chapter)
    demo_outputs = [
        line.strip()
        for cell in source.cells
        if cell.cell_type == "code" and not course.is_answer(cell) and not course.is_test(cell)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
        for line in out.get("text", "").splitlines()
        if len(line.strip()) > 12
    ]
    assert demo_outputs, f"{chapter} has no stored printed output to look for"
    missing = [line for line in demo_outputs if line not in text]
    assert len(missing) <= len(demo_outputs) // 10, missing[:5]  # a few lines Sphinx folds or trims
    learner = nbformat.read(course.release_notebook(chapter), as_version=4)
    release = "\n".join(cell.source for cell in learner.cells)  # what the learner has anyway
    for cell in source.cells:
        if course.is_answer(cell):
            body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
            secret = [ln.strip() for ln in (body.group(1) if body else "").splitlines() if len(ln.strip()) > 20]
            leaked = [ln for ln in secret if ln in text and ln not in release]
            assert not leaked, f"{course.grade_id(cell)}: the solution is on the page: {leaked[:3]}"
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text


@pytest.mark.browser
@pytest.mark.skipif(bs.browser_unavailable_reason() is not None, reason=f"{bs.browser_unavailable_reason()}")
def test_book_opens_in_a_browser(site):
    from playwright.sync_api import sync_playwright

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = bs.launch_browser(p)
            page = browser.new_page(viewport=bs.VIEWPORT)
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            first = course.chapters()[0]
            title = book.title_of(course.read_source(first)).replace("`", "")
            page.click(f'a[href="{first}.html"] >> nth=0')
            bs.expect(page.locator("h1").first).to_contain_text(title.split("—")[0].strip())
            images = page.locator("img")
            assert images.count() >= 1
            widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
            assert all(w > 0 for w in widths), widths  # every figure loaded
            browser.close()
    finally:
        server.shutdown()
