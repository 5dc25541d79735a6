"""Chapter 3 — training and evaluating: the checks behind ex3_1 … ex3_7.

The probes hand the learner's functions objects of their own that record what happens:

* a loader whose batches are tensors of the class ``_Unmoved``: ``.to(...)`` turns them into
  plain tensors, so "the batch was moved to ``device``" can be seen on a CPU-only machine too
  (on a GPU, an unmoved batch would fail outright; the verdict is the same either way);
* a model wrapper that records, at every forward, ``self.training``, whether gradients were
  tracked and whether its input was moved;
* an optimizer step pre-hook that records the gradient each step uses;
* for ``fit``, stand-ins for ``train_one_epoch`` and ``evaluate`` that return scripted losses and
  write the epoch number into the weights, so the weights ``fit`` ends with name their epoch;
* for ``MomentumSGD``, ``torch.optim.SGD`` itself, run side by side on a copy of the same network:
  the judge compares the learner's parameters, gradients and buffers with the stock optimizer's.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import tempfile
from pathlib import Path

import torch
import torch.serialization
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..expect import expect_close, expect_equal, expect_true
from ..probing import device, generator, load_seeded, reseed
from ..registry import Mistake, exercise

CHAPTER = "03_train_eval_loop"
_MISSING = object()


# --------------------------------------------------------------------- recording helpers
class _Unmoved(torch.Tensor):
    """A batch tensor straight from the loader: ``.to(...)`` returns a plain tensor."""

    def to(self, *args, **kwargs):
        return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs)


def _plain(t):
    return t.as_subclass(torch.Tensor) if isinstance(t, torch.Tensor) else t


def _collate(samples):
    return tuple(torch.stack(column).as_subclass(_Unmoved) for column in zip(*samples))


def _loader(x, y, batch_size):
    """A real DataLoader (len, .dataset, .batch_size work) over CPU tensors, not shuffled."""
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False, collate_fn=_collate)


class _Recorder(nn.Module):
    """Wraps a network; logs mode, grad tracking and input placement at every forward."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.log = []

    # ``input``, as nn.Sequential names it: model(inputs) and model(input=inputs) both work
    def forward(self, input):
        self.log.append(
            {
                "training": self.training,
                "grad_enabled": torch.is_grad_enabled(),
                "moved": not isinstance(input, _Unmoved),
                "n": int(input.shape[0]),
            }
        )
        return self.net(_plain(input))


class _RecordingLoss(nn.Module):
    """A mean-reducing loss that logs each batch's loss value and whether its target was moved."""

    def __init__(self, base):
        super().__init__()
        self.base = base
        self.log = []

    # the parameter names of torch's loss modules: loss_fn(outputs, targets) and
    # loss_fn(input=outputs, target=targets) both work, as they do with nn.CrossEntropyLoss
    def forward(self, input, target):
        loss = self.base(_plain(input), _plain(target))
        self.log.append(
            {"moved": not isinstance(target, _Unmoved), "n": int(target.shape[0]), "loss": float(loss.detach())}
        )
        return loss


def _record_steps(optimizer, model):
    """Log a copy of every parameter's gradient just before each optimizer.step()."""
    steps = []
    names = [n for n, _ in model.named_parameters()]

    def hook(opt, args, kwargs):
        steps.append(
            {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in zip(names, model.parameters())}
        )

    optimizer.register_step_pre_hook(hook)
    return steps


def _number(value):
    """(type name, float value or None) of a returned scalar, for the judge."""
    if isinstance(value, bool):
        return "bool", float(value)
    if isinstance(value, numbers.Integral):  # int, numpy.int64 ...
        return "int", float(value)
    if isinstance(value, numbers.Real):  # float, numpy.float64, numpy.float32 ...
        return "float", float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return "Tensor", float(value.detach().cpu())
    return type(value).__name__, None


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _judge_loss_fn_used(got, what):
    expect_true(
        len(got["losses"]) > 0,
        f"{what} never called the loss_fn it was given.",
        hint="compute each batch's loss with the loss_fn argument, loss = loss_fn(outputs, targets), "
        "not with a loss of your own choosing such as F.cross_entropy: the caller decides the loss.",
    )


def _judge_moved(got, what):
    expect_true(
        all(f["moved"] for f in got["forwards"]),
        f"{what} gave the model a batch that was never moved to `device`.",
        hint="move each batch first: inputs, targets = inputs.to(device), targets.to(device).",
    )
    expect_true(
        all(entry["moved"] for entry in got["losses"]),
        f"{what} gave the loss a target batch that was never moved to `device`.",
        hint="move the targets too: targets = targets.to(device).",
    )


def _judge_float(kind_value, what):
    kind, value = kind_value
    expect_true(
        value is not None,
        f"{what} should be a Python float, not a {kind}.",
        hint="turn a 0-d tensor into a number with .item().",
    )
    expect_true(
        kind in ("float", "int"),
        f"{what} should be a Python float, not a {kind}.",
        hint="use loss.item() when you add up losses: a tensor keeps the whole autograd graph alive.",
    )
    return value


# --------------------------------------------------------------------- ex3_1 train_one_epoch
# Misreadings considered, and the probe input that separates each from the contract:
# * model.train() never called (or `model.train` without parentheses): the model starts in eval
#   mode and _Recorder logs `training` at every forward;
# * batch (inputs or targets) not moved to `device`: the loader yields _Unmoved tensors, seen by
#   _Recorder (inputs) and _RecordingLoss (targets);
# * no zero_grad (gradients accumulate) / zero_grad between backward and step: the step pre-hook
#   records the gradient every step uses, compared with the reference batch by batch;
# * a loss of one's own (F.cross_entropy) instead of `loss_fn`: _RecordingLoss logs every call, and
#   the hidden case uses MSELoss;
# * plain mean of batch means / last batch's loss / sum: 10 samples in batches 4, 4, 2 (and 7 in
#   3, 3, 1) make each differ from the per-sample mean, with a hint for each;
# * a tensor returned instead of a float: _number reports the type;
# * `device` without its default: the hidden case calls train_one_epoch(model, loader, loss_fn,
#   optimizer) on a CPU model; keyword calls (model=, loader=, ...) are used there too.
# The stand-ins take the names torch gives them (model(input), loss_fn(input, target)), so a learner
# may call them by keyword.
ex3_1 = exercise("ex3_1_train_one_epoch", CHAPTER)


def _train_case(train_one_epoch, *, seed, n, batch_size, n_in, n_out, task, momentum, use_device=True, keywords=False):
    g = generator(seed)
    x = torch.randn(n, n_in, generator=g)
    if task == "classify":
        y = torch.randint(0, n_out, (n,), generator=g)
        base: nn.Module = nn.CrossEntropyLoss()
    else:
        y = torch.randn(n, n_out, generator=g)
        base = nn.MSELoss()
    reseed(seed)
    model = _Recorder(nn.Sequential(nn.Linear(n_in, 6), nn.Tanh(), nn.Linear(6, n_out)))
    load_seeded(model, seed + 1)
    if not use_device:
        model.cpu()
    model.eval()  # train_one_epoch must switch to training mode
    loss_fn = _RecordingLoss(base)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    steps = _record_steps(optimizer, model)
    loader = _loader(x, y, batch_size)
    if not use_device:
        result = train_one_epoch(model, loader, loss_fn, optimizer)
    elif keywords:
        result = train_one_epoch(model=model, loader=loader, loss_fn=loss_fn, optimizer=optimizer, device=device)
    else:
        result = train_one_epoch(model, loader, loss_fn, optimizer, device)
    return {
        "result": _number(result),
        "steps": steps,
        "n_batches": len(loader),
        "params": {k: v.detach() for k, v in model.net.named_parameters()},
        "forwards": model.log,
        "losses": loss_fn.log,
        "check_moved": use_device,
    }


def _judge_train_case(got, ref, label):
    what = f"train_one_epoch ({label})"
    if got["check_moved"]:
        _judge_moved(got, what)
    expect_true(
        len(got["forwards"]) > 0,
        f"{what} never called the model.",
        hint="for inputs, targets in loader: outputs = model(inputs) ...",
    )
    _judge_loss_fn_used(got, what)
    expect_true(
        all(f["training"] for f in got["forwards"]),
        f"{what} ran the model in eval mode.",
        hint="call model.train() at the start: evaluate() (or the caller) may have left it in eval mode, "
        "and dropout and batch norm then behave as in testing.",
    )
    expect_equal(
        len(got["steps"]),
        ref["n_batches"],
        f"{what}: the number of optimizer.step() calls should equal the number of batches",
        hint="one optimizer.step() per batch, inside the loop over the loader.",
    )
    for i, (g_step, r_step) in enumerate(zip(got["steps"], ref["steps"])):
        if all(v is None or not v.any() for v in g_step.values()):
            raise Mistake(
                f"{what}: at optimizer.step() number {i + 1} every gradient was zero.",
                hint="the order is zero_grad() → loss.backward() → step(); zeroing between "
                "backward() and step() throws the gradients away.",
            )
        for name, r_grad in r_step.items():
            hint = (
                "gradients accumulate: .grad still held the previous batches' gradients. Call "
                "optimizer.zero_grad() (or model.zero_grad()) before loss.backward() for every batch."
                if i > 0
                else "the gradient should be that of loss_fn(model(inputs), targets) for the first batch."
            )
            expect_close(g_step.get(name), r_grad, f"{what}: the gradient of '{name}' used by step {i + 1}", hint)
    for name, r_param in ref["params"].items():
        expect_close(
            got["params"].get(name),
            r_param,
            f"{what}: '{name}' after the epoch",
            hint="one step per batch: loss = loss_fn(model(inputs), targets); zero_grad; backward; step.",
        )
    value = _judge_float(got["result"], f"the value {what} returns")
    expected = ref["result"][1]
    if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
        losses = [e["loss"] for e in got["losses"]]
        hint = (
            "return the mean loss per sample over the epoch: add loss.item() * batch_size for each batch "
            "and divide by the number of samples."
        )
        if losses and math.isclose(value, sum(losses) / len(losses), rel_tol=1e-4, abs_tol=1e-5):
            hint = (
                "this is the plain mean of the batch losses; the last batch is smaller and must weigh less: "
                "add loss.item() * inputs.size(0) per batch and divide by the number of samples."
            )
        elif losses and math.isclose(value, losses[-1], rel_tol=1e-4, abs_tol=1e-5):
            hint = "this is the last batch's loss: average over the whole epoch."
        elif losses and math.isclose(value, sum(losses), rel_tol=1e-4, abs_tol=1e-5):
            hint = "this is the sum of the batch losses: divide by the number of samples (weighting each batch)."
        raise Mistake(f"{what} returns the wrong epoch loss.", got=value, expected=expected, hint=hint)


@ex3_1.test("train")
def train_one_epoch_train(train_one_epoch):
    return {
        "classify": _train_case(
            train_one_epoch, seed=311, n=10, batch_size=4, n_in=5, n_out=3, task="classify", momentum=0.0
        )
    }


@train_one_epoch_train.judge
def _(got, ref):
    _judge_train_case(got["classify"], ref["classify"], "10 samples in batches of 4, 4, 2")


@ex3_1.test("hidden")
def train_one_epoch_hidden(train_one_epoch):
    return {
        "regress": _train_case(
            train_one_epoch, seed=312, n=7, batch_size=3, n_in=4, n_out=2, task="regress", momentum=0.9, keywords=True
        ),
        "default_device": _train_case(
            train_one_epoch,
            seed=313,
            n=9,
            batch_size=5,
            n_in=3,
            n_out=4,
            task="classify",
            momentum=0.5,
            use_device=False,
        ),
    }


@train_one_epoch_hidden.judge
def _(got, ref):
    _judge_train_case(
        got["regress"], ref["regress"], "MSELoss, SGD with momentum, batches of 3, 3, 1, keyword arguments"
    )
    _judge_train_case(got["default_device"], ref["default_device"], "a CPU model, called without the device argument")


# --------------------------------------------------------------------- ex3_2 evaluate
# Misreadings considered, and the probe input that separates each:
# * no model.eval(): the model starts in train mode, has dropout and batch norm, and _Recorder logs
#   the mode (batch norm refusing a batch of one in training mode is judged the same way);
# * no torch.no_grad()/inference_mode(): _Recorder logs torch.is_grad_enabled();
# * the state changes (a step, running statistics updated): state_dict compared before and after;
# * a loss of one's own instead of `loss_fn`: _RecordingLoss logs every call;
# * plain mean of batch losses or batch accuracies: batches 4, 4, 2 / 6, 6, 1 / 2, 2, 2, 1, with
#   hints computed from the unweighted means; accuracy in percent: a hint for the factor 100;
# * batches not moved: _Unmoved tensors; `device` without default: a call without it;
#   a keyword-only style: the hidden case calls evaluate(model=, loader=, loss_fn=, device=).
ex3_2 = exercise("ex3_2_evaluate", CHAPTER)


def _eval_case(evaluate, *, seed, n, batch_size, n_in, n_classes, use_device=True, keywords=False):
    g = generator(seed)
    x = torch.randn(n, n_in, generator=g) * 2
    y = torch.randint(0, n_classes, (n,), generator=g)
    reseed(seed)
    net = nn.Sequential(nn.Linear(n_in, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.5), nn.Linear(12, n_classes))
    model = _Recorder(net)
    g_w = generator(seed + 1)  # seeded weights and running statistics
    with torch.no_grad():
        for value in net.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=g_w) * 0.5)
        bn = net[1]
        assert isinstance(bn, nn.BatchNorm1d) and bn.running_var is not None
        bn.running_var.abs_().add_(0.5)
    model.to(device)
    if not use_device:
        model.cpu()
    model.train()  # evaluate must switch to eval mode
    before = _state(model)
    loss_fn = _RecordingLoss(nn.CrossEntropyLoss())
    loader = _loader(x, y, batch_size)
    try:
        if not use_device:
            result = evaluate(model, loader, loss_fn)
        elif keywords:
            result = evaluate(model=model, loader=loader, loss_fn=loss_fn, device=device)
        else:
            result = evaluate(model, loader, loss_fn, device)
    except ValueError as e:  # batch norm refuses a batch of one in training mode: judged as "not eval()"
        if "when training" not in str(e) or not model.log or not model.log[-1]["training"]:
            raise
        result = None
    after = _state(model)
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    log = list(model.log)
    # what a plain (unweighted) average over batches would give: the judge's hints
    model.eval()
    dev = next(model.parameters()).device
    batch_loss, batch_acc = [], []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            out = net(x[i : i + batch_size].to(dev))
            t = y[i : i + batch_size].to(dev)
            batch_loss.append(float(nn.functional.cross_entropy(out, t)))
            batch_acc.append(float((out.argmax(1) == t).float().mean()))
    is_pair = isinstance(result, (tuple, list)) and len(result) == 2
    return {
        "is_pair": is_pair,
        "kind": type(result).__name__,
        "loss": _number(result[0]) if is_pair else None,
        "acc": _number(result[1]) if is_pair else None,
        "changed": changed,
        "forwards": log,
        "losses": loss_fn.log,
        "check_moved": use_device,
        "unweighted": [sum(batch_loss) / len(batch_loss), sum(batch_acc) / len(batch_acc)],
    }


def _judge_eval_case(got, ref, label):
    what = f"evaluate ({label})"
    if got["check_moved"]:
        _judge_moved(got, what)
    expect_true(len(got["forwards"]) > 0, f"{what} never called the model.")
    _judge_loss_fn_used(got, what)
    expect_true(
        not any(f["training"] for f in got["forwards"]),
        f"{what} ran the model in training mode.",
        hint="call model.eval() first: in training mode dropout drops units at random and batch norm "
        "uses (and updates) the batch statistics.",
    )
    expect_true(
        not any(f["grad_enabled"] for f in got["forwards"]),
        f"{what} tracked gradients during the forward pass.",
        hint="wrap the loop in `with torch.no_grad():` (or torch.inference_mode()): evaluation needs no "
        "autograd graph, and building one wastes memory and time.",
    )
    expect_equal(
        got["changed"],
        [],
        f"{what} changed the model's state_dict entries",
        hint="evaluation must not train: no optimizer step, no backward, and eval() mode so that batch "
        "norm's running statistics stay as they are.",
    )
    expect_true(
        got["is_pair"],
        f"{what} should return a tuple (loss, accuracy).",
        got=got["kind"],
        hint="return mean_loss, accuracy",
    )
    loss = _judge_float(got["loss"], f"the loss {what} returns")
    acc = _judge_float(got["acc"], f"the accuracy {what} returns")
    exp_loss, exp_acc = ref["loss"][1], ref["acc"][1]
    unweighted_loss, unweighted_acc = ref["unweighted"]
    if not math.isclose(loss, exp_loss, rel_tol=1e-4, abs_tol=1e-5):
        hint = "the mean loss per sample: add loss.item() * batch_size per batch, divide by the number of samples."
        if math.isclose(loss, unweighted_loss, rel_tol=1e-4, abs_tol=1e-5):
            hint = (
                "this is the plain mean of the batch losses; the smaller last batch must weigh less: "
                "add loss.item() * inputs.size(0) and divide by the number of samples."
            )
        raise Mistake(f"{what} returns the wrong mean loss.", got=loss, expected=exp_loss, hint=hint)
    if not math.isclose(acc, exp_acc, rel_tol=1e-4, abs_tol=1e-5):
        hint = (
            "accuracy = (number of samples whose highest score, outputs.argmax(dim=1), equals the target) "
            "/ (number of samples)."
        )
        if math.isclose(acc, exp_acc * 100, rel_tol=1e-4):
            hint = "accuracy is a fraction in [0, 1], not a percentage."
        elif math.isclose(acc, unweighted_acc, rel_tol=1e-4, abs_tol=1e-5):
            hint = (
                "this is the plain mean of the batch accuracies; count correct samples over the whole loader "
                "and divide by the number of samples."
            )
        raise Mistake(f"{what} returns the wrong accuracy.", got=acc, expected=exp_acc, hint=hint)


@ex3_2.test("evaluate")
def evaluate_evaluate(evaluate):
    return {"case": _eval_case(evaluate, seed=321, n=10, batch_size=4, n_in=5, n_classes=3)}


@evaluate_evaluate.judge
def _(got, ref):
    _judge_eval_case(got["case"], ref["case"], "10 samples in batches of 4, 4, 2; the model starts in train mode")


@ex3_2.test("hidden")
def evaluate_hidden(evaluate):
    return {
        "keywords": _eval_case(evaluate, seed=322, n=13, batch_size=6, n_in=4, n_classes=5, keywords=True),
        "default_device": _eval_case(evaluate, seed=323, n=7, batch_size=2, n_in=3, n_classes=2, use_device=False),
    }


@evaluate_hidden.judge
def _(got, ref):
    _judge_eval_case(got["keywords"], ref["keywords"], "batches of 6, 6, 1, keyword arguments")
    _judge_eval_case(got["default_device"], ref["default_device"], "a CPU model, called without the device argument")


# --------------------------------------------------------------------- ex3_3 fit
# Misreadings considered, and the probe input that separates each:
# * `device` not passed on: fit runs with device "cpu:0", not the stand-ins' default "cpu";
# * helpers called in another order or with other loaders: the stand-ins log every call;
# * "improved" = lower than the previous epoch: "best_not_previous" and _FIT_STOP (0.8 after 0.9);
# * a tie counts as an improvement: 0.8, 0.8 in _FIT_STOP and "plateau_then_better";
# * patience off by one (> instead of >=), counter never reset: "patience_1", "plateau_then_better";
# * best = model.state_dict() without a copy / never restored / restored only on an early stop:
#   the stand-ins write the epoch number into the weights, so the final weights name their epoch
#   ("runs_out" ends without stopping early);
# * the stand-ins take the contract's parameter names and defaults (device="cpu"), so fit may call
#   them positionally, by keyword or mixed.
ex3_3 = exercise("ex3_3_fit", CHAPTER)

# fit's device in these checks: a valid device that differs from the default "cpu", so a fit
# that forgets to pass `device` on is seen on every machine (the stand-ins compute nothing).
_FIT_DEVICE = "cpu:0"


def _fit_case(fit, val_losses, epochs, patience=_MISSING):
    """Run fit with stand-ins for train_one_epoch and evaluate (restored afterwards)."""
    n = len(val_losses)
    train_losses = [round(2.0 - 0.1 * i, 4) for i in range(n)]
    val_accs = [round(0.3 + 0.05 * i, 4) for i in range(n)]
    g = fit.__globals__
    saved = {name: g.get(name, _MISSING) for name in ("train_one_epoch", "evaluate")}
    reseed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.zeros(6, 3), torch.zeros(6, dtype=torch.long)
    train_loader, val_loader = DataLoader(TensorDataset(x, y), batch_size=2), DataLoader(TensorDataset(x, y))
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    calls = []
    state = {"epoch": 0}

    def weights_epoch():
        values = {float(v) for p in net.parameters() for v in p.detach().flatten()}
        return values.pop() if len(values) == 1 else None

    # The stand-ins take the contract's parameter names, so fit may call them positionally or by keyword.
    def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
        state["epoch"] += 1
        epoch = state["epoch"]
        calls.append(
            {
                "fn": "train",
                "epoch": epoch,
                "args": [model is net, loader is train_loader, loss_fn is criterion, optimizer is opt],
                "device": str(device),
            }
        )
        with torch.no_grad():  # "training" epoch k leaves the weights all equal to k
            for p in net.parameters():
                p.fill_(float(epoch))
        return train_losses[epoch - 1] if epoch <= n else 9.0

    def evaluate(model, loader, loss_fn, device="cpu"):
        epoch = state["epoch"]
        calls.append(
            {
                "fn": "evaluate",
                "epoch": epoch,
                "args": [model is net, loader is val_loader, loss_fn is criterion],
                "device": str(device),
                "weights": weights_epoch(),
            }
        )
        if 1 <= epoch <= n:
            return val_losses[epoch - 1], val_accs[epoch - 1]
        return 9.0, 0.0

    g["train_one_epoch"], g["evaluate"] = train_one_epoch, evaluate
    try:
        args = (net, train_loader, val_loader, criterion, opt, epochs, _FIT_DEVICE)
        history = fit(*args) if patience is _MISSING else fit(*args, patience=patience)
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                g.pop(name, None)
            else:
                g[name] = value
    data = {
        "calls": calls,
        "final_weights": weights_epoch(),
        "is_dict": isinstance(history, dict),
        "history": {},
        "val_losses": list(val_losses),
        "epochs": epochs,
        "patience": None if patience is _MISSING else patience,
    }
    if isinstance(history, dict):
        for key in ("train_loss", "val_loss", "val_acc"):
            values = history.get(key)
            if isinstance(values, (list, tuple)):
                data["history"][key] = [_number(v)[1] for v in values]
            else:
                data["history"][key] = None if values is None else type(values).__name__
    return data


def _judge_fit_case(got, ref, *, check_weights=True):
    setting = f"fit(..., epochs={ref['epochs']}, patience={ref['patience']}) with validation losses {ref['val_losses']}"
    calls = got["calls"]
    expect_true(
        any(c["fn"] == "train" for c in calls) and any(c["fn"] == "evaluate" for c in calls),
        f"{setting}: fit never called train_one_epoch and evaluate.",
        hint="fit must use the functions train_one_epoch(...) and evaluate(...) by those names "
        "(the checks replace them with stand-ins).",
    )
    for c in calls:
        if c["fn"] == "train":
            expect_true(
                all(c["args"]),
                "fit did not call train_one_epoch(model, train_loader, loss_fn, optimizer, "
                "device) with its own arguments.",
                hint="pass fit's arguments straight on.",
            )
        else:
            expect_true(
                all(c["args"]),
                "fit did not call evaluate(model, val_loader, loss_fn, device) with its own arguments.",
                hint="validate on val_loader, with the same model and loss_fn.",
            )
        name = "train_one_epoch" if c["fn"] == "train" else "evaluate"
        expect_equal(
            c["device"],
            _FIT_DEVICE,
            f"fit(..., device={_FIT_DEVICE!r}) passed another device to {name}",
            hint="pass fit's `device` on: train_one_epoch(..., device) and evaluate(..., device).",
        )
    pattern = [(c["fn"], c["epoch"]) for c in calls]
    epochs_run = sum(fn == "train" for fn, _ in pattern)
    expect_equal(
        pattern,
        [(fn, epoch) for epoch in range(1, epochs_run + 1) for fn in ("train", "evaluate")],
        "fit should call train_one_epoch once and then evaluate once per epoch; its calls (function, epoch) were",
        hint="in each epoch: train_one_epoch(...), then evaluate(...).",
    )
    expected_run = sum(c["fn"] == "train" for c in ref["calls"])
    if epochs_run != expected_run:
        raise Mistake(
            f"{setting}: fit ran the wrong number of epochs.",
            got=epochs_run,
            expected=expected_run,
            hint=(
                "with patience=k, stop once k epochs in a row bring no val_loss strictly lower than "
                "the best so far (compare with the best, not the previous epoch; a tie is no "
                "improvement); with patience=None run all epochs."
            ),
        )
    expect_true(got["is_dict"], "fit should return a dict (the history).")
    for key in ("train_loss", "val_loss", "val_acc"):
        expect_equal(
            got["history"].get(key),
            ref["history"][key],
            f"{setting}: history['{key}'] is wrong",
            hint="one entry per epoch run, appended after that epoch's train_one_epoch and evaluate: "
            "history['train_loss'], history['val_loss'], history['val_acc'].",
        )
    if check_weights:
        best = ref["final_weights"]
        if got["final_weights"] != best:
            hint = (
                "keep a copy of the weights whenever val_loss improves, and load it at the end, also when "
                "training ran every epoch: best_state = copy.deepcopy(model.state_dict()) ... "
                "model.load_state_dict(best_state)."
            )
            if got["final_weights"] == float(epochs_run):
                hint = (
                    "the model ends with the last epoch's weights. Load the best epoch's weights at the end; "
                    "and note that best = model.state_dict() is no copy: that dict holds the live tensors, "
                    "which later epochs overwrite. Keep copy.deepcopy(model.state_dict()) (or clone each "
                    "tensor) and model.load_state_dict(...) it when fit ends."
                )
            shown = got["final_weights"]
            raise Mistake(
                f"{setting}: after fit the model should hold the weights of the best epoch.",
                got=f"weights of epoch {shown:.0f}" if shown is not None else "weights of no epoch",
                expected=f"weights of epoch {best:.0f}",
                hint=hint,
            )


_FIT_HISTORY = [0.9, 0.7, 0.8, 0.75]
_FIT_STOP = [1.0, 0.8, 0.8, 0.9, 0.7, 0.6, 0.5, 0.4]
_FIT_HIDDEN = {
    # name: (val_losses, epochs, patience)
    "plateau_then_better": ([1.0, 0.8, 0.85, 0.8, 0.6, 0.65, 0.61, 0.6, 0.5, 0.4], 10, 3),
    "best_not_previous": ([1.0, 0.5, 0.7, 0.6, 0.55, 0.52, 0.51], 7, 2),
    "patience_1": ([0.5, 0.6, 0.4, 0.3], 4, 1),
    "runs_out": ([0.5, 0.4, 0.45, 0.3, 0.35, 0.36], 6, 5),
    "no_patience_worse": ([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 6, None),
    "one_epoch": ([0.5], 1, _MISSING),
}


@ex3_3.test("history")
def fit_history(fit):
    return {"case": _fit_case(fit, _FIT_HISTORY, epochs=4)}


@fit_history.judge
def _(got, ref):
    _judge_fit_case(got["case"], ref["case"], check_weights=False)


@ex3_3.test("early_stopping")
def fit_early_stopping(fit):
    return {"case": _fit_case(fit, _FIT_STOP, epochs=8, patience=2)}


@fit_early_stopping.judge
def _(got, ref):
    _judge_fit_case(got["case"], ref["case"])


@ex3_3.test("hidden")
def fit_hidden(fit):
    return {name: _fit_case(fit, losses, epochs, patience) for name, (losses, epochs, patience) in _FIT_HIDDEN.items()}


@fit_hidden.judge
def _(got, ref):
    for name, (_, _, patience) in _FIT_HIDDEN.items():
        # with patience=None the contract leaves the final weights free
        _judge_fit_case(got[name], ref[name], check_weights=patience not in (None, _MISSING))


# --------------------------------------------------------------------- ex3_4 adder
# Misreadings considered, and the probe input that separates each:
# * a target of shape (N,) against outputs (N, 1) (MSELoss broadcasts, the model learns the mean):
#   the error on 1,000 fresh pairs, computed here from the exported predictions;
# * an output of shape (N,): fresh AdderNet() outputs for (1, 2) and (7, 2) inputs, and (1000, 1);
# * not seeded from `seed`: train_adder(seed=7) and train_adder(7) must give equal predictions
#   (positional and keyword calls of the learner's function, as the contract allows);
# * too little training: the same error bound.
ex3_4 = exercise("ex3_4_adder", CHAPTER, time_limit=60)
_ADDER_MSE = 0.01


def _model_device(model):
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _adder_pairs():
    """1,000 fresh pairs uniform in [-10, 10], the same in the sandbox and in the judge."""
    return torch.rand(1000, 2, generator=generator(3400)) * 20 - 10


def _adder_outputs(model):
    """The model's predictions on the fresh pairs (eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(_adder_pairs().to(_model_device(model)))
    model.train(was_training)
    return out.detach().float().cpu()


def _judge_adder_model(got, label):
    # the error is computed here, from the exported predictions: a number computed inside the
    # sandbox could be forged
    expect_true(
        got["is_adder"],
        f"{label} is not an AdderNet.",
        got=got["kind"],
        hint="train_adder should build AdderNet(), train it and return it.",
    )
    out = got["outputs"]
    expect_equal(
        list(out.shape),
        [1000, 1],
        f"the output shape of {label} for an input of shape (1000, 2)",
        hint="end with nn.Linear(..., 1): one output column per pair.",
    )
    mse = float(((out.reshape(-1).double() - _adder_pairs().sum(dim=1).double()) ** 2).mean())
    expect_true(
        mse < _ADDER_MSE,
        f"{label}: the mean squared error on 1,000 fresh pairs should be below {_ADDER_MSE}.",
        got=mse,
        expected=f"< {_ADDER_MSE}",
        hint=(
            "train longer or with a larger learning rate (Adam, lr around 0.01, a few hundred steps), and "
            "make the target shape (N, 1) like the output: nn.MSELoss broadcasts a target of shape (N,) "
            "against (N, 1) and the model then learns to predict the mean."
        ),
    )
    return f"{label}: MSE on fresh pairs {mse:.2e}"


def _adder_summary(model, AdderNet):
    return {"is_adder": isinstance(model, AdderNet), "kind": type(model).__name__, "outputs": _adder_outputs(model)}


@ex3_4.test("adder", reference=False)
def adder_adder(AdderNet, train_adder):
    fresh = AdderNet()
    shapes = []
    for n in (1, 7):
        with torch.no_grad():
            shapes.append(list(fresh(torch.rand(n, 2, generator=generator(3401)) * 20 - 10).shape))
    data = {"is_module": isinstance(fresh, nn.Module), "fresh_shapes": shapes}
    data["trained"] = _adder_summary(train_adder(), AdderNet)
    return data


@adder_adder.judge
def _(got, ref):
    expect_true(got["is_module"], "AdderNet() is not an nn.Module.", hint="class AdderNet(nn.Module): ...")
    expect_equal(
        got["fresh_shapes"],
        [[1, 1], [7, 1]],
        "AdderNet()'s output shapes for inputs (1, 2) and (7, 2)",
        hint="input (N, 2) → output (N, 1).",
    )
    return _judge_adder_model(got["trained"], "train_adder()")


@ex3_4.test("hidden", reference=False)
def adder_hidden(AdderNet, train_adder):
    first, second = train_adder(seed=7), train_adder(7)
    return {"seeded": _adder_summary(first, AdderNet), "again": _adder_outputs(second)}


@adder_hidden.judge
def _(got, ref):
    note = _judge_adder_model(got["seeded"], "train_adder(seed=7)")
    same = got["again"].shape == got["seeded"]["outputs"].shape and torch.equal(got["again"], got["seeded"]["outputs"])
    expect_true(
        same,
        "train_adder(seed=7) called twice gave two different models.",
        hint="seed every random choice from `seed`: torch.manual_seed(seed) at the start of train_adder, "
        "before AdderNet() is built and the data drawn (or a torch.Generator seeded with it).",
    )
    return note


# --------------------------------------------------------------------- ex3_5 digits
# Misreadings considered, and the probe input that separates each:
# * an untrained or weak model: accuracy on the held-out test split (full marks at 95 %, half at 90 %);
# * class indices instead of scores, or something that is no module: the (N, 10) shape check;
# * a model left in training mode: the grader switches it to eval() itself (the contract says so).
ex3_5 = exercise("ex3_5_digits_classifier", CHAPTER, time_limit=120)
_DIGITS_FULL, _DIGITS_HALF = 0.95, 0.90


def _digits_scores(model, split):
    from ..data import load_digits

    x, _ = load_digits(split)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x.to(_model_device(model)))
    finally:
        model.train(was_training)
    return out


def _digits_labels(split):
    from ..data import load_digits

    return load_digits(split)[1]


def _judge_scores(scores, n, what):
    expect_true(isinstance(scores, torch.Tensor), f"digits_model({what}) did not return a tensor.")
    expect_equal(
        list(scores.shape),
        [n, 10],
        f"the shape of digits_model's output for {what}",
        hint="digits_model maps (N, 64) inputs to (N, 10) scores, one per digit (no argmax inside).",
    )
    expect_true(bool(torch.isfinite(scores).all()), f"digits_model's scores for {what} contain inf or nan.")


@ex3_5.test("interface", reference=False)
def digits_interface(digits_model):
    if not isinstance(digits_model, nn.Module):
        return {"is_module": False, "kind": type(digits_model).__name__}
    scores = _digits_scores(digits_model, "train")
    return {"is_module": True, "scores": scores.float() if scores.is_floating_point() else scores}


@digits_interface.judge
def _(got, ref):
    expect_true(
        got["is_module"],
        "digits_model should be an nn.Module.",
        got=got.get("kind"),
        hint="leave the trained model itself in the variable digits_model.",
    )
    y = _digits_labels("train")
    _judge_scores(got["scores"], len(y), "the training inputs")
    acc = (got["scores"].argmax(dim=1) == y).float().mean().item()
    return (
        f"accuracy on the training split {acc:.1%} (the grade uses the held-out test split: "
        f"{_DIGITS_FULL:.0%} for full marks)"
    )


@ex3_5.test("accuracy", reference=False)
def digits_accuracy(digits_model):
    if not isinstance(digits_model, nn.Module):
        return {"is_module": False, "kind": type(digits_model).__name__}
    scores = _digits_scores(digits_model, "test")
    return {"is_module": True, "scores": scores.float() if scores.is_floating_point() else scores}


@digits_accuracy.judge
def _(got, ref):
    expect_true(got["is_module"], "digits_model should be an nn.Module.", got=got.get("kind"))
    y = _digits_labels("test")
    _judge_scores(got["scores"], len(y), "the test inputs")
    acc = (got["scores"].argmax(dim=1) == y).float().mean().item()
    hint = (
        "train longer or with a better learning rate, hold out part of X_train to watch validation accuracy, "
        "and make sure the model you leave in digits_model is the trained one."
    )
    if acc < _DIGITS_HALF:
        raise Mistake(
            f"digits_model's accuracy on the test split is {acc:.1%}: "
            f"{_DIGITS_FULL:.0%} earns full marks, {_DIGITS_HALF:.0%} half.",
            hint=hint,
        )
    if acc < _DIGITS_FULL:
        raise Mistake(
            f"digits_model's accuracy on the test split is {acc:.1%}: half marks "
            f"({_DIGITS_FULL:.0%} earns full marks).",
            hint=hint,
            credit=0.5,
        )
    return f"accuracy on the test split {acc:.1%}"


# --------------------------------------------------------------------- ex3_6 checkpoint
# Misreadings considered, and the probe input that separates each:
# * optimizer state not saved/restored: SGD momentum and Adam, then 4 more steps compared with an
#   uninterrupted run;
# * no map_location: a checkpoint whose storages say 'cuda:9' (_ForeignGPU);
# * `path` assumed to be a str: a pathlib.Path in the hidden case;
# * the epoch returned +1 or as a tensor: compared as a Python int;
# * a new local model loaded instead of the one passed in: the caller's model is compared;
# * the whole model pickled (torch.save(model)): torch.load's weights_only default refuses it.
# the contract is about files: this answer may save, load and open them (inside the sandbox)
ex3_6 = exercise("ex3_6_checkpoint", CHAPTER, allow=("torch.save", "torch.load", "open", "pathlib", "io"))


class _ForeignGPU:
    """While active, torch.save tags every storage as living on 'cuda:9': a checkpoint written on
    someone else's GPU, which loads here only with torch.load(..., map_location=...)."""

    def __enter__(self):
        self.entry = (-1000, lambda storage: "cuda:9", lambda storage, location: None)
        torch.serialization._package_registry.insert(0, self.entry)

    def __exit__(self, *exc):
        torch.serialization._package_registry.remove(self.entry)


def _ckpt_model(seed):
    reseed(seed)
    return load_seeded(nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)), seed)


def _ckpt_steps(model, optimizer, x, y, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def _ckpt_case(save_checkpoint, load_checkpoint, *, optim, path_kind, epoch, foreign_gpu=False):
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), "adam": lambda p: torch.optim.Adam(p, lr=0.02)}[
        optim
    ]
    g = generator(360 + epoch)
    x = torch.randn(16, 3, generator=g).to(device)
    y = torch.randn(16, 2, generator=g).to(device)
    data = {}
    with tempfile.TemporaryDirectory() as tmp:
        path: str | Path
        if path_kind == "str":
            path = os.path.join(tmp, "checkpoint.pt")
        else:
            path = Path(tmp) / "runs" / "ckpt.pth"
            path.parent.mkdir()
        model = _ckpt_model(361)
        optimizer = make(model.parameters())
        _ckpt_steps(model, optimizer, x, y, 3)
        saved = _state(model)
        if foreign_gpu:
            with _ForeignGPU():
                save_checkpoint(path, model, optimizer, epoch)
        else:
            save_checkpoint(path, model, optimizer, epoch)
        _ckpt_steps(model, optimizer, x, y, 4)  # the uninterrupted run
        resumed = _ckpt_model(362)  # another run, fresh optimizer
        resumed_optimizer = make(resumed.parameters())
        try:
            returned = load_checkpoint(path, resumed, resumed_optimizer)
        except RuntimeError as e:
            if foreign_gpu and "deserialize" in str(e):
                return {"load_error": str(e).split(". ")[0]}
            raise
        data["epoch"] = _number(returned)
        after_load = _state(resumed)
        data["weights_restored"] = all(torch.equal(saved[k], after_load[k]) for k in saved)
        data["has_state"] = len(resumed_optimizer.state) > 0
        _ckpt_steps(resumed, resumed_optimizer, x, y, 4)
        data["max_difference"] = max(
            float((a - b).abs().max()) for a, b in zip(model.state_dict().values(), resumed.state_dict().values())
        )
    return data


def _judge_ckpt_case(got, ref, label):
    what = f"save_checkpoint / load_checkpoint ({label})"
    if "load_error" in got:
        raise Mistake(
            f"{what}: a checkpoint saved on a GPU could not be loaded here ({got['load_error']}).",
            hint="torch.load(path, map_location=device) (or map_location='cpu') puts every tensor on a "
            "device this machine has.",
        )
    expect_true(
        got["weights_restored"],
        f"{what}: after load_checkpoint the model's weights are not those that were saved.",
        hint="save model.state_dict() and call model.load_state_dict(...) on the "
        "model passed to load_checkpoint (assigning a new model to the local name changes nothing "
        "for the caller).",
    )
    kind, value = got["epoch"]
    expect_true(kind == "int", "load_checkpoint should return the saved epoch as a Python int.", got=kind)
    expect_equal(
        int(value),
        int(ref["epoch"][1]),
        f"{what}: the epoch load_checkpoint returns",
        hint="store the epoch in the checkpoint and return checkpoint['epoch'].",
    )
    expect_true(
        got["max_difference"] <= 1e-6,
        f"{what}: training resumed from the checkpoint differs from uninterrupted training "
        f"(largest parameter difference {got['max_difference']:.3g} after 4 more steps).",
        hint="the optimizer has state too (momentum buffers, Adam's moments and step counts): save "
        "optimizer.state_dict() and call optimizer.load_state_dict(...) on the optimizer passed in.",
    )


@ex3_6.test("resume")
def checkpoint_resume(save_checkpoint, load_checkpoint):
    return {"case": _ckpt_case(save_checkpoint, load_checkpoint, optim="sgd", path_kind="str", epoch=5)}


@checkpoint_resume.judge
def _(got, ref):
    _judge_ckpt_case(got["case"], ref["case"], "SGD with momentum, path given as a str")


@ex3_6.test("hidden")
def checkpoint_hidden(save_checkpoint, load_checkpoint):
    return {
        "adam_path": _ckpt_case(save_checkpoint, load_checkpoint, optim="adam", path_kind="Path", epoch=12),
        "from_gpu": _ckpt_case(
            save_checkpoint, load_checkpoint, optim="sgd", path_kind="str", epoch=3, foreign_gpu=True
        ),
    }


@checkpoint_hidden.judge
def _(got, ref):
    _judge_ckpt_case(got["adam_path"], ref["adam_path"], "Adam, path given as a pathlib.Path")
    _judge_ckpt_case(got["from_gpu"], ref["from_gpu"], "a checkpoint saved on a GPU, loaded here")


# --------------------------------------------------------------------- ex3_7 momentum_sgd
# The probes run the learner's optimizer and torch.optim.SGD (momentum, dampening 0, no Nesterov)
# side by side on two copies of the same seeded network, and the judge compares the learner's run
# with the stock optimizer's run made by the reference probe in the grader.
# Misreadings considered, and the probe input that separates each from the contract:
# * weight decay added to the update after momentum (p -= lr * (buf + wd * p)) instead of to the
#   gradient before it enters the buffer: the first step is the same either way, so "steps" and the
#   "hidden" groups and closure cases take at least 3 steps with weight_decay > 0;
# * momentum as an average, buf = m * buf + (1 - m) * grad, or a zero buffer used before it is
#   updated: both differ from SGD at the first step (a zero buffer updated first, then used, is the
#   same as SGD's copy of the gradient when dampening is 0: a correct style, not a misreading);
# * one lr (or momentum, weight_decay) for every group, read from __init__'s arguments or
#   self.defaults: "steps" has a second group with its own lr, "hidden" groups with their own
#   momentum and weight_decay, and one added by add_param_group that must take self.defaults;
# * the buffers kept in a dict of one's own (self.momentum_buffers[p]) instead of self.state[p]: the buffers
#   are read from optimizer.state[p]["momentum_buffer"], and "hidden" resumes a fresh optimizer
#   (built with another lr) from a state_dict() and compares 3 more steps;
# * a parameter whose .grad is None treated as a zero gradient (weight decay and old momentum still
#   move it) or crashing: "hidden" has a parameter that never gets a gradient, in a group with weight
#   decay, and one whose gradient is None (set_to_none) after two steps with momentum;
# * weight decay added into p.grad in place (p.grad.add_): the update is right, but the caller's
#   gradient changes; every parameter's .grad is compared after every step;
# * the update recorded by autograd (no @torch.no_grad(); `.data` to dodge the in-place error): the
#   buffers then require grad and carry a graph; checked after every step;
# * the closure evaluated under no_grad (its backward() fails) or not at all, or its loss not
#   returned; step() without a closure not returning None: the "hidden" closure case;
# * momentum / weight_decay defaults other than 0.9 / 0.0: the resume case builds the optimizer
#   with lr alone.
ex3_7 = exercise("ex3_7_momentum_sgd", CHAPTER)


def _opt_net(seed):
    reseed(seed)
    return load_seeded(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), seed)


def _opt_data(seed, n=6):
    g = generator(seed)
    return torch.randn(n, 3, generator=g).to(device), torch.randn(n, 2, generator=g).to(device)


def _opt_param(seed, *shape):
    return nn.Parameter((torch.randn(*shape, generator=generator(seed)) * 0.5).to(device))


def _opt_snapshot(optimizer, named):
    """Parameters and momentum buffers by name, and whether anything carries an autograd graph."""
    params: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor | None] = {}
    buffers: dict[str, torch.Tensor | None] = {}
    graph: list[str] = []
    for name, p in named.items():
        params[name] = p.detach().clone()
        grads[name] = p.grad.detach().clone() if isinstance(p.grad, torch.Tensor) else None
        if not p.is_leaf or p.grad_fn is not None:
            graph.append(f"parameter '{name}' is no longer a leaf (it has a grad_fn)")
        state = optimizer.state.get(p, {}) if isinstance(optimizer.state, dict) else {}
        buf = state.get("momentum_buffer") if isinstance(state, dict) else None
        if isinstance(buf, torch.Tensor):
            buffers[name] = buf.detach().clone()
            if buf.requires_grad:
                graph.append(f"the momentum buffer of '{name}' requires grad (grad_fn {type(buf.grad_fn).__name__})")
        else:
            buffers[name] = None
    return {"params": params, "grads": grads, "buffers": buffers, "graph": graph}


def _opt_run(make, *, net_seed, data_seed, steps, uses_extra, extra=False, unused=False):
    """Build a network (and the extra parameters), an optimizer with ``make`` and take ``steps``
    steps; ``uses_extra[i]`` says whether step i's loss uses the extra parameter."""
    net = _opt_net(net_seed)
    named = {f"net.{k}": p for k, p in net.named_parameters()}
    more = {}
    if extra:
        more["extra"] = _opt_param(net_seed + 1, 2)
    if unused:
        more["unused"] = _opt_param(net_seed + 2, 3)
    named.update(more)
    x, y = _opt_data(data_seed)
    optimizer = make(net, more)
    record = []
    for i in range(steps):
        optimizer.zero_grad()  # set_to_none: a parameter the loss does not use has .grad None
        out = net(x) + more["extra"] if extra and uses_extra[i] else net(x)
        nn.functional.mse_loss(out, y).backward()
        returned = optimizer.step()
        snap = _opt_snapshot(optimizer, named)
        snap["returned_none"] = returned is None
        record.append(snap)
    return {"steps": record}


def _opt_guarded(run):
    try:
        return run()
    except Exception as e:  # a crash in one case gets its own message, the other cases still count
        return {"error": f"{type(e).__name__}: {e}"[:300]}


def _steps_probe(make):
    def groups(net, more):
        return make(
            [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.03}], lr=0.1, weight_decay=0.05
        )

    return _opt_run(groups, net_seed=371, data_seed=372, steps=3, uses_extra=[])


def _sgd(params, **settings):
    """torch.optim.SGD with MomentumSGD's signature and defaults (momentum 0.9)."""
    settings.setdefault("momentum", 0.9)
    return torch.optim.SGD(params, **settings)


@ex3_7.test("steps")
def momentum_sgd_steps(MomentumSGD):
    return {
        "yours": _opt_guarded(lambda: _steps_probe(MomentumSGD)),
        "sgd": _steps_probe(_sgd),
    }


_STEP1_HINT = (
    "the first step: the buffer starts as a copy of d_p = grad + weight_decay * p, so the first update is "
    "p -= lr * d_p (PyTorch's momentum is a running sum, not an average: no (1 - momentum) factor), and "
    "the buffer is updated before it is used."
)
_LATER_HINT = (
    "from the second step on: buf = momentum * buf + d_p, where d_p = grad + weight_decay * p already holds "
    "the weight decay (add it to the gradient before it enters the buffer, not to the update afterwards); "
    "then p -= lr * buf. Keep each buffer from one step to the next in self.state[p]."
)
_GROUP_HINT = (
    "every group has its own settings: loop over self.param_groups and read group['lr'], group['momentum'] "
    "and group['weight_decay'] inside the loop, not the values given to __init__ (they are only the defaults)."
)
_STATE_HINT = (
    "keep each parameter's buffer in self.state[p]['momentum_buffer']: self.state is what "
    "Optimizer.state_dict() saves and load_state_dict() restores; a dict of your own is lost."
)
_NONE_HINT = (
    "skip a parameter whose .grad is None (`if p.grad is None: continue`): it took no part in this loss, "
    "so neither weight decay nor old momentum may move it, as torch.optim.SGD does."
)


def _judge_opt_error(got, what):
    if "error" not in got:
        return
    error = got["error"]
    hint = "run your optimizer in a small loop of your own and read the traceback."
    if "NoneType" in error:
        hint = _NONE_HINT
    elif "does not require grad" in error:
        hint = (
            "step() runs under @torch.no_grad(), so call the closure inside `with torch.enable_grad():` "
            "(its loss.backward() needs a graph)."
        )
    elif "leaf Variable" in error or "in-place" in error:
        hint = "decorate step with @torch.no_grad(): updating a parameter in place must not be recorded by autograd."
    elif "KeyError" in error:
        hint = (
            "pass every setting to super().__init__(params, defaults) with defaults = {'lr': lr, "
            "'momentum': momentum, 'weight_decay': weight_decay}: each group then carries all three."
        )
    raise Mistake(f"{what}: your optimizer raised an exception: {error}", hint=hint)


def _close(a, b):
    return a is not None and b is not None and torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-4)


def _judge_opt_steps(got, ref, what, group_of, none_steps=()):
    """Compare the learner's run with SGD's, step by step. ``group_of`` describes a parameter's
    group (the first group's description starts with "the first"); ``none_steps`` lists the
    (step, name) pairs where that parameter had no gradient."""
    _judge_opt_error(got, what)
    expect_equal(len(got["steps"]), len(ref["steps"]), f"{what}: the number of steps taken")
    for i, (g_step, r_step) in enumerate(zip(got["steps"], ref["steps"])):
        expect_true(
            not g_step["graph"],
            f"{what}, after step {i + 1}: the update was recorded by autograd: {'; '.join(g_step['graph'][:2])}.",
            hint="decorate step with @torch.no_grad() (and drop any .data): the buffers must hold plain numbers, "
            "not a graph that grows with every step.",
        )
        first_ok = all(
            _close(g_step["params"].get(name), r_param)
            for name, r_param in r_step["params"].items()
            if group_of(name).startswith("the first")
        )
        for name, r_param in r_step["params"].items():
            g_param = g_step["params"].get(name)
            if _close(g_param, r_param):
                continue
            group = group_of(name)
            if (i + 1, name) in none_steps or name == "unused":
                hint = _NONE_HINT
            elif first_ok and "add_param_group" in group:
                hint = (
                    "add_param_group fills a new group's missing settings from self.defaults: pass "
                    "defaults = {'lr': lr, 'momentum': momentum, 'weight_decay': weight_decay} to "
                    "super().__init__ and read them from the group."
                )
            elif first_ok and not group.startswith("the first"):
                hint = _GROUP_HINT
            elif i == 0:
                hint = _STEP1_HINT
            else:
                hint = _LATER_HINT
            expect_close(g_param, r_param, f"{what}: '{name}' ({group}) after step {i + 1}", hint)
        for name, r_grad in r_step["grads"].items():
            expect_close(
                g_step["grads"].get(name),
                r_grad,
                f"{what}: '{name}'.grad after step {i + 1}",
                hint="step() must leave p.grad as backward() left it (a caller may clip, log or accumulate it): "
                "p.grad.add(p, alpha=weight_decay) makes a new tensor, p.grad.add_(...) would change the gradient.",
            )
        for name, r_buf in r_step["buffers"].items():
            g_buf = g_step["buffers"].get(name)
            if r_buf is not None and g_buf is None:
                raise Mistake(
                    f"{what}: after step {i + 1}, optimizer.state[p] holds no 'momentum_buffer' tensor for '{name}'.",
                    hint=_STATE_HINT,
                )
            expect_close(g_buf, r_buf, f"{what}: the momentum buffer of '{name}' after step {i + 1}", _LATER_HINT)


def _steps_group(name):
    return "the first group, lr=0.1" if name.startswith("net.0.") else "the second group, lr=0.03"


@momentum_sgd_steps.judge
def _(got, ref):
    _judge_opt_steps(
        got["yours"],
        ref["sgd"],
        "MomentumSGD with two groups (lr 0.1 and 0.03), momentum 0.9, weight_decay 0.05",
        _steps_group,
    )


def _groups_probe(make):
    def build(net, more):
        optimizer = make(
            params=[
                {"params": net[0].parameters()},
                {"params": [*net[2].parameters(), more["unused"]], "lr": 0.2, "momentum": 0.5, "weight_decay": 0.1},
            ],
            lr=0.05,
            momentum=0.8,
            weight_decay=0.0,
        )
        optimizer.add_param_group({"params": [more["extra"]]})
        return optimizer

    return _opt_run(
        build, net_seed=381, data_seed=382, steps=4, uses_extra=[True, True, False, True], extra=True, unused=True
    )


def _groups_group(name):
    if name.startswith("net.0."):
        return "the first group: lr 0.05, momentum 0.8, weight_decay 0"
    if name == "extra":
        return "the group added by add_param_group, with the defaults lr 0.05, momentum 0.8, weight_decay 0"
    return "the second group: lr 0.2, momentum 0.5, weight_decay 0.1"


def _opt_train(net, optimizer, x, y, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()


def _resume_probe(make):
    net = _opt_net(391)
    x, y = _opt_data(392)
    optimizer = make(net.parameters(), lr=0.1)  # the defaults: momentum 0.9, weight_decay 0
    named = {f"net.{k}": p for k, p in net.named_parameters()}
    steps = []
    for _ in range(2):
        _opt_train(net, optimizer, x, y, 1)
        steps.append(_opt_snapshot(optimizer, named))
    saved = copy.deepcopy(optimizer.state_dict())
    other = _opt_net(393)
    other.load_state_dict(_state(net))
    resumed = make(other.parameters(), lr=0.7)  # load_state_dict brings back lr=0.1 and the buffers
    resumed.load_state_dict(saved)
    _opt_train(net, optimizer, x, y, 3)
    _opt_train(other, resumed, x, y, 3)
    return {
        "steps": steps,
        "uninterrupted": {f"net.{k}": v.detach().clone() for k, v in net.named_parameters()},
        "resumed": {f"net.{k}": v.detach().clone() for k, v in other.named_parameters()},
    }


def _closure_probe(make):
    net = _opt_net(401)
    x, y = _opt_data(402)
    optimizer = make(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        return loss

    first = optimizer.step(closure)
    second = optimizer.step(closure=closure)
    optimizer.zero_grad()
    nn.functional.mse_loss(net(x), y).backward()
    third = optimizer.step()
    named = {f"net.{k}": p for k, p in net.named_parameters()}
    return {
        "calls": len(calls),
        "returned": [_number(first), _number(second)],
        "third_none": third is None,
        "final": _opt_snapshot(optimizer, named),
    }


def _hidden_probe(make, guard):
    return {
        "groups": guard(lambda: _groups_probe(make)),
        "resume": guard(lambda: _resume_probe(make)),
        "closure": guard(lambda: _closure_probe(make)),
    }


@ex3_7.test("hidden")
def momentum_sgd_hidden(MomentumSGD):
    return {"yours": _hidden_probe(MomentumSGD, _opt_guarded), "sgd": _hidden_probe(_sgd, lambda run: run())}


def _all_net(name):
    return "the first and only group"


@momentum_sgd_hidden.judge
def _(got, ref):
    yours, sgd = got["yours"], ref["sgd"]
    _judge_opt_steps(
        yours["groups"],
        sgd["groups"],
        "MomentumSGD with per-group lr, momentum and weight_decay, a group added by add_param_group, "
        "and parameters whose .grad is None",
        _groups_group,
        none_steps=((3, "extra"),),
    )

    what = "MomentumSGD(params, lr=0.1) resumed from its state_dict()"
    case = yours["resume"]
    _judge_opt_error(case, what)
    for i, (g_step, r_step) in enumerate(zip(case["steps"], sgd["resume"]["steps"])):
        for name, r_param in r_step["params"].items():
            expect_close(
                g_step["params"].get(name),
                r_param,
                f"{what}: '{name}' after step {i + 1}",
                hint="the defaults are momentum=0.9 and weight_decay=0.0: MomentumSGD(params, lr) must behave as "
                "torch.optim.SGD(params, lr, momentum=0.9).",
            )
    for name, r_param in sgd["resume"]["uninterrupted"].items():
        expect_close(case["uninterrupted"].get(name), r_param, f"{what}: '{name}' after 5 steps", _LATER_HINT)
    for name, r_param in sgd["resume"]["uninterrupted"].items():
        expect_close(
            case["resumed"].get(name),
            r_param,
            f"{what}: '{name}' after 2 steps, load_state_dict() into a new optimizer, and 3 more steps",
            hint=_STATE_HINT + " The resumed optimizer was built with lr=0.7; load_state_dict() brings back "
            "the saved groups, so read group['lr'] at every step.",
        )

    what = "MomentumSGD.step(closure)"
    case = yours["closure"]
    _judge_opt_error(case, what)
    expect_equal(
        case["calls"],
        2,
        f"{what}: the number of times two steps with a closure called it",
        hint="call the closure exactly once per step, before the update, and only when one is given.",
    )
    for i, ((g_kind, g_value), (_, r_value)) in enumerate(zip(case["returned"], sgd["closure"]["returned"])):
        expect_true(
            g_value is not None and math.isclose(g_value, r_value, rel_tol=1e-4, abs_tol=1e-6),
            f"{what}: step {i + 1} should return the loss the closure returned.",
            got=f"{g_kind} {g_value}",
            expected=r_value,
            hint="loss = None; if closure is not None: with torch.enable_grad(): loss = closure(); ...; return loss.",
        )
    expect_true(case["third_none"], "MomentumSGD.step() without a closure should return None.")
    _judge_opt_steps(
        {"steps": [case["final"]]},
        {"steps": [sgd["closure"]["final"]]},
        what + " (two steps, then one without)",
        _all_net,
    )
