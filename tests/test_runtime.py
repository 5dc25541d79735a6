"""What learners see in their notebook: reveal() for predict-then-run questions, and visible checks
that fail the way grading would."""

from __future__ import annotations

import pytest

from nncourse import course, reveal


def test_reveal_hides_the_answer_until_every_question_is_answered(capsys):
    actual = {"dropout active": False, "graph recorded": True}
    reveal(..., actual)
    reveal({"dropout active": True, "graph recorded": ...}, actual)
    out = capsys.readouterr().out
    assert "Make your prediction first" in out
    assert "'graph recorded'" in out and "True" not in out.replace("'graph recorded'", "")


def test_reveal_marks_each_prediction(capsys):
    actual = {"dropout active": False, "graph recorded": True}
    reveal({"dropout active": True, "graph recorded": True}, actual)
    out = capsys.readouterr().out
    assert "✘ dropout active: you predicted True, it is False" in out
    assert "✔ graph recorded: True" in out
    assert "1/2 predicted right.\n" in out
    reveal(dict(actual), actual)
    assert "2/2 predicted right. All of them!" in capsys.readouterr().out


def test_reveal_names_a_misspelt_question(capsys):
    reveal({"dropout": True}, {"dropout active": False})
    assert "Unknown question(s) ['dropout']" in capsys.readouterr().out


@pytest.fixture
def shell():
    """A real IPython shell, as in a notebook's kernel (history, user namespace, get_ipython)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    yield ip
    InteractiveShell.clear_instance()


TRAIN_ONE_EPOCH = """
def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):
    model.train()
    total, count = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = {loss}(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(inputs)
        count += len(inputs)
    return total / count
"""


def run(shell, source):
    return shell.run_cell(source, store_history=True)


def test_visible_check_fails_when_an_answer_reads_a_name_only_a_demo_defines(shell, capsys):
    """The demo-variable trap: the answer reads the demo's global `loss_fn` instead of its own
    parameter. It works in the notebook, where the demo ran, and fails at grading, where demos do
    not run; the visible check must fail here and name the variable."""
    chapter = "03_train_eval_loop"
    assert "loss_fn" in course.demo_only_names(chapter)
    run(shell, "import torch\nfrom torch import nn\nfrom nncourse import check")
    run(shell, "loss_fn = nn.MSELoss()  # a demo cell")
    run(shell, TRAIN_ONE_EPOCH.format(loss="loss_fn"))
    result = run(shell, 'check("ex3_1_train_one_epoch", "train", train_one_epoch=train_one_epoch)')
    assert result.error_in_exec is not None
    message = str(result.error_in_exec)
    assert "uses `loss_fn`, which only a demo cell of this notebook defines" in message
    assert "NameError" in message

    run(shell, TRAIN_ONE_EPOCH.format(loss="criterion"))
    result = run(shell, 'check("ex3_1_train_one_epoch", "train", train_one_epoch=train_one_epoch)')
    assert result.error_in_exec is None, result.error_in_exec
    assert "✔ ex3_1_train_one_epoch · train" in capsys.readouterr().out


def test_names_a_cell_reads_and_binds():
    source = "def f(a):\n    return a + loss_fn(b)\nclass C:\n    k = z\n    def m(self):\n        return w\nq = [i * y for i in range(3)]\n"
    assert course.free_names(source) == {"loss_fn", "b", "z", "w", "y", "range"}
    assert course.bound_names(source) == {"f", "C", "q"}
    assert course.free_names("%timeit x\nloader = make(x)") == {"make", "x"}
