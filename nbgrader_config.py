"""nbgrader configuration: the course lives in this repository.

Run nbgrader's commands from the repository root (where this file is).
"""

import os

root = os.path.dirname(os.path.abspath(__file__))
c = get_config()  # noqa: F821  (provided by traitlets)

c.CourseDirectory.course_id = "nn-module-course"
c.CourseDirectory.root = root
c.CourseDirectory.source_directory = "autograder/source"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.solution_directory = "solutions"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
c.CourseDirectory.db_url = os.environ.get(
    "NNCOURSE_DB_URL", "sqlite:///" + os.path.join(root, "autograder", "gradebook.db")
)
# files that never belong in an assignment: nbgrader's own list, and test tools' caches next to a notebook
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".hypothesis", ".pytest_cache"]
c.Exchange.root = os.path.join(root, "autograder", "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)  # the formgrader warns when the exchange is missing

# Learner notebooks carry no outputs; the instructor notebooks keep theirs for nbval.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Autograding: the learner's code runs in a sandboxed child process and the scores are
# computed outside it (see autograder/nncourse/grading). nbgrader keeps the gradebook,
# feedback and export. nbgrader's CheckCellMetadata is left out: RebuildFromSource takes every
# cell and its metadata from the instructor notebook (only the answers' code is the learner's),
# which generate_assignment validated, and checking it again took a third of the recording time.
c.Autograde.sanitize_preprocessors = [
    "nncourse.grading.nbgrader_plugins.RebuildFromSource",
    "nbgrader.preprocessors.OverwriteKernelspec",
]
c.Autograde.autograde_preprocessors = [
    "nncourse.grading.nbgrader_plugins.TrustedExecute",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
]

# Worked solutions: solutions kept, hidden tests removed, no outputs, not executed (so the
# generated files are byte-for-byte reproducible).
c.GenerateSolution.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.ClearMarkScheme",
    "nbgrader.preprocessors.ClearHiddenTests",
]
