"""The grading child's fingerprint (nncourse.grading.integrity), in a fresh interpreter each time:
torch's own changes on first use are not tampering; the same changes made by hand around
something else are."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PRELUDE = """
import json, sys, torch
from nncourse.grading import integrity
changes = integrity.snapshot()
assert "torch._dynamo" not in sys.modules, "the fingerprint itself should not import torch._dynamo"
"""

HONEST = """
model = torch.nn.Linear(2, 1)
for cls in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
    optimizer = cls(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
torch.manual_seed(0)
"""

FORGED = {
    # torch's own wrapper, but around another function, with __wrapped__ set to look right
    "disable_dynamo_around_another_function": """
fake = torch._disable_dynamo(lambda *a, **k: None)
fake.__wrapped__ = torch.random.manual_seed
torch.manual_seed = fake
""",
    # the optimizer's step wrapper, around a step that does nothing
    "profile_hook_around_a_no_op_step": """
torch.optim.SGD.step = torch.optim.Optimizer.profile_hook_step(lambda self, closure=None: None)
""",
    # the genuine wrapper, whose closure is then pointed elsewhere
    "closure_cell_rewritten": """
import torch.optim
model = torch.nn.Linear(2, 1)
torch.optim.SGD(model.parameters(), lr=0.1)
torch.manual_seed.__closure__[0].cell_contents = lambda *a, **k: None
""",
    "plain_replacement": "torch.manual_seed = lambda *a, **k: None\n",
}


def _changes(code: str) -> list[str]:
    script = PRELUDE + code + "\nprint('CHANGES', json.dumps(changes()))\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(row for row in run.stdout.splitlines() if row.startswith("CHANGES"))
    return json.loads(line[len("CHANGES") :])


def test_integrity_torch_first_use_is_not_tampering():
    assert _changes(HONEST) == []


@pytest.mark.parametrize("name", sorted(FORGED))
def test_integrity_forged_torch_wrappers_are_tampering(name):
    assert _changes(FORGED[name]), name


def test_integrity_a_warning_blamed_on_a_probe_is_not_tampering():
    """Python records a warning in the namespace of the line it is blamed on: when torch blames one
    on a probe's line, that is bookkeeping; any other name added to the checks is tampering."""
    script = (
        "import json, warnings\n"
        "from nncourse import registry\n"
        "registry.load_exercises()\n"
        "from nncourse.exercises import ch04_hooks as checks\n"
        "from nncourse.grading import integrity\n"
        "changes = integrity.snapshot()\n"
        "warnings.simplefilter('default')\n"
        "exec(\"import warnings; warnings.warn('blamed on a probe')\", vars(checks))\n"
        "assert '__warningregistry__' in vars(checks)\n"
        "print('CHANGES', json.dumps(changes()))\n"
        "checks.smuggled = lambda: None\n"
        "print('CHANGES', json.dumps(changes()))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = [json.loads(row[len("CHANGES") :]) for row in run.stdout.splitlines() if row.startswith("CHANGES")]
    assert found == [[], ["nncourse.exercises.ch04_hooks.smuggled was added"]]
