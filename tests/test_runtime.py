"""The learner helpers every notebook imports: reveal() for predict-then-run questions."""

from __future__ import annotations

from nncourse import reveal


def test_reveal_hides_the_answer_until_every_question_is_answered(capsys):
    actual = {"dropout active": False, "graph recorded": True}
    assert reveal(..., actual) is False
    assert reveal({"dropout active": True, "graph recorded": ...}, actual) is False
    out = capsys.readouterr().out
    assert "Make your prediction first" in out
    assert "'graph recorded'" in out and "True" not in out.replace("'graph recorded'", "")


def test_reveal_marks_each_prediction(capsys):
    actual = {"dropout active": False, "graph recorded": True}
    assert reveal({"dropout active": True, "graph recorded": True}, actual) is False
    out = capsys.readouterr().out
    assert "✘ dropout active: you predicted True, it is False" in out
    assert "✔ graph recorded: True" in out
    assert "1/2 predicted right." in out
    assert reveal(dict(actual), actual) is True


def test_reveal_names_a_misspelt_question(capsys):
    assert reveal({"dropout": True}, {"dropout active": False}) is False
    assert "Unknown question(s) ['dropout']" in capsys.readouterr().out
