"""notebooks/ and solutions/ must be exactly what `make generate` makes from autograder/source."""
from nncourse import generate, notebooks, paths


def test_generated_notebooks_are_up_to_date():
    stale = generate.stale_files()
    assert not stale, f"stale generated files (run `make generate`): {stale}"


def test_every_chapter_follows_the_grading_contract():
    """One answer cell per exercise, test cells named <exercise>_test_*, each worth >= 1 point."""
    from nncourse.checking import EXERCISES, _load_exercise_modules
    _load_exercise_modules()
    for chapter in paths.existing_chapters():
        nb = notebooks.read_source(chapter)
        answers = [notebooks.grade_id(c) for c in nb.cells if notebooks.is_answer(c)]
        expected = sorted(e for e, ex in EXERCISES.items() if ex.chapter == chapter)
        assert sorted(answers) == expected, chapter
        assert nb.cells[0].metadata["nbgrader"]["grade_id"] == "setup", "the first cell is the setup cell"
        for cell in nb.cells:
            if notebooks.is_test(cell):
                gid = notebooks.grade_id(cell)
                assert any(gid.startswith(f"{e}_test") for e in answers), gid
                assert notebooks.points(cell) >= 1, gid
                calls = notebooks.checks_in(cell.source)
                assert calls and all(c[0] == gid.split("_test")[0] for c in calls), gid
        release = nbformat_read_release(chapter)
        assert "BEGIN SOLUTION" not in str(release) and "BEGIN HIDDEN TESTS" not in str(release)


def nbformat_read_release(chapter):
    import nbformat
    return nbformat.read(paths.RELEASE_DIR / chapter / f"{chapter}.ipynb", as_version=4)
