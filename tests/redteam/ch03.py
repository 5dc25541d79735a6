"""Chapter 3 hostile answers: grad mode, fixed adder pairs, test labels, rewritten exports."""

from . import FIND_WITH_OS_WALK, attack, variant

CHAPTER = "03_train_eval_loop"

_NO_ZERO_GRAD = variant("ch03", "no zero_grad: gradients accumulate")
_NO_NO_GRAD = variant("ch03", "no torch.no_grad()")
_FEW_STEPS = variant("ch03", "far too few steps")
_UNTRAINED = variant("ch03", "the model is never trained")

# the 1,000 "fresh" pairs the adder checks use: always the same
_PROBE_PAIRS = "torch.rand(1000, 2, generator=torch.Generator().manual_seed(3400)) * 20 - 10"

ATTACKS = [
    attack(
        "sys_modules_swaps_train_probe",
        CHAPTER,
        "ex3_1_train_one_epoch",
        1,
        _NO_ZERO_GRAD,
        """
import sys

def _good_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train()
    total, count = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count

_checking = sys.modules["nncourse.checking"]
_real_run_probe = _checking.run_probe

def _run_probe(test, objects):
    if test.exercise == "ex3_1_train_one_epoch":
        objects = dict(objects, train_one_epoch=_good_epoch)
    return _real_run_probe(test, objects)

_checking.run_probe = _run_probe
""",
        after=True,
    ),
    attack(
        "is_grad_enabled_wrapped",
        CHAPTER,
        "ex3_2_evaluate",
        2,
        _NO_NO_GRAD,
        """
import sys
_real_is_grad_enabled = torch.is_grad_enabled

def _is_grad_enabled():
    caller = sys._getframe(1)
    if "ch03_train_eval_loop" in caller.f_code.co_filename and caller.f_code.co_name == "forward":
        return False          # what the recording wrapper asks: "are you tracking gradients?"
    return _real_is_grad_enabled()

torch.is_grad_enabled = _is_grad_enabled
""",
    ),
    attack(
        "adder_memorises_probe_pairs",
        CHAPTER,
        "ex3_4_adder",
        3,
        _FEW_STEPS,
        (
            "_PROBE_PAIRS = "
            + _PROBE_PAIRS
            + """
_real_forward = AdderNet.forward

def _forward(self, x):
    if x.shape == _PROBE_PAIRS.shape and torch.equal(x.cpu(), _PROBE_PAIRS):
        return x.sum(dim=1, keepdim=True)
    return _real_forward(self, x)

AdderNet.forward = _forward
"""
        ),
        after=True,
        policy=False,
    ),
    attack(
        "thread_rewrites_adder_exports",
        CHAPTER,
        "ex3_4_adder",
        4,
        _FEW_STEPS,
        (
            """
import threading, time, glob
from nncourse import plaindata
_sums = ("""
            + _PROBE_PAIRS
            + """).sum(dim=1, keepdim=True)
_done = set()

def _forge(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("outputs", "again") and isinstance(value, torch.Tensor) and value.shape[0] == 1000:
                node[key] = _sums.clone()
            else:
                _forge(value)

def _watch():
    while True:
        for path in glob.glob("out/ex3_4_adder_test_*__*.npz"):
            if path in _done:
                continue
            try:
                data = plaindata.load(path)
                _forge(data)
                plaindata.dump(data, path)
                _done.add(path)
            except Exception:
                pass
        time.sleep(0.01)

threading.Thread(target=_watch, daemon=True).start()
"""
        ),
        after=True,
        policy=False,
    ),
    attack(
        "test_labels_from_course_copy",
        CHAPTER,
        "ex3_5_digits_classifier",
        6,
        _UNTRAINED,
        FIND_WITH_OS_WALK
        + """
_csv = _find_copy("data/digits/digits.csv")
if _csv:
    _lookup = {}
    for _line in open(_csv).read().splitlines()[1:]:
        _row = _line.split(",")
        if _row[1] == "test":
            _lookup[bytes(int(v) for v in _row[3:])] = int(_row[2])

    class _Memorised(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base

        def forward(self, x):
            scores = self.base(x)
            keys = (x * 16).round().to(torch.uint8).cpu()
            for i in range(x.shape[0]):
                label = _lookup.get(bytes(keys[i].tolist()))
                if label is not None:
                    scores[i] = -100.0
                    scores[i, label] = 100.0
            return scores

    digits_model = _Memorised(digits_model)
""",
        after=True,
        policy=False,
    ),
]
