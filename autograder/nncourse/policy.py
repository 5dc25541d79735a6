"""What an answer cell may contain: a static review of its source, before it runs.

The grader runs learner code in the same process as the probes that examine it, so anything the
code can reach it can change. This review takes the dangerous reach away before the code runs:
no modules but an allowlist of honest ones, no private (``_``) or dunder attributes of library
objects, no frames, no ``exec``/``eval``/``open``/``get_ipython``, no writing to attributes of
imported modules or library classes, no overriding of the ``nn.Module`` methods the checks use to
inspect a model, nothing from the checking library.

``review(source, ...)`` returns the refusals (empty when the cell is fine). The grader refuses
such a cell (its exercise scores zero, with the line and the reason); the visible checks run the
same review, so an honest learner who trips it learns why before submitting.

Why our own and not RestrictedPython: RestrictedPython compiles to guarded byte code and needs
its guard functions at run time, in the very process the learner controls; it also refuses
honest idioms we must allow (augmented assignment to attributes, ``print``, classes with
properties). A review of the syntax tree in the trusted grader needs no cooperation from the
child, and its rules can name PyTorch's own risks. See docs/grading-security.md.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import types
from dataclasses import dataclass

# Modules an answer may import (and reach as attributes of torch, numpy, ...).
ALLOWED_MODULES = frozenset(
    {
        "torch",
        "torch.nn",
        "torch.nn.functional",
        "torch.nn.init",
        "torch.nn.utils",
        "torch.nn.utils.parametrize",
        "torch.nn.utils.parametrizations",
        "torch.nn.utils.rnn",
        "torch.nn.parameter",
        "torch.nn.utils.stateless",
        "torch.optim",
        "torch.optim.lr_scheduler",
        "torch.utils",
        "torch.utils.data",
        "torch.utils.hooks",
        "torch.func",
        "torch.autograd",
        "torch.autograd.functional",
        "torch.linalg",
        "torch.fft",
        "torch.special",
        "torch.distributions",
        "torch.random",
        "torch.testing",
        "torch.cuda",
        "torch.backends",
        "torch.backends.mps",
        "torch.backends.cudnn",
        "torch.amp",
        "torch.types",
        "numpy",
        "numpy.random",
        "numpy.linalg",
        "numpy.fft",
        "numpy.typing",
        "math",
        "cmath",
        "copy",
        "collections",
        "collections.abc",
        "functools",
        "itertools",
        "operator",
        "typing",
        "dataclasses",
        "enum",
        "abc",
        "numbers",
        "statistics",
        "random",
        "re",
        "time",
        "warnings",
        "contextlib",
        "fractions",
        "decimal",
        "heapq",
        "bisect",
        "textwrap",
        "pprint",
        "json",
        "matplotlib",
        "matplotlib.pyplot",
        "matplotlib.cm",
        "matplotlib.colors",
        "tqdm",
        "tqdm.auto",
    }
)

# Library functions that read or write files, load code or reach the interpreter.
_DENIED_CALLABLES = frozenset(
    {
        "torch.load",
        "torch.save",
        "torch.from_file",
        "torch.compile",
        "numpy.load",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.fromfile",
        "numpy.memmap",
        "numpy.save",
        "numpy.savez",
        "numpy.savez_compressed",
        "numpy.savetxt",
        "numpy.tofile",
        "numpy.fromregex",
        "json.load",
        "json.dump",
        "matplotlib.pyplot.imread",
        "matplotlib.pyplot.imsave",
        "matplotlib.pyplot.savefig",
        "matplotlib.pyplot.switch_backend",
        "matplotlib.use",
        "warnings.showwarning",
        "warnings.formatwarning",
        # attribute access by a string (reaches dunders), and evaluation of annotation strings
        "operator.attrgetter",
        "operator.methodcaller",
        "typing.get_type_hints",
        "typing.ForwardRef",
        "functools.singledispatch",
        "functools.singledispatchmethod",
        "dataclasses.make_dataclass",
    }
)

_DENIED_BUILTINS = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "open",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
        "get_ipython",
        "In",
        "Out",
        "__builtins__",
        "__loader__",
        "__spec__",
        "_ih",
        "_oh",
        "_dh",
        "_i",
        "_ii",
        "_iii",
        "_",
        "__",
        "___",
    }
)

# Attributes that lead to frames, code objects and other interpreters' internals.
_FRAME_ATTRIBUTES = frozenset(
    {
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "gi_yieldfrom",
        "cr_await",
        "mro",
        "register_module_forward_hook",
        "register_module_forward_pre_hook",
        "register_module_full_backward_hook",
        "register_module_backward_hook",
        "register_module_buffer_registration_hook",
        "register_module_module_registration_hook",
        "register_module_parameter_registration_hook",
    }
)

# Dunder attributes an answer may read: names and container protocol methods. Everything else
# dunder (``__class__``, ``__dict__``, ``__globals__``, ``__subclasses__`` ...) is refused.
_HARMLESS_DUNDERS = frozenset(
    {
        "__name__",
        "__qualname__",
        "__doc__",
        "__getitem__",
        "__setitem__",
        "__len__",
        "__contains__",
        "__iter__",
        "__next__",
    }
)

# The internal dictionaries chapter 1 teaches; reading them is fine (they describe the learner's
# own model). Every other private attribute of torch's objects is refused.
_TAUGHT_PRIVATE = frozenset({"_modules", "_parameters", "_buffers"})

# Special methods an honest class defines. Others (``__getattr__``, ``__class__``,
# ``__torch_function__``, ``__eq__`` ...) can make an object lie to the code that inspects it.
_ALLOWED_SPECIAL_METHODS = frozenset(
    {
        "__init__",
        "__call__",
        "__len__",
        "__getitem__",
        "__setitem__",
        "__iter__",
        "__next__",
        "__repr__",
        "__str__",
        "__contains__",
        "__enter__",
        "__exit__",
        "__post_init__",
        "__doc__",
        "__annotations__",
    }
)

# nn.Module methods the checks use to look at a model; an override could hide what it holds.
INSPECTED_METHODS = frozenset(
    {
        "modules",
        "named_modules",
        "children",
        "named_children",
        "parameters",
        "named_parameters",
        "buffers",
        "named_buffers",
        "state_dict",
        "load_state_dict",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_backward_hook",
        "register_buffer",
        "register_parameter",
        "register_module",
        "add_module",
        "get_submodule",
        "get_parameter",
        "get_buffer",
        "apply",
        "train",
        "eval",
        "zero_grad",
        "to",
        "requires_grad_",
        "_apply",
        "_call_impl",
        "_wrapped_call_impl",
        "extra_repr_hidden",
    }
)


_REFLECTION = frozenset({"getattr", "setattr", "delattr", "hasattr"})


@dataclass(frozen=True)
class Refusal:
    line: int
    code: str
    why: str

    def describe(self) -> str:
        return f"line {self.line}: `{self.code.strip()[:120]}` — {self.why}"


@dataclass(frozen=True)
class Context:
    """What the cells before an answer define: module aliases and the checking library's names."""

    modules: dict  # name -> dotted module path
    protected: frozenset  # names from the checking library (call them, nothing more)

    @classmethod
    def from_setup(cls, sources: list[str]) -> Context:
        modules: dict[str, str] = {}
        protected: set[str] = set()
        for source in sources:
            try:
                tree = ast.parse(_blank_magics(source)[0])
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.split(".")[0] == "nncourse":
                            protected.add(alias.asname or alias.name.split(".")[0])
                        elif alias.asname:
                            modules[alias.asname] = alias.name
                        else:
                            modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        name = alias.asname or alias.name
                        if node.module.split(".")[0] == "nncourse":
                            if _is_library_code(node.module, alias.name):
                                protected.add(name)
                        elif _is_module(f"{node.module}.{alias.name}"):
                            modules[name] = f"{node.module}.{alias.name}"
        return cls(modules, frozenset(protected))

    @classmethod
    def from_namespace(cls, namespace: dict) -> Context:
        """The same from a live notebook namespace (the visible checks)."""
        modules: dict[str, str] = {}
        protected: set[str] = set()
        for name, value in list(namespace.items()):
            if name.startswith("_"):
                continue
            if isinstance(value, types.ModuleType):
                (
                    protected.add(name)
                    if value.__name__.split(".")[0] == "nncourse"
                    else modules.__setitem__(name, value.__name__)
                )
            elif callable(value) and str(getattr(value, "__module__", "")).startswith("nncourse"):
                protected.add(name)
        return cls(modules, frozenset(protected))


EMPTY = Context({}, frozenset())


def defines(source: str, names: set) -> bool:
    """Does this cell bind one of ``names`` at its top level (def, class, assignment, import)?"""
    try:
        tree = ast.parse(_blank_magics(source)[0])
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id in names for t in targets for n in ast.walk(t)):
                return True
    return False


def _is_library_code(module: str, name: str) -> bool:
    """A function, class or module of the checking library (``check``), not a value (``device``)."""
    try:
        obj = getattr(importlib.import_module(module), name)
    except Exception:
        return True
    return callable(obj) or isinstance(obj, types.ModuleType)


@functools.cache
def _is_module(dotted: str) -> bool:
    return isinstance(_resolve(dotted), types.ModuleType)


@functools.cache
def _resolve(dotted: str):
    """The object a dotted path names, or None. Only allowlisted roots are imported."""
    parts = dotted.split(".")
    if parts[0] not in {m.split(".")[0] for m in ALLOWED_MODULES}:
        return None
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return None
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except Exception:
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except Exception:
                return None
    return obj


def _module_name(obj) -> str | None:
    return obj.__name__ if isinstance(obj, types.ModuleType) else None


def _blank_magics(source: str) -> tuple[str, list[tuple[int, str]]]:
    """Replace IPython-only lines by blank ones. Returns the text and the refused magic lines."""
    lines, refused = [], []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            if not stripped.startswith("%matplotlib"):
                refused.append((number, line))
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines), refused


class _Reviewer(ast.NodeVisitor):
    def __init__(self, source_lines: list[str], context: Context, allow: frozenset, deny: frozenset):
        self.deny = deny
        self.lines = source_lines
        self.modules = dict(context.modules)  # names that hold modules (or library classes)
        self.protected = context.protected
        self.allow = allow
        self.refusals: list[Refusal] = []
        self.called: set[int] = set()  # ids of the Name nodes that are called directly
        self.parent_inits: set[int] = set()  # ids of `Base.__init__` nodes called as Base.__init__(self, ...)
        self.parameters: set[str] = set()  # names of function parameters, and plain copies of them
        self.class_depth: list[ast.ClassDef] = []

    # ---------------------------------------------------------------- helpers
    def refuse(self, node: ast.AST, why: str) -> None:
        line = getattr(node, "lineno", 1)
        code = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.refusals.append(Refusal(line, code, why))

    def dotted(self, node: ast.AST) -> str | None:
        """``torch.nn.functional.relu`` for an attribute chain rooted at a module alias."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.modules:
            return ".".join([self.modules[node.id], *reversed(parts)])
        return None

    def library_rooted(self, node: ast.AST) -> bool:
        """Is this expression (without calls) a module, a library class or reached from one?"""
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        if isinstance(node, ast.Name):
            return node.id in self.modules or node.id in self.protected
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type":
            return True
        return False

    def check_path(self, node: ast.AST, path: str) -> None:
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if parts[i - 1].startswith("_") and not (parts[i - 1].startswith("__") and parts[i - 1].endswith("__")):
                return self.refuse(node, f"`{prefix}` is a private part of a library; answers use public APIs only.")
            obj = _resolve(prefix)
            name = _module_name(obj)
            if (
                name is not None
                and name not in ALLOWED_MODULES
                and prefix not in ALLOWED_MODULES
                and name not in self.allow
            ):
                return self.refuse(node, f"`{prefix}` (the module {name}) is not one answers may use.")
            if prefix in _DENIED_CALLABLES and prefix not in self.allow:
                return self.refuse(
                    node, f"`{prefix}` reads or writes files or changes the interpreter; answers may not use it here."
                )

    # ---------------------------------------------------------------- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES and alias.name not in self.allow:
                self.refuse(
                    node,
                    f"importing `{alias.name}` is not allowed in answers "
                    f"(allowed: torch, numpy, math, copy, collections, functools, itertools, ...).",
                )
                continue
            if alias.asname:
                self.modules[alias.asname] = alias.name
            else:
                self.modules[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        if module not in ALLOWED_MODULES and module not in self.allow:
            return self.refuse(node, f"importing from `{module}` is not allowed in answers.")
        for alias in node.names:
            if alias.name == "*":
                self.refuse(node, "`import *` is not allowed in answers: import the names you use.")
                continue
            full = f"{module}.{alias.name}"
            if self.refuse_denied(node, alias.name):
                continue
            before = len(self.refusals)
            self.check_path(node, full)
            if len(self.refusals) == before and (_is_module(full) or isinstance(_resolve(full), type)):
                self.modules[alias.asname or alias.name] = full

    # ---------------------------------------------------------------- names and attributes
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if self.refuse_denied(node, name):
            return
        if name in _REFLECTION and id(node) not in self.called and name not in self.allow:
            # handed on as a value (functools.reduce(getattr, ...), g = getattr), its name argument
            # could not be reviewed
            self.refuse(node, f"`{name}` may only be called directly in answers, not passed on or renamed.")
            return
        if name == "_" and not isinstance(node.ctx, ast.Load):
            return  # the throwaway name in `for _ in ...`
        if name in self.allow:
            return
        if name in _DENIED_BUILTINS or (name.startswith("__") and name.endswith("__") and name != "__name__"):
            self.refuse(node, f"`{name}` is not allowed in answers (it reaches the interpreter or the notebook).")
        elif name in self.protected and not isinstance(node.ctx, ast.Load):
            self.refuse(node, f"`{name}` belongs to the course's checking library: answers may not redefine it.")
        elif name == "check" and name in self.protected:
            self.refuse(node, "answers do not call `check`: the checks run in their own cells.")

    def refuse_denied(self, node: ast.AST, name: str) -> bool:
        if name in self.deny:
            self.refuse(node, f"`{name}` is not allowed in this exercise (its contract asks you to do without it).")
            return True
        return False

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        self.refuse_denied(node, attr)
        if attr.startswith("__") and attr.endswith("__"):
            ok = attr in _HARMLESS_DUNDERS and isinstance(node.ctx, ast.Load)
            ok = ok or (
                attr == "__init__"
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "super"
            )
            # the older spelling of super().__init__(): nn.Module.__init__(self), on the answer's own object
            ok = ok or (attr == "__init__" and id(node) in self.parent_inits)
            if not ok:
                self.refuse(node, f"the special attribute `{attr}` is not allowed in answers.")
        elif attr in _FRAME_ATTRIBUTES:
            self.refuse(node, f"`.{attr}` reaches the interpreter's internals; answers may not use it.")
        elif attr.startswith("_") and not self.own_private(node) and attr not in _TAUGHT_PRIVATE:
            self.refuse(node, f"`.{attr}` is private: answers use public APIs, and their own `self._name` attributes.")
        elif attr in _TAUGHT_PRIVATE and not isinstance(node.ctx, ast.Load):
            self.refuse(node, f"`.{attr}` may be read, not replaced: register through attributes or register_*.")
        elif attr in INSPECTED_METHODS and not isinstance(node.ctx, ast.Load):
            self.refuse(node, f"answers may not replace `{attr}`: the checks rely on it to inspect your model.")
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in self.protected:
            self.refuse(
                node, f"`{root.id}` belongs to the course's checking library: answers may call it, nothing more."
            )
        path = self.dotted(node)
        if path is not None:
            self.check_path(node, path)
        if not isinstance(node.ctx, ast.Load) and self.library_rooted(node.value):
            self.refuse(
                node,
                "answers may not change attributes of modules or classes from outside them "
                "(that would change torch for the grader too; define your own methods in the class body).",
            )
        self.generic_visit(node)

    def is_parameter(self, node: ast.AST) -> bool:
        """A function parameter (other than self) or a plain copy of one: it may be a class handed in."""
        return isinstance(node, ast.Name) and node.id in self.parameters

    def own_private(self, node: ast.Attribute) -> bool:
        """``self._cache``: a private attribute of the learner's own object, not one of torch's."""
        if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            return False
        return node.attr not in _torch_private_names()

    # ---------------------------------------------------------------- assignments and calls
    def visit_Assign(self, node: ast.Assign) -> None:
        self.track_aliases(node.targets, node.value)
        if isinstance(node.value, ast.Name) and node.value.id in self.parameters:
            self.parameters |= {n for t in node.targets for n in _bound_names(t)}
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.track_aliases([node.target], node.value)
        self.generic_visit(node)

    def track_aliases(self, targets, value) -> None:
        """``M = nn.Module``, ``kinds = (nn.ReLU, nn.Tanh)`` or ``T = type(model)``: the name now holds
        library objects, so writing to its attributes is refused too. Names once library-rooted stay
        so (the safe side)."""
        if not self.mentions_library(value):
            return
        for target in targets:
            for name in _bound_names(target):
                if name not in self.modules:
                    self.modules[name] = self.dotted(value) or "<library object>"

    def mentions_library(self, node: ast.AST) -> bool:
        """Does the expression hand on a library object itself (not only the result of calling one)?"""
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "type":
                return True
            return False
        if isinstance(node, (ast.Attribute, ast.Subscript)) and self.library_rooted(node):
            return True
        if isinstance(node, ast.Name):
            return node.id in self.modules
        if isinstance(node, (ast.Lambda, ast.FunctionDef)):
            return False
        return any(self.mentions_library(child) for child in ast.iter_child_nodes(node))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        self.called.add(id(func))
        first = node.args[0] if node.args else None
        if isinstance(func, ast.Attribute) and isinstance(first, ast.Name) and first.id == "self":
            self.parent_inits.add(id(func))
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "hasattr", "delattr"):
            self.check_reflection(node, func.id)
        if isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 3:
            self.refuse(node, "building classes with type(name, bases, namespace) is not allowed in answers.")
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("register_forward_hook", "register_forward_pre_hook")
            and self.library_rooted(func.value)
        ):
            self.refuse(node, "hooks go on your model's modules, not on library classes.")
        self.generic_visit(node)

    def check_reflection(self, node: ast.Call, name: str) -> None:
        if not node.args:
            return
        target = node.args[0]
        if self.library_rooted(target):
            self.refuse(node, f"`{name}` on a module or library class is not allowed in answers.")
        if len(node.args) < 2:
            return
        key = node.args[1]
        if (
            isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and name != "hasattr"
            and key.value in INSPECTED_METHODS | _TAUGHT_PRIVATE
        ):
            self.refuse(node, f"`{name}` on {key.value!r} is not allowed in answers: the checks rely on it.")
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            if key.value.startswith("_") and not (
                isinstance(target, ast.Name)
                and target.id == "self"
                and key.value not in _torch_private_names()
                and not key.value.startswith("__")
            ):
                self.refuse(node, f"`{name}` with the private name {key.value!r} is not allowed in answers.")
        elif (
            isinstance(key, ast.JoinedStr)
            and key.values
            and isinstance(key.values[0], ast.Constant)
            and str(key.values[0].value)[:1].isalpha()
        ):
            pass  # f"layer{i}": a computed public name
        elif name == "hasattr" or (name in ("setattr", "delattr") and not self.is_parameter(target)):
            pass  # a computed name on an object of the answer's own making; the child guards the rest
        elif name in ("setattr", "delattr"):
            self.refuse(
                node,
                f"`{name}` with a computed name on a parameter (it may be a class handed in) is "
                "not allowed in answers; look the object up first, e.g. "
                "`module = model.get_submodule(prefix)`, then set the attribute on it.",
            )
        else:
            self.refuse(
                node,
                f"`{name}` needs a literal attribute name or an f-string that starts with "
                'a letter (e.g. f"layer{i}"); use nn.ModuleList/ModuleDict for collections.',
            )

    # ---------------------------------------------------------------- classes
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self.refuse(node, "metaclasses are not allowed in answers.")
        has_bases = bool(node.bases)
        for item in node.body:
            names = []
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [item.name]
            elif isinstance(item, ast.Assign):
                names = [t.id for t in item.targets if isinstance(t, ast.Name)]
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                names = [item.target.id]
            for name in names:
                if name.startswith("__") and name.endswith("__"):
                    if name not in _ALLOWED_SPECIAL_METHODS or (name == "__call__" and has_bases):
                        self.refuse(
                            item,
                            f"defining `{name}` is not allowed in answers: it can make an object "
                            "misreport itself to the checks."
                            + (" (nn.Module subclasses define forward, not __call__.)" if name == "__call__" else ""),
                        )
                elif has_bases and (name in INSPECTED_METHODS or name in _torch_private_names()):
                    self.refuse(
                        item,
                        f"overriding `{name}` of nn.Module is not allowed in answers: "
                        "the checks rely on it to inspect your model.",
                    )
        self.generic_visit(node)
        # from here on the class is finished: patching it from outside is refused like a library class
        self.modules.setdefault(node.name, "<class of the answer>")

    def visit_FunctionDef(self, node) -> None:
        """A parameter whose default is a library object (``layer_type=nn.Linear``) is one too."""
        args = node.args
        positional = args.posonlyargs + args.args
        self.parameters |= {a.arg for a in positional + args.kwonlyargs if a.arg != "self"}
        pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if self.mentions_library(default):
                self.modules.setdefault(arg.arg, "<library object>")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_For(self, node) -> None:
        self.track_aliases([node.target], node.iter)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.track_aliases([node.target], node.iter)
        self.generic_visit(node)

    def visit_With(self, node) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self.track_aliases([item.optional_vars], item.context_expr)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.track_aliases([node.target], node.value)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.protected or name in self.modules:
                self.refuse(node, f"rebinding `{name}` with `global` is not allowed in answers.")


def _bound_names(target: ast.AST) -> list[str]:
    """The plain names an assignment target binds (``a``, ``a, (b, *c)``), not ``x.attr`` or ``x[i]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for element in target.elts for n in _bound_names(element)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


@functools.lru_cache(maxsize=1)
def _torch_private_names() -> frozenset:
    """Private attribute names of torch's Module, Optimizer and Tensor (``_modules`` ...).

    An optimizer's own attributes are known only by making one, which imports ``torch._dynamo``
    (a second or more, in every grading worker): the list is kept in the course's cache, per torch
    version, and made again when the cache cannot be read.
    """
    import torch
    from torch import nn

    from . import course

    cached = course.CACHE_DIR / "policy" / f"torch-private-names-{torch.__version__}.json"
    try:
        return frozenset(json.loads(cached.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    names = set(dir(nn.Module)) | set(vars(nn.Module())) | set(dir(torch.optim.Optimizer)) | set(dir(torch.Tensor))
    names |= set(vars(torch.optim.SGD([nn.Parameter(torch.zeros(1))])))
    private = frozenset(n for n in names if n.startswith("_"))
    try:
        course.write_whole(cached, json.dumps(sorted(private)))
    except OSError:
        pass
    return private


def review(
    source: str, context: Context = EMPTY, allow: frozenset = frozenset(), deny: frozenset = frozenset()
) -> list[Refusal]:
    """The reasons this answer cell may not run at grading time (empty: it may)."""
    text, magics = _blank_magics(source)
    lines = source.splitlines()
    refusals = [
        Refusal(
            n, line, "IPython magics and shell commands are not allowed in answers (only %matplotlib); remove the line."
        )
        for n, line in magics
    ]
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        line = e.lineno or 1
        code = lines[line - 1] if 0 < line <= len(lines) else ""
        return refusals + [Refusal(line, code, f"this is not valid Python ({e.msg}).")]
    reviewer = _Reviewer(lines, context, frozenset(allow), frozenset(deny))
    reviewer.visit(tree)
    unique = {(r.line, r.why): r for r in reviewer.refusals}
    return refusals + sorted(unique.values(), key=lambda r: r.line)


def review_answer(exercise_id: str, source: str, context: Context) -> list[Refusal]:
    """``review`` with the exercise's own allowances and bans (``exercise(..., allow=, deny=)``)."""
    from .registry import load_exercises

    ex = load_exercises().get(exercise_id)
    return review(source, context, ex.allow if ex else frozenset(), ex.deny if ex else frozenset())


def explain(refusals: list[Refusal], limit: int = 3) -> str:
    shown = "; ".join(r.describe() for r in refusals[:limit])
    more = f" (and {len(refusals) - limit} more)" if len(refusals) > limit else ""
    return f"refused by the grading policy: {shown}{more}"
