"""Trusted grading.

The learner's code runs in a sandboxed child process (``child.py`` under ``sandbox.py``'s
limits); the checks' probes run there and export plain data only. Scores are computed here,
in a process that learner code never touched, by the same judges the notebooks use, against
references computed here too. nbgrader keeps the gradebook, feedback and export
(``nbgrader_plugins.py``); ``nncourse.grade`` grades a whole class in parallel.
"""
