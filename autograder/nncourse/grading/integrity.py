"""A fingerprint of what the probes rely on, taken in the grading child before learner code runs.

The probes run in the learner's process. The grading policy (``nncourse.policy``) keeps answer
cells away from the module table, torch's and the checking library's namespaces; this is the
second layer: after every cell the child compares, by object identity, the module table, the
namespaces of the checking library, of torch's user-facing modules and of their classes with the
fingerprint. Any replaced, removed or (on classes) added entry is tampering: the child reports it
and stops, and the grader gives the exercise zero and grades the rest without that answer.

The fingerprint and the comparison live in a closure the learner's code has no name for.
"""

from __future__ import annotations

import sys
import types

# Module name prefixes whose namespaces are watched (their classes too).
_WATCHED_PREFIXES = (
    "nncourse",
    "torch.nn",
    "torch.optim",
    "torch.func",
    "torch.autograd",
    "torch.utils.hooks",
    "torch.utils.data",
    "torch.random",
    "torch.testing",
)
_WATCHED_EXACT = (
    "builtins",
    "torch",
    "torch.functional",
    "numpy",
    "math",
    "copy",
    "functools",
    "warnings",
    "torch.serialization",
    "torch._tensor",
    "IPython.core.interactiveshell",
)


def _watched_modules() -> dict[str, types.ModuleType]:
    out = {}
    for name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType):
            continue
        if name in _WATCHED_EXACT or any(name == p or name.startswith(p + ".") for p in _WATCHED_PREFIXES):
            out[name] = module
    return out


def _classes_of(modules: dict[str, types.ModuleType]) -> dict[str, type]:
    classes: dict[str, type] = {}
    for module in modules.values():
        for value in list(vars(module).values()):
            if isinstance(value, type) and str(getattr(value, "__module__", "")).split(".")[0] in ("torch", "nncourse"):
                classes.setdefault(f"{value.__module__}.{value.__qualname__}", value)
    import torch

    for extra in (torch.Tensor, torch._C.TensorBase, torch.nn.Module, torch.nn.Parameter, object, type):
        classes.setdefault(f"{extra.__module__}.{extra.__qualname__}", extra)
    return classes


_PLAIN = (int, float, bool, str, bytes, type(None))
_CACHES = {"__slotnames__"}  # copyreg caches this on a class the first time one of its objects is saved


def _ids(mapping) -> dict[str, int]:
    """Object identity per name; plain values (counters such as RemovableHandle.next_id) are skipped."""
    return {
        key: id(value) for key, value in list(mapping.items()) if isinstance(key, str) and not isinstance(value, _PLAIN)
    }


def _warm_up_torch() -> None:
    """Let torch make the changes it makes to itself on first use (it wraps each optimizer class's
    ``step`` on first construction and ``torch.manual_seed`` on first optimizer use), so that they
    are part of the fingerprint and not mistaken for tampering."""
    import torch

    model = torch.nn.Linear(2, 1)
    handle = model.register_forward_hook(lambda *args: None)
    for name in dir(torch.optim):
        cls = getattr(torch.optim, name)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer:
            try:
                # torch's optimizers take lr, but the stub types cls as Optimizer, whose __init__ takes defaults
                optimizer = cls(model.parameters(), lr=0.01)  # type: ignore[call-arg]
                model(torch.ones(1, 2)).sum().backward()
                optimizer.step(lambda: model(torch.ones(1, 2)).sum()) if name == "LBFGS" else optimizer.step()
                optimizer.zero_grad()
            except Exception:  # an optimizer that needs other arguments: its wrapping happens anyway
                pass
    handle.remove()
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    torch.random.set_rng_state(state)


def guard_module_methods(names) -> None:
    """Make ``nn.Module`` refuse instance attributes that would shadow the methods the checks use to
    inspect a model (``model.named_modules = ...``, also through ``setattr`` with a computed name).
    The policy refuses the literal forms before the cell runs; this catches the rest at run time.
    Installed in the grading child before the fingerprint is taken, so the fingerprint holds it."""
    from torch import nn

    original = nn.Module.__setattr__
    protected = frozenset(names)

    def __setattr__(self, name, value):
        if name in protected:
            raise AttributeError(
                f"replacing the nn.Module method {name!r} is not allowed while grading "
                "(the checks rely on it to inspect your model)"
            )
        original(self, name, value)

    nn.Module.__setattr__ = __setattr__  # type: ignore[method-assign]  # the point: patch the class, for every model


def snapshot():
    """Take the fingerprint now; returns ``changes()``, which lists what differs since (empty: nothing)."""
    _warm_up_torch()
    module_table = {name: id(module) for name, module in list(sys.modules.items())}
    modules = _watched_modules()
    module_dicts = {name: (vars(module), _ids(vars(module))) for name, module in modules.items()}
    classes = _classes_of(modules)
    class_dicts = {name: (cls, _ids(vars(cls))) for name, cls in classes.items()}

    def changes() -> list[str]:
        found = []
        for name, ident in module_table.items():
            now = sys.modules.get(name)
            if now is None or id(now) != ident:
                found.append(f"the module table entry {name!r} was replaced or removed")
        for name, (namespace, before) in module_dicts.items():
            nncourse = name.split(".")[0] == "nncourse"
            ids_now = _ids(namespace)
            for key, ident in before.items():
                if ids_now.get(key) != ident:
                    found.append(f"{name}.{key} was replaced or removed")
            if nncourse:  # a submodule imported later appears on its package: not a change
                found.extend(
                    f"{name}.{key} was added"
                    for key in ids_now.keys() - before.keys()
                    if not isinstance(namespace.get(key), types.ModuleType)
                )
        for name, (cls, before) in class_dicts.items():
            ids_now = _ids(vars(cls))
            for key, ident in before.items():
                if ids_now.get(key) != ident:
                    found.append(f"{name}.{key} was replaced or removed")
            found.extend(f"{name}.{key} was added" for key in ids_now.keys() - before.keys() if key not in _CACHES)
        return found[:20]

    return changes
