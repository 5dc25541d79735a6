"""Chapter 2 — Parameters, buffers and state: the checks behind ex2_1 … ex2_7."""

import math

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..expect import expect_close, expect_close_dict, expect_equal, expect_true
from ..probing import device, generator, load_seeded, output_and_grads, randn, reseed, state_shapes, vary
from ..registry import Mistake, exercise

CHAPTER = "02_parameters"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------- ex2_1
# Misreadings: custom_param as a plain tensor (named_parameters, and .to(float64) leaves it behind);
# weight in nn.Linear's (out, in) layout (in_features != out_features in every probe: the
# state_dict shapes); custom_param left out of forward (outputs with seeded
# custom_param); bias not zeros, custom_param not ones (initial values); weight not standard normal:
# torch.rand, a small scale such as randn * 0.01 (mean and std of at least 500 values);
# requires_grad=False (requires_grad of every parameter); bias or custom_param of shape (1,), which
# still broadcasts (state_dict shapes).
ex2_1 = exercise("ex2_1_custom_layer", CHAPTER)
_SHAPES_2_1 = (
    "weight is an nn.Parameter of shape (in_features, out_features) — the transpose of "
    "nn.Linear's layout — bias and custom_param have shape (out_features,); a plain tensor "
    "attribute is not registered: wrap it in nn.Parameter."
)
_FWD_2_1 = "forward should return x @ self.weight + self.bias + self.custom_param."


def _custom_layer_structure(CustomLayer, n_in, n_out):
    layer = CustomLayer(n_in, n_out)
    params = dict(layer.named_parameters())
    data = {
        "is_module": isinstance(layer, nn.Module),
        "shapes": state_shapes(layer),
        "parameter_names": sorted(params),
        "requires_grad": {n: bool(p.requires_grad) for n, p in params.items()},
        "values": {n: params[n].detach().clone() for n in ("bias", "custom_param") if n in params},
    }
    w = params.get("weight")
    if w is not None and w.numel() >= 500:  # enough values for the statistics to be reliable
        w = w.detach().double()
        data["weight_mean"], data["weight_std"] = w.mean().item(), w.std().item()
    return data


def _judge_custom_names(got, ref):
    expect_equal(got["shapes"], ref["shapes"], "the state_dict keys and shapes differ from the contract", _SHAPES_2_1)
    expect_equal(
        got["parameter_names"],
        ref["parameter_names"],
        "named_parameters() does not list exactly weight, bias and custom_param",
        _SHAPES_2_1,
    )


def _judge_custom_structure(got, ref):
    expect_true(
        got["is_module"],
        "CustomLayer(...) does not create an nn.Module.",
        hint="write `class CustomLayer(nn.Module)` and call super().__init__() first in __init__.",
    )
    _judge_custom_names(got, ref)
    frozen = sorted(n for n, flag in got["requires_grad"].items() if not flag)
    expect_equal(
        frozen,
        [],
        "some parameters do not require gradients",
        "nn.Parameter(t) requires grad by default; do not pass requires_grad=False.",
    )
    expect_close(
        got["values"].get("bias"),
        ref["values"]["bias"],
        "the initial bias",
        "bias starts at zeros: nn.Parameter(torch.zeros(out_features)).",
    )
    expect_close(
        got["values"].get("custom_param"),
        ref["values"]["custom_param"],
        "the initial custom_param",
        "custom_param starts at ones: self.register_parameter('custom_param', nn.Parameter(torch.ones(out_features))).",
    )
    if "weight_mean" in ref:
        mean, std = got.get("weight_mean"), got.get("weight_std")
        ok = mean is not None and abs(mean) < 0.15 and 0.85 < std < 1.15
        expect_true(
            ok,
            "the initial weight does not look standard normal (mean 0, standard deviation 1)",
            hint="draw it with torch.randn(in_features, out_features).",
            got={"mean": mean, "std": std},
            expected={"mean": 0.0, "std": 1.0},
        )


@ex2_1.test("structure")
def custom_layer_structure(CustomLayer):
    return _custom_layer_structure(CustomLayer, vary(40, range(32, 57), 101), vary(30, range(20, 32), 102))


custom_layer_structure.judge(_judge_custom_structure)


def _custom_layer_forward(CustomLayer, n_in, n_out, seed, batches):
    layer = CustomLayer(n_in, n_out)
    data = {"shapes": state_shapes(layer), "parameter_names": sorted(n for n, _ in layer.named_parameters())}
    load_seeded(layer, seed)
    for i, n in enumerate(batches):
        data[f"batch{n}"] = output_and_grads(layer, randn(n, n_in, seed=seed + 1 + i, scale=2.0))
    return data


def _judge_custom_forward(got, ref):
    _judge_custom_names(got, ref)
    for key in ref:
        if key.startswith("batch"):
            expect_close(
                got[key]["output"],
                ref[key]["output"],
                f"the output for a batch of {key[5:]} (seeded weight, bias and custom_param)",
                _FWD_2_1,
            )
            for name, grad in ref[key]["grads"].items():
                expect_close(got[key]["grads"].get(name), grad, f"the gradient of {name}", _FWD_2_1)


@ex2_1.test("forward")
def custom_layer_forward(CustomLayer):
    return _custom_layer_forward(CustomLayer, 5, 3, seed=111, batches=(4,))


custom_layer_forward.judge(_judge_custom_forward)


@ex2_1.test("hidden")
def custom_layer_hidden(CustomLayer):
    data = {
        "structure": _custom_layer_structure(CustomLayer, 1, vary(7, range(5, 10), 103)),
        "wide": _custom_layer_structure(CustomLayer, vary(64, range(56, 73), 104), vary(48, range(40, 56), 105)),
        "narrow_forward": _custom_layer_forward(CustomLayer, 1, vary(6, range(4, 9), 106), seed=112, batches=(1, 3)),
        "tall_forward": _custom_layer_forward(CustomLayer, vary(7, range(6, 10), 107), 2, seed=113, batches=(5,)),
    }
    layer = CustomLayer(3, 2).to(device).to(torch.float64)
    data["dtypes_after_to"] = {n: str(p.dtype) for n, p in layer.named_parameters()}
    return data


@custom_layer_hidden.judge
def _(got, ref):
    _judge_custom_structure(got["structure"], ref["structure"])
    _judge_custom_structure(got["wide"], ref["wide"])
    _judge_custom_forward(got["narrow_forward"], ref["narrow_forward"])
    _judge_custom_forward(got["tall_forward"], ref["tall_forward"])
    expect_equal(
        got["dtypes_after_to"],
        ref["dtypes_after_to"],
        "after layer.to(torch.float64) the parameters have the wrong dtypes",
        "only registered parameters follow .to(): keep all three as nn.Parameter attributes.",
    )


# --------------------------------------------------------------------- ex2_2
# Misreadings: statistics as plain tensors or as non-persistent buffers (named_buffers, state_dict,
# a fresh module after load_state_dict); biased variance in running_var, or unbiased variance in the
# normalisation (batches of 2 and 8: n / (n - 1) is large); batch statistics in eval mode, or running
# stats updated in eval mode (seeded running stats, two eval calls); batch statistics detached (the
# gradient with respect to the input); stats updated with autograd tracking (requires_grad of the
# buffers); momentum the wrong way round, or hard-coded 0.1 / eps hard-coded 1e-5 (momentum=0.3 and
# eps=0.5 by keyword, 0.05 and 1e-3 positionally); another default eps (running variances of 1e-5
# and 4e-5 with the defaults); eps outside the square root (eps=0.5);
# nn.BatchNorm1d or F.batch_norm used instead of the computation asked for (refused by the policy:
# deny=...).
ex2_2 = exercise(
    "ex2_2_standardize",
    CHAPTER,
    deny=(
        "batch_norm",
        "native_batch_norm",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "LazyBatchNorm1d",
        "LazyBatchNorm2d",
        "LazyBatchNorm3d",
        "SyncBatchNorm",
    ),
)
_STATS = ("running_mean", "running_var")


def _stat(module, name):
    value = getattr(module, name, None)
    return value.detach().clone() if isinstance(value, torch.Tensor) else None


@ex2_2.test("buffers")
def standardize_buffers(Standardize):
    m = Standardize(5)
    data = {
        "is_module": isinstance(m, nn.Module),
        "parameters": sorted(n for n, _ in m.named_parameters()),
        "buffers": {n: b.detach().clone() for n, b in m.named_buffers() if n in _STATS},
        "state_keys": sorted(m.state_dict()),
        "attributes": {n: _stat(m, n) for n in _STATS},
    }
    m.to(torch.float64)
    data["dtypes_after_to"] = {n: str(b.dtype) for n, b in m.named_buffers() if n in _STATS}
    return data


@standardize_buffers.judge
def _(got, ref):
    expect_true(
        got["is_module"],
        "Standardize(...) does not create an nn.Module.",
        hint="write `class Standardize(nn.Module)` and call super().__init__() first.",
    )
    expect_equal(
        got["parameters"],
        [],
        "Standardize should have no parameters (nothing in it is learned)",
        "keep the statistics as buffers: self.register_buffer('running_mean', torch.zeros(num_features)).",
    )
    for name in _STATS:
        if name not in got["buffers"]:
            plain = got["attributes"].get(name) is not None
            raise Mistake(
                f"{name} is not a registered buffer" + (" (it is a plain tensor attribute)" if plain else ""),
                got=sorted(got["buffers"]),
                expected=list(_STATS),
                hint=f"self.register_buffer('{name}', ...) files it in _buffers, so state_dict() saves "
                "it and .to() moves it; a plain tensor attribute gets neither.",
            )
        expect_true(
            name in got["state_keys"],
            f"{name} is missing from state_dict()",
            hint="register it as a persistent buffer (the default; do not pass persistent=False).",
            got=got["state_keys"],
        )
        expect_close(
            got["buffers"][name],
            ref["buffers"][name],
            f"the initial {name}",
            "running_mean starts at zeros(num_features) and running_var at ones(num_features).",
        )
        expect_equal(
            got["dtypes_after_to"].get(name),
            "torch.float64",
            f"after .to(torch.float64) the buffer {name} is not float64",
        )


def _standardize_make(Standardize, nf, args, kwargs):
    return Standardize(nf, *args, **kwargs).to(device)


def _standardize_train(m, nf, n, seed, steps):
    """Training-mode steps: outputs, input gradients and running stats after each step."""
    g = generator(seed)
    offsets = torch.randn(nf, generator=g) * 2
    m.train()
    data = []
    for _ in range(steps):
        x = (torch.randn(n, nf, generator=g) * 2.5 + offsets).to(device).requires_grad_()
        weights = torch.randn(n, nf, generator=g).to(device)
        out = m(x)
        step = {"output": out.detach()}
        if tuple(out.shape) == (n, nf):
            (out * weights).sum().backward()
            step["input_grad"] = x.grad.clone() if x.grad is not None else None
        step.update({name: _stat(m, name) for name in _STATS})
        step["stats_tracked"] = sorted(
            name for name in _STATS if getattr(getattr(m, name, None), "requires_grad", False)
        )
        data.append(step)
    return data


def _standardize_eval(m, nf, n, seed, set_stats=True):
    """Eval mode (optionally with seeded running stats): output, input gradient, stats after two calls."""
    g = generator(seed)
    if set_stats:
        mean, var = torch.randn(nf, generator=g), torch.rand(nf, generator=g) * 3 + 0.2
        with torch.no_grad():
            for name, value in zip(_STATS, (mean, var)):
                target = getattr(m, name, None)
                if not isinstance(target, torch.Tensor):
                    return {"missing": name}
                target.copy_(value)
    before = {name: _stat(m, name) for name in _STATS}
    m.eval()
    x = (torch.randn(n, nf, generator=g) * 2 + 1).to(device).requires_grad_()
    out = m(x)
    data = {"output": out.detach(), "before": before}
    if tuple(out.shape) == (n, nf):
        (out * torch.randn(n, nf, generator=g).to(device)).sum().backward()
        data["input_grad"] = x.grad.clone() if x.grad is not None else None
    data["second_output"] = m(x).detach()
    data["after"] = {name: _stat(m, name) for name in _STATS}
    return data


_HINTS_2_2 = {
    "output": "in training mode normalise with the batch's own statistics: "
    "(x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps).",
    "input_grad": "gradients must flow through the batch mean and variance: do not .detach() them or "
    "compute them under torch.no_grad() (only the running-stat update goes there).",
    "running_mean": "running_mean = (1 - momentum) * running_mean + momentum * batch_mean, "
    "updated in place under torch.no_grad().",
    "running_var": "running_var = (1 - momentum) * running_var + momentum * unbiased_batch_var — "
    "x.var(0, unbiased=True) here, although the normalisation itself uses the biased variance.",
}


def _judge_train(got, ref, label):
    expect_equal(len(got), len(ref), f"{label}: wrong number of steps")
    for i, (g, r) in enumerate(zip(got, ref)):
        where = f"{label}, training step {i + 1}"
        expect_close(g["output"], r["output"], f"{where}: the output", _HINTS_2_2["output"])
        expect_close(
            g.get("input_grad"),
            r["input_grad"],
            f"{where}: the gradient with respect to the input",
            _HINTS_2_2["input_grad"],
        )
        for name in _STATS:
            expect_close(g[name], r[name], f"{where}: {name} after the step", _HINTS_2_2[name])
        expect_equal(
            g.get("stats_tracked"),
            [],
            f"{where}: the running statistics require grad (they have "
            "become part of the autograd graph, which then grows with every batch)",
            "update the running statistics under torch.no_grad() (or from detached batch statistics).",
        )


def _judge_eval(got, ref, label):
    if got.get("missing"):
        raise Mistake(
            f"{label}: the module has no attribute {got['missing']}",
            hint="name the buffers exactly running_mean and running_var.",
        )
    hint = (
        "in eval mode (self.training is False) normalise with the running statistics: "
        "(x - running_mean) / torch.sqrt(running_var + eps)."
    )
    for name in _STATS:
        expect_close(
            got["after"][name],
            got["before"][name],
            f"{label}: {name} after two calls in eval() mode",
            "eval mode must not update the running statistics: update them only when self.training.",
        )
    expect_close(got["output"], ref["output"], f"{label}: the output in eval() mode", hint)
    expect_close(
        got.get("input_grad"),
        ref["input_grad"],
        f"{label}: the gradient with respect to the input in eval() mode",
        hint,
    )
    expect_close(
        got["second_output"],
        got["output"],
        f"{label}: a second eval() call on the same input",
        "eval mode must not update the running statistics.",
    )


@ex2_2.test("train")
def standardize_train(Standardize):
    m = _standardize_make(Standardize, 4, (), {})
    return {"steps": _standardize_train(m, 4, 8, seed=221, steps=2)}


@standardize_train.judge
def _(got, ref):
    _judge_train(got["steps"], ref["steps"], "Standardize(4)")


@ex2_2.test("eval")
def standardize_eval(Standardize):
    return _standardize_eval(_standardize_make(Standardize, 4, (), {}), 4, 6, seed=222)


@standardize_eval.judge
def _(got, ref):
    _judge_eval(got, ref, "Standardize(4)")


@ex2_2.test("hidden")
def standardize_hidden(Standardize):
    data = {}
    # keyword arguments, a large eps (where eps goes matters), the smallest batch N = 2
    m = _standardize_make(Standardize, 3, (), {"momentum": 0.3, "eps": 0.5})
    data["kw_train"] = _standardize_train(m, 3, 2, seed=231, steps=3)
    data["kw_eval"] = _standardize_eval(m, 3, 4, seed=232, set_stats=False)
    # the running stats travel through state_dict into a fresh module
    fresh = _standardize_make(Standardize, 3, (), {"momentum": 0.3, "eps": 0.5})
    fresh.load_state_dict(m.state_dict())
    data["reloaded_eval"] = _standardize_eval(fresh, 3, 4, seed=232, set_stats=False)
    # positional arguments, one feature
    m = _standardize_make(Standardize, 1, (0.05, 1e-3), {})
    data["positional_train"] = _standardize_train(m, 1, 6, seed=233, steps=2)
    data["positional_eval"] = _standardize_eval(m, 1, 3, seed=234, set_stats=False)
    data["n_parameters"] = sum(p.numel() for p in m.parameters())
    # the default eps (1e-5) matters when a running variance is of its order
    m = _standardize_make(Standardize, 2, (), {})
    with torch.no_grad():
        for name, value in zip(_STATS, (torch.tensor([0.5, -1.0]), torch.tensor([1e-5, 4e-5]))):
            target = getattr(m, name, None)
            if isinstance(target, torch.Tensor) and target.shape == value.shape:
                target.copy_(value)
    m.eval()
    data["default_eps"] = m(torch.tensor([[0.51, -0.99], [0.49, -1.02], [0.5, -1.0]]).to(device)).detach()
    return data


@standardize_hidden.judge
def _(got, ref):
    expect_equal(got["n_parameters"], 0, "Standardize should have no parameters")
    _judge_train(got["kw_train"], ref["kw_train"], "Standardize(3, momentum=0.3, eps=0.5), batches of 2")
    _judge_eval(got["kw_eval"], ref["kw_eval"], "Standardize(3, momentum=0.3, eps=0.5) after training")
    try:
        _judge_eval(got["reloaded_eval"], ref["reloaded_eval"], "a fresh Standardize after load_state_dict")
    except Mistake as m:
        m.hint = (
            "the running statistics must be persistent buffers, so that state_dict() saves them and "
            "load_state_dict() restores them."
        )
        raise
    _judge_train(got["positional_train"], ref["positional_train"], "Standardize(1, 0.05, 1e-3)")
    _judge_eval(got["positional_eval"], ref["positional_eval"], "Standardize(1, 0.05, 1e-3) after training")
    expect_close(
        got["default_eps"],
        ref["default_eps"],
        "Standardize(2) in eval mode, with running variances 1e-5 and 4e-5",
        hint="keep the default eps=1e-5 and add it to the variance under the square root.",
    )


# --------------------------------------------------------------------- ex2_3
# Misreadings: type(m) == nn.Linear (a subclass of nn.Linear, at the root and inside a model);
# bias filled without checking for None (Linear layers with bias=False); new Parameter objects
# instead of in-place filling (Parameter identity, and an optimizer built before); xavier_normal_,
# kaiming or a gain (max |w| / bound and std over 128 x 8 weights); bias zeroed or another constant
# (bias values); every module with a weight (Embedding, Conv1d, LayerNorm, BatchNorm1d, Bilinear, a
# buffer and a bare Parameter must stay as they were); only the children of m visited, so a Linear
# given directly is skipped (initialize_weights called on single layers).
ex2_3 = exercise("ex2_3_init_weights", CHAPTER)


class _MyLinear(nn.Linear):
    """A subclass of nn.Linear: still a Linear."""


class _Mixed(nn.Module):
    """Linear layers (one a subclass, one without bias) among modules that must stay untouched."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 8, 3)
        self.norm = nn.LayerNorm(8)
        self.bn = nn.BatchNorm1d(8)
        self.body = nn.Sequential(
            nn.Linear(8, 128), nn.ReLU(), _MyLinear(128, 16), nn.Tanh(), nn.Linear(16, 16, bias=False)
        )
        self.pair = nn.Bilinear(16, 16, 4)
        self.register_buffer("scale", torch.full((4,), 2.0))
        self.gain = nn.Parameter(torch.ones(4))


def _linear_stats(layer):
    w = layer.weight.detach().double()
    fan_out, fan_in = w.shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return {
        "max_ratio": (w.abs().max() / bound).item(),
        "std_ratio": (w.std() / (bound / math.sqrt(3.0))).item(),
        "mean_ratio": (w.mean() / bound).item(),
        "bias": None if layer.bias is None else layer.bias.detach().clone(),
        "requires_grad": bool(layer.weight.requires_grad),
    }


def _apply_probe(initialize_weights, model, direct=False):
    model.to(device)
    linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    params_before = {n: p for n, p in model.named_parameters()}
    others_before = {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not any(k.startswith(ln + ".") or (ln == "" and "." not in k) for ln in linear_names)
    }
    if direct:
        initialize_weights(model)
    else:
        model.apply(initialize_weights)
    modules = dict(model.named_modules())
    params_after = dict(model.named_parameters())
    state_after = model.state_dict()
    return {
        "linears": {n or "(root)": _linear_stats(modules[n]) for n in linear_names},
        "replaced": sorted(n for n, p in params_before.items() if params_after.get(n) is not p),
        "others_changed": sorted(
            k for k, v in others_before.items() if k not in state_after or not torch.equal(state_after[k], v)
        ),
    }


def _judge_apply(got, ref, label):
    expect_equal(
        got["replaced"],
        [],
        f"{label}: some Parameter objects were replaced instead of filled",
        "fill the existing tensors in place (nn.init.xavier_uniform_(m.weight), nn.init.constant_("
        "m.bias, 0.01)); assigning m.weight = nn.Parameter(...) strands any optimizer built earlier.",
    )
    expect_equal(
        got["others_changed"],
        [],
        f"{label}: modules other than nn.Linear were changed",
        "touch only modules for which isinstance(m, nn.Linear) is true (model.apply calls you on "
        "every module, so the test belongs in initialize_weights).",
    )
    expect_equal(sorted(got["linears"]), sorted(ref["linears"]), f"{label}: unexpected layers")
    for name, r in ref["linears"].items():
        g = got["linears"][name]
        where = f"{label}: the Linear '{name}'"
        ok = 0.95 <= g["max_ratio"] <= 1.0 + 1e-5 and 0.85 <= g["std_ratio"] <= 1.15 and abs(g["mean_ratio"]) < 0.2
        expect_true(
            ok,
            f"{where} does not have xavier-uniform weights (values spread evenly over "
            "[-a, a] with a = sqrt(6 / (fan_in + fan_out)))",
            hint="nn.init.xavier_uniform_(m.weight) — not xavier_normal_, not kaiming, no gain; "
            "a subclass of nn.Linear needs it too: test with isinstance, not type(m) == nn.Linear.",
            got={"max|w| / a": g["max_ratio"], "std / (a/√3)": g["std_ratio"]},
            expected={"max|w| / a": "just below 1", "std / (a/√3)": 1.0},
        )
        expect_true(
            g["requires_grad"],
            f"{where}: the weight no longer requires grad",
            hint="initialise the values; do not change requires_grad.",
        )
        expect_close(
            g["bias"],
            r["bias"],
            f"{where}: the bias",
            "fill the bias with 0.01 (nn.init.constant_(m.bias, 0.01)) when m.bias is not None.",
        )


@ex2_3.test("xavier")
def init_weights_xavier(initialize_weights):
    net = nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 16), nn.ReLU(), nn.Linear(16, 16))
    return _apply_probe(initialize_weights, net)


@init_weights_xavier.judge
def _(got, ref):
    _judge_apply(got, ref, "Sequential(Linear, ReLU, Linear, ReLU, Linear)")


@ex2_3.test("in_place")
def init_weights_in_place(initialize_weights):
    net = nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 16)).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    before = {n: p for n, p in net.named_parameters()}
    net.apply(initialize_weights)
    after = dict(net.named_parameters())
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return {
        "replaced": sorted(n for n, p in before.items() if after.get(n) is not p),
        "not_in_optimizer": sorted(n for n, p in after.items() if id(p) not in held),
    }


@init_weights_in_place.judge
def _(got, ref):
    expect_equal(
        got["replaced"],
        [],
        "model.apply(initialize_weights) replaced Parameter objects",
        "fill the existing tensors in place with the nn.init functions (their names end in _); "
        "m.weight = nn.Parameter(...) makes a new object that an optimizer built earlier never sees.",
    )
    expect_equal(
        got["not_in_optimizer"],
        [],
        "an optimizer built before the initialisation no longer holds "
        "these parameters, so optimizer.step() would not train them",
        "initialise in place (nn.init.xavier_uniform_(m.weight)) instead of assigning new Parameters.",
    )


@ex2_3.test("hidden")
def init_weights_hidden(initialize_weights):
    data = {
        "mixed": _apply_probe(initialize_weights, _Mixed()),
        "direct": _apply_probe(initialize_weights, nn.Linear(64, 32), direct=True),
        "direct_subclass": _apply_probe(initialize_weights, _MyLinear(32, 64, bias=False), direct=True),
    }
    for name, module in {"relu": nn.ReLU(), "conv": nn.Conv1d(4, 4, 2), "bilinear": nn.Bilinear(3, 3, 2)}.items():
        data[name] = _apply_probe(initialize_weights, module, direct=True)
    return data


@init_weights_hidden.judge
def _(got, ref):
    _judge_apply(
        got["mixed"],
        ref["mixed"],
        "a model mixing Linear layers (a subclass, one without bias) "
        "with Embedding, Conv1d, LayerNorm, BatchNorm1d and Bilinear",
    )
    _judge_apply(got["direct"], ref["direct"], "initialize_weights(nn.Linear(64, 32)) called directly")
    _judge_apply(
        got["direct_subclass"],
        ref["direct_subclass"],
        "initialize_weights called directly on a subclass of nn.Linear without bias",
    )
    for name in ("relu", "conv", "bilinear"):
        _judge_apply(got[name], ref[name], f"initialize_weights called directly on a {name} module")


# --------------------------------------------------------------------- ex2_4
# Misreadings: the output layer left out (every parameter must be in exactly one group); learning
# rates the wrong way round, or layer1's lr hard-coded to 0.01 (base_lr=0.05 and 0.02 in the hidden
# probe); momentum forgotten; weight decay, nesterov or dampening added (parameters after three
# steps with fixed gradients); Adam or another optimizer (the type); base_lr only by position or
# only by keyword (both calls); only layer1.weight in the fast group (lr of layer1.bias).
ex2_4 = exercise("ex2_4_param_groups", CHAPTER)


class _SimpleNet(nn.Module):
    """The chapter's SimpleNet (the probe's own copy: the learner's kernel is never relied on)."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.output(torch.relu(self.layer2(torch.relu(self.layer1(x)))))


_NOT_GIVEN = object()


def _groups_probe(make_optimizer, sizes, base_lr=_NOT_GIVEN, positional=False, steps=0):
    reseed(sum(sizes))
    model = _SimpleNet(*sizes).to(device)
    if base_lr is _NOT_GIVEN:
        optimizer = make_optimizer(model)
    elif positional:
        optimizer = make_optimizer(model, base_lr)
    else:
        optimizer = make_optimizer(model, base_lr=base_lr)
    data = {"is_sgd": isinstance(optimizer, torch.optim.SGD), "type": type(optimizer).__name__}
    if not isinstance(optimizer, torch.optim.Optimizer):
        return data
    groups = optimizer.param_groups
    own = {id(p) for p in model.parameters()}
    data["foreign"] = sum(1 for group in groups for p in group["params"] if id(p) not in own)
    params = {}
    for name, p in model.named_parameters():
        found = [group for group in groups for q in group["params"] if q is p]
        params[name] = {
            "groups": len(found),
            "lr": float(found[0]["lr"]) if found else None,
            "momentum": float(found[0].get("momentum", 0.0)) if found else None,
        }
    data["params"] = params
    if steps:
        g = generator(sum(sizes) + 7)
        for _ in range(steps):
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=g).to(device)
            optimizer.step()
        data["after_steps"] = {n: p.detach().clone() for n, p in model.named_parameters()}
    return data


def _judge_groups(got, ref, label):
    expect_true(
        got["is_sgd"],
        f"{label} did not return a torch.optim.SGD",
        hint="return torch.optim.SGD([...groups...], lr=base_lr, momentum=0.9).",
        got=got["type"],
    )
    expect_equal(
        got.get("foreign"),
        0,
        f"{label}: the optimizer holds tensors that are not the model's parameters",
        "build the groups from the model you are given (model.layer1.parameters(), ...).",
    )
    for name, r in ref["params"].items():
        g = got["params"][name]
        if g["groups"] == 0:
            raise Mistake(
                f"{label}: the parameter {name} is in no parameter group, so optimizer.step() never updates it",
                hint="every parameter must be in exactly one group: layer1's in one, all the "
                "others (layer2 and output) at base_lr — the output layer must train too.",
            )
        expect_equal(g["groups"], 1, f"{label}: the parameter {name} is in several groups")
        if not math.isclose(g["lr"], r["lr"], rel_tol=1e-6):
            raise Mistake(
                f"{label}: the learning rate of {name} is wrong",
                got=g["lr"],
                expected=r["lr"],
                hint="layer1's parameters use 10 * base_lr, every other parameter base_lr.",
            )
        if not math.isclose(g["momentum"], r["momentum"], rel_tol=1e-6):
            raise Mistake(
                f"{label}: the momentum of {name} is wrong",
                got=g["momentum"],
                expected=r["momentum"],
                hint="pass momentum=0.9 to torch.optim.SGD (it applies to every group).",
            )


@ex2_4.test("groups")
def param_groups_groups(make_optimizer):
    return {"default": _groups_probe(make_optimizer, (6, 8, 3))}


@param_groups_groups.judge
def _(got, ref):
    _judge_groups(got["default"], ref["default"], "make_optimizer(model)")


@ex2_4.test("hidden")
def param_groups_hidden(make_optimizer):
    return {
        "keyword": _groups_probe(make_optimizer, (3, 5, 2), base_lr=0.05, steps=3),
        "positional": _groups_probe(make_optimizer, (4, 4, 4), 0.02, positional=True),
    }


@param_groups_hidden.judge
def _(got, ref):
    _judge_groups(got["keyword"], ref["keyword"], "make_optimizer(model, base_lr=0.05)")
    _judge_groups(got["positional"], ref["positional"], "make_optimizer(model, 0.02)")
    for name, value in ref["keyword"]["after_steps"].items():
        expect_close(
            got["keyword"]["after_steps"].get(name),
            value,
            f"make_optimizer(model, base_lr=0.05): {name} after three steps with fixed gradients",
            "plain SGD with momentum=0.9: no weight decay, dampening or nesterov were asked for.",
        )


# --------------------------------------------------------------------- ex2_5
# Misreadings: "contains" instead of "starts with" (prefix "weight": every name contains it, none
# starts with it); a single string iterated letter by letter ('layer1' as l, a, y, ...: everything
# starting with those letters freezes); only the first dotted component compared
# (name.split(".")[0]: prefix "blocks.1" never matches); a module boundary required
# (startswith(prefix + "."): prefix "stem.weight" is a whole name); non-matching parameters unfrozen
# (pre-frozen parameters that must stay frozen); only newly frozen parameters counted (the count with
# pre-frozen matches); a generator consumed by the first parameter (a generator of prefixes); flags
# set on state_dict() tensors (detached copies: requires_grad of the real parameters); a set, a
# tuple, an empty list, no match.
ex2_5 = exercise("ex2_5_freeze", CHAPTER)


def _stack_names() -> dict[str, str]:
    """The hidden check's attribute names: fixed in a notebook, drawn per grading run."""
    return {
        "stem": vary("stem", ["stem", "embed", "inlet"], 601),
        "blocks": vary("blocks", ["blocks", "stages", "layers"], 602),
        "norm": vary("norm", ["norm", "bn", "normalize"], 603),
        "head": vary("head", ["head", "classifier", "out"], 604),
        "temperature": vary("temperature", ["temperature", "scale", "gain"], 605),
    }


class _Stack(nn.Module):
    def __init__(self, names: dict[str, str]):
        super().__init__()
        setattr(self, names["stem"], nn.Linear(3, 4))
        setattr(self, names["blocks"], nn.ModuleList([nn.Linear(4, 4) for _ in range(3)]))
        setattr(self, names["norm"], nn.BatchNorm1d(4))
        setattr(self, names["head"], nn.Linear(4, 2))
        setattr(self, names["temperature"], nn.Parameter(torch.ones(1)))


def _freeze_case(freeze, model, prefixes, pre_frozen=()):
    for name, p in model.named_parameters():
        if name in pre_frozen:
            p.requires_grad_(False)
    returned = freeze(model, prefixes)
    return {
        "returned": returned if _is_int(returned) else repr(returned),
        "returned_is_int": _is_int(returned),
        "requires_grad": {n: bool(p.requires_grad) for n, p in model.named_parameters()},
    }


def _judge_freeze(got, ref, label):
    wrong = sorted(n for n in ref["requires_grad"] if got["requires_grad"].get(n) != ref["requires_grad"][n])
    expect_equal(
        {n: got["requires_grad"].get(n) for n in wrong},
        {n: ref["requires_grad"][n] for n in wrong},
        f"{label}: requires_grad is wrong for {', '.join(wrong)}",
        "loop over model.named_parameters() and call p.requires_grad_(False) when name.startswith("
        "prefix) for one of the prefixes (a single string is one prefix, not a list of letters); "
        "leave every other parameter as it was (state_dict() tensors are detached copies: changing "
        "them does nothing).",
    )
    expect_true(got["returned_is_int"], f"{label}: freeze should return a Python int", got=got["returned"])
    expect_equal(
        got["returned"],
        ref["returned"],
        f"{label}: the returned count differs",
        "return the number of parameters whose name matched, already frozen ones included.",
    )


@ex2_5.test("basic")
def freeze_basic(freeze):
    return {
        "string": _freeze_case(freeze, _SimpleNet(4, 6, 2), "layer1"),
        "list": _freeze_case(freeze, _SimpleNet(4, 6, 2), ["layer1", "output"]),
    }


@freeze_basic.judge
def _(got, ref):
    _judge_freeze(got["string"], ref["string"], "freeze(net, 'layer1')")
    _judge_freeze(got["list"], ref["list"], "freeze(net, ['layer1', 'output'])")


@ex2_5.test("hidden")
def freeze_hidden(freeze):
    n = _stack_names()
    return {
        "generator": _freeze_case(freeze, _Stack(n), (p for p in [f"{n['blocks']}.1", n["head"]])),
        "tuple": _freeze_case(freeze, _Stack(n), (f"{n['stem']}.weight", n["norm"])),
        "set": _freeze_case(freeze, _Stack(n), {n["blocks"]}),
        "already_frozen": _freeze_case(
            freeze, _Stack(n), f"{n['blocks']}.0", pre_frozen=(f"{n['blocks']}.0.bias", f"{n['head']}.weight")
        ),
        # a second already-frozen case, so that an answer special-casing one of them gains nothing
        "already_frozen_head": _freeze_case(
            freeze, _Stack(n), [n["head"], f"{n['stem']}.bias"], pre_frozen=(f"{n['head']}.weight",)
        ),
        "empty": _freeze_case(freeze, _Stack(n), [], pre_frozen=(f"{n['stem']}.bias",)),
        "no_match": _freeze_case(freeze, _Stack(n), "decoder"),
        # a name that contains the prefix without starting with it: "starts with", not "contains"
        "inner_match": _freeze_case(freeze, _Stack(n), "weight"),
    }


@freeze_hidden.judge
def _(got, ref):
    for key, label in [
        ("generator", "freeze(net, a generator of 'blocks.1' and 'head')"),
        ("tuple", "freeze(net, ('stem.weight', 'norm'))"),
        ("set", "freeze(net, {'blocks'})"),
        ("already_frozen", "freeze(net, 'blocks.0') with blocks.0.bias and head.weight already frozen"),
        ("already_frozen_head", "freeze(net, ['head', 'stem.bias']) with head.weight already frozen"),
        ("empty", "freeze(net, []) with stem.bias already frozen"),
        ("no_match", "freeze(net, 'decoder') (no name matches)"),
        ("inner_match", "freeze(net, 'weight') (names contain it, none starts with it)"),
    ]:
        _judge_freeze(got[key], ref[key], label)


# --------------------------------------------------------------------- ex2_6
# Misreadings: no shape check (head.weight (3, 8) vs (5, 8): load_state_dict raises); shapes compared
# by number of elements or first dimension (a (3, 2) weight against a (2, 3) one: same numel);
# keys unsorted (the order of state_dict is not sorted in _Pretrained); parameters only, buffers
# forgotten (BatchNorm's running stats and num_batches_tracked); dst's state_dict changed but never
# loaded, or new Parameter objects assigned (dst's values and Parameter identity); every src key
# returned (keys only in src); dst aliasing src's tensors (src changed afterwards); the copy made in
# the wrong direction (src must not change); requires_grad of dst's frozen parameters changed;
# named_parameters() + named_buffers() instead of state_dict(), which also copies non-persistent
# buffers (_Cached: a 'cache' buffer of the same shape, persistent=False, in src and dst).
ex2_6 = exercise("ex2_6_copy_matching", CHAPTER)


class _Pretrained(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)
        self.extra = nn.Linear(2, 2)


class _FineTuned(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 5)  # same keys as in _Pretrained, other shapes
        self.adapter = nn.Linear(5, 5)  # only here
        self.register_buffer("scale", torch.ones(5))  # a buffer only here
        self.register_buffer("cache", torch.ones(2), persistent=False)


class _Cached(nn.Module):
    """A Linear beside a non-persistent buffer: not a state_dict entry, so never copied."""

    def __init__(self, fill):
        super().__init__()
        self.proj = nn.Linear(3, 3)
        self.register_buffer("cache", torch.full((3,), float(fill)), persistent=False)


def _seed_state(module, seed):
    """Seeded values for every state_dict entry (integer buffers such as num_batches_tracked get ``seed``)."""
    g = generator(seed)
    state = {}
    for key, value in sorted(module.state_dict().items()):
        if value.is_floating_point():
            state[key] = torch.randn(tuple(value.shape), generator=g) * 0.5
        else:
            state[key] = torch.full(tuple(value.shape), seed, dtype=value.dtype)
    module.load_state_dict(state)
    return module.to(device)


def _copy_probe(copy_matching_weights, src, dst, frozen=()):
    for name, p in dst.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    src_before = {k: v.clone() for k, v in src.state_dict().items()}
    dst_params = dict(dst.named_parameters())
    returned = copy_matching_weights(src, dst)
    returned_ok = isinstance(returned, list) and all(isinstance(k, str) for k in returned)
    src_after = src.state_dict()
    dst_after = {k: v.clone() for k, v in dst.state_dict().items()}
    data = {
        "returned": list(returned) if returned_ok else repr(returned),
        "returned_is_list": returned_ok,
        "dst_state": dst_after,
        "dst_buffers": {n: b.detach().clone() for n, b in dst.named_buffers()},
        "src_changed": sorted(
            k for k, v in src_before.items() if k not in src_after or not torch.equal(src_after[k], v)
        ),
        "replaced": sorted(n for n, p in dst_params.items() if dict(dst.named_parameters()).get(n) is not p),
        "requires_grad": {n: bool(p.requires_grad) for n, p in dst.named_parameters()},
    }
    # would dst notice a later change to src? (state_dict tensors share memory with the module's)
    for value in src.state_dict().values():
        value.add_(1)
    data["aliased"] = sorted(k for k, v in dst.state_dict().items() if not torch.equal(v, dst_after[k]))
    return data


def _judge_copy(got, ref, label):
    expect_true(
        got["returned_is_list"], f"{label}: copy_matching_weights should return a list of str", got=got["returned"]
    )
    if got["returned"] != ref["returned"]:
        if sorted(got["returned"]) == ref["returned"]:
            hint = "return the copied keys sorted: sorted(copied)."
        elif any(
            k in ref["dst_buffers"] and k not in ref["dst_state"] for k in set(got["returned"]) - set(ref["returned"])
        ):
            hint = (
                "only state_dict() entries are copied: a non-persistent buffer (register_buffer(..., "
                "persistent=False)) is not one. Iterate src.state_dict(), not named_parameters() and "
                "named_buffers()."
            )
        elif set(got["returned"]) > set(ref["returned"]):
            hint = (
                "return only the keys actually copied: keys missing from dst, or whose shape differs "
                "there, are skipped."
            )
        else:
            hint = (
                "copy every state_dict() entry (buffers such as BatchNorm's running_mean and "
                "num_batches_tracked included) whose key is in dst.state_dict() with the same shape."
            )
        raise Mistake(f"{label}: the returned keys differ", got=got["returned"], expected=ref["returned"], hint=hint)
    hint = (
        "copy matching entries into dst in place, e.g. dst.load_state_dict({**dst.state_dict(), **matching}) "
        "or dst_state[key].copy_(value) under torch.no_grad(); leave every other entry of dst alone."
    )
    expect_equal(
        sorted(got["dst_state"]), sorted(ref["dst_state"]), f"{label}: the keys of dst.state_dict() changed", hint
    )
    for key, value in ref["dst_state"].items():
        expect_close(got["dst_state"][key], value, f"{label}: dst's '{key}' after copying", hint)
    for key, value in ref["dst_buffers"].items():
        expect_close(got["dst_buffers"].get(key), value, f"{label}: dst's buffer '{key}' after copying", hint)
    expect_equal(
        got["replaced"],
        [],
        f"{label}: some of dst's Parameter objects were replaced",
        "copy values into the existing parameters (load_state_dict does this) instead of assigning "
        "new ones: an optimizer built on dst would be stranded.",
    )
    expect_equal(
        got["requires_grad"],
        ref["requires_grad"],
        f"{label}: requires_grad of dst's parameters changed",
        "copy values only; a frozen parameter of dst stays frozen.",
    )
    expect_equal(
        got["aliased"],
        [],
        f"{label}: dst shares memory with src (changing src afterwards changed dst)",
        "copy the values (load_state_dict or tensor.copy_ do); do not make dst's entries point at src's tensors.",
    )
    expect_equal(got["src_changed"], [], f"{label}: src was modified", "read from src; write only to dst.")


@ex2_6.test("copy")
def copy_matching_copy(copy_matching_weights):
    reseed(0)
    return _copy_probe(copy_matching_weights, _seed_state(_Pretrained(), 261), _seed_state(_FineTuned(), 262))


copy_matching_copy.judge(lambda got, ref: _judge_copy(got, ref, "copy_matching_weights(pretrained, finetuned)"))


@ex2_6.test("hidden")
def copy_matching_hidden(copy_matching_weights):
    reseed(0)
    src_net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    same = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    other = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2), nn.BatchNorm1d(2))
    return {
        "same": _copy_probe(
            copy_matching_weights, _seed_state(src_net, 263), _seed_state(same, 264), frozen=("0.weight",)
        ),
        "partly": _copy_probe(
            copy_matching_weights,
            _seed_state(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), 265),
            _seed_state(other, 266),
        ),
        "reverse": _copy_probe(copy_matching_weights, _seed_state(_FineTuned(), 267), _seed_state(_Pretrained(), 268)),
        "nothing": _copy_probe(
            copy_matching_weights, _seed_state(nn.Linear(2, 3), 269), _seed_state(nn.Sequential(nn.Linear(2, 3)), 270)
        ),
        # '0.weight' is (3, 2) in src and (2, 3) in dst: the same number of elements, another shape
        "transposed": _copy_probe(
            copy_matching_weights,
            _seed_state(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3)), 271),
            _seed_state(nn.Sequential(nn.Linear(3, 2), nn.Linear(3, 3)), 272),
        ),
        # 'cache' is a non-persistent buffer of the same shape in both: not in state_dict, not copied
        "non_persistent": _copy_probe(
            copy_matching_weights, _seed_state(_Cached(2), 273), _seed_state(_Cached(5), 274)
        ),
    }


@copy_matching_hidden.judge
def _(got, ref):
    _judge_copy(got["same"], ref["same"], "two models of the same architecture (one weight of dst frozen)")
    _judge_copy(got["partly"], ref["partly"], "dst with a wider first layer and an extra BatchNorm")
    _judge_copy(got["reverse"], ref["reverse"], "copy_matching_weights(finetuned, pretrained)")
    _judge_copy(got["nothing"], ref["nothing"], "Linear into Sequential(Linear) (no key in common)")
    _judge_copy(
        got["transposed"],
        ref["transposed"],
        "Sequential(Linear(2, 3), Linear(3, 3)) into Sequential(Linear(3, 2), Linear(3, 3)) "
        "('0.weight' has as many elements, in another shape)",
    )
    _judge_copy(
        got["non_persistent"],
        ref["non_persistent"],
        "two models with a non-persistent buffer 'cache' (not a state_dict entry)",
    )


# --------------------------------------------------------------------- ex2_7
# Misreadings: the prefix ignored (state_dict[old] instead of state_dict[prefix + old]: works only
# when the module is the model itself; the submodule checks load through a parent, prefixes "1." and
# "encoder.1."); a new dict built (or returned) instead of editing the one the hook receives (torch
# ignores both: no key is renamed anywhere); the old key copied and left in place (strict loading
# reports it as unexpected); every old key assumed present, so a new-format or half-migrated
# checkpoint raises KeyError (new-format and mixed checkpoints); keys matched with endswith / str.replace
# instead of the exact key prefix + old (a child whose own key ends with the old name: "head.linear.weight"
# beside a renamed "linear.weight"); only the last dotted component compared (dotted renames); the
# renames hard-coded ({"scale": "weight"}: the hidden check draws other old names per grading run);
# load_state_dict replaced on the module instead of a hook (refused by the grading policy; a parent's
# load_state_dict never calls it either, and the probe looks for it); the wrong hook kind:
# register_state_dict_pre_hook (runs when saving) or a load post-hook that clears missing_keys /
# unexpected_keys so nothing is reported but nothing is loaded (the count of load pre-hooks and the
# loaded values); the handle not returned (None, or a list of handles), or not the one that removes
# this hook (loading an old checkpoint after handle.remove() must fail again; removing one module's
# handle must leave another module's hook in place); values changed on the way (.clone() is fine,
# the loaded values are compared).
ex2_7 = exercise("ex2_7_rename_on_load", CHAPTER)


class _Affine(nn.Module):
    """Version 2 of a layer: version 1 stored its two parameters under other names."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        return x * self.weight + self.bias


class _Head(nn.Module):
    """Holds a child still called ``linear``: its keys end with the old name of _Renamed's layer."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)


class _Renamed(nn.Module):
    """Version 2 renamed the submodule ``linear`` to ``proj``; ``head.linear`` kept its name."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 3)
        self.head = _Head()


class _Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 3), _Affine(3))
        self.head = _Affine(3)


def _checkpoint(shapes: dict, seed: int) -> dict:
    """A checkpoint with seeded values, on the CPU (load_state_dict copies across devices)."""
    g = generator(seed)
    return {key: torch.randn(tuple(shape), generator=g) * 0.5 for key, shape in shapes.items()}


def _old_format(checkpoint: dict, prefix: str, renames: dict) -> dict:
    """The same values under the old keys: ``prefix + new`` back to ``prefix + old``."""
    back = {prefix + new: prefix + old for old, new in renames.items()}
    return {back.get(key, key): value for key, value in checkpoint.items()}


def _load_report(model, checkpoint, strict=True) -> dict:
    """What loading did: the error it raised, or the incompatible keys and the model's state after it."""
    try:  # the learner's hooks run inside load_state_dict (and state_dict, if registered there)
        result = model.load_state_dict(dict(checkpoint), strict=strict)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"[:700]}
    return {
        "error": None,
        "missing": sorted(result.missing_keys),
        "unexpected": sorted(result.unexpected_keys),
        "state": state,
    }


def _hook_info(module) -> dict:
    return {
        "load_pre_hooks": len(module._load_state_dict_pre_hooks),
        "shadowed": "load_state_dict" in vars(module),
    }


def _handle_info(handle) -> dict:
    return {
        "is_handle": isinstance(handle, RemovableHandle),
        "handle_type": type(handle).__name__,
    }


def _remove(handle) -> bool:
    if isinstance(handle, RemovableHandle):
        handle.remove()
        return True
    return False


_RENAME_2_7 = (
    "inside the hook, for each (old, new) in renames: if prefix + old is in state_dict, "
    "state_dict[prefix + new] = state_dict.pop(prefix + old) — edit the dict the hook receives "
    "(a new dict, or a returned one, is ignored)."
)


def _hint_for_error(error: str, label: str) -> str:
    if "KeyError" in error:
        return (
            "rename only the old keys that are present (if prefix + old in state_dict): a checkpoint "
            "in the new format, or one migrated halfway, has some old keys missing."
        )
    if "Unexpected key" in error and "Missing key" not in error:
        return (
            "the old key is still in the dict after the hook ran: move the entry with "
            "state_dict.pop(prefix + old), do not copy it, or strict loading rejects the leftover key."
        )
    if "Unexpected key" in error and "Missing key" in error:
        if "prefix" in label:
            return (
                "the keys the hook receives start with `prefix` (the module's place in the model, "
                "such as '1.'): look for prefix + old and write prefix + new; match the whole key, "
                "not its ending. " + _RENAME_2_7
            )
        return "the old keys were not renamed in the dict load_state_dict uses: " + _RENAME_2_7
    return _RENAME_2_7


def _judge_load(got, ref, label, hint=None):
    if ref["error"] is not None:  # the reference refuses this load too: it must fail
        expect_true(
            got["error"] is not None,
            f"{label}: the checkpoint loaded, but it should not",
            hint="after handle.remove() the hook is gone, so old keys are no longer renamed and strict "
            "loading fails: return the handle that register_load_state_dict_pre_hook gave you.",
            got="loaded without error",
            expected="a RuntimeError (missing and unexpected keys)",
        )
        return
    if got["error"] is not None:
        raise Mistake(
            f"{label}: load_state_dict raised",
            got=got["error"],
            expected="the checkpoint loads with strict=True",
            hint=hint or _hint_for_error(got["error"], label),
        )
    expect_equal(
        {"missing": got["missing"], "unexpected": got["unexpected"]},
        {"missing": ref["missing"], "unexpected": ref["unexpected"]},
        f"{label}: the keys load_state_dict reports as incompatible",
        _RENAME_2_7,
    )
    expect_close_dict(
        got["state"],
        ref["state"],
        f"{label}: the model's state after loading",
        "the hook must move each value to its new key unchanged, so that load_state_dict copies it "
        "into the parameter (clearing missing_keys in a post-hook hides the error but loads nothing).",
    )


def _judge_registration(got, ref, label):
    expect_true(
        not got["shadowed"],
        f"{label}: load_state_dict was replaced on the module instead of registering a hook",
        hint="a parent model's load_state_dict never calls its submodules' load_state_dict: use "
        "module.register_load_state_dict_pre_hook(hook).",
    )
    expect_equal(
        got["load_pre_hooks"],
        ref["load_pre_hooks"],
        f"{label}: the number of load_state_dict pre-hooks on the module",
        "register exactly one hook with module.register_load_state_dict_pre_hook(hook) "
        "(register_state_dict_pre_hook runs when saving, and a load post-hook only after the values "
        "were copied: too late to rename anything).",
    )


def _judge_handle(got, label):
    expect_true(
        got["is_handle"],
        f"{label} should return the handle of the hook (a torch.utils.hooks.RemovableHandle)",
        hint="return module.register_load_state_dict_pre_hook(hook).",
        got=got["handle_type"],
        expected="RemovableHandle",
    )


_OLD_NAMES = {"scale": "weight", "shift": "bias"}


@ex2_7.test("top_level")
def rename_top_level(rename_on_load):
    layer = _Affine(3).to(device)
    handle = rename_on_load(layer, dict(_OLD_NAMES))
    data = {"handle": _handle_info(handle), "hooks": _hook_info(layer)}
    new = _checkpoint({"weight": [3], "bias": [3]}, 271)
    data["old"] = _load_report(layer, _old_format(new, "", _OLD_NAMES))
    data["new"] = _load_report(layer, _checkpoint({"weight": [3], "bias": [3]}, 272))
    if _remove(handle):
        data["after_remove"] = _load_report(layer, _old_format(new, "", _OLD_NAMES))
    return data


@rename_top_level.judge
def _(got, ref):
    label = "rename_on_load(layer, {'scale': 'weight', 'shift': 'bias'})"
    _judge_registration(got["hooks"], ref["hooks"], label)
    _judge_load(got["old"], ref["old"], "layer.load_state_dict(an old checkpoint with 'scale' and 'shift')")
    _judge_load(got["new"], ref["new"], "layer.load_state_dict(a new checkpoint with 'weight' and 'bias')")
    _judge_handle(got["handle"], label)
    _judge_load(got["after_remove"], ref["after_remove"], "loading the old checkpoint after handle.remove()")


@ex2_7.test("submodule")
def rename_submodule(rename_on_load):
    model = nn.Sequential(nn.Linear(2, 3), _Affine(3)).to(device)
    handle = rename_on_load(model[1], dict(_OLD_NAMES))
    new = _checkpoint({k: list(v.shape) for k, v in model.state_dict().items()}, 273)
    return {
        "handle": _handle_info(handle),
        "hooks": _hook_info(model[1]),
        "old": _load_report(model, _old_format(new, "1.", _OLD_NAMES)),
        "new": _load_report(model, _checkpoint({k: list(v.shape) for k, v in new.items()}, 274)),
    }


@rename_submodule.judge
def _(got, ref):
    label = "rename_on_load(model[1], {'scale': 'weight', 'shift': 'bias'})"
    _judge_registration(got["hooks"], ref["hooks"], label)
    _judge_handle(got["handle"], label)
    _judge_load(
        got["old"],
        ref["old"],
        "model.load_state_dict(an old checkpoint with '1.scale' and '1.shift'), the layer at prefix '1.'",
    )
    _judge_load(got["new"], ref["new"], "model.load_state_dict(a new checkpoint), the layer at prefix '1.'")


def _shapes(model) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@ex2_7.test("hidden")
def rename_hidden(rename_on_load):
    old_weight = vary("scale", ["scale", "gamma", "gain"], 701)
    old_bias = vary("shift", ["shift", "beta", "offset"], 702)
    renames = {old_weight: "weight", old_bias: "bias"}
    data: dict = {}

    # a hook on the model itself, with dotted keys; head.linear.* end like the old keys but stay
    model = _Renamed().to(device)
    dotted = {"linear.weight": "proj.weight", "linear.bias": "proj.bias"}
    handle = rename_on_load(model, dict(dotted))
    new = _checkpoint(_shapes(model), 275)
    data["dotted"] = _load_report(model, _old_format(new, "", dotted))
    data["dotted_new"] = _load_report(model, _checkpoint(_shapes(model), 276))
    data["dotted_handle"] = _handle_info(handle)
    data["dotted_hooks"] = _hook_info(model)

    # two levels down, and a second instance with its own hook
    deep = _Deep().to(device)
    inner = rename_on_load(deep.encoder[1], dict(renames))
    outer = rename_on_load(deep.head, dict(renames))
    new = _checkpoint(_shapes(deep), 277)
    both_old = _old_format(_old_format(new, "encoder.1.", renames), "head.", renames)
    data["deep"] = _load_report(deep, both_old)
    data["deep_not_strict"] = _load_report(deep, both_old, strict=False)
    # half migrated: one old key and one new key in the same layer
    half = _old_format(_checkpoint(_shapes(deep), 278), "head.", {old_weight: "weight"})
    data["half"] = _load_report(deep, half)
    # removing one handle leaves the other module's hook in place
    _remove(inner)
    only_head_old = _old_format(_checkpoint(_shapes(deep), 279), "head.", renames)
    data["after_inner_removed"] = _load_report(deep, only_head_old)
    data["encoder_old_after_remove"] = _load_report(deep, both_old)
    data["handles"] = [_handle_info(inner), _handle_info(outer)]
    return data


@rename_hidden.judge
def _(got, ref):
    label = "rename_on_load(model, {'linear.weight': 'proj.weight', 'linear.bias': 'proj.bias'})"
    _judge_registration(got["dotted_hooks"], ref["dotted_hooks"], label)
    _judge_handle(got["dotted_handle"], label)
    _judge_load(
        got["dotted"],
        ref["dotted"],
        "renames {'linear.weight': 'proj.weight', 'linear.bias': 'proj.bias'} on the model itself, "
        "whose child head.linear keeps its name",
        hint="rename exactly the keys prefix + old, nothing else: 'head.linear.weight' ends like "
        "'linear.weight' but belongs to another module and keeps its name (compare whole keys, not "
        "endings, and not only the last dotted part). " + _RENAME_2_7,
    )
    _judge_load(got["dotted_new"], ref["dotted_new"], "the same model, a new-format checkpoint")
    for info in got["handles"]:
        _judge_handle(info, "rename_on_load(deep.encoder[1], ...)")
    _judge_load(
        got["deep"],
        ref["deep"],
        "old keys in two layers, at prefixes 'encoder.1.' and 'head.' (one rename_on_load each)",
    )
    _judge_load(got["deep_not_strict"], ref["deep_not_strict"], "the same old checkpoint with strict=False")
    _judge_load(got["half"], ref["half"], "a half-migrated checkpoint (one old and one new key in 'head.')")
    _judge_load(
        got["after_inner_removed"],
        ref["after_inner_removed"],
        "after removing the handle of encoder[1], an old checkpoint for 'head.' only",
    )
    _judge_load(
        got["encoder_old_after_remove"],
        ref["encoder_old_after_remove"],
        "after removing the handle of encoder[1], old keys under 'encoder.1.'",
    )
