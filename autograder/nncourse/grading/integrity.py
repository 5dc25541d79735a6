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

import itertools
import operator
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
# the warnings module adds this to the namespace of the line a warning is blamed on: torch blames some
# (a full backward hook on a module whose inputs need no gradient) on the probe that called the module
_MODULE_BOOKKEEPING = {"__warningregistry__"}


_GONE = object()


def _objects(mapping) -> dict[str, object]:
    """The objects by name (held, so that identity comparisons stay valid); plain values (counters
    such as RemovableHandle.next_id) are skipped."""
    return {
        key: value for key, value in list(mapping.items()) if isinstance(key, str) and not isinstance(value, _PLAIN)
    }


def _noop(*args, **kwargs):
    return None


def _torch_wrapper_codes() -> tuple:
    """The code of the two wrappers torch puts on itself on first use: ``torch._disable_dynamo``'s
    (importing ``torch._dynamo``, which the first optimizer does, wraps ``torch.manual_seed``) and
    ``Optimizer.profile_hook_step``'s (each optimizer class's ``step``, at its first construction)."""
    import torch
    from torch.optim import Optimizer

    return (torch._disable_dynamo(_noop).__code__, Optimizer.profile_hook_step(_noop).__code__)


def _is_torch_own_wrapper(new, old, codes: tuple) -> bool:
    """Is ``new`` one of torch's own wrappers around exactly ``old``?

    Such a wrapper only calls the function held in its closure (with dynamo disabled, or between the
    optimizer's step hooks), so it behaves as ``old``. The closure is what is checked, not
    ``__wrapped__``, which anyone can set: the wrapper calls its closure's function, whatever
    ``__wrapped__`` says.
    """
    if getattr(new, "__code__", None) not in codes:
        return False
    cells = [cell.cell_contents for cell in (getattr(new, "__closure__", None) or ())]
    return any(c is old for c in cells) and all(c is old or isinstance(c, _PLAIN) for c in cells)


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


class _Namespace:
    """A namespace and its objects at the fingerprint. ``unchanged()`` is the quick test (at C speed:
    the same keys, every object the same); only a namespace that fails it is examined entry by entry,
    so that a cell costs the grader milliseconds, not a pass over every name in torch in Python."""

    def __init__(self, namespace) -> None:
        self.namespace = namespace
        self.before = _objects(namespace)
        self.keys = frozenset(namespace.keys())
        self.names = list(self.before)
        self.objects = list(self.before.values())

    def unchanged(self) -> bool:
        return self.namespace.keys() == self.keys and all(
            map(operator.is_, map(self.namespace.get, self.names, itertools.repeat(_GONE)), self.objects)
        )


def snapshot():
    """Take the fingerprint now; returns ``changes()``, which lists what differs since (empty: nothing).

    torch changes itself on first use of an optimizer (see ``_torch_wrapper_codes``); those two
    wrappers, each around exactly what it replaced, are not tampering. Accepting them, instead of
    constructing every optimizer before the fingerprint, spares each submission that never builds
    an optimizer the import of ``torch._dynamo`` (about a second).
    """
    codes = _torch_wrapper_codes()
    module_names = list(sys.modules)
    module_objects = [sys.modules[name] for name in module_names]
    modules = _watched_modules()
    module_dicts = {name: _Namespace(vars(module)) for name, module in modules.items()}
    classes = _classes_of(modules)
    class_dicts = {name: _Namespace(vars(cls)) for name, cls in classes.items()}

    def replaced(name: str, watched: _Namespace) -> list[str]:
        found = []
        for key, old in watched.before.items():
            new = watched.namespace.get(key, _GONE)
            if new is not old and not _is_torch_own_wrapper(new, old, codes):
                found.append(f"{name}.{key} was replaced or removed")
        return found

    def changes() -> list[str]:
        found = []
        if not all(map(operator.is_, map(sys.modules.get, module_names), module_objects)):
            for name, module in zip(module_names, module_objects):
                if sys.modules.get(name) is not module:
                    found.append(f"the module table entry {name!r} was replaced or removed")
        for name, watched in module_dicts.items():
            if watched.unchanged():
                continue
            found.extend(replaced(name, watched))
            if name.split(".")[0] == "nncourse":  # a submodule imported later appears on its package: not a change
                found.extend(
                    f"{name}.{key} was added"
                    for key in _objects(watched.namespace).keys() - watched.before.keys() - _MODULE_BOOKKEEPING
                    if not isinstance(watched.namespace.get(key), types.ModuleType)
                )
        for name, watched in class_dicts.items():
            if watched.unchanged():
                continue
            found.extend(replaced(name, watched))
            found.extend(
                f"{name}.{key} was added"
                for key in _objects(watched.namespace).keys() - watched.before.keys()
                if key not in _CACHES
            )
        return found[:20]

    return changes
