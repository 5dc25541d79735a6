"""Chapter 5 — nn.functional vs nn.Xxx: the checks behind ex5_1 … ex5_4."""

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .. import properties
from ..expect import expect_close, expect_equal, expect_true
from ..probing import device, generator, linears, load_seeded, load_seeded_linears, output_and_grads, randn, reseed
from ..registry import Mistake, exercise

CHAPTER = "05_functional_vs_modules"


def _param_info(model: nn.Module) -> dict:
    """What a learner's module owns, described in plain data."""
    return {
        "is_module": isinstance(model, nn.Module),
        "param_shapes": {n: list(p.shape) for n, p in model.named_parameters()},
        "children": [n for n, _ in model.named_children()],
        "plain_tensors": sorted(
            k for k, v in vars(model).items() if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter)
        ),
    }


# ===================================================================== ex5_1
# Misreadings considered, and the probe input that separates each:
# * plain tensors (requires_grad) instead of nn.Parameter: _param_info lists plain tensor attributes;
# * nn.Linear / nn.ReLU submodules: named_children must be empty (structure test);
# * w1 shaped (input, hidden) and used as x @ w1, or biases shaped (hidden, 1): the shape checks;
# * no ReLU, a ReLU after the output too, a missing bias: a SimpleNN's seeded weights (non-zero
#   biases) copied in and outputs/gradients compared, on sizes where hidden ≠ input ≠ output;
# * dropout or another mode-dependent step: the output is also compared in eval() mode.
ex5_1 = exercise("ex5_1_functional_nn", CHAPTER)
_NAMES_5_1 = ["b1", "b2", "w1", "w2"]
_HINT_5_1 = (
    "in __init__: self.w1 = nn.Parameter(torch.randn(hidden_size, input_size)), "
    "self.b1 = nn.Parameter(torch.zeros(hidden_size)), and the same for w2 (output, hidden) and b2."
)
_FWD_5_1 = "forward should be F.linear(F.relu(F.linear(x, self.w1, self.b1)), self.w2, self.b2)."


class _SimpleNN(nn.Module):
    """Stand-in for chapter 1's SimpleNN: fc1 -> ReLU -> fc2."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _functional_probe(FunctionalNN, sizes, seed, batches=()):
    model = FunctionalNN(*sizes)
    data = _param_info(model)
    data["expected_shapes"] = {
        "w1": [sizes[1], sizes[0]],
        "b1": [sizes[1]],
        "w2": [sizes[2], sizes[1]],
        "b2": [sizes[2]],
    }
    if not batches or data["param_shapes"] != data["expected_shapes"]:
        return data
    # copy a SimpleNN's weights in (w1 <- fc1.weight, ...), then compare outputs and gradients
    simple = load_seeded(_SimpleNN(*sizes), seed)
    model.to(device)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for mine, theirs in [("w1", "fc1.weight"), ("b1", "fc1.bias"), ("w2", "fc2.weight"), ("b2", "fc2.bias")]:
            params[mine].copy_(simple.get_parameter(theirs))
    for i, n in enumerate(batches):
        x = randn(n, sizes[0], seed=seed + 1 + i, scale=2.0)
        data[f"batch{n}"] = output_and_grads(model, x)
    model.eval()
    data["eval_output"] = model(randn(3, sizes[0], seed=seed + 7, scale=2.0)).detach()
    return data


def _judge_functional_structure(got, ref, children=True):
    """``children=False``: the forward tests ask only for what copying the weights in needs."""
    expect_true(
        got["is_module"],
        "the class does not create an nn.Module.",
        hint="write `class FunctionalNN(nn.Module)` and call super().__init__() first in __init__.",
    )
    if got["plain_tensors"]:
        raise Mistake(
            f"{', '.join(got['plain_tensors'])} are plain tensors, not nn.Parameter: "
            "the module does not own them, so parameters(), state_dict() and the optimizer never see them.",
            got=sorted(got["param_shapes"]),
            expected=_NAMES_5_1,
            hint="wrap each tensor: self.w1 = nn.Parameter(torch.randn(hidden_size, input_size)).",
        )
    expect_true(
        not children or not got["children"],
        f"FunctionalNN should hold its weights itself and have no submodules, but it has {got['children']}.",
        hint="no nn.Linear / nn.ReLU here: keep w1, b1, w2, b2 as nn.Parameter attributes and use "
        "F.linear and F.relu in forward.",
    )
    expect_equal(
        sorted(got["param_shapes"]), _NAMES_5_1, "the parameter names differ from the contract", hint=_HINT_5_1
    )
    for name in ("w1", "b1", "w2", "b2"):
        expect_equal(
            got["param_shapes"][name],
            got["expected_shapes"][name],
            f"the shape of {name} is wrong (F.linear expects weight shaped (out_features, in_features))",
            hint=_HINT_5_1,
        )


@ex5_1.test("structure")
def functional_nn_structure(FunctionalNN):
    return _functional_probe(FunctionalNN, (5, 7, 3), seed=501)


@functional_nn_structure.judge
def _(got, ref):
    _judge_functional_structure(got, ref)


@ex5_1.test("forward")
def functional_nn_forward(FunctionalNN):
    return _functional_probe(FunctionalNN, (5, 7, 3), seed=502, batches=(4,))


@functional_nn_forward.judge
def _(got, ref):
    _judge_functional_structure(got, ref, children=False)
    for key in ref:
        if key.startswith("batch"):
            what = f"with a SimpleNN's weights copied in, the output for a batch of {key[5:]}"
            expect_close(got[key]["output"], ref[key]["output"], what, _FWD_5_1)
            for name, grad in ref[key]["grads"].items():
                expect_close(got[key]["grads"].get(name), grad, f"the gradient of {name}", _FWD_5_1)
    expect_close(got["eval_output"], ref["eval_output"], "the output in eval() mode", _FWD_5_1)


@ex5_1.test("hidden")
def functional_nn_hidden(FunctionalNN):
    return {
        "wide": _functional_probe(FunctionalNN, (2, 16, 4), seed=503, batches=(1, 10)),
        "narrow": _functional_probe(FunctionalNN, (9, 1, 6), seed=504, batches=(5,)),
    }


@functional_nn_hidden.judge
def _(got, ref):
    for key in ("wide", "narrow"):
        functional_nn_forward.judge_fn(got[key], ref[key])


# ===================================================================== ex5_2
# Misreadings considered, and the probe input that separates each:
# * F.dropout without training=self.training, or the flag read once in __init__: eval() after train()
#   must be deterministic and equal to the network without dropout;
# * an nn.Dropout submodule: named_modules is searched for dropout modules;
# * a hand-made mask without 1/(1-p), p used as the keep probability, p ignored: the second Linear is
#   made "identity + 0.5", so the hidden units it receives show the fraction dropped and the scale
#   of the survivors, for p = 0.5, 0.2, 0.7 (positional) and 0.0;
# * dropout on the input or after the last Linear: ReLU's zeros must arrive as zeros, and the
#   outputs (bias 0.5) must not be zeroed;
# * dropout in place on F.relu's output (inplace=True, h *= mask): a training-mode backward()
#   in the hidden case (relu saves its output for backward).
ex5_2 = exercise("ex5_2_dropout_mlp", CHAPTER)
_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd,)
_BIAS_2 = 0.5  # the second Linear becomes "identity + 0.5" so its output shows the dropped hidden units
_HINT_TRAINING = (
    "F.dropout(h, p) defaults to training=True, so it keeps dropping after model.eval(): "
    "write F.dropout(h, self.p, training=self.training)."
)
_HINT_ORDER_5_2 = "forward should be fc2(F.dropout(F.relu(fc1(x)), self.p, training=self.training))."


def _dropout_structure(model):
    return {
        "is_module": isinstance(model, nn.Module),
        "linear_shapes": [list(layer.weight.shape) for layer in linears(model)],
        "dropout_modules": [n for n, m in model.named_modules() if isinstance(m, _DROPOUT_TYPES)],
    }


def _transparent(model, seed):
    """Seeded first Linear, second Linear = identity plus a constant bias; returns (W1, b1)."""
    model.to(device)
    first, second = linears(model)
    g = generator(seed)
    with torch.no_grad():
        first.weight.copy_(torch.randn(first.weight.shape, generator=g) * 0.5)
        if first.bias is not None:
            first.bias.copy_(torch.randn(first.bias.shape, generator=g) * 0.5)
        second.weight.copy_(torch.eye(*second.weight.shape))
        if second.bias is not None:
            second.bias.fill_(_BIAS_2)
    return first


def _dropout_stats(model, first, x, keep_scale):
    """One forward pass in the model's current mode; how the hidden units were dropped and scaled.

    ``keep_scale`` is the factor expected on the surviving units: 1/(1-p) in training mode, 1 in eval mode.
    """
    with torch.no_grad():
        clean = F.relu(F.linear(x, first.weight, first.bias))
        out = model(x)
    hidden = out - _BIAS_2  # exactly the second Linear's input (identity weight)
    positive = clean > 1e-3  # units ReLU let through, far from zero
    relu_zero = clean == 0
    dropped = (hidden.abs() <= 1e-6) & positive
    kept = (hidden.abs() > 1e-6) & positive
    error = (hidden[kept] - clean[kept] * keep_scale).abs() / (1e-5 + 1e-4 * (clean[kept] * keep_scale).abs())
    ratio = hidden[kept] / clean[kept]
    return {
        "n_positive": int(positive.sum()),
        "dropped_fraction": float(dropped.sum()) / max(1, int(positive.sum())),
        "worst_kept_error": float(error.max()) if error.numel() else 0.0,  # in units of the tolerance
        "kept_scale_min": float(ratio.min()) if ratio.numel() else None,
        "kept_scale_max": float(ratio.max()) if ratio.numel() else None,
        "relu_zero_leak": float(hidden[relu_zero].abs().max()) if relu_zero.any() else 0.0,
        "output_zero_fraction": float((out == 0).float().mean()),  # the bias 0.5 makes a zero output rare
        "example_clean": clean[0, :8].cpu(),
        "example_hidden": hidden[0, :8].cpu(),
    }


def _dropout_train_probe(DropoutMLP, p=None, positional=False, seed=520, toggle=False):
    if p is None:
        model, p = DropoutMLP(8, 16, 16), 0.5
    elif positional:
        model = DropoutMLP(8, 16, 16, p)
    else:
        model = DropoutMLP(8, 16, 16, p=p)
    data = _dropout_structure(model)
    data["p"] = p
    if len(data["linear_shapes"]) != 2:
        return data
    first = _transparent(model, seed)
    x = randn(4000, 8, seed=seed + 1)
    model.train()
    data["train"] = _dropout_stats(model, first, x, 1.0 / (1.0 - p))
    if toggle:
        model.eval()
        data["eval_after_train"] = _dropout_stats(model, first, x, 1.0)
        model.train()
        data["train_again"] = _dropout_stats(model, first, x, 1.0 / (1.0 - p))
        # a training step: backward() through the dropped hidden layer (an in-place dropout on
        # F.relu's output, which relu saves for backward, fails here and only here)
        data["train_backward_error"] = None
        try:
            model(randn(16, 8, seed=seed + 2)).sum().backward()
        except RuntimeError as e:
            data["train_backward_error"] = str(e).splitlines()[0][:200]
    return data


def _judge_dropout_count(got):
    expect_true(got["is_module"], "the class does not create an nn.Module.")
    expect_equal(
        len(got["linear_shapes"]),
        2,
        "DropoutMLP should have exactly two nn.Linear submodules",
        hint="fc1 = nn.Linear(input_size, hidden_size), fc2 = nn.Linear(hidden_size, output_size).",
    )


def _judge_train_stats(stats, p, label):
    kept_scale = 1.0 / (1.0 - p)
    expect_true(
        stats["output_zero_fraction"] < 0.01,
        f"{label}: a fraction {stats['output_zero_fraction']:.3f} of the model's outputs is exactly zero: "
        "dropout is applied to the output of the last Linear",
        hint=_HINT_ORDER_5_2,
    )
    expect_true(
        stats["relu_zero_leak"] <= 1e-5,
        f"{label}: hidden units that ReLU(first Linear(x)) sets to zero arrive non-zero at the second "
        "Linear: dropout is not applied to the hidden layer (to the input, perhaps?)",
        hint=_HINT_ORDER_5_2,
    )
    if p == 0:
        expect_true(
            stats["dropped_fraction"] == 0 and stats["worst_kept_error"] <= 1,
            f"{label}: with p=0 nothing should be dropped or rescaled",
            got=stats["example_hidden"],
            expected=stats["example_clean"],
            hint="F.dropout(h, 0.0, training=True) returns h unchanged; use the p given to __init__.",
        )
        return
    frac = stats["dropped_fraction"]
    if abs(frac - p) > 0.02:
        if frac < 0.01:
            hint = (
                "nothing reaches the second Linear dropped: is dropout applied to the hidden layer, "
                "in training mode, with the p given to __init__?"
            )
        elif abs(frac - (1 - p)) <= 0.02:
            hint = "p is the probability of DROPPING a unit, not of keeping it."
        else:
            hint = _HINT_ORDER_5_2
        raise Mistake(
            f"{label}: a fraction {frac:.3f} of the positive hidden units is dropped, expected about "
            f"p = {p} (over {stats['n_positive']} units)",
            got=frac,
            expected=float(p),
            hint=hint,
        )
    if stats["worst_kept_error"] > 1:
        raise Mistake(
            f"{label}: the hidden units that survive dropout should be multiplied by "
            f"1/(1-p) = {kept_scale:.4f}; yours are multiplied by "
            f"{stats['kept_scale_min']:.4f} … {stats['kept_scale_max']:.4f}",
            got=stats["example_hidden"],
            expected=stats["example_clean"] * kept_scale,
            hint="F.dropout rescales the survivors for you; a hand-made mask needs h * mask / (1 - p). "
            "Dropout goes between ReLU and the second Linear, nowhere else.",
        )


def _judge_eval_stats(stats, label):
    if stats["dropped_fraction"] > 0 or stats["worst_kept_error"] > 1:
        raise Mistake(
            f"{label}: in eval() mode a fraction {stats['dropped_fraction']:.3f} of the hidden units "
            "is still dropped (or rescaled): the model ignores self.training",
            got=stats["example_hidden"],
            expected=stats["example_clean"],
            hint=_HINT_TRAINING,
        )


@ex5_2.test("structure")
def dropout_mlp_structure(DropoutMLP):
    return {
        "default": _dropout_structure(DropoutMLP(5, 12, 3)),
        "explicit_p": _dropout_structure(DropoutMLP(5, 12, 3, p=0.3)),
    }


@dropout_mlp_structure.judge
def _(got, ref):
    for key in ("default", "explicit_p"):
        _judge_dropout_count(got[key])
        expect_equal(
            got[key]["linear_shapes"],
            ref[key]["linear_shapes"],
            "the nn.Linear layers (weight shapes, in registration order) differ",
            hint="first nn.Linear(input_size, hidden_size), then nn.Linear(hidden_size, output_size).",
        )
        expect_equal(
            got[key]["dropout_modules"],
            [],
            "DropoutMLP should not contain an nn.Dropout submodule",
            hint="this exercise practises the functional form: F.dropout(h, self.p, training=self.training) "
            "in forward, with p stored as a plain attribute.",
        )


def _dropout_eval_probe(DropoutMLP, sizes, seed, p=None):
    model = DropoutMLP(*sizes) if p is None else DropoutMLP(*sizes, p=p)
    data = _dropout_structure(model)
    if len(data["linear_shapes"]) != 2:
        return data
    load_seeded_linears(model, seed)
    model.eval()
    x = randn(64, sizes[0], seed=seed + 1, scale=2.0)
    data["eval"] = output_and_grads(model, x, names=None)
    data["eval"]["grads"] = [layer.weight.grad for layer in linears(model)]
    data["eval_repeat"] = model(x).detach()
    data["still_eval"] = not model.training
    return data


def _judge_dropout_eval(got, ref, label="in eval() mode"):
    _judge_dropout_count(got)
    expect_true(
        got["still_eval"],
        "calling the model switched it back to training mode",
        hint="never call self.train() inside forward; read self.training instead.",
    )
    same = torch.equal(got["eval"]["output"], got["eval_repeat"])
    expect_true(
        same,
        f"{label} two calls on the same input give different outputs: dropout is still active",
        hint=_HINT_TRAINING,
        got=got["eval_repeat"],
        expected=got["eval"]["output"],
    )
    expect_close(
        got["eval"]["output"],
        ref["eval"]["output"],
        f"{label}, the output (should equal the same network without dropout)",
        _HINT_TRAINING,
    )
    for i, (g, r) in enumerate(zip(got["eval"]["grads"], ref["eval"]["grads"])):
        expect_close(g, r, f"{label}, the gradient of Linear number {i}'s weight", _HINT_ORDER_5_2)


@ex5_2.test("eval")
def dropout_mlp_eval(DropoutMLP):
    return _dropout_eval_probe(DropoutMLP, (5, 12, 3), seed=510)


dropout_mlp_eval.judge(_judge_dropout_eval)


@ex5_2.test("train", reference=False)
def dropout_mlp_train(DropoutMLP):
    return _dropout_train_probe(DropoutMLP, seed=520)


@dropout_mlp_train.judge
def _(got, ref):
    _judge_dropout_count(got)
    _judge_train_stats(got["train"], 0.5, "in train() mode with the default p=0.5")
    return f"{got['train']['dropped_fraction']:.3f} of the units dropped at p=0.5"


@ex5_2.test("hidden")
def dropout_mlp_hidden(DropoutMLP):
    return {
        "p02": _dropout_train_probe(DropoutMLP, p=0.2, seed=530, toggle=True),
        "p07_positional": _dropout_train_probe(DropoutMLP, p=0.7, positional=True, seed=540),
        "p0": _dropout_train_probe(DropoutMLP, p=0.0, seed=550),
        "eval_p02": _dropout_eval_probe(DropoutMLP, (3, 20, 2), seed=560, p=0.2),
    }


@dropout_mlp_hidden.judge
def _(got, ref):
    for key in ("p02", "p07_positional", "p0"):
        _judge_dropout_count(got[key])
    _judge_train_stats(got["p02"]["train"], 0.2, "in train() mode with p=0.2")
    _judge_eval_stats(got["p02"]["eval_after_train"], "after model.eval()")
    _judge_train_stats(got["p02"]["train_again"], 0.2, "after model.eval() and then model.train() again")
    _judge_train_stats(got["p07_positional"]["train"], 0.7, "DropoutMLP(8, 16, 16, 0.7) in train() mode")
    _judge_train_stats(got["p0"]["train"], 0.0, "DropoutMLP(..., p=0.0) in train() mode")
    _judge_dropout_eval(got["eval_p02"], ref["eval_p02"], "with p=0.2 in eval() mode")
    error = got["p02"]["train_backward_error"]
    if error:
        raise Mistake(
            "in train() mode, backward() through the model failed",
            got=error,
            hint="do not drop units in place (F.dropout(..., inplace=True), h *= mask): F.relu saves its "
            "output for backward, and changing it in place breaks the gradient. Write "
            "h = F.dropout(h, self.p, training=self.training).",
        )


# ===================================================================== ex5_3
# Misreadings considered, and the probe input that separates each:
# * load_state_dict(params, strict=False) / copying values in: the model's state_dict and parameter
#   objects are compared before and after, and gradients must reach the given tensors;
# * swapping tensors in without restoring them: parameter identities are compared afterwards;
# * detached tensors: no gradient reaches params;
# * only top-level names handled (setattr(model, "lin.weight", t)): nested names in every case
#   (the grading policy refuses setattr with a computed name anyway);
# * the mode switched (model.train()) or buffers forgotten: a batch-norm net in eval() mode with
#   non-trivial running statistics, compared after the call;
# * an empty dict, every parameter and a second call with other tensors: hidden cases.
ex5_3 = exercise("ex5_3_functional_call", CHAPTER)
_HINT_CALL = "torch.func.functional_call(model, params, (x,)) does exactly this."


class _BNNet(nn.Module):
    """Linear -> BatchNorm (buffers) -> ReLU -> Sequential head: nested parameter names."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 6)
        self.bn = nn.BatchNorm1d(6)
        self.head = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.lin(x))))


def _bn_net(seed):
    reseed(seed)
    net = _BNNet()
    g = generator(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        mean, var = net.bn.running_mean, net.bn.running_var
        assert mean is not None and var is not None  # BatchNorm1d tracks running statistics by default
        mean.copy_(torch.randn(6, generator=g))
        var.copy_(torch.rand(6, generator=g) + 0.5)
    return net.to(device).eval()


def _new_params(net, names, seed):
    g = generator(seed)
    shapes = {n: p.shape for n, p in net.named_parameters()}
    return {n: (torch.randn(shapes[n], generator=g) * 0.7).to(device).requires_grad_() for n in names}


def _forward_with_probe(forward_with, names, seed, repeat=False):
    net = _bn_net(seed)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    before_ids = {n: id(p) for n, p in net.named_parameters()}
    params = _new_params(net, names, seed + 1)
    x = randn(7, 4, seed=seed + 2, scale=2.0)
    out = forward_with(net, params, x)
    data: dict[str, Any] = {"is_tensor": isinstance(out, torch.Tensor)}
    if not data["is_tensor"]:
        return data
    data["output"] = out.detach()
    if out.requires_grad:
        weights = torch.randn(out.shape, generator=generator(99)).to(out.device)
        (out * weights).sum().backward()
    data["grads"] = {n: t.grad for n, t in params.items()}
    data["plain_output"] = net(x).detach()  # the model's own weights, after the call
    after = net.state_dict()
    data["changed"] = sorted(k for k in before if k not in after or not torch.equal(before[k], after[k]))
    now = dict(net.named_parameters())
    data["replaced"] = sorted(n for n in before_ids if n not in now or id(now[n]) != before_ids[n])
    data["all_parameters"] = all(isinstance(p, nn.Parameter) and p.requires_grad for p in now.values())
    if repeat:
        second = _new_params(net, names, seed + 3)
        data["second_output"] = forward_with(net, second, x).detach()
    return data


def _judge_forward_with_output(got, ref, label):
    expect_true(got["is_tensor"], f"{label}: forward_with should return the model's output tensor")
    expect_close(got["output"], ref["output"], f"{label}: the output computed with the given parameters", _HINT_CALL)
    for name, grad in ref["grads"].items():
        if got["grads"].get(name) is None:
            raise Mistake(
                f"{label}: no gradient reached params['{name}'] after backward()",
                hint="the given tensors must be used in the computation itself: copying their values "
                "into the model (load_state_dict, .data, copy_ under no_grad) cuts the graph. " + _HINT_CALL,
            )
        expect_close(got["grads"][name], grad, f"{label}: the gradient of params['{name}']", _HINT_CALL)


def _judge_forward_with_unchanged(got, ref, label):
    expect_true(got["is_tensor"], f"{label}: forward_with should return the model's output tensor")
    expect_equal(
        got["changed"],
        [],
        f"{label}: the model's own state_dict entries changed after forward_with",
        hint="the model must not be modified: load_state_dict or copy_ overwrite its weights. " + _HINT_CALL,
    )
    expect_equal(
        got["replaced"],
        [],
        f"{label}: these model parameters were replaced by other objects and not restored",
        hint="if you swap tensors in by hand, put the originals back (in a finally block). " + _HINT_CALL,
    )
    expect_true(
        got["all_parameters"],
        f"{label}: after the call some model parameters are not trainable nn.Parameters any more",
        hint=_HINT_CALL,
    )
    expect_close(got["plain_output"], ref["plain_output"], f"{label}: model(x) after the call", _HINT_CALL)


@ex5_3.test("output")
def forward_with_output(forward_with):
    return _forward_with_probe(forward_with, ["lin.weight", "head.2.bias"], seed=570)


@forward_with_output.judge
def _(got, ref):
    _judge_forward_with_output(got, ref, "params = {'lin.weight', 'head.2.bias'}")


@ex5_3.test("unchanged")
def forward_with_unchanged(forward_with):
    return _forward_with_probe(forward_with, ["lin.weight", "head.2.bias"], seed=580)


@forward_with_unchanged.judge
def _(got, ref):
    _judge_forward_with_unchanged(got, ref, "params = {'lin.weight', 'head.2.bias'}")


@ex5_3.test("hidden")
def forward_with_hidden(forward_with):
    reseed(0)
    everything = [n for n, _ in _BNNet().named_parameters()]
    return {
        "empty": _forward_with_probe(forward_with, [], seed=590),
        "all": _forward_with_probe(forward_with, everything, seed=600),
        "bn_and_head": _forward_with_probe(forward_with, ["bn.weight", "head.0.weight"], seed=610, repeat=True),
    }


@forward_with_hidden.judge
def _(got, ref):
    labels = {
        "empty": "params = {} (an empty dict)",
        "all": "params = every parameter",
        "bn_and_head": "params = {'bn.weight', 'head.0.weight'}",
    }
    for key, label in labels.items():
        _judge_forward_with_output(got[key], ref[key], label)
        _judge_forward_with_unchanged(got[key], ref[key], label)
    expect_close(
        got["bn_and_head"]["second_output"],
        ref["bn_and_head"]["second_output"],
        "a second call with other tensors",
        hint="nothing may be cached between calls. " + _HINT_CALL,
    )


# ===================================================================== ex5_4
# Misreadings considered, and the probe input that separates each:
# * naive log(softmax): logits of magnitude 1000 (rows and columns shuffled per run);
# * sum instead of mean: batches of more than one sample, with a hint for the factor N;
# * logits[:, targets] instead of one target per row, logsumexp over the wrong dim: non-square
#   logits (6, 4), (3, 7), (5, 8) transposed;
# * .item() returned: the type is checked and backward() must reach the logits;
# * in-place changes of the logits: compared with a copy;
# * the built-in losses: refused by the policy and patched to fail during the call;
# * anything that holds only for the shapes above (a squeeze, a loop bound, C > 1): the hidden test
#   draws 20 more inputs with Hypothesis (batches and class counts from 1, scales up to 1000,
#   transposed or not) and names the smallest that fails.
# The contract's banned functions, refused by the grading policy wherever they appear in the answer
# (so a reference taken before the probe's ban cannot escape it) and made to fail during the call.
# the banned operations under every name they are reached by (a name imported before the check,
# torch._C, torch.ops): refused by the policy in the answer's text, and failed during the call
_BANNED_NAMES = {
    "cross_entropy",
    "cross_entropy_loss",
    "nll_loss",
    "nll_loss_nd",
    "nll_loss2d",
    "log_softmax",
    "_log_softmax",
    "special_log_softmax",
}
ex5_4 = exercise(
    "ex5_4_cross_entropy",
    CHAPTER,
    deny=(*sorted(n for n in _BANNED_NAMES if not n.startswith("_")), "CrossEntropyLoss", "NLLLoss", "LogSoftmax"),
)


class ForbiddenFunctionError(RuntimeError):
    pass


_MISSING = object()


_PATCHED: list[tuple[Any, str]] = [  # (a module or a class, the name patched on it)
    (F, "cross_entropy"),
    (F, "nll_loss"),
    (F, "log_softmax"),
    (torch, "log_softmax"),
    (torch.special, "log_softmax"),
    (torch.Tensor, "log_softmax"),
    (nn.CrossEntropyLoss, "forward"),
    (nn.NLLLoss, "forward"),
    (nn.LogSoftmax, "forward"),
]


_CE_ADVICE = "write the loss yourself with torch.logsumexp (or the max-subtraction trick), gather/indexing and mean"
_CE_LABELS: dict[Any, str] = {
    nn.CrossEntropyLoss: "nn.CrossEntropyLoss",
    nn.NLLLoss: "nn.NLLLoss",
    nn.LogSoftmax: "nn.LogSoftmax",
    torch.Tensor: "Tensor.log_softmax",
}


def _forbidden(label, advice=_CE_ADVICE):
    def fail(*args, **kwargs):
        raise ForbiddenFunctionError(f"{label} is not allowed in this exercise: {advice}")

    return fail


class _ForbidMode(TorchFunctionMode):
    """Catches the forbidden operations even when reached through another name.

    An operator overload (``torch.ops.aten.softplus.default``) is named ``softplus.default``: the
    part before the first dot is what is compared.
    """

    def __init__(self, banned=frozenset(_BANNED_NAMES), advice=_CE_ADVICE):
        super().__init__()
        self.banned, self.advice = banned, advice

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name.split(".")[0] in self.banned:
            _forbidden(name, self.advice)()
        return func(*args, **(kwargs or {}))


def _label(owner, name, labels):
    return labels.get(owner) or f"{owner.__name__.replace('torch.nn.functional', 'F')}.{name}"


def _call_with_bans(fn, args, patched, banned, advice, labels):
    """``fn(*args)`` with the ``patched`` (owner, name) pairs failing and ``banned`` operators refused."""
    saved = []
    try:
        for owner, name in patched:
            saved.append(
                (owner, name, owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name))
            )
            setattr(owner, name, _forbidden(_label(owner, name, labels), advice))
        with _ForbidMode(frozenset(banned), advice):
            return fn(*args)
    finally:
        for owner, name, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _call_without_builtin_losses(fn, *args):
    return _call_with_bans(fn, args, _PATCHED, _BANNED_NAMES, _CE_ADVICE, _CE_LABELS)


def _ce_case(cross_entropy, logits_cpu, targets_cpu):
    logits = logits_cpu.clone().to(device).requires_grad_()  # clone keeps the strides (transposed stays so)
    targets = targets_cpu.to(device)
    with torch.no_grad():
        torch_value = F.cross_entropy(logits, targets)
    out = _call_without_builtin_losses(cross_entropy, logits, targets)
    data = {
        "type": type(out).__name__,
        "is_tensor": isinstance(out, torch.Tensor),
        "torch_value": torch_value,
        "n": int(logits.shape[0]),
    }
    if not data["is_tensor"]:
        data["value"] = float(out) if isinstance(out, (int, float)) else None
        return data
    data["shape"] = list(out.shape)
    data["value"] = out.detach()
    data["logits_unchanged"] = torch.equal(logits.detach().cpu(), logits_cpu)
    data["grad"] = None
    if out.requires_grad and out.numel() == 1:
        out.sum().backward()
        data["grad"] = logits.grad
    return data


def _random_case(n, c, seed, scale):
    g = generator(seed)
    return torch.randn(n, c, generator=g) * scale, torch.randint(0, c, (n,), generator=g)


def _judge_ce_case(got, ref, label: str | None):
    prefix = f"{label}: " if label else ""  # None: properties.judge_cases names the input
    expected = ref["torch_value"]
    if not got["is_tensor"]:
        raise Mistake(
            f"{prefix}cross_entropy returned a {got['type']}, not a tensor",
            got=got["value"],
            expected=expected,
            hint="return the 0-d tensor itself: .item() (or float()) cuts it out of the autograd graph.",
        )
    expect_equal(
        got["shape"],
        [],
        f"{prefix}the loss should be a 0-d tensor (one number for the batch)",
        hint="average the per-sample losses: (...).mean().",
    )
    value = got["value"]
    if not torch.isfinite(value):
        raise Mistake(
            f"{prefix}the loss is {value.item()} — exp() overflowed or log(0) happened",
            got=value,
            expected=expected,
            hint="log(softmax(z)) breaks for large logits; use log-sum-exp: "
            "torch.logsumexp(logits, dim=1), or subtract each row's max before exp().",
        )
    hint = "loss = mean over samples of logsumexp(logits[i]) - logits[i, targets[i]]."
    if got["n"] > 1 and torch.allclose(value.double(), expected.double() * got["n"], rtol=1e-4, atol=1e-5):
        hint = "this is the SUM over the batch: F.cross_entropy averages (use .mean())."
    elif got["grad"] is not None and not torch.allclose(value.double(), expected.double(), rtol=1e-4, atol=1e-5):
        hint += (
            " Pick the target logit of each row: logits.gather(1, targets.unsqueeze(1)) or "
            "logits[torch.arange(N), targets] (dim 1 = classes)."
        )
    expect_close(value, expected, f"{prefix}the loss (compared with F.cross_entropy)", hint)
    expect_true(
        got["logits_unchanged"],
        f"{prefix}cross_entropy changed the logits tensor it was given",
        hint="avoid in-place operations (-=, .sub_()) on the input; write logits - m instead.",
    )
    if got["grad"] is None:
        raise Mistake(
            f"{prefix}loss.backward() does not reach the logits",
            hint="do not detach or wrap the computation in torch.no_grad().",
        )
    expect_close(
        got["grad"],
        ref["grad"],
        f"{prefix}the gradient with respect to the logits",
        hint="the gradient should be (softmax(logits) - one_hot(targets)) / N.",
    )


@ex5_4.test("values")
def cross_entropy_values(cross_entropy):
    return {
        "a": _ce_case(cross_entropy, *_random_case(6, 4, 640, 2.0)),
        "b": _ce_case(cross_entropy, *_random_case(3, 7, 641, 1.0)),
    }


@cross_entropy_values.judge
def _(got, ref):
    _judge_ce_case(got["a"], ref["a"], "logits (6, 4)")
    _judge_ce_case(got["b"], ref["b"], "logits (3, 7)")


_HUGE = torch.tensor(
    [[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, 1000.0]]
)


@ex5_4.test("stable")
def cross_entropy_stable(cross_entropy):
    g = generator(640)  # rows, columns and targets shuffled per grading run: no input to special-case
    huge = _HUGE[torch.randperm(4, generator=g)][:, torch.randperm(3, generator=g)]
    return {
        "fixed": _ce_case(cross_entropy, huge, torch.randint(0, 3, (4,), generator=g)),
        "random": _ce_case(cross_entropy, *_random_case(5, 6, 650, 1000.0)),
    }


@cross_entropy_stable.judge
def _(got, ref):
    _judge_ce_case(got["fixed"], ref["fixed"], "logits of magnitude 1000")
    _judge_ce_case(got["random"], ref["random"], "random logits of scale 1000")


@ex5_4.test("hidden")
def cross_entropy_hidden(cross_entropy):
    wide, wide_t = _random_case(64, 10, 660, 5.0)
    return {
        "one_sample": _ce_case(cross_entropy, *_random_case(1, 2, 661, 3.0)),
        "one_class": _ce_case(cross_entropy, torch.tensor([[3.0], [-2.0]]), torch.tensor([0, 0])),
        "equal_logits": _ce_case(cross_entropy, torch.full((4, 5), -700.0), torch.tensor([0, 4, 2, 2])),
        "wide": _ce_case(cross_entropy, wide, wide_t),
        "transposed": _ce_case(
            cross_entropy,
            torch.randn(5, 8, generator=generator(662)).t(),
            torch.randint(0, 5, (8,), generator=generator(663)),
        ),
        "drawn": properties.probe_cases(
            _ce_shapes(), lambda case: _ce_drawn_case(cross_entropy, case), count=20, seed=664
        ),
    }


def _ce_shapes():
    """Property-based inputs for cross_entropy: any batch and class count from 1, small to huge logits."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "n": st.integers(1, 6),
            "c": st.integers(1, 8),
            "scale": st.sampled_from([0.5, 5.0, 50.0, 1000.0]),
            "transposed": st.booleans(),
            "seed": st.integers(0, 999),
        }
    )


def _ce_drawn_case(cross_entropy, case):
    g = generator(670 + case["seed"])
    n, c = case["n"], case["c"]
    logits = torch.randn(c, n, generator=g).t() if case["transposed"] else torch.randn(n, c, generator=g)
    return _ce_case(cross_entropy, logits * case["scale"], torch.randint(0, c, (n,), generator=g))


def _describe_ce(case) -> str:
    layout = "transposed " if case["transposed"] else ""
    return f"{layout}logits of shape ({case['n']}, {case['c']}) and scale {case['scale']:g}"


def _ce_size(case):
    return (case["n"] * case["c"], case["scale"], case["transposed"])


@cross_entropy_hidden.judge
def _(got, ref):
    for key, label in [
        ("one_sample", "a batch of one sample"),
        ("one_class", "a single class (loss 0)"),
        ("equal_logits", "equal logits of -700 (loss log C)"),
        ("wide", "logits (64, 10)"),
        ("transposed", "a non-contiguous (transposed) logits tensor"),
    ]:
        _judge_ce_case(got[key], ref[key], label)
    return properties.judge_cases(
        got["drawn"], ref["drawn"], lambda g, r: _judge_ce_case(g, r, None), _describe_ce, _ce_size
    )


# ===================================================================== ex5_5
# Misreadings considered, and the probe input that separates each:
# * sigmoid first, then log (with or without a clamp of the probabilities): logits of magnitude 30 to
#   1000 of both signs give -inf/nan, or (clamped) a loss near 16 where it should be near 1000;
# * log(1 + exp(x)) or log(1 + exp(-x)) written directly: exp overflows for large logits of one sign
#   only, so both signs appear in the stable test;
# * torch.where over two branches that each compute exp of a large number: the value is right but the
#   gradient is nan (0 * inf in the unused branch), so the gradient is compared at large logits too;
# * sum instead of mean, or the mean over one dimension only: several elements, 2-D and 3-D shapes;
# * the sign flipped (loss <= 0): every value is compared with F.binary_cross_entropy_with_logits;
# * targets assumed to be 0 or 1 (torch.where(y == 1, ...), indexing by the target): soft targets in
#   every test, beside hard ones;
# * .item(), detach() or no_grad (no gradient), a wrong gradient: backward() must reach the logits with
#   F's gradient (sigmoid(x) - y) / numel;
# * in-place changes of the logits or targets (clamp_, mul_): compared with copies;
# * the library's own stable pieces (the loss itself, softplus, logsigmoid, logaddexp): refused by the
#   policy where their names are unambiguous, and made to fail during the call under every name.
# Not probed: a logit of exactly 0, where max(x, 0) and |x| have a one-sided derivative and the
# textbook formula's gradient (-y) differs from F's (0.5 - y); no probe input is exactly 0.
_BCE_BANNED = frozenset(
    {"binary_cross_entropy_with_logits", "binary_cross_entropy", "softplus", "log_sigmoid", "logaddexp", "logaddexp2"}
)
# names refused anywhere in the answer's text; not softplus/logsigmoid, which learners give their own helpers
_BCE_DENY = (
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
    "BCEWithLogitsLoss",
    "BCELoss",
    "Softplus",
    "LogSigmoid",
    "logaddexp",
    "logaddexp2",
)
ex5_5 = exercise("ex5_5_bce_with_logits", CHAPTER, deny=_BCE_DENY)
_BCE_ADVICE = (
    "write the loss yourself from max(x, 0), x * y, exp, log1p (or log) and mean, or with torch.logsumexp over [0, x]"
)
_BCE_PATCHED: list[tuple[Any, str]] = [
    (F, "binary_cross_entropy_with_logits"),
    (F, "binary_cross_entropy"),
    (F, "softplus"),
    (F, "logsigmoid"),
    (torch, "binary_cross_entropy_with_logits"),
    (torch, "logaddexp"),
    (torch, "logaddexp2"),
    (torch.Tensor, "logaddexp"),
    (torch.Tensor, "logaddexp2"),
    (nn.BCEWithLogitsLoss, "forward"),
    (nn.BCELoss, "forward"),
    (nn.Softplus, "forward"),
    (nn.LogSigmoid, "forward"),
]
_BCE_LABELS: dict[Any, str] = {
    nn.BCEWithLogitsLoss: "nn.BCEWithLogitsLoss",
    nn.BCELoss: "nn.BCELoss",
    nn.Softplus: "nn.Softplus",
    nn.LogSigmoid: "nn.LogSigmoid",
    torch.Tensor: "Tensor.logaddexp",
}
_HINT_BCE = (
    "loss = mean over every element of max(x, 0) - x * y + log1p(exp(-|x|)): "
    "log(1 + e^x) = log(e^0 + e^x) is a log-sum-exp of two terms, so pull the larger exponent out."
)


def _bce_case(bce_with_logits, logits_cpu, targets_cpu, soft):
    logits = logits_cpu.clone().to(device).requires_grad_()  # clone keeps the strides (transposed stays so)
    targets = targets_cpu.clone().to(device)
    leaf = logits.detach().clone().requires_grad_()
    torch_value = F.binary_cross_entropy_with_logits(leaf, targets)
    torch_value.backward()
    out = _call_with_bans(bce_with_logits, (logits, targets), _BCE_PATCHED, _BCE_BANNED, _BCE_ADVICE, _BCE_LABELS)
    data: dict[str, Any] = {
        "type": type(out).__name__,
        "is_tensor": isinstance(out, torch.Tensor),
        "torch_value": torch_value.detach(),
        "torch_grad": leaf.grad,
        "shape_in": list(logits.shape),
        "soft": soft,
    }
    if not data["is_tensor"]:
        data["value"] = float(out) if isinstance(out, (int, float)) else None
        return data
    data["shape"] = list(out.shape)
    data["value"] = out.detach()
    data["inputs_unchanged"] = torch.equal(logits.detach().cpu(), logits_cpu) and torch.equal(
        targets.cpu(), targets_cpu
    )
    data["grad"] = None
    if out.requires_grad and out.numel() == 1:
        out.sum().backward()
        data["grad"] = logits.grad
    # two diagnostic calls, for the hint only: targets rounded to 0/1, and all targets 0
    for key, other in [("rounded", targets.round()), ("zero_targets", torch.zeros_like(targets))]:
        with torch.no_grad():
            data[f"torch_{key}"] = F.binary_cross_entropy_with_logits(logits.detach(), other)
        try:
            value = _call_with_bans(
                bce_with_logits, (logits.detach().clone(), other), _BCE_PATCHED, _BCE_BANNED, _BCE_ADVICE, _BCE_LABELS
            )
            data[key] = value.detach() if isinstance(value, torch.Tensor) and value.numel() == 1 else None
        except Exception:
            data[key] = None
    return data


def _matches(got, key, ref):
    """Whether a diagnostic value of the learner's equals F's on the same inputs (hints only)."""
    value, expected = got.get(key), ref[f"torch_{key}"]
    return value is not None and torch.allclose(value.double().reshape(()), expected.double(), rtol=1e-4, atol=1e-5)


def _soft_targets(*shape, seed):
    """Targets in [0, 1] with exact 0s and 1s among them."""
    g = generator(seed)
    y = torch.rand(*shape, generator=g)
    return torch.where(torch.rand(*shape, generator=g) < 0.3, y.round(), y)


def _nonzero(x):
    """No logit exactly 0 (see the misreadings above)."""
    return torch.where(x == 0, torch.full_like(x, 0.5), x)


def _judge_bce_value(got, ref, label):
    expected = ref["torch_value"]
    what = f"{label}: the loss (compared with F.binary_cross_entropy_with_logits)"
    if not got["is_tensor"]:
        raise Mistake(
            f"{label}: bce_with_logits returned a {got['type']}, not a tensor",
            got=got["value"],
            expected=expected,
            hint="return the 0-d tensor itself: .item() (or float()) cuts it out of the autograd graph.",
        )
    expect_equal(
        got["shape"],
        [],
        f"{label}: the loss should be a 0-d tensor (one number for the whole batch)",
        hint="average the per-element losses over every element: (...).mean().",
    )
    value = got["value"]
    if not torch.isfinite(value):
        raise Mistake(
            f"{label}: the loss is {value.item()}: exp() overflowed, or log(0) happened",
            got=value,
            expected=expected,
            hint="sigmoid(x) rounds to exactly 0 or 1 for large |x|, and exp(x) overflows above 88: " + _HINT_BCE,
        )
    v, e = value.double().item(), expected.double().item()
    hint = _HINT_BCE
    sizes = sorted(set(got["shape_in"]) | {math.prod(got["shape_in"])})
    factors = [k for k in sizes if k > 1 and abs(v - e * k) <= 1e-4 * abs(e * k) + 1e-5]
    if factors:
        hint = (
            f"your loss is {factors[-1]} times too large: F.binary_cross_entropy_with_logits averages over "
            "EVERY element (.mean() over the whole tensor), it does not sum over any dimension."
        )
    elif abs(v + e) <= 1e-4 * abs(e) + 1e-5:
        hint = "the sign is flipped: the loss is -[y log σ(x) + (1 - y) log(1 - σ(x))], never negative."
    elif e > 20 and v < e / 2:
        hint = (
            "confidently wrong logits should cost about |x| each; clamping sigmoid's output to [eps, 1 - eps] "
            "caps every term near -log(eps). " + _HINT_BCE
        )
    elif got["soft"] and _matches(got, "rounded", ref):
        hint = (
            "your loss is right when every target is 0 or 1, but these targets are soft labels (any value in "
            "[0, 1]): weight both terms, y * (...) + (1 - y) * (...), instead of choosing one by the target. "
            + _HINT_BCE
        )
    elif _matches(got, "zero_targets", ref):
        hint = (
            "your loss is right when every target is 0, so the term that depends on the target is wrong: "
            "it is - x * y (the loss falls by x for each unit of y). " + _HINT_BCE
        )
    expect_close(value, expected, what, hint)


def _judge_bce_case(got, ref, label):
    _judge_bce_value(got, ref, label)
    expect_true(
        got["inputs_unchanged"],
        f"{label}: bce_with_logits changed the logits or the targets it was given",
        hint="avoid in-place operations (clamp_, mul_, -=) on the inputs; write x.clamp(min=0) instead.",
    )
    grad = got["grad"]
    if grad is None:
        raise Mistake(
            f"{label}: loss.backward() does not reach the logits",
            hint="do not detach, call .item() or wrap the computation in torch.no_grad().",
        )
    if not torch.isfinite(grad).all():
        raise Mistake(
            f"{label}: the gradient with respect to the logits contains inf or nan, although the loss is finite",
            got=grad,
            expected=ref["torch_grad"],
            hint="torch.where evaluates both branches, and an exp() that overflows in the branch not taken "
            "still poisons the gradient (0 * inf = nan): keep every exponent <= 0, e.g. exp(-|x|).",
        )
    expect_close(
        grad,
        ref["torch_grad"],
        f"{label}: the gradient with respect to the logits",
        hint="the gradient should be (sigmoid(x) - y) / numel. " + _HINT_BCE,
    )


@ex5_5.test("values")
def bce_values(bce_with_logits):
    g = generator(670)
    hard_logits = _nonzero(torch.randn(8, generator=g) * 3.0)
    hard_targets = (torch.rand(8, generator=g) < 0.5).float()
    return {
        "hard": _bce_case(bce_with_logits, hard_logits, hard_targets, soft=False),
        "soft": _bce_case(
            bce_with_logits, _nonzero(torch.randn(5, 3, generator=g) * 2.0), _soft_targets(5, 3, seed=671), soft=True
        ),
    }


@bce_values.judge
def _(got, ref):
    _judge_bce_case(got["hard"], ref["hard"], "logits (8,), targets 0 or 1")
    _judge_bce_case(got["soft"], ref["soft"], "logits (5, 3), soft targets in [0, 1]")


_BIG = torch.tensor([1000.0, -1000.0, 200.0, -200.0, 90.0, -90.0, 30.0, -30.0])
_BIG_TARGETS = torch.tensor([0.0, 1.0, 0.25, 0.5, 1.0, 0.0, 0.75, 0.1])


@ex5_5.test("stable")
def bce_stable(bce_with_logits):
    g = generator(680)  # which logit meets which target, and where, is shuffled per grading run
    logits = _BIG[torch.randperm(8, generator=g)].reshape(2, 4)
    targets = _BIG_TARGETS[torch.randperm(8, generator=g)].reshape(2, 4)
    return {
        "fixed": _bce_case(bce_with_logits, logits, targets, soft=True),
        "random": _bce_case(
            bce_with_logits, _nonzero(torch.randn(4, 5, generator=g) * 1000.0), _soft_targets(4, 5, seed=681), True
        ),
    }


@bce_stable.judge
def _(got, ref):
    _judge_bce_case(got["fixed"], ref["fixed"], "logits of magnitude 30 to 1000, both signs")
    _judge_bce_case(got["random"], ref["random"], "random logits of scale 1000")


@ex5_5.test("hidden")
def bce_hidden(bce_with_logits):
    g = generator(690)
    sure = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]])
    return {
        "one_element": _bce_case(bce_with_logits, torch.tensor([-2.5]), torch.tensor([0.3]), soft=True),
        "three_d": _bce_case(
            bce_with_logits, _nonzero(torch.randn(2, 3, 4, generator=g) * 4.0), _soft_targets(2, 3, 4, seed=691), True
        ),
        "confident": _bce_case(bce_with_logits, sure, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), soft=False),
        "transposed": _bce_case(
            bce_with_logits,
            _nonzero(torch.randn(6, 3, generator=g) * 50.0).t(),
            _soft_targets(6, 3, seed=692).t(),
            soft=True,
        ),
        "small": _bce_case(
            bce_with_logits, _nonzero(torch.randn(7, generator=g) * 1e-3), _soft_targets(7, seed=693), True
        ),
    }


@bce_hidden.judge
def _(got, ref):
    for key, label in [
        ("one_element", "a single element"),
        ("three_d", "logits (2, 3, 4)"),
        ("confident", "logits ±1000, right and wrong by far (loss 500)"),
        ("transposed", "non-contiguous (transposed) logits and targets"),
        ("small", "logits close to 0"),
    ]:
        _judge_bce_case(got[key], ref[key], label)
