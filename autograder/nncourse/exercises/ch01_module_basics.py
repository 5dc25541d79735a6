"""Chapter 1 — what a Module is: the checks behind ex1_1 … ex1_7."""

from typing import Any

import torch
from torch import nn

from .. import properties
from ..expect import expect_close, expect_equal, expect_true
from ..probing import linears, load_seeded, load_seeded_linears, output_and_grads, randn, reseed, state_shapes
from ..registry import Mistake, exercise
from ..runtime import device

CHAPTER = "01_module_basics"


# --------------------------------------------------------------------- shared by ex1_1 and ex1_2
def _module_probe(cls, sizes, seed, output_bias, batches=(4,)):
    model = cls(*sizes)
    data = {
        "is_module": isinstance(model, nn.Module),
        "shapes": state_shapes(model),
        "linear_names": sorted(n for n, m in model.named_modules() if isinstance(m, nn.Linear)),
    }
    load_seeded(model, seed)
    # The output layer's bias alternates -2, +2: whatever the run's seeded weights and inputs, some
    # outputs are negative, so an activation after the output layer always shows.
    bias = model.state_dict().get(output_bias)
    if bias is not None:
        with torch.no_grad():
            signs = torch.tensor([2.0 if i % 2 else -2.0 for i in range(bias.numel())])
            bias.copy_(signs.reshape(bias.shape).to(bias.device))
    for i, n in enumerate(batches):
        x = randn(n, sizes[0], seed=seed + 1 + i, scale=2.0)
        data[f"batch{n}"] = output_and_grads(model, x)
    model.eval()
    data["eval_output"] = model(randn(3, sizes[0], seed=seed + 7, scale=2.0)).detach()
    return data


def _judge_structure(got, ref, names_hint):
    expect_true(
        got["is_module"],
        "the class does not create an nn.Module.",
        hint="write `class ...(nn.Module)` and call super().__init__() first in __init__.",
    )
    expect_equal(
        got["shapes"], ref["shapes"], "the state_dict keys and shapes differ from the contract", hint=names_hint
    )
    expect_equal(got["linear_names"], ref["linear_names"], "the nn.Linear submodules differ", hint=names_hint)


def _judge_forward(got, ref, hint):
    for key in ref:
        if key.startswith("batch"):
            expect_close(
                got[key]["output"],
                ref[key]["output"],
                f"the output for a batch of {key[5:]} (reference weights loaded)",
                hint,
            )
            for name, grad in ref[key]["grads"].items():
                expect_close(got[key]["grads"].get(name), grad, f"the gradient of {name}", hint)
    expect_close(got["eval_output"], ref["eval_output"], "the output in eval() mode", hint)


# --------------------------------------------------------------------- ex1_1
# Misreadings: ReLU after fc2 as well / no ReLU / ReLU on the input before fc1 (inputs drawn with
# scale 2, so about half the values are negative: each placement changes the output); other layer
# names (state_dict keys "fc1.weight"...); hidden and output sizes swapped (probe sizes all differ:
# 5/7/3 and 2/16/4); super().__init__() forgotten (construction raises); Dropout or another
# train-only behaviour (the output is compared in train() and in eval() mode); batch-size
# assumptions (batches of 1, 4 and 10).
ex1_1 = exercise("ex1_1_simple_nn", CHAPTER)
_HINT_1_1 = "fc1 = nn.Linear(input_size, hidden_size), fc2 = nn.Linear(hidden_size, output_size)."
_FWD_1_1 = "forward should be fc2(relu(fc1(x))): ReLU between the layers, nothing after fc2."


@ex1_1.test("structure")
def simple_nn_structure(SimpleNN):
    return _module_probe(SimpleNN, (5, 7, 3), seed=11, output_bias="fc2.bias", batches=())


@simple_nn_structure.judge
def _(got, ref):
    _judge_structure(got, ref, _HINT_1_1)


@ex1_1.test("forward")
def simple_nn_forward(SimpleNN):
    return _module_probe(SimpleNN, (5, 7, 3), seed=12, output_bias="fc2.bias")


@simple_nn_forward.judge
def _(got, ref):
    _judge_structure(got, ref, _HINT_1_1)
    _judge_forward(got, ref, _FWD_1_1)


@ex1_1.test("hidden")
def simple_nn_hidden(SimpleNN):
    return _module_probe(SimpleNN, (2, 16, 4), seed=13, output_bias="fc2.bias", batches=(1, 10))


simple_nn_hidden.judge(simple_nn_forward.judge_fn)


# --------------------------------------------------------------------- ex1_2
# Misreadings: ReLU after the output layer too / after layer1 only / layer2 skipped or applied twice
# (outputs and gradients with seeded weights); layer2 mapping hidden -> output (the state_dict shapes,
# sizes 6/8/2 and 3/5/4 all differ); other layer names (state_dict keys).
ex1_2 = exercise("ex1_2_simple_net", CHAPTER)
_HINT_1_2 = (
    "layer1 = nn.Linear(input_size, hidden_size), layer2 = nn.Linear(hidden_size, hidden_size), "
    "output = nn.Linear(hidden_size, output_size)."
)
_FWD_1_2 = "forward should be output(relu(layer2(relu(layer1(x))))): no ReLU after the output layer."


@ex1_2.test("structure")
def simple_net_structure(SimpleNet):
    return _module_probe(SimpleNet, (6, 8, 2), seed=21, output_bias="output.bias", batches=())


@simple_net_structure.judge
def _(got, ref):
    _judge_structure(got, ref, _HINT_1_2)


@ex1_2.test("forward")
def simple_net_forward(SimpleNet):
    return _module_probe(SimpleNet, (6, 8, 2), seed=22, output_bias="output.bias")


@simple_net_forward.judge
def _(got, ref):
    _judge_structure(got, ref, _HINT_1_2)
    _judge_forward(got, ref, _FWD_1_2)


@ex1_2.test("hidden")
def simple_net_hidden(SimpleNet):
    return _module_probe(SimpleNet, (3, 5, 4), seed=23, output_bias="output.bias", batches=(1, 9))


simple_net_hidden.judge(simple_net_forward.judge_fn)


# --------------------------------------------------------------------- ex1_3
# Misreadings: layers in a plain list (parameters() counts too few scalars); an activation after
# the last layer as well (the output: inputs of scale 2 make negatives that ReLU/tanh change);
# activation ignored, always ReLU (the hidden probe passes a counting tanh class); one activation
# instance shared by every gap (forward runs 1 counting-class instance, not 2); activations made
# inside forward, so the model does not hold them (the instances forward runs were all made during
# the forward pass); off-by-one in the pairs, one Linear too few or too many (the list of weight
# shapes, and sizes = [3, 2], a single Linear with no activation at all). Not misreadings: an extra
# activation made and dropped (layers[:-1]), copies of one template (copy.deepcopy): only the
# distinct instances forward runs count. The hidden test also draws 20 architectures and batch sizes
# with Hypothesis (widths and batches from 1, lists of 2 to 5 sizes): a loop bound or a squeeze that
# only breaks for a width or a batch of 1 fails there, and the verdict names the smallest such input.
ex1_3 = exercise("ex1_3_mlp", CHAPTER)


def _counting_tanh():
    """An activation class, the instances it made and the instances whose forward ran. The records
    live in a closure, out of reach of the code under test (a class attribute could be overwritten
    by it)."""
    created, called = [], []

    class CountingTanh(nn.Module):
        def __init__(self):
            super().__init__()
            created.append(self)

        def forward(self, input):  # the name nn.Tanh uses: act(input=x) works on both
            called.append(self)
            return torch.tanh(input)

    return CountingTanh, (created, called)


def _mlp_probe(MLP, sizes, seed, records=None, batch=5, **kwargs):
    model = MLP(sizes, **kwargs)
    layers = linears(model)
    data = {
        "linear_shapes": [list(layer.weight.shape) for layer in layers],
        "n_parameters": sum(p.numel() for p in model.parameters()),
    }
    made_before_forward = len(records[0]) if records is not None else 0
    load_seeded_linears(model, seed)
    x = randn(batch, sizes[0], seed=seed + 1, scale=2.0)
    result = output_and_grads(model, x)
    data["output"] = result["output"]
    data["linear_weight_grads"] = [layer.weight.grad for layer in layers]
    if records is not None:
        # distinct activation modules whose forward ran, not counting those made during the forward
        # pass: one per gap. An extra one made and dropped (layers[:-1]) or copies of a template
        # (copy.deepcopy skips __init__) do not matter; one reused, or ones made inside forward, do.
        # (The records keep every instance alive, so their ids cannot be reused.)
        made_in_forward = {id(a) for a in records[0][made_before_forward:]}
        data["activations_used"] = len({id(a) for a in records[1]} - made_in_forward)
    return data


def _judge_mlp(got, ref):
    expect_equal(
        got["n_parameters"],
        ref["n_parameters"],
        "model.parameters() does not see the expected number of scalar parameters",
        hint="layers kept in a plain Python list are not registered: use nn.ModuleList or nn.Sequential.",
    )
    expect_equal(
        got["linear_shapes"],
        ref["linear_shapes"],
        "the Linear layers (weight shapes, in order) differ",
        hint="one nn.Linear(sizes[i], sizes[i + 1]) per consecutive pair of sizes.",
    )
    hint = "a fresh activation() between consecutive Linears, none after the last one."
    expect_close(got["output"], ref["output"], "the output (seeded weights in every Linear)", hint)
    for i, (g, r) in enumerate(zip(got["linear_weight_grads"], ref["linear_weight_grads"])):
        expect_close(g, r, f"the gradient of Linear number {i}", hint)


@ex1_3.test("structure")
def mlp_structure(MLP):
    return _mlp_probe(MLP, [4, 6, 5, 3], seed=31)


mlp_structure.judge(_judge_mlp)


def _mlp_shapes():
    """Property-based inputs for MLP: any sizes list of length >= 2 (widths from 1), any batch."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {"sizes": st.lists(st.integers(1, 7), min_size=2, max_size=5), "batch": st.integers(1, 4)}
    )


def _describe_mlp(case) -> str:
    return f"MLP({case['sizes']}) on a batch of {case['batch']}"


def _mlp_size(case):
    return (len(case["sizes"]), sum(case["sizes"]), case["batch"])


@ex1_3.test("hidden")
def mlp_hidden(MLP):
    data = {"two_sizes": _mlp_probe(MLP, [3, 2], seed=32), "deep": _mlp_probe(MLP, [2, 9, 9, 9, 1], seed=33)}
    counting_tanh, records = _counting_tanh()
    data["tanh"] = _mlp_probe(MLP, [3, 8, 8, 2], seed=34, records=records, activation=counting_tanh)
    data["drawn"] = properties.probe_cases(
        _mlp_shapes(), lambda case: _mlp_probe(MLP, case["sizes"], seed=35, batch=case["batch"]), count=20, seed=36
    )
    return data


@mlp_hidden.judge
def _(got, ref):
    _judge_mlp(got["two_sizes"], ref["two_sizes"])
    _judge_mlp(got["deep"], ref["deep"])
    _judge_mlp(got["tanh"], ref["tanh"])
    expect_equal(
        got["tanh"].get("activations_used"),
        ref["tanh"]["activations_used"],
        "MLP([3, 8, 8, 2], activation=A): forward should run one distinct A() per gap between "
        "Linears, each made when the model is built (the number of such A() modules below)",
        hint="call activation() once per gap in __init__ and keep the modules in the model (in the "
        "nn.Sequential or nn.ModuleList beside the Linears): one instance reused for every gap does "
        "not count twice, and one made inside forward is a new, untrained module at every call.",
    )
    return properties.judge_cases(got["drawn"], ref["drawn"], _judge_mlp, _describe_mlp, _mlp_size)


# --------------------------------------------------------------------- ex1_4
# Misreadings: a fixed activation instead of the one given (two functions, sigmoid and tanh, and a
# lambda); the function called in __init__ as if it were a class like nn.ReLU (construction raises);
# applied twice, or with a learned scale (outputs, and no parameters nor state allowed); only
# torch functions supported (the hidden probe passes a lambda, inside nn.Sequential, with gradients);
# a ReLU (or any other clamp) added after the function (the lambda, 2 * t.clamp(min=-0.5), and tanh
# return negative values).
ex1_4 = exercise("ex1_4_custom_activation", CHAPTER)


@ex1_4.test("applies")
def custom_activation_applies(CustomActivationModule):
    x = randn(4, 6, seed=41, scale=3.0)
    data = {}
    for name, fn in {"sigmoid": torch.sigmoid, "tanh": torch.tanh}.items():
        module = CustomActivationModule(fn)
        data[name] = module(x)
        data[f"{name}_is_module"] = isinstance(module, nn.Module)
        data[f"{name}_n_parameters"] = sum(p.numel() for p in module.parameters())
    return data


@custom_activation_applies.judge
def _(got, ref):
    for name in ("sigmoid", "tanh"):
        expect_true(got[f"{name}_is_module"], "CustomActivationModule is not an nn.Module.")
        expect_close(
            got[name],
            ref[name],
            f"the output with torch.{name}",
            hint="forward should return self.activation_func(x), with the function given to __init__.",
        )
        expect_equal(got[f"{name}_n_parameters"], 0, "the module should have no parameters")


@ex1_4.test("hidden")
def custom_activation_hidden(CustomActivationModule):
    reseed(0)
    net = nn.Sequential(nn.Linear(3, 4), CustomActivationModule(lambda t: 2 * t.clamp(min=-0.5)), nn.Linear(4, 2))
    load_seeded(net, 42)
    data = output_and_grads(net, randn(6, 3, seed=43, scale=2.0))
    data["state_keys"] = sorted(net[1].state_dict())
    return data


@custom_activation_hidden.judge
def _(got, ref):
    hint = "any callable works: store it in __init__ and apply it in forward."
    expect_equal(got["state_keys"], [], "the activation module should hold no state")
    expect_close(
        got["output"], ref["output"], "the output of Sequential(Linear, CustomActivationModule(lambda), Linear)", hint
    )
    for name, grad in ref["grads"].items():
        expect_close(got["grads"].get(name), grad, f"the gradient of {name}", hint)


# --------------------------------------------------------------------- ex1_5
# Misreadings: trainable_only ignored (a net with a frozen layer: counts differ); trainable_only
# read as "requires_grad == trainable_only" (trainable_only=False must count frozen and trainable);
# tensors counted instead of scalars (nn.Linear(10, 7): 2 vs 77); buffers counted, through
# state_dict() or buffers() (BatchNorm running stats, an extra buffer, BatchNorm(affine=False) with
# buffers only); shared modules and tied weights counted twice (named_parameters(remove_duplicate=
# False), a loop over modules()); a float or a tensor returned (must be a Python int, in the basic
# and the hidden check); the flag passed positionally or by keyword.
ex1_5 = exercise("ex1_5_count_parameters", CHAPTER)


def _frozen_net():
    reseed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    net[0].requires_grad_(False)
    return net


class _TiedNet(nn.Module):
    """Shares a Linear, ties a weight, and carries BatchNorm buffers."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 6, bias=False)
        self.block = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 6, bias=False))
        self.reused = self.block[0]  # the same module under two names
        self.block[2].weight = nn.Parameter(self.embed.weight.data[:, :5].clone())
        self.head = nn.Linear(6, 6, bias=False)
        self.head.weight = self.embed.weight  # tied weight
        self.register_buffer("steps", torch.zeros(7))


@ex1_5.test("basic")
def count_parameters_basic(count_parameters):
    net = _frozen_net()
    return {
        "trainable": count_parameters(net),
        "all": count_parameters(net, trainable_only=False),
        "all_positional": count_parameters(net, False),
        "unfrozen": count_parameters(nn.Linear(10, 7)),
    }


@count_parameters_basic.judge
def _(got, ref):
    for key, hint in [
        ("unfrozen", "count scalars: p.numel() for each parameter, not the number of tensors."),
        ("trainable", "by default only parameters with requires_grad=True count."),
        ("all", "with trainable_only=False every parameter counts, frozen ones too."),
        ("all_positional", "trainable_only is the second positional parameter."),
    ]:
        _judge_count(got, ref, key, hint)


def _judge_count(got, ref, key, hint):
    expect_true(
        isinstance(got[key], int) and not isinstance(got[key], bool),
        "count_parameters should return a Python int",
        hint="sum(...) of p.numel() values is an int; a tensor (torch.sum, .sum()) needs .item() or int(...).",
        got=got[key],
    )
    expect_equal(got[key], ref[key], f"count_parameters gives the wrong number ({key})", hint)


@ex1_5.test("hidden")
def count_parameters_hidden(count_parameters):
    net = _TiedNet()
    net.block[0].requires_grad_(False)
    return {
        "trainable": count_parameters(net),
        "all": count_parameters(net, trainable_only=False),
        "buffers_only": count_parameters(nn.BatchNorm1d(4, affine=False), trainable_only=False),
    }


@count_parameters_hidden.judge
def _(got, ref):
    hint = (
        "a parameter shared by several modules is one parameter (model.parameters() lists it once); "
        "buffers such as BatchNorm's running_mean are not parameters."
    )
    for key in ("buffers_only", "all", "trainable"):
        _judge_count(got, ref, key, hint)


# --------------------------------------------------------------------- ex1_6
# Misreadings: one level only, named_children (the nested Linears of _Tree); unqualified names from a
# hand-written walk ("proj" vs "blocks.0.proj"); exact type instead of isinstance (a subclass of
# nn.Linear); the root included (a Linear subclass as the root); a shared module listed twice
# (Sequential(shared, ReLU, shared)); names sorted instead of named_modules' order ("10" sorts before
# "2" in a Sequential of 12 modules); layer_type a tuple, or passed by keyword.
ex1_6 = exercise("ex1_6_layer_names", CHAPTER)


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.inner = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))


class _Tree(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([_Block(), _Block()])
        self.gate = nn.ReLU()
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Bilinear(4, 4, 1)})


class _MyLinear(nn.Linear):
    pass


@ex1_6.test("linear")
def layer_names_linear(layer_names):
    return {"default": layer_names(_Tree()), "relu": layer_names(_Tree(), nn.ReLU)}


@layer_names_linear.judge
def _(got, ref):
    hint = (
        "walk model.named_modules() (it recurses into every level, depth first) "
        "and keep the names of modules that are isinstance(module, layer_type)."
    )
    expect_equal(got["default"], ref["default"], "the names of the nn.Linear layers differ", hint)
    expect_equal(got["relu"], ref["relu"], "the names for layer_type=nn.ReLU differ", hint)


@ex1_6.test("hidden")
def layer_names_hidden(layer_names):
    root_linear = _MyLinear(3, 3)
    shared = nn.Linear(2, 2)
    return {
        "tuple": layer_names(_Tree(), (nn.Tanh, nn.Bilinear)),
        "subclass": layer_names(nn.Sequential(_MyLinear(2, 2), nn.Sequential(nn.Linear(2, 2)))),
        "root_excluded": layer_names(root_linear),
        "shared_once": layer_names(nn.Sequential(shared, nn.ReLU(), shared)),
        "none": layer_names(nn.Sequential(nn.ReLU()), nn.Conv2d),
        "order": layer_names(nn.Sequential(*[nn.Linear(2, 2) if i % 3 else nn.ReLU() for i in range(12)])),
        "keyword": layer_names(_Tree(), layer_type=nn.Bilinear),
    }


@layer_names_hidden.judge
def _(got, ref):
    for key, hint in [
        ("tuple", "layer_type may be a tuple of classes; isinstance accepts one directly."),
        ("subclass", "a subclass of nn.Linear is an nn.Linear: use isinstance, not type(m) == layer_type."),
        ("root_excluded", "the root module itself (name '') is not one of its layers."),
        ("shared_once", "named_modules lists a module used twice once, under its first name."),
        ("none", "no match gives an empty list."),
        ("order", "keep the order named_modules yields (do not sort: '10' sorts before '2')."),
        ("keyword", "the second parameter is called layer_type: layer_names(model, layer_type=nn.Bilinear)."),
    ]:
        expect_true(isinstance(got[key], list), "layer_names should return a list", got=got[key])
        expect_equal(got[key], ref[key], f"layer_names gives the wrong names ({key})", hint)


# --------------------------------------------------------------------- ex1_7
# Misreadings: backward returns the local derivative only, forgetting to multiply by grad_output (the
# gradient is taken with a non-uniform upstream gradient, and gradcheck tests one-hot ones); a wrong
# derivative (softplus itself, exp(x), sigmoid'(x)); the derivative computed from the saved output
# instead of the saved input, sigmoid(softplus(x)) (named in the message); the naive log(1 + exp(x))
# forward or exp(x) / (1 + exp(x)) backward (inf and nan at x = 100 and 1000 in float32, hidden
# check); a gradient of the wrong shape (gradcheck on a 3-D input); the Module computing softplus with
# plain ops or F.softplus and/or defining its own backward method (never called: the graph of its
# output holds no node of SoftplusFunction); the Module calling SoftplusFunction.forward directly
# (raises without a ctx, or records plain ops: same graph test); the formula plus
# 0 * SoftplusFunction.apply(x) (a hook on the Function's node: the upstream gradient it receives must
# be the whole one); parameters in the Module (a learned beta). Not misreadings: saving the output and
# computing sigmoid(x) = 1 - exp(-y) from it; a forward that calls F.softplus or torch.where; apply
# stored under another name (softplus = SoftplusFunction.apply).
ex1_7 = exercise("ex1_7_custom_function", CHAPTER)
_HINT_1_7_GRAD = (
    "backward(ctx, grad_output) returns grad_output * sigmoid(x), with x the input saved in forward "
    "(ctx.save_for_backward(x), then (x,) = ctx.saved_tensors)."
)


def _softplus_grads(fn, x, upstream):
    """Output, and the gradient of x under an upstream gradient of ones and of ``upstream``."""
    data = {}
    for key, weights in (("ones", torch.ones_like(upstream)), ("weighted", upstream)):
        leaf = x.detach().clone().requires_grad_(True)
        out = fn.apply(leaf)
        (out * weights).sum().backward()
        data["output"] = out.detach()
        data[f"grad_{key}"] = leaf.grad.detach().clone() if leaf.grad is not None else None
    return data


def _gradcheck(fn, x):
    return bool(torch.autograd.gradcheck(fn.apply, (x.double().requires_grad_(True),), raise_exception=False))


def _judge_softplus(got, ref, where, gradcheck_input):
    expect_close(
        got["output"],
        ref["output"],
        f"SoftplusFunction.apply(x), the output for {where}",
        hint="forward(ctx, x) returns x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())): log(1 + exp(x)) "
        "computed without overflow.",
    )
    if got["grad_ones"] is not None and torch.allclose(
        got["grad_ones"].double(), torch.sigmoid(ref["output"].double()), atol=1e-5, rtol=1e-4
    ):
        raise Mistake(
            f"the gradient for {where} is sigmoid(softplus(x)): backward takes the sigmoid of the output",
            got=got["grad_ones"],
            expected=ref["grad_ones"],
            hint="the derivative is sigmoid of the INPUT x: save x with ctx.save_for_backward(x), or, if you "
            "save the output y, use 1 - exp(-y).",
        )
    expect_close(
        got["grad_ones"],
        ref["grad_ones"],
        f"the gradient for {where} (upstream gradient of ones): the derivative of softplus",
        hint=_HINT_1_7_GRAD,
    )
    if got["grad_weighted"] is not None and torch.allclose(got["grad_weighted"], got["grad_ones"]):
        raise Mistake(
            f"the gradient for {where} stays the same when the upstream gradient changes: backward ignores grad_output",
            got=got["grad_weighted"],
            expected=ref["grad_weighted"],
            hint="chain rule: backward returns grad_output * sigmoid(x), not sigmoid(x) alone.",
        )
    expect_close(
        got["grad_weighted"],
        ref["grad_weighted"],
        f"the gradient for {where} with a non-uniform upstream gradient (chain rule)",
        hint="multiply the local derivative by grad_output: backward returns grad_output * sigmoid(x), "
        "not sigmoid(x) alone.",
    )
    expect_true(
        got["gradcheck"],
        f"torch.autograd.gradcheck(SoftplusFunction.apply, (x,)) fails for {gradcheck_input}",
        hint="backward must return one gradient of x's shape and dtype, equal to the numerical one.",
        got=got["gradcheck"],
        expected=True,
    )


@ex1_7.test("gradcheck")
def custom_function_gradcheck(SoftplusFunction):
    x = randn(3, 4, seed=71, scale=3.0)
    data = _softplus_grads(SoftplusFunction, x, randn(3, 4, seed=72))
    data["gradcheck"] = _gradcheck(SoftplusFunction, randn(2, 3, seed=73, scale=3.0))
    return data


@custom_function_gradcheck.judge
def _(got, ref):
    _judge_softplus(got, ref, "a batch of values in about [-9, 9]", "a float64 x of shape (2, 3)")


@ex1_7.test("hidden")
def custom_function_hidden(SoftplusFunction):
    big = torch.tensor([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0]).to(device)
    data = _softplus_grads(SoftplusFunction, big, randn(9, seed=74) + 2.0)
    data["gradcheck"] = _gradcheck(SoftplusFunction, randn(2, 3, 2, seed=75, scale=4.0))
    return data


@custom_function_hidden.judge
def _(got, ref):
    for key in ("output", "grad_ones", "grad_weighted"):
        value = got[key]
        expect_true(
            value is not None and bool(torch.isfinite(value).all()),
            f"the {key.replace('_', ' ')} for x in [-1000, -100, -30, -1, 0, 1, 30, 100, 1000] is not finite",
            hint="torch.exp(x) overflows to inf for x > 88 in float32: use x.clamp(min=0) + "
            "torch.log1p(torch.exp(-x.abs())) in forward and torch.sigmoid(x) in backward.",
            got=value,
        )
    _judge_softplus(got, ref, "x in [-1000, -100, -30, -1, 0, 1, 30, 100, 1000]", "a float64 x of shape (2, 3, 2)")


def _graph_nodes(grad_fn, limit=200):
    """The backward nodes reachable from ``grad_fn`` (at most ``limit``)."""
    seen: list = []
    todo = [grad_fn]
    while todo and len(seen) < limit:
        node = todo.pop()
        if node is None or any(node is s for s in seen):
            continue
        seen.append(node)
        todo.extend(n for n, _ in getattr(node, "next_functions", ()))
    return seen


@ex1_7.test("module")
def custom_function_module(SoftplusFunction, MySoftplus):
    module = MySoftplus()
    data = {
        "is_module": isinstance(module, nn.Module),
        "n_parameters": sum(p.numel() for p in module.parameters()),
        "defines_backward": callable(getattr(type(module), "backward", None)),
    }
    x = randn(4, 5, seed=76, scale=3.0).requires_grad_(True)
    try:
        out = module(x)
    except Exception as e:  # the usual cause: SoftplusFunction.forward(...) called without autograd's ctx
        data["call_error"] = f"{type(e).__name__}: {e}"
        return data
    # the class of the graph node that SoftplusFunction.apply records (SoftplusFunctionBackward)
    backward_cls = getattr(SoftplusFunction, "_backward_cls", None)
    is_tensor = isinstance(out, torch.Tensor)
    data["output"] = out.detach() if is_tensor else None
    nodes: list[Any] = []
    if is_tensor and isinstance(backward_cls, type):
        nodes = [n for n in _graph_nodes(out.grad_fn) if isinstance(n, backward_cls)]
    data["uses_function"] = bool(nodes)
    if nodes:
        # The gradient that reaches the Function's backward must be the whole upstream gradient: the
        # output is SoftplusFunction.apply(x) itself, not the formula plus 0 * apply(x).
        received: list = []
        handles = [n.register_prehook(lambda grads: received.append(grads[0].detach().clone())) for n in nodes]
        try:
            (out * randn(4, 5, seed=79, scale=2.0)).sum().backward()
        except Exception:  # a broken backward is the gradcheck test's business: the hook has already run
            pass
        for handle in handles:
            handle.remove()
        data["received"] = sum(received[1:], received[0]) if received else None
    net = load_seeded(nn.Sequential(nn.Linear(3, 5), MySoftplus(), nn.Linear(5, 2)), 77)
    data["sequential_output"] = net(randn(6, 3, seed=78, scale=2.0)).detach()
    return data


@custom_function_module.judge
def _(got, ref):
    expect_true(got["is_module"], "MySoftplus() is not an nn.Module", hint="write class MySoftplus(nn.Module): ...")
    expect_true(
        "call_error" not in got,
        "calling MySoftplus()(x) raised an exception",
        hint="the Module's forward returns SoftplusFunction.apply(x): apply creates ctx and calls "
        "forward(ctx, x) for you; calling SoftplusFunction.forward yourself has no ctx to give it.",
        got=got.get("call_error"),
    )
    expect_equal(got["n_parameters"], 0, "MySoftplus should have no parameters (softplus has nothing to learn)")
    expect_close(got["output"], ref["output"], "MySoftplus()(x)", hint="forward returns SoftplusFunction.apply(x).")
    if not got["uses_function"] and got["defines_backward"]:
        raise Mistake(
            "MySoftplus defines a backward method, but loss.backward() never calls a Module's backward: "
            "the output's graph holds no SoftplusFunction node, so autograd differentiates the plain "
            "operations of forward instead",
            got=False,
            expected=True,
            hint="custom gradients live in a torch.autograd.Function: forward returns SoftplusFunction.apply(x).",
        )
    expect_true(
        got["uses_function"],
        "the output of MySoftplus()(x) does not come from SoftplusFunction.apply: its graph holds no "
        "SoftplusFunction node, so your backward is never used",
        hint="return SoftplusFunction.apply(x), not SoftplusFunction.forward(...) and not the formula itself.",
        got=False,
        expected=True,
    )
    expect_close(
        got.get("received"),
        ref["received"],
        "the upstream gradient that reaches SoftplusFunction's backward during loss.backward()",
        hint="MySoftplus's output must be SoftplusFunction.apply(x) itself, so that backward receives the whole "
        "upstream gradient; adding apply's result to another computation (or multiplying it by 0) bypasses it.",
    )
    expect_close(
        got["sequential_output"],
        ref["sequential_output"],
        "the output of nn.Sequential(nn.Linear(3, 5), MySoftplus(), nn.Linear(5, 2)) (seeded weights)",
        hint="MySoftplus() takes no arguments and maps a tensor to a tensor of the same shape.",
    )
