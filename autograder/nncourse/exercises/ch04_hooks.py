"""Chapter 4 — hooks: the checks behind ex4_1 … ex4_7."""

import math
import warnings
from typing import Any

import torch
from torch import nn

from ..expect import ATOL, RTOL, expect_close, expect_equal, expect_true
from ..probing import device, generator, load_seeded, randn
from ..registry import Mistake, exercise

CHAPTER = "04_hooks"


# --------------------------------------------------------------------- shared helpers
def hook_count(model: nn.Module) -> int:
    """How many hooks are registered on the modules and parameters of ``model``."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
    for p in model.parameters():
        n += len(p._backward_hooks or {}) + len(getattr(p, "_post_accumulate_grad_hooks", None) or {})
    return n


def _handle_list(handles) -> dict:
    """What was returned as 'the handles': a list whose items all have a callable remove()."""
    return {
        "type": type(handles).__name__,
        "is_list": isinstance(handles, list),
        "all_removable": isinstance(handles, (list, tuple))
        and all(callable(getattr(h, "remove", None)) for h in handles),
        "count": len(handles) if isinstance(handles, (list, tuple)) else None,
    }


def _is_handle(h) -> bool:
    return callable(getattr(h, "remove", None))


def _attempt(fn):
    """Run fn(); return (result, None) or (None, 'ErrorType: message') — used where a hint helps."""
    try:
        return fn(), None
    except Exception as e:  # the learner's code failed inside a sub-case
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def _close_floats(got: list, expected: list) -> bool:
    if len(got) != len(expected):
        return False
    return all(abs(g - e) <= ATOL + RTOL * abs(e) for g, e in zip(got, expected))


def _expect_no_error(error, what, hint):
    if error:
        raise Mistake(f"{what} raised an exception.", got=error, hint=hint)


# --------------------------------------------------------------------- ex4_1
# Misreadings considered, and the probe input that separates each:
# * containers (Sequential, own modules with children, the root) hooked too: _Tree nests a _Block
#   with its own forward and a Sequential;
# * "leaf" taken as a list of known types (Linear, ReLU ...): _Scale, a hand-written leaf;
# * the root skipped even when it is a leaf: a bare nn.Linear, whose entry is named '';
# * late-binding closure (every entry named after the last module): many leaves, names compared;
# * class names instead of qualified names, the input's shape instead of the output's: stem is
#   Linear(3, 4), the root Linear(3, 2);
# * a module-level or new list instead of `log`: two loggers with separate lists, one pre-filled;
# * handles not returned or not all of them: hook_count before and after removing every handle,
#   and the second logger must go on after the first one's handles are removed;
# * a module used twice: Sequential(shared, ReLU(), shared): one hook, one entry per call.
ex4_1 = exercise("ex4_1_shape_logger", CHAPTER)


class _Block(nn.Module):
    """A module with children and its own forward (not a leaf)."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)
        self.act = nn.ReLU()
        self.inner = nn.Sequential(nn.Linear(d_out, d_out), nn.Tanh())

    def forward(self, x):
        return self.inner(self.act(self.proj(x))) + x.mean(dim=-1, keepdim=True)


class _Scale(nn.Module):
    """A parameter-free leaf module written by hand."""

    def forward(self, x):
        return 0.5 * x


class _Tree(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(3, 4)
        self.block = _Block(4, 6)
        self.head = nn.Sequential(nn.Linear(6, 2), _Scale())
        self.spare = nn.Dropout(0.5)  # registered but never called

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


def _plain_log(log) -> dict:
    """The log as plain data, and whether every entry has the contract's form."""
    entries: list[list[Any] | str] = []
    well_formed = True
    for entry in list(log):
        if (
            isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], tuple)
            and all(type(d) is int for d in entry[1])
        ):
            entries.append([entry[0], list(entry[1])])
        else:
            well_formed = False
            entries.append(repr(entry)[:120])
    return {"entries": entries, "well_formed": well_formed}


def _logged_forward(register_shape_logger, model, batches, seed):
    log: list[Any] = []
    handles = register_shape_logger(model, log)
    for i, n in enumerate(batches):
        model(randn(n, 3, seed=seed + i))
    return log, handles


@ex4_1.test("logs")
def shape_logger_logs(register_shape_logger):
    model = _Tree().to(device)
    log, _ = _logged_forward(register_shape_logger, model, (5, 2), seed=411)
    return {"log": _plain_log(log)}


def _short(entries, limit=8):
    return entries if len(entries) <= limit else entries[:limit] + [f"... {len(entries)} entries in all"]


def _judge_log(got, expected, what):
    hint_form = "append a tuple (name, tuple(output.shape)), e.g. ('block.proj', (5, 6))."
    expect_true(
        got["well_formed"],
        f"{what}: the entries are not (str, tuple of ints) pairs",
        hint=hint_form,
        got=got["entries"][:6],
    )
    g, e = got["entries"], expected["entries"]
    if g == e:
        return
    shown = {"got": _short(g), "expected": _short(e)}
    got_names, exp_names = [x[0] for x in g], [x[0] for x in e]
    extra = sorted(set(got_names) - set(exp_names))
    missing = sorted(set(exp_names) - set(got_names))
    if missing == [""] and not extra:
        raise Mistake(
            f"{what}: the root module was not logged",
            **shown,
            hint="a model without children is itself the leaf: hook it too (its qualified name is '').",
        )
    if len(g) < len(e) and g == e[: len(g)]:
        raise Mistake(
            f"{what}: only {len(g)} of {len(e)} entries reached this log",
            **shown,
            hint="append to the very list passed as `log` (each call of register_shape_logger "
            "has its own), not to a global or a new list.",
        )
    if len(set(got_names)) == 1 and len(set(exp_names)) > 1 and len(g) > 1:
        raise Mistake(
            f"{what}: every entry carries the same name '{got_names[0]}'",
            **shown,
            hint="a hook defined in a loop reads the loop variable when it runs, not when it was "
            "defined. Bind it: def hook(module, args, output, name=name): ...",
        )
    if extra or missing:
        if any(any(n == "" or m.startswith(n + ".") for m in exp_names) for n in extra):
            hint = (
                "hook only modules without children (next(module.children(), None) is None): containers "
                "such as Sequential, your own modules with submodules, and the root are skipped."
            )
        else:
            hint = "use the qualified names that model.named_modules() yields, e.g. 'block.inner.0'."
        raise Mistake(f"{what}: the logged names differ (unexpected {extra}, missing {missing})", **shown, hint=hint)
    if len(g) != len(e):
        raise Mistake(
            f"{what}: {len(g)} entries were logged, expected {len(e)}",
            **shown,
            hint="one hook per leaf module and one entry per call: a module used twice is still "
            "one module (named_modules lists it once).",
        )
    raise Mistake(
        f"{what}: the entries differ",
        **shown,
        hint="entries come in the order the leaves run, with the shape of each output.",
    )


@shape_logger_logs.judge
def _(got, ref):
    _judge_log(got["log"], ref["log"], "the log after two forward passes of a nested model")


@ex4_1.test("remove")
def shape_logger_remove(register_shape_logger):
    model = _Tree().to(device)
    baseline = hook_count(model)
    log, handles = _logged_forward(register_shape_logger, model, (4,), seed=412)
    data: dict[str, Any] = {
        "handles": _handle_list(handles),
        "hooks_added": hook_count(model) - baseline,
        "logged_first": len(log),
    }
    if data["handles"]["all_removable"]:
        for h in handles:
            h.remove()
    model(randn(3, 3, seed=413))
    data["logged_after_remove"] = len(log) - data["logged_first"]
    data["hooks_left"] = hook_count(model) - baseline
    return data


@shape_logger_remove.judge
def _(got, ref):
    h = got["handles"]
    expect_true(
        h["is_list"],
        f"register_shape_logger should return a list of handles, not {h['type']}",
        hint="collect what register_forward_hook returns: handles.append(module.register_forward_hook(hook)).",
    )
    expect_true(
        h["all_removable"],
        "some returned items are not hook handles (no .remove())",
        hint="register_forward_hook returns a RemovableHandle: return those.",
    )
    expect_equal(
        h["count"],
        ref["handles"]["count"],
        "the number of handles (one per leaf module)",
        hint="register exactly one forward hook on each module without children.",
    )
    expect_true(
        got["logged_first"] > 0,
        "nothing was logged by a forward pass",
        hint="register with module.register_forward_hook(hook) and call model(x), not model.forward(x).",
    )
    expect_equal(
        got["logged_after_remove"],
        0,
        "entries were still logged after handle.remove() on every returned handle",
        hint="return the handles of the hooks you registered, all of them.",
    )
    expect_equal(
        got["hooks_left"],
        0,
        "hooks are still registered on the model after removing every handle",
        hint="every hook you add must be reachable through a returned handle.",
    )


@ex4_1.test("hidden")
def shape_logger_hidden(register_shape_logger):
    data: dict[str, Any] = {}
    # the root is a leaf: its name is ''
    root = nn.Linear(3, 2).to(device)
    log, _ = _logged_forward(register_shape_logger, root, (4,), seed=414)
    data["root_leaf"] = _plain_log(log)
    # a module used twice in forward: one hook, one entry per call, under its first name
    shared = nn.Linear(3, 3)
    seq = nn.Sequential(shared, nn.ReLU(), shared).to(device)
    log, _ = _logged_forward(register_shape_logger, seq, (2,), seed=415)
    data["shared"] = _plain_log(log)
    # entries already in the log stay; two loggers on one model keep separate logs
    model = _Tree().to(device)
    first = [("earlier", (1,))]
    h1 = register_shape_logger(model, first)
    second: list[Any] = []
    h2 = register_shape_logger(model, second)
    model(randn(2, 3, seed=416))
    data["returns_lists"] = isinstance(h1, list) and isinstance(h2, list)
    data["first"] = _plain_log(first)
    data["second"] = _plain_log(second)
    for h in h1 if isinstance(h1, (list, tuple)) else []:
        h.remove()
    model(randn(1, 3, seed=417))
    data["first_after_remove"] = _plain_log(first)
    data["second_after_first_removed"] = _plain_log(second)
    for h in h2 if isinstance(h2, (list, tuple)) else []:
        h.remove()
    return data


@shape_logger_hidden.judge
def _(got, ref):
    _judge_log(got["root_leaf"], ref["root_leaf"], "a model that is itself a leaf (nn.Linear): its entry is named ''")
    _judge_log(got["shared"], ref["shared"], "Sequential(shared, ReLU(), shared), the Linear used twice")
    _judge_log(got["first"], ref["first"], "a log that already held an entry")
    expect_true(
        got["returns_lists"],
        "register_shape_logger should return the list of handles",
        hint="collect what register_forward_hook returns and return that list.",
    )
    _judge_log(got["second"], ref["second"], "a second logger on the same model")
    _judge_log(
        got["first_after_remove"], ref["first_after_remove"], "the first log after removing the first logger's handles"
    )
    _judge_log(
        got["second_after_first_removed"],
        ref["second_after_first_removed"],
        "the second log, which must go on after the first logger's handles were removed",
    )


# --------------------------------------------------------------------- ex4_2
# Misreadings considered, and the probe input that separates each:
# * output stored without detach(), or a list of every call: two calls in one block, values and
#   grad_fn compared;
# * the input stored instead of the output: ReLU/Tanh/Sigmoid change their input;
# * type(m) in layer_types: a ReLU subclass (_MyReLU) and layer_types=nn.Tanh (a single class);
# * __enter__ not returning self: `with ... as rec`, rec is recorder;
# * hooks not removed, removed only without an exception, or removed by clearing _forward_hooks:
#   hook_count after the block, an exception raised inside it, and a hook registered by other code;
# * __exit__ returning True (swallowing the exception): _ProbeError must reach the probe;
# * activations cleared on exit: read after the block; keyword layer_types=...: a hidden case.
ex4_2 = exercise("ex4_2_activation_recorder", CHAPTER)


class _ProbeError(Exception):
    """Raised by the checks inside a `with` block; it must reach the caller."""


class _MyReLU(nn.ReLU):
    pass


class _Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(5, 8)
        self.act = nn.ReLU()
        self.block = nn.Sequential(nn.Linear(8, 8), _MyReLU(), nn.Linear(8, 8), nn.Tanh())
        self.gate = nn.Sigmoid()
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h = self.act(self.inp(x))
        h = self.act(self.block(h) + h)  # self.act runs twice: the latest call wins
        return self.out(self.gate(h) * h)


def _seq_model(seed):
    return load_seeded(
        nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3), nn.Tanh()), seed
    )


def _activations(rec) -> dict:
    """rec.activations as plain data, with how each value was stored."""
    acts = rec.activations
    names = sorted(acts)
    out: dict[str, Any] = {"names": names, "values": {}, "not_tensor": [], "attached": []}
    for name in names:
        value = acts[name]
        if not isinstance(value, torch.Tensor):
            out["not_tensor"].append(f"{name}: {type(value).__name__}")
            continue
        if value.requires_grad or value.grad_fn is not None:
            out["attached"].append(name)
        out["values"][name] = value.detach()
    return out


def _judge_activations(got, ref, what):
    expect_true(
        not got["not_tensor"],
        f"{what}: activations should map each name to one tensor",
        got=got["not_tensor"],
        hint="store the latest output, activations[name] = output.detach(), not a list of outputs.",
    )
    expect_equal(
        got["names"],
        ref["names"],
        f"{what}: the recorded layer names differ",
        hint="hook every module from model.named_modules() that is isinstance(module, layer_types) "
        "(subclasses count, so not type(module) in layer_types), keyed by its qualified name.",
    )
    expect_true(
        not got["attached"],
        f"{what}: recorded activations are still attached to the autograd graph",
        got=got["attached"],
        hint="store output.detach(): a tensor with a grad_fn keeps the whole graph of the forward "
        "pass (and the tensors it saved) alive.",
    )
    for name in ref["names"]:
        expect_close(
            got["values"][name],
            ref["values"][name],
            f"{what}: activations['{name}']",
            hint="store the output of the latest call: each call overwrites the previous one.",
        )


@ex4_2.test("records")
def recorder_records(ActivationRecorder):
    model = _seq_model(421)
    recorder = ActivationRecorder(model)
    data: dict[str, Any] = {"enter_returns_self": None}
    with recorder as rec:
        data["enter_returns_self"] = rec is recorder
        model(randn(4, 5, seed=422))
        model(randn(3, 5, seed=423))  # the latest call wins
        data["inside"] = _activations(recorder)
    return data


def _judge_enter(got):
    expect_true(
        got["enter_returns_self"],
        "`with ActivationRecorder(model) as rec:` does not give the recorder",
        hint="__enter__ must return self.",
    )


@recorder_records.judge
def _(got, ref):
    _judge_enter(got)
    _judge_activations(got["inside"], ref["inside"], "inside the with block, after two calls")


@ex4_2.test("cleanup")
def recorder_cleanup(ActivationRecorder):
    model = _seq_model(424)
    baseline = hook_count(model)
    recorder = ActivationRecorder(model)
    with recorder as rec:
        enter_ok = rec is recorder
        model(randn(4, 5, seed=425))
        inside = hook_count(model) - baseline
        snapshot = dict(recorder.activations)
    after = hook_count(model) - baseline
    model(randn(2, 5, seed=426))  # after exit: nothing is recorded any more
    unchanged = sorted(recorder.activations) == sorted(snapshot) and all(
        recorder.activations[k] is v for k, v in snapshot.items()
    )
    return {
        "enter_returns_self": enter_ok,
        "hooks_inside": inside,
        "hooks_after": after,
        "unchanged_after_exit": unchanged,
        "after_exit": _activations(recorder),
    }


@recorder_cleanup.judge
def _(got, ref):
    _judge_enter(got)
    expect_equal(
        got["hooks_inside"],
        ref["hooks_inside"],
        "the number of hooks inside the with block (one forward hook per matching module)",
        hint="register one forward hook on each module that is isinstance(module, layer_types).",
    )
    expect_equal(
        got["hooks_after"],
        0,
        "hooks are still registered after the with block ended",
        hint="keep every handle register_forward_hook returns and call handle.remove() in __exit__.",
    )
    expect_true(
        got["unchanged_after_exit"],
        "activations still changed when the model ran after the with block",
        hint="remove the hooks in __exit__ so that nothing is recorded after the block.",
    )
    _judge_activations(got["after_exit"], ref["after_exit"], "after the with block")


@ex4_2.test("hidden")
def recorder_hidden(ActivationRecorder):
    data: dict[str, Any] = {}
    # an exception inside the block propagates, and the hooks are removed anyway
    model = _seq_model(427)
    baseline = hook_count(model)
    propagated = False
    try:
        with ActivationRecorder(model):
            model(randn(2, 5, seed=428))
            raise _ProbeError("raised inside the with block")
    except _ProbeError:
        propagated = True
    data["propagated"] = propagated
    data["hooks_after_error"] = hook_count(model) - baseline

    # a hook that was there before must survive
    deep = load_seeded(_Deep(), 429)
    seen = []
    external = deep.act.register_forward_hook(lambda m, i, o: seen.append(1))
    baseline = hook_count(deep)
    x = randn(3, 5, seed=430)
    recorder = ActivationRecorder(deep)
    with recorder:
        deep(x)
    data["default_types"] = _activations(recorder)  # act (called twice: latest) and block.1 (a subclass)
    data["hooks_after_deep"] = hook_count(deep) - baseline
    deep(x)
    data["external_calls"] = len(seen)
    external.remove()
    baseline = hook_count(deep)

    def record(*args, **kwargs):
        recorder = ActivationRecorder(deep, *args, **kwargs)
        with recorder:
            deep(x)
        return _activations(recorder)

    data["single_class"] = _attempt(lambda: record(nn.Tanh))  # a class, not a tuple
    data["tuple"] = _attempt(lambda: record(layer_types=(nn.Sigmoid, nn.Linear)))
    data["hooks_final"] = hook_count(deep) - baseline
    return data


@recorder_hidden.judge
def _(got, ref):
    expect_true(
        got["propagated"],
        "an exception raised inside the with block did not reach the caller",
        hint="__exit__ must return False (or None): returning True swallows the exception.",
    )
    expect_equal(
        got["hooks_after_error"],
        0,
        "hooks are still registered after the with block raised",
        hint="__exit__ runs also when the block raises: remove the handles there.",
    )
    _judge_activations(
        got["default_types"],
        ref["default_types"],
        "default layer_types on a model with a ReLU called twice and a ReLU subclass",
    )
    expect_equal(
        got["external_calls"],
        ref["external_calls"],
        "a forward hook registered on the model before the recorder stopped running",
        hint="remove only your own hooks (their handles), never clear module._forward_hooks.",
    )
    expect_equal(
        got["hooks_after_deep"],
        0,
        "hooks are still registered after the with block ended",
        hint="remove exactly the handles you added.",
    )
    for key, what in (
        ("single_class", "layer_types=nn.Tanh (a class, not a tuple)"),
        ("tuple", "layer_types=(nn.Sigmoid, nn.Linear)"),
    ):
        result, error = got[key]
        _expect_no_error(
            error,
            f"recording with {what}",
            hint="isinstance(module, layer_types) accepts a class or a tuple of classes as it is.",
        )
        _judge_activations(result, ref[key][0], what)
    expect_equal(
        got["hooks_final"],
        0,
        "hooks are still registered after three with blocks",
        hint="remove every handle in __exit__.",
    )


# --------------------------------------------------------------------- ex4_3
# Misreadings considered, and the probe input that separates each:
# * clamp_ in place: the caller's tensor is compared with a copy;
# * a single tensor returned (the other inputs dropped) or every input clamped: _Pair(a, b) and
#   _Triple(a, b, k) with a plain int k;
# * a forward hook clamping the output, or a hook that returns nothing: outputs compared;
# * the handle not returned: removed and the unclamped output compared; two stacked clamps;
# * a detached clamp (no_grad, .detach(), .data): the gradient reaching the caller's input.
ex4_3 = exercise("ex4_3_clamp_inputs", CHAPTER)


class _Pair(nn.Module):
    """forward(a, b): records what it sees."""

    def forward(self, a, b):
        self.seen = (a.detach().clone(), b.detach().clone())
        return 2 * a + b


class _Triple(nn.Module):
    """forward(a, b, k) with a plain int k."""

    def forward(self, a, b, k):
        self.seen_k = k
        return (a - b) * k


@ex4_3.test("clamps")
def clamp_clamps(clamp_inputs):
    lin = load_seeded(nn.Linear(4, 3), 431)
    x = randn(5, 4, seed=432, scale=2.0)
    original = x.clone()
    handle = clamp_inputs(lin, -1.0, 0.5)
    out = lin(x)
    data = {"output": out.detach(), "caller_unchanged": torch.equal(x, original), "is_handle": _is_handle(handle)}
    if data["is_handle"]:
        handle.remove()
        data["after_remove"] = lin(original.clone()).detach()
    return data


@clamp_clamps.judge
def _(got, ref):
    expect_true(
        got["caller_unchanged"],
        "the tensor passed to the module was modified",
        hint="clamp_ works in place on the caller's tensor; return a new tuple with x.clamp(min_val, max_val).",
    )
    expect_close(
        got["output"],
        ref["output"],
        "Linear's output with its input clamped to [-1, 0.5]",
        hint="use register_forward_pre_hook and return the new inputs, e.g. "
        "(args[0].clamp(min_val, max_val),) + args[1:].",
    )
    expect_true(
        got["is_handle"],
        "clamp_inputs should return the handle of the hook",
        hint="return module.register_forward_pre_hook(hook).",
    )
    expect_close(
        got["after_remove"],
        ref["after_remove"],
        "the output after handle.remove() (no clamping)",
        hint="return the handle register_forward_pre_hook gave you.",
    )


@ex4_3.test("two_inputs")
def clamp_two_inputs(clamp_inputs):
    pair = _Pair().to(device)
    a, b = randn(3, 4, seed=433, scale=2.0), randn(3, 4, seed=434, scale=2.0)
    clamp_inputs(pair, -0.5, 0.5)
    out, error = _attempt(lambda: pair(a, b).detach())
    data = {"error": error}
    if error is None:
        data.update(output=out, seen_a=pair.seen[0], seen_b=pair.seen[1])
    return data


@clamp_two_inputs.judge
def _(got, ref):
    _expect_no_error(
        got["error"],
        "calling a module whose forward takes (a, b)",
        hint="a pre-hook that returns a single tensor replaces *all* the inputs (it is wrapped "
        "in a tuple): return (clamped_first,) + args[1:].",
    )
    expect_close(
        got["seen_a"], ref["seen_a"], "the first input forward received", hint="clamp args[0] to [min_val, max_val]."
    )
    expect_close(
        got["seen_b"],
        ref["seen_b"],
        "the second input forward received",
        hint="only the first positional input is clamped; pass the others through unchanged.",
    )
    expect_close(got["output"], ref["output"], "the output of forward(a, b)")


@ex4_3.test("hidden")
def clamp_hidden(clamp_inputs):
    data: dict[str, Any] = {}
    # three inputs, the last a plain int; a negative range
    triple = _Triple().to(device)
    a, b = randn(2, 3, seed=435, scale=2.0), randn(2, 3, seed=436, scale=2.0)
    a_before = a.clone()
    handle = clamp_inputs(triple, -2.0, -0.5)
    out, error = _attempt(lambda: triple(a, b, 3).detach())
    data["triple"] = {
        "error": error,
        "output": out,
        "k": getattr(triple, "seen_k", None),
        "caller_unchanged": torch.equal(a, a_before),
    }
    if _is_handle(handle):
        handle.remove()

    # two clamps stacked, then the first one removed
    lin = load_seeded(nn.Linear(3, 2), 437)
    x = randn(6, 3, seed=438, scale=2.0)
    h1 = clamp_inputs(lin, -1.0, 1.0)
    h2 = clamp_inputs(lin, 0.0, 2.0)
    data["stacked"] = lin(x).detach()
    data["handles"] = _is_handle(h1) and _is_handle(h2)
    if data["handles"]:
        h1.remove()
        data["second_only"] = lin(x).detach()
        h2.remove()

    # gradients flow through the clamp to the caller's tensor; the caller's tensor is unchanged
    x_leaf = randn(4, 3, seed=439, scale=2.0).requires_grad_()
    clamp_inputs(lin, -0.75, 0.75)
    lin.zero_grad(set_to_none=True)

    def backward():
        out = lin(x_leaf)
        out.backward(torch.ones_like(out))
        return x_leaf.grad

    grad, error = _attempt(backward)
    data["grad"] = {"error": error, "x_grad": grad, "weight_grad": lin.weight.grad}
    return data


@clamp_hidden.judge
def _(got, ref):
    t = got["triple"]
    _expect_no_error(
        t["error"],
        "calling a module whose forward takes (a, b, k) with an int k",
        hint="clamp only args[0]; pass args[1:] through unchanged (they need not be tensors).",
    )
    expect_true(
        t["caller_unchanged"],
        "the caller's tensor was modified",
        hint="x.clamp(...) makes a new tensor; clamp_ overwrites the caller's data.",
    )
    expect_equal(t["k"], 3, "the third input (an int) did not reach forward unchanged")
    expect_close(
        t["output"],
        ref["triple"]["output"],
        "the output with the range [-2, -0.5]",
        hint="clamp(min_val, max_val): a negative range works like any other.",
    )
    expect_close(
        got["stacked"],
        ref["stacked"],
        "two clamps stacked: [-1, 1] then [0, 2]",
        hint="each hook receives the inputs the previous hook returned.",
    )
    expect_true(
        got["handles"],
        "clamp_inputs should return the hook's handle",
        hint="return module.register_forward_pre_hook(hook).",
    )
    expect_close(
        got["second_only"],
        ref["second_only"],
        "the output after removing only the first clamp",
        hint="each call returns its own handle; removing it removes only that hook.",
    )
    g = got["grad"]
    _expect_no_error(
        g["error"],
        "a backward pass through the clamped module",
        hint="do not clamp in place (clamp_) inside the hook: return x.clamp(min_val, max_val).",
    )
    expect_close(
        g["x_grad"],
        ref["grad"]["x_grad"],
        "the gradient reaching the caller's input",
        hint="do not detach the input or clamp under torch.no_grad(): gradients should flow "
        "through the clamp (zero where it cut the value).",
    )
    expect_close(g["weight_grad"], ref["grad"]["weight_grad"], "the gradient of the Linear's weight")


# --------------------------------------------------------------------- ex4_4
# Misreadings considered, and the probe input that separates each:
# * param.grad read inside the tensor hook (not filled yet): fails on the first backward;
# * tensors instead of floats: the type of every entry; squared or L1 norm: values compared;
# * frozen parameters hooked (register_hook raises) or recorded: _TwoBranch's frozen stem;
# * .grad read after accumulation (post-accumulate hook): two backward passes without zeroing;
# * a branch that gets no gradient, a weight used twice: _TwoBranch (one entry, of the summed grad);
# * remove() that only sets a flag: hook_count after remove();
# * a hook that changes the gradient: the gradients after backward are compared.
ex4_4 = exercise("ex4_4_grad_norm_monitor", CHAPTER)


def _weighted_loss(out, seed):
    return (out * torch.randn(out.shape, generator=generator(seed)).to(out.device)).sum()


def _norms(monitor) -> dict:
    """monitor.norms as plain data: empty lists dropped, anything that is not a float noted."""
    norms = monitor.norms
    out: dict[str, Any] = {"values": {}, "not_float": []}
    for name in sorted(norms):
        values = list(norms[name])
        bad = [type(v).__name__ for v in values if not isinstance(v, float)]
        if bad:
            out["not_float"].append(f"{name}: {bad[0]}")
            continue
        if values:
            out["values"][name] = values
    return out


def _judge_norms(got, ref, what, hint=None):
    expect_true(
        not got["not_float"],
        f"{what}: monitor.norms should hold Python floats",
        got=got["not_float"],
        hint="append grad.norm().item() (a float), not the tensor.",
    )
    g, e = got["values"], ref["values"]
    expect_equal(
        sorted(g),
        sorted(e),
        f"{what}: the parameters with recorded norms differ",
        hint="one key per parameter from model.named_parameters() that requires grad, e.g. '0.weight'.",
    )
    for name in sorted(e):
        if len(g[name]) != len(e[name]):
            raise Mistake(
                f"{what}: '{name}' has {len(g[name])} norms, expected {len(e[name])} "
                "(one per backward that reached it)",
                got=[round(v, 5) for v in g[name]],
                expected=[round(v, 5) for v in e[name]],
                hint=hint or "register one hook per parameter and append once each time it fires.",
            )
        if not _close_floats(g[name], e[name]):
            raise Mistake(
                f"{what}: the norms of '{name}' differ",
                got=[round(v, 5) for v in g[name]],
                expected=[round(v, 5) for v in e[name]],
                hint=hint or "the L2 norm of the gradient the hook receives: grad.norm().item().",
            )


def _mlp(seed):
    return load_seeded(nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)), seed)


_HINT_BACKWARD = (
    "inside a hook registered with param.register_hook, param.grad is not updated yet: "
    "use the hook's argument, def hook(grad): ... grad.norm().item()."
)


@ex4_4.test("norms")
def monitor_norms(GradNormMonitor):
    model = _mlp(441)
    monitor = GradNormMonitor(model)

    def steps():
        for step in range(3):
            model.zero_grad()
            _weighted_loss(model(randn(5, 4, seed=442 + step)), seed=445 + step).backward()

    _, error = _attempt(steps)
    if error:
        return {"error": error}
    return {"error": None, "norms": _norms(monitor), "grads": {n: p.grad for n, p in model.named_parameters()}}


@monitor_norms.judge
def _(got, ref):
    _expect_no_error(got["error"], "backward() with the monitor attached", _HINT_BACKWARD)
    _judge_norms(got["norms"], ref["norms"], "after three steps (gradients zeroed before each backward)")
    for name, grad in ref["grads"].items():
        expect_close(
            got["grads"].get(name),
            grad,
            f"the gradient of {name} after the last backward",
            hint="a monitoring hook must not change the gradient: return None from it.",
        )


@ex4_4.test("remove")
def monitor_remove(GradNormMonitor):
    model = _mlp(446)
    baseline = hook_count(model)
    monitor = GradNormMonitor(model)

    def steps():
        for step in range(2):
            model.zero_grad()
            _weighted_loss(model(randn(3, 4, seed=447 + step)), seed=449).backward()

    _, error = _attempt(steps)
    if error:
        return {"error": error}
    before = {k: len(v) for k, v in monitor.norms.items()}
    monitor.remove()
    model.zero_grad()
    _weighted_loss(model(randn(3, 4, seed=450)), seed=451).backward()
    after = {k: len(v) for k, v in monitor.norms.items()}
    return {
        "error": None,
        "recorded": sum(before.values()),
        "grew": sorted(k for k in after if after[k] != before.get(k, 0)),
        "hooks_left": hook_count(model) - baseline,
    }


@monitor_remove.judge
def _(got, ref):
    _expect_no_error(got["error"], "backward() with the monitor attached", _HINT_BACKWARD)
    expect_equal(
        got["recorded"],
        ref["recorded"],
        "the number of norms recorded in two steps",
        hint="one norm per parameter per backward.",
    )
    expect_equal(
        got["grew"],
        [],
        "norms were still recorded after monitor.remove()",
        hint="keep the handles of your hooks and call handle.remove() on each in remove().",
    )
    expect_equal(
        got["hooks_left"],
        0,
        "hooks are still registered after monitor.remove()",
        hint="remove the hooks themselves (handle.remove()), not just stop reading them: "
        "leftover hooks pile up and run on every backward.",
    )


class _TwoBranch(nn.Module):
    """A frozen stem, two branches of which one may be skipped, and a tied weight."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.left = nn.Linear(4, 4)
        self.right = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        self.tied = nn.Linear(2, 2, bias=False)
        self.stem.requires_grad_(False)

    def forward(self, x, use_left=True):
        h = torch.tanh(self.stem(x))
        if use_left:
            h = h + self.left(h)
        y = self.right(h)
        return self.tied(self.tied(y))  # the same weight used twice


@ex4_4.test("hidden")
def monitor_hidden(GradNormMonitor):
    model = load_seeded(_TwoBranch(), 452)
    monitor, error = _attempt(lambda: GradNormMonitor(model))
    if error:
        return {"error": error}
    x = randn(6, 4, seed=453)

    def branches():
        model.zero_grad()
        _weighted_loss(model(x), seed=454).backward()
        model.zero_grad()
        _weighted_loss(model(x, use_left=False), seed=455).backward()  # left gets no gradient
        return _norms(monitor)

    def accumulating():
        # two backward passes without zeroing: each norm is of the gradient that backward computed
        mlp = _mlp(456)
        acc = GradNormMonitor(mlp)
        for step in range(2):
            _weighted_loss(mlp(randn(4, 4, seed=457 + step)), seed=459 + step).backward()
        return _norms(acc)

    zeroed, error = _attempt(branches)
    if error:
        return {"error": None, "backward_error": error}
    return {"error": None, "backward_error": None, "branches": zeroed, "accumulating": accumulating()}


@monitor_hidden.judge
def _(got, ref):
    _expect_no_error(
        got["error"],
        "GradNormMonitor(model) on a model with frozen parameters",
        hint="skip parameters with requires_grad=False: register_hook refuses tensors that do not require grad.",
    )
    _expect_no_error(got["backward_error"], "backward() with the monitor attached", _HINT_BACKWARD)
    _judge_norms(
        got["branches"],
        ref["branches"],
        "a model with a frozen stem, a branch skipped in the second pass and a weight used twice",
        hint="skip parameters with requires_grad=False; a parameter that gets no gradient in a "
        "backward gets no entry; a weight used twice has one gradient (the sum) per backward.",
    )
    _judge_norms(
        got["accumulating"],
        ref["accumulating"],
        "two backward passes without zeroing the gradients in between",
        hint="record the gradient backward computed (the argument of a hook registered with "
        "param.register_hook), not .grad, which accumulates over backward passes.",
    )


# --------------------------------------------------------------------- ex4_5
# Misreadings considered, and the probe input that separates each:
# * scaling in place (output.mul_): nn.Tanh saves its output for backward, nn.Identity returns the
#   caller's tensor;
# * the scaled output computed but not returned: outputs compared;
# * a pre-hook scaling the input: a Linear with a bias separates input and output scaling;
# * output.detach() * factor: gradients of the input and of the parameters;
# * `if factor:` (0 treated as "no scaling") and a sign slip: factors 0.0 and -1.5;
# * the handle not returned, hooks that do not stack: two hooks on one Linear inside a Sequential.
ex4_5 = exercise("ex4_5_scale_output", CHAPTER)


def _scaled_pass(scale_output, module, factor, x, seed):
    """Output and gradients (input and parameters) with the module's output scaled."""
    handle = scale_output(module, factor)
    x = x.clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)
    _, error = _attempt(lambda: _weighted_loss(out, seed).backward())
    grads = {n: p.grad for n, p in module.named_parameters()}
    return handle, {"output": out.detach(), "error": error, "x_grad": x.grad, "grads": grads}


_HINT_IN_PLACE = (
    "do not change the output in place (output.mul_(factor), output *= factor): nn.Tanh saves its "
    "output for backward, and nn.Identity's output is the caller's tensor. Return output * factor."
)


def _judge_pass(got, ref, what, hint):
    error = got["error"]
    if error and "does not require grad" in error:
        raise Mistake(
            f"{what}: backward() failed: the scaled output is cut off from the graph",
            got=error,
            hint="return output * factor itself: no .detach(), no .data, no torch.no_grad().",
        )
    _expect_no_error(error, f"{what}: backward() through the scaled output", _HINT_IN_PLACE)
    expect_close(got["output"], ref["output"], f"{what}: the output", hint)
    expect_close(
        got["x_grad"],
        ref["x_grad"],
        f"{what}: the gradient of the input",
        "return output * factor (no detach, no .data, no torch.no_grad): gradients must flow through it.",
    )
    for name, grad in ref["grads"].items():
        expect_close(
            got["grads"].get(name),
            grad,
            f"{what}: the gradient of {name}",
            "gradients must flow through output * factor.",
        )


_HINT_4_5 = (
    "register_forward_hook(hook) with hook(module, args, output) returning output * factor: "
    "the returned value replaces the output."
)


@ex4_5.test("scales")
def scale_scales(scale_output):
    lin = load_seeded(nn.Linear(4, 3), 461)
    x = randn(5, 4, seed=462)
    handle, data = _scaled_pass(scale_output, lin, 2.5, x, seed=463)
    data = {"scaled": data, "is_handle": _is_handle(handle)}
    if data["is_handle"]:
        handle.remove()
        data["after_remove"] = lin(x).detach()
    return data


@scale_scales.judge
def _(got, ref):
    _judge_pass(got["scaled"], ref["scaled"], "Linear with factor 2.5", _HINT_4_5)
    expect_true(
        got["is_handle"],
        "scale_output should return the hook's handle",
        hint="return module.register_forward_hook(hook).",
    )
    expect_close(got["after_remove"], ref["after_remove"], "the output after handle.remove() (unscaled)")


@ex4_5.test("hidden")
def scale_hidden(scale_output):
    data = {}
    # zero and negative factors
    for key, factor in (("zero", 0.0), ("negative", -1.5)):
        lin = load_seeded(nn.Linear(3, 3), 464)
        h, data[key] = _scaled_pass(scale_output, lin, factor, randn(4, 3, seed=465), seed=466)
    # a module that saves its output for backward: an in-place change breaks backward
    _, data["tanh"] = _scaled_pass(scale_output, nn.Tanh(), 3.0, randn(4, 3, seed=467, scale=2.0), seed=468)
    # a module that returns its input: an in-place change would overwrite the caller's tensor
    ident = nn.Identity()
    scale_output(ident, -2.0)
    x = randn(3, 3, seed=469)
    before = x.clone()
    data["identity"] = {"output": ident(x).detach(), "caller_unchanged": torch.equal(x, before)}
    # two hooks stack; inside a Sequential the next layer sees the scaled output
    inner = nn.Linear(3, 3)
    net = load_seeded(nn.Sequential(inner, nn.ReLU(), nn.Linear(3, 2)), 470)
    h1 = scale_output(inner, 2.0)
    h2 = scale_output(inner, -0.5)
    x = randn(5, 3, seed=471)
    data["stacked"] = net(x).detach()
    data["handles"] = _is_handle(h1) and _is_handle(h2)
    if data["handles"]:
        h2.remove()
        data["first_only"] = net(x).detach()
        h1.remove()
    return data


@scale_hidden.judge
def _(got, ref):
    _judge_pass(got["zero"], ref["zero"], "factor 0.0", _HINT_4_5)
    _judge_pass(got["negative"], ref["negative"], "factor -1.5", _HINT_4_5)
    _judge_pass(got["tanh"], ref["tanh"], "nn.Tanh with factor 3.0", _HINT_4_5)
    expect_true(
        got["identity"]["caller_unchanged"],
        "nn.Identity with a scaled output changed the caller's tensor",
        hint=_HINT_IN_PLACE,
    )
    expect_close(got["identity"]["output"], ref["identity"]["output"], "nn.Identity with factor -2.0", _HINT_4_5)
    expect_close(
        got["stacked"],
        ref["stacked"],
        "a Sequential whose first Linear has two scale hooks (2.0, then -0.5)",
        hint="each hook receives the output the previous hook returned; the next layer sees the result.",
    )
    expect_true(
        got["handles"],
        "scale_output should return the hook's handle",
        hint="return module.register_forward_hook(hook).",
    )
    expect_close(
        got["first_only"],
        ref["first_only"],
        "the same after removing the second hook",
        hint="return the handle of the hook you registered.",
    )


# --------------------------------------------------------------------- ex4_6
# Misreadings considered, and the probe input that separates each:
# * clipping after optimizer.step() (the step used unclipped gradients): the parameters after the
#   step, with a total norm far above max_norm;
# * each parameter clipped on its own (a loop of clip_grad_norm_(p, ...)) or clip_grad_value_: the
#   layers' gradients are then scaled by different factors (per-layer norms in backward vs after);
# * only some parameters clipped (model[0], weights only, optimizer.param_groups[0]): an MLP with
#   several tensors, and in the hidden test an optimizer with two param groups;
# * the norm after clipping returned (max_norm), a tensor returned, the norm of one tensor returned;
# * zero_grad forgotten: two steps in a row, and a model that arrives with stale gradients;
# * always rescaling to max_norm (manual clipping without the min(1, ...)): max_norm above the norm;
# * a manual total norm that crashes on parameters without a gradient: a frozen first layer;
# * loss_fn(y, output) (arguments swapped): CrossEntropyLoss with class targets in the hidden test;
# * model.forward(x) instead of model(x): a forward hook on the model counts the calls.
ex4_6 = exercise("ex4_6_clip_grad_step", CHAPTER)

_CLIP_SIGNATURE = "train_step_clipped(model, loss_fn, optimizer, x, y, max_norm)"


class _ClipMLP(nn.Module):
    """Three Linear layers, the first one freezable."""

    def __init__(self, d_in=4, hidden=6, d_out=3):
        super().__init__()
        self.inp = nn.Linear(d_in, hidden)
        self.mid = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.out(torch.tanh(self.mid(torch.tanh(self.inp(x)))))


def _returned_norm(result) -> dict:
    if isinstance(result, float):
        return {"type": "float", "value": result}
    value = None
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        value = float(result.detach().cpu())
    elif isinstance(result, int) and not isinstance(result, bool):
        value = float(result)
    return {"type": type(result).__name__, "value": value}


def _clip_steps(train_step_clipped, model, loss_fn, optimizer, batches, max_norm, stale=False):
    """Run one clipped step per (x, y) batch; record what each step did, layer by layer."""
    calls = [0]

    def count(module, args, output):
        calls[0] += 1

    model.register_forward_hook(count)
    backward: dict[str, list[float]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_hook(lambda grad, name=name: backward.setdefault(name, []).append(grad.norm().item()))
    if stale:  # gradients left over from an earlier backward pass
        for i, p in enumerate(model.parameters()):
            if p.requires_grad:
                p.grad = torch.randn(p.shape, generator=generator(4690 + i)).to(p.device)
    steps = []
    for x, y in batches:
        calls[0] = 0
        backward.clear()
        result, error = _attempt(lambda x=x, y=y: train_step_clipped(model, loss_fn, optimizer, x, y, max_norm))
        if error:
            steps.append({"error": error})
            break
        steps.append(
            {
                "error": None,
                "calls": calls[0],
                "backward": {n: list(v) for n, v in backward.items()},
                "grad_after": {
                    n: (p.grad.norm().item() if p.grad is not None else None) for n, p in model.named_parameters()
                },
                "params": {n: p.detach().clone() for n, p in model.named_parameters()},
                "returned": _returned_norm(result),
            }
        )
    return {"max_norm": float(max_norm), "stale": stale, "steps": steps}


def _total(norms) -> float:
    return math.sqrt(sum(v * v for v in norms))


def _clip_hint(step: dict, ref_step: dict, max_norm: float, index: int, stale: bool) -> str:
    """The likeliest cause of parameters that moved differently from the reference."""
    after, ref_after = step["grad_after"], ref_step["grad_after"]
    seen = {n: v[-1] for n, v in step["backward"].items() if v}
    present = {n: g for n, g in after.items() if g is not None and n in seen and seen[n] > 0}
    if not present or all(g == 0 for g in present.values()):
        return (
            "zero the gradients first, then loss.backward(), then clip_grad_norm_(model.parameters(), max_norm), "
            "then optimizer.step()."
        )
    if all(after.get(n) is not None and _close_floats([after[n]], [e]) for n, e in ref_after.items() if e is not None):
        return (
            "the gradients end up clipped, but the parameters moved as with unclipped gradients: clip after "
            "loss.backward() and BEFORE optimizer.step(), which uses whatever .grad holds when it runs."
        )
    ratios = {n: present[n] / seen[n] for n in present}
    total_seen = _total(seen.values())
    if all(abs(r - 1) < 1e-3 for r in ratios.values()):
        if total_seen > max_norm:
            return (
                f"the gradients were not clipped (total norm {total_seen:.4g} > max_norm {max_norm:g}): "
                "call torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm); it scales the "
                ".grad tensors in place."
            )
        return "below max_norm the gradients must stay as backward computed them."
    total_after = _total(present.values())
    if (index > 0 or stale) and abs(total_after - min(max_norm, total_after)) < 1e-3 * max_norm:
        return (
            "the gradients of an earlier backward were still in .grad: zero them at the start of every "
            "step (optimizer.zero_grad() or model.zero_grad())."
        )
    factors = ", ".join(f"{n}: {r:.3g}" for n, r in sorted(ratios.items()))
    if max(ratios.values()) - min(ratios.values()) <= 1e-3 * max(ratios.values()):
        if total_seen <= max_norm:
            return (
                f"every gradient was scaled by {factors.split(': ')[-1]}, although the total norm "
                f"{total_seen:.4g} was already below max_norm {max_norm:g}: scale by min(1, max_norm / total_norm)."
            )
        return "every gradient was scaled by one factor, but not by max_norm / total_norm."
    return (
        f"the gradients were scaled by different factors per parameter ({factors}): clip_grad_norm_"
        "(model.parameters(), max_norm) scales every gradient by one factor, max_norm / total_norm, which keeps the "
        "direction of the update. Different factors come from clipping each parameter on its own, clipping by "
        "value (clip_grad_value_), or clipping only some of the parameters."
    )


def _judge_clip(got, ref, what):
    max_norm = ref["max_norm"]
    for index, (step, ref_step) in enumerate(zip(got["steps"], ref["steps"])):
        where = f"{what}, step {index + 1}"
        _expect_no_error(
            step["error"],
            f"{where}: {_CLIP_SIGNATURE}",
            hint="zero the gradients, loss = loss_fn(model(x), y), loss.backward(), clip, optimizer.step(); "
            "clip_grad_norm_ skips parameters whose .grad is None.",
        )
        expect_true(
            step["calls"] > 0,
            f"{where}: the model's forward hooks did not run",
            hint="compute the output as model(x): model.forward(x) skips the hooks.",
        )
        expect_equal(
            sorted(step["backward"]),
            sorted(ref_step["backward"]),
            f"{where}: the parameters that received a gradient in backward",
            hint="one backward pass of loss_fn(model(x), y) per step.",
        )
        for name, norms in ref_step["backward"].items():
            if not _close_floats(step["backward"][name], norms):
                raise Mistake(
                    f"{where}: the gradient backward computed for '{name}' differs",
                    got=[round(v, 5) for v in step["backward"][name]],
                    expected=[round(v, 5) for v in norms],
                    hint="one backward pass of loss = loss_fn(model(x), y) (output first, then the target).",
                )
        for name, param in ref_step["params"].items():
            expect_close(
                step["params"][name],
                param,
                f"{where}: the parameter '{name}' after the step",
                hint=_clip_hint(step, ref_step, max_norm, index, got["stale"]),
            )
        returned, expected = step["returned"], ref_step["returned"]["value"]
        expect_true(
            returned["type"] == "float",
            f"{where}: train_step_clipped should return a Python float, not {returned['type']}",
            got=returned["value"],
            hint="clip_grad_norm_ returns a tensor: return total_norm.item().",
        )
        if not _close_floats([returned["value"]], [expected]):
            value = returned["value"]
            layer_norms = [v[-1] for v in step["backward"].values() if v]
            if expected > max_norm and abs(value - max_norm) <= 1e-3 * max_norm:
                hint = "that is the norm after clipping (max_norm): return the total norm before clipping, as "
                hint += "clip_grad_norm_ returns it."
            elif any(abs(value - v) <= 1e-4 * max(v, 1e-12) for v in layer_norms):
                hint = "that is the norm of one parameter's gradient: return the total norm over all parameters."
            else:
                hint = "return what clip_grad_norm_(model.parameters(), max_norm) returns, as a float."
            raise Mistake(
                f"{where}: the returned gradient norm (the total norm before clipping) differs",
                got=value,
                expected=expected,
                hint=hint,
            )
    expect_equal(len(got["steps"]), len(ref["steps"]), f"{what}: the number of steps that ran")


def _clip_setup(seed, **sizes):
    model = load_seeded(_ClipMLP(**sizes), seed)
    return model


@ex4_6.test("step")
def clip_step(train_step_clipped):
    model = _clip_setup(4601)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(randn(8, 4, seed=4602 + i), randn(8, 3, seed=4604 + i, scale=10.0)) for i in range(2)]
    return _clip_steps(train_step_clipped, model, nn.MSELoss(), optimizer, batches, max_norm=0.5)


@clip_step.judge
def _(got, ref):
    _judge_clip(got, ref, "two steps with max_norm 0.5 (the gradient norm is far larger)")


@ex4_6.test("hidden")
def clip_hidden(train_step_clipped):
    data = {}
    # the model arrives with gradients left over from an earlier backward pass
    model = _clip_setup(4611)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = [(randn(6, 4, seed=4612), randn(6, 3, seed=4613, scale=8.0))]
    data["stale"] = _clip_steps(train_step_clipped, model, nn.MSELoss(), optimizer, batches, 1.0, stale=True)
    # max_norm above the gradient norm: nothing is clipped
    model = _clip_setup(4621)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = [(randn(6, 4, seed=4622 + i), randn(6, 3, seed=4624 + i)) for i in range(2)]
    data["below"] = _clip_steps(train_step_clipped, model, nn.MSELoss(), optimizer, batches, 1000.0)
    # a frozen first layer (no .grad), two param groups, class targets with CrossEntropyLoss
    model = _clip_setup(4631, d_out=5)
    model.inp.requires_grad_(False)
    optimizer = torch.optim.SGD(
        [{"params": model.out.parameters(), "lr": 0.2}, {"params": model.mid.parameters()}], lr=0.05, momentum=0.5
    )
    batches = []
    for i in range(2):
        y = torch.randint(0, 5, (7,), generator=generator(4634 + i)).to(device)
        batches.append((randn(7, 4, seed=4632 + i, scale=3.0), y))
    data["frozen"] = _clip_steps(train_step_clipped, model, nn.CrossEntropyLoss(), optimizer, batches, 0.05)
    return data


@clip_hidden.judge
def _(got, ref):
    _judge_clip(got["stale"], ref["stale"], "a model that arrives with stale gradients in .grad")
    _judge_clip(got["below"], ref["below"], "max_norm 1000, far above the gradient norm (nothing to clip)")
    _judge_clip(
        got["frozen"],
        ref["frozen"],
        "a frozen first layer, an optimizer with two param groups and CrossEntropyLoss",
    )


# --------------------------------------------------------------------- ex4_7
# Misreadings considered, and the probe input that separates each:
# * register_backward_hook (deprecated): on a module of several operations its grad_input belongs
#   to the last operation, so the module's own parameter gradients get scaled too (_Gate), and on
#   a Linear it is a 3-tuple with the weight's and the bias's gradients (cases without the probe's
#   own full backward hook: the two kinds cannot share a module);
# * grad_output scaled instead of grad_input: a Linear whose output is narrower than its input
#   (the sizes differ), nn.Tanh (the values differ);
# * editing the received gradients in place (mul_) instead of returning new ones: a hook the probe
#   registered first keeps the tensors it received, which must not change; nn.Identity after
#   .sum() hands an expanded gradient that cannot be written in place;
# * a tuple of the wrong length (only grad_input[0]), None multiplied: _Gate with two inputs, one
#   of which needs no gradient; a first layer whose input needs none (grad_input is (None,));
# * `if factor:` (0 treated as "no scaling"): factor 0.0; a sign slip: negative factors;
# * the handle not returned or a hook registered twice: hook_count and gradients after remove().
ex4_7 = exercise("ex4_7_scale_input_grad", CHAPTER)


class _Gate(nn.Module):
    """Two inputs: a Linear of the first, gated by tanh of the second (several autograd operations)."""

    def __init__(self, d=3):
        super().__init__()
        self.proj = nn.Linear(d, d)

    def forward(self, a, b):
        return self.proj(a) * torch.tanh(b)


def _observe(module) -> tuple[Any, list]:
    """A full backward hook registered first: it keeps what it received, and a copy of it."""
    kept: list = []

    def observer(module, grad_input, grad_output):
        kept.append([(g, g.detach().clone()) for g in grad_input if g is not None])

    return module.register_full_backward_hook(observer), kept


def _untouched(kept) -> bool:
    return all(torch.equal(g, copy) for call in kept for g, copy in call)


def _grad_pass(net, inputs, seed, loss="weighted") -> dict:
    """One backward pass; the gradients of the inputs and of every parameter, or the error."""
    inputs = [t.detach().clone().requires_grad_(needs) for t, needs in inputs]
    net.zero_grad(set_to_none=True)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "firing with respect to outputs" when no input needs grad
            out = net(*inputs)
            (out.sum() if loss == "sum" else _weighted_loss(out, seed)).backward()

    _, error = _attempt(run)
    return {
        "error": error,
        "inputs": [t.grad.detach().clone() if t.grad is not None else None for t in inputs],
        "params": {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in net.named_parameters()},
    }


def _hooked_case(scale_input_grad, net, target, factor, inputs, seed, loss="weighted", observe=False) -> dict:
    """Gradients with the learner's hook on ``target``, then after its handle is removed.

    ``observe``: a full backward hook of the probe's own, registered first, keeps the gradients it
    receives; the learner's hook gets the same tensors, and must not change them.
    """
    observer, kept = _observe(target) if observe else (None, [])
    baseline = hook_count(net)
    handle, error = _attempt(lambda: scale_input_grad(target, factor))
    if error:
        if observer is not None:
            observer.remove()
        return {"register_error": error}
    data = _grad_pass(net, inputs, seed, loss)
    data["untouched"] = _untouched(kept)
    data["is_handle"] = _is_handle(handle)
    if data["is_handle"]:
        handle.remove()
        data["hooks_left"] = hook_count(net) - baseline
        data["after_remove"] = _grad_pass(net, inputs, seed, loss)
    if observer is not None:
        observer.remove()
    return {"register_error": None, **data}


_HINT_4_7 = (
    "register_full_backward_hook(hook) with hook(module, grad_input, grad_output) returning "
    "tuple(None if g is None else g * factor for g in grad_input)."
)


def _judge_grads(got, ref, what, factor):
    error = got["error"]
    if error:
        if "regular backward hooks and full backward hooks" in error:
            hint = "use register_full_backward_hook, not the deprecated register_backward_hook."
        elif "invalid number of grad_input" in error:
            hint = "return one entry per entry of grad_input (the module's inputs), None where it was None."
        elif "size" in error or "shape" in error:
            hint = "scale grad_input (gradients w.r.t. the module's inputs), not grad_output (w.r.t. its output)."
        elif "NoneType" in error:
            hint = "an input that needs no gradient has None in grad_input: keep that None, multiply the others."
        elif "memory location" in error or "inplace" in error or "in-place" in error:
            hint = "do not change the received gradients in place (mul_, *=): return new tensors g * factor."
        else:
            hint = _HINT_4_7
        raise Mistake(f"{what}: backward() with the hook attached raised an exception.", got=error, hint=hint)
    if factor == 0:
        hint = "factor 0 must stop the gradient (zeros): do not skip the scaling when factor is 0 (`if factor:`)."
    else:
        hint = (
            f"every gradient in grad_input times {factor}: scale grad_input (the module's inputs), not "
            f"grad_output, and keep None entries as None. {_HINT_4_7}"
        )
    for i, grad in enumerate(ref["inputs"]):
        expect_close(got["inputs"][i], grad, f"{what}: the gradient that reaches input {i} of the module", hint=hint)
    for name, grad in ref["params"].items():
        expect_close(
            got["params"].get(name),
            grad,
            f"{what}: the gradient of the parameter '{name}'",
            hint="the module's own parameters keep their gradients: a full backward hook's grad_input holds "
            "the gradients w.r.t. the module's inputs only. The deprecated register_backward_hook sees the "
            "last operation inside the module instead: use register_full_backward_hook.",
        )


def _judge_hooked(got, ref, what, factor):
    error = got["register_error"]
    if error and "regular backward hooks and full backward hooks" in error:
        raise Mistake(
            f"{what}: scale_input_grad(module, factor) raised an exception",
            got=error,
            hint="register_backward_hook is deprecated and cannot share a module with full backward hooks: "
            "use register_full_backward_hook.",
        )
    _expect_no_error(error, f"{what}: scale_input_grad(module, factor)", _HINT_4_7)
    _judge_grads(got, ref, what, factor)
    expect_true(
        got["untouched"],
        f"{what}: the gradients the hook received were changed in place",
        hint="other hooks and autograd hold the same tensors: return new ones (g * factor), do not mul_ them.",
    )
    expect_true(
        got["is_handle"],
        f"{what}: scale_input_grad should return the hook's handle",
        hint="return module.register_full_backward_hook(hook).",
    )
    expect_equal(
        got["hooks_left"],
        0,
        f"{what}: hooks left on the model after handle.remove()",
        hint="register the hook once and return its handle.",
    )
    _judge_grads(got["after_remove"], ref["after_remove"], f"{what}, after handle.remove()", 1)


@ex4_7.test("scales")
def input_grad_scales(scale_input_grad):
    net = load_seeded(nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)), 4701)
    x = randn(6, 4, seed=4702)
    return {
        "linear": _hooked_case(scale_input_grad, net, net[2], -0.5, [(x, True)], seed=4703),
        "observed": _hooked_case(scale_input_grad, net, net[1], 2.0, [(x, True)], seed=4704, observe=True),
    }


@input_grad_scales.judge
def _(got, ref):
    _judge_hooked(
        got["linear"], ref["linear"], "factor -0.5 on the last Linear(5, 3) of Sequential(Linear, Tanh, Linear)", -0.5
    )
    _judge_hooked(
        got["observed"], ref["observed"], "factor 2.0 on the Tanh, with another full backward hook before yours", 2.0
    )


@ex4_7.test("hidden")
def input_grad_hidden(scale_input_grad):
    data = {}
    a, b = randn(4, 3, seed=4711), randn(4, 3, seed=4712)
    gate = load_seeded(_Gate(), 4713)
    # two inputs, the second needs no gradient: (grad_a * factor, None)
    data["gate_none"] = _hooked_case(
        scale_input_grad, gate, gate, 2.5, [(a, True), (b, False)], seed=4714, observe=True
    )
    # two inputs that both need a gradient
    data["gate_both"] = _hooked_case(scale_input_grad, gate, gate, -1.0, [(a, True), (b, True)], seed=4715)
    # an elementwise module: grad_output has the same shape as grad_input, different values
    net = load_seeded(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), 4716)
    data["tanh"] = _hooked_case(scale_input_grad, net, net[1], 3.0, [(a, True)], seed=4717)
    # factor 0 stops the gradient; the first layer's parameters still get theirs
    net = load_seeded(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), 4718)
    data["zero"] = _hooked_case(scale_input_grad, net, net[2], 0.0, [(a, True)], seed=4719)
    # the first layer of a network fed plain data: grad_input is (None,)
    data["no_input_grad"] = _hooked_case(scale_input_grad, net, net[0], 0.5, [(a, False)], seed=4720)
    # nn.Identity after .sum(): the gradient it receives cannot be written in place
    ident = nn.Sequential(nn.Identity())
    data["identity"] = _hooked_case(scale_input_grad, ident, ident[0], -2.0, [(b, True)], seed=4721, loss="sum")
    return data


@input_grad_hidden.judge
def _(got, ref):
    _judge_hooked(got["gate_none"], ref["gate_none"], "a module with two inputs, the second without grad", 2.5)
    _judge_hooked(got["gate_both"], ref["gate_both"], "a module with two inputs that both need grad", -1.0)
    _judge_hooked(got["tanh"], ref["tanh"], "factor 3.0 on nn.Tanh inside a Sequential", 3.0)
    _judge_hooked(got["zero"], ref["zero"], "factor 0.0 on the last Linear", 0.0)
    _judge_hooked(got["no_input_grad"], ref["no_input_grad"], "the first Linear, whose input needs no grad", 0.5)
    _judge_hooked(got["identity"], ref["identity"], "nn.Identity with factor -2.0, loss out.sum()", -2.0)
