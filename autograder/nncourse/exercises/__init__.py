"""One module per chapter: the tests behind every graded exercise (probe + judge)."""
