"""Chapter 4 (hooks): known wrong and correct answers, and the points each must get."""

from . import Variant

CHAPTER = "04_hooks"

_L, _R, _H = ("ex4_1_shape_logger_test_logs", "ex4_1_shape_logger_test_remove", "ex4_1_shape_logger_test_hidden")
_AR, _AC, _AH = (
    "ex4_2_activation_recorder_test_records",
    "ex4_2_activation_recorder_test_cleanup",
    "ex4_2_activation_recorder_test_hidden",
)
_CC, _CT, _CH = (
    "ex4_3_clamp_inputs_test_clamps",
    "ex4_3_clamp_inputs_test_two_inputs",
    "ex4_3_clamp_inputs_test_hidden",
)
_GN, _GR, _GH = (
    "ex4_4_grad_norm_monitor_test_norms",
    "ex4_4_grad_norm_monitor_test_remove",
    "ex4_4_grad_norm_monitor_test_hidden",
)
_SS, _SH = "ex4_5_scale_output_test_scales", "ex4_5_scale_output_test_hidden"
_KS, _KH = "ex4_6_clip_grad_step_test_step", "ex4_6_clip_grad_step_test_hidden"
_IS, _IH = "ex4_7_scale_input_grad_test_scales", "ex4_7_scale_input_grad_test_hidden"

VARIANTS = [
    # ------------------------------------------------------------------ ex4_1
    Variant(
        "ex4_1_shape_logger",
        "hooks every module, containers and the root included",
        """
def register_shape_logger(model, log):
    handles = []
    for name, module in model.named_modules():
        def hook(module, args, output, name=name):
            log.append((name, tuple(output.shape)))
        handles.append(module.register_forward_hook(hook))
    return handles
""",
        {_L: 0, _R: 0, _H: 0},
    ),
    Variant(
        "ex4_1_shape_logger",
        "late-binding closure: every entry gets the last name",
        """
def register_shape_logger(model, log):
    handles = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            handles.append(module.register_forward_hook(
                lambda m, args, output: log.append((name, tuple(output.shape)))))
    return handles
""",
        {_L: 0, _R: 1, _H: 0},
    ),
    Variant(
        "ex4_1_shape_logger",
        "forgets to return the handles",
        """
def register_shape_logger(model, log):
    for name, module in model.named_modules():
        if not list(module.children()):
            def hook(module, args, output, name=name):
                log.append((name, tuple(output.shape)))
            module.register_forward_hook(hook)
""",
        {_L: 1, _R: 0, _H: 0},
    ),
    Variant(
        "ex4_1_shape_logger",
        "skips the root even when it is a leaf",
        """
def register_shape_logger(model, log):
    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def hook(module, args, output, name=name):
                log.append((name, tuple(output.shape)))
            handles.append(module.register_forward_hook(hook))
    return handles
""",
        {_L: 1, _R: 1, _H: 0},
    ),
    Variant(
        "ex4_1_shape_logger",
        "logs the class name instead of the qualified name",
        """
def register_shape_logger(model, log):
    handles = []
    for module in model.modules():
        if not list(module.children()):
            def hook(module, args, output):
                log.append((type(module).__name__, tuple(output.shape)))
            handles.append(module.register_forward_hook(hook))
    return handles
""",
        {_L: 0, _R: 1, _H: 0},
    ),
    Variant(
        "ex4_1_shape_logger",
        "writes into a module-level list instead of the given log",
        """
_LOG = []

def register_shape_logger(model, log):
    global _LOG
    _LOG = log
    handles = []
    for name, module in model.named_modules():
        if not list(module.children()):
            def hook(module, args, output, name=name):
                _LOG.append((name, tuple(output.shape)))
            handles.append(module.register_forward_hook(hook))
    return handles
""",
        {_L: 1, _R: 1, _H: 0},
    ),
    Variant(
        "ex4_1_shape_logger",
        "correct: modules() with a name map, functools.partial, torch.Size",
        """
import functools

def _log_shape(log, name, module, args, output):
    log.append((name, output.shape))          # torch.Size is a tuple

def register_shape_logger(model, log):
    names = {m: n for n, m in model.named_modules()}
    return [m.register_forward_hook(functools.partial(_log_shape, log, names[m]))
            for m in names if len(m._modules) == 0]
""",
    ),
    Variant(
        "ex4_1_shape_logger",
        "correct: a callable hook object that warns",
        """
import warnings

class _ShapeHook:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def __call__(self, module, args, output):
        self.log.append((self.name, tuple(int(d) for d in output.size())))

def register_shape_logger(model, log):
    warnings.warn("registering shape hooks", UserWarning)
    handles = []
    for name, module in model.named_modules():
        if sum(1 for _ in module.children()) == 0:
            handles.append(module.register_forward_hook(_ShapeHook(log, name)))
    return handles
""",
    ),
    # ------------------------------------------------------------------ ex4_2
    Variant(
        "ex4_2_activation_recorder",
        "stores the output without detach()",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations, self.handles = {}, []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = output
                self.handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []
""",
        {_AR: 0, _AC: 0, _AH: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "__exit__ returns True and swallows the exception",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations, self.handles = {}, []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = output.detach()
                self.handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, exc_type, exc, tb):
        for h in self.handles:
            h.remove()
        self.handles = []
        return True
""",
        {_AR: 1, _AC: 1, _AH: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "never removes its hooks",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations = {}

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = output.detach()
                module.register_forward_hook(hook)
        return self

    def __exit__(self, exc_type, exc, tb):
        return False
""",
        {_AR: 1, _AC: 0, _AH: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "keeps a list of every call instead of the latest output",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations, self.handles = {}, []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations.setdefault(name, []).append(output.detach())
                self.handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, exc_type, exc, tb):
        for h in self.handles:
            h.remove()
""",
        {_AR: 0, _AC: 0, _AH: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "type(m) in layer_types: a single class and subclasses fail",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations, self.handles = {}, []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if type(module) in self.layer_types:
                def hook(module, args, output, name=name):
                    self.activations[name] = output.detach()
                self.handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, exc_type, exc, tb):
        for h in self.handles:
            h.remove()
""",
        {_AR: 1, _AC: 1, _AH: 0},
    ),
    # refused by the grading policy before it runs (a private torch attribute): the whole exercise scores zero
    Variant(
        "ex4_2_activation_recorder",
        "clears module._forward_hooks, removing other code's hooks",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations = {}

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = output.detach()
                module.register_forward_hook(hook)
        return self

    def __exit__(self, exc_type, exc, tb):
        for module in self.model.modules():
            module._forward_hooks.clear()
""",
        {_AR: 0, _AC: 0, _AH: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "__enter__ forgets to return self",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations, self.handles = {}, []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = output.detach()
                self.handles.append(module.register_forward_hook(hook))

    def __exit__(self, exc_type, exc, tb):
        for h in self.handles:
            h.remove()
""",
        {_AR: 0, _AC: 0, _AH: 2},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "correct: hooks registered in __init__, ExitStack, .data.clone(), warns",
        """
import contextlib
import warnings

class ActivationRecorder(contextlib.AbstractContextManager):
    def __init__(self, model, layer_types=(nn.ReLU,)):
        if not isinstance(layer_types, tuple):
            layer_types = (layer_types,)
        self.activations = {}
        self._stack = contextlib.ExitStack()
        for name, module in model.named_modules():
            if any(isinstance(module, t) for t in layer_types):
                handle = module.register_forward_hook(self._make(name))
                self._stack.callback(handle.remove)
        warnings.warn("recording activations", UserWarning)

    def _make(self, name):
        def hook(module, args, output):
            self.activations[name] = output.data.clone()
        return hook

    def __exit__(self, *exc):
        self._stack.close()
        return None
""",
    ),
    Variant(
        "ex4_2_activation_recorder",
        "correct: try/finally style with a defaultdict, detach().cpu()",
        """
from collections import defaultdict

class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self._targets = [(n, m) for n, m in model.named_modules() if isinstance(m, layer_types)]
        self.activations = defaultdict(lambda: None)
        self._handles = []

    def __enter__(self):
        for name, module in self._targets:
            self._handles.append(module.register_forward_hook(
                lambda m, args, out, key=name: self.activations.__setitem__(key, out.detach().cpu())))
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            while self._handles:
                self._handles.pop().remove()
        finally:
            pass
""",
    ),
    # ------------------------------------------------------------------ ex4_3
    Variant(
        "ex4_3_clamp_inputs",
        "clamp_ in place: the caller's tensor changes",
        """
def clamp_inputs(module, min_val, max_val):
    def hook(module, args):
        args[0].clamp_(min_val, max_val)
    return module.register_forward_pre_hook(hook)
""",
        {_CC: 0, _CT: 1, _CH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "returns a single tensor: the other inputs are dropped",
        """
def clamp_inputs(module, min_val, max_val):
    return module.register_forward_pre_hook(lambda module, args: args[0].clamp(min_val, max_val))
""",
        {_CC: 1, _CT: 0, _CH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "a forward hook: clamps the output instead",
        """
def clamp_inputs(module, min_val, max_val):
    return module.register_forward_hook(lambda module, args, output: output.clamp(min_val, max_val))
""",
        {_CC: 0, _CT: 0, _CH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "clamps every input",
        """
def clamp_inputs(module, min_val, max_val):
    def hook(module, args):
        return tuple(a.clamp(min_val, max_val) for a in args)
    return module.register_forward_pre_hook(hook)
""",
        {_CC: 1, _CT: 0, _CH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "does not return the handle",
        """
def clamp_inputs(module, min_val, max_val):
    def hook(module, args):
        return (args[0].clamp(min_val, max_val), *args[1:])
    module.register_forward_pre_hook(hook)
""",
        {_CC: 0, _CT: 1, _CH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "clamps a detached copy: no gradient reaches the input",
        """
def clamp_inputs(module, min_val, max_val):
    def hook(module, args):
        with torch.no_grad():
            first = args[0].clamp(min_val, max_val)
        return (first,) + args[1:]
    return module.register_forward_pre_hook(hook)
""",
        {_CC: 1, _CT: 1, _CH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "correct: with_kwargs=True, torch.minimum/maximum, a list then tuple",
        """
def clamp_inputs(module, min_val, max_val):
    def hook(module, args, kwargs):
        args = list(args)
        lo = torch.full_like(args[0], min_val)
        hi = torch.full_like(args[0], max_val)
        args[0] = torch.minimum(torch.maximum(args[0], lo), hi)
        return tuple(args), kwargs
    return module.register_forward_pre_hook(hook, with_kwargs=True)
""",
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "correct: torch.clamp with keywords, warns",
        """
import warnings

def clamp_inputs(module, min_val, max_val):
    warnings.warn(f"clamping inputs of {type(module).__name__}", UserWarning)

    def pre_hook(mod, inputs):
        first, *rest = inputs
        return (torch.clamp(first, min=min_val, max=max_val), *rest)

    handle = module.register_forward_pre_hook(pre_hook)
    return handle
""",
    ),
    # ------------------------------------------------------------------ ex4_4
    Variant(
        "ex4_4_grad_norm_monitor",
        "reads param.grad inside the tensor hook (not filled yet)",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.handles = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.norms[name] = []
                self.handles.append(p.register_hook(
                    lambda grad, name=name, p=p: self.norms[name].append(p.grad.norm().item())))

    def remove(self):
        for h in self.handles:
            h.remove()
""",
        {_GN: 0, _GR: 0, _GH: 0},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "appends the norm as a tensor, not a float",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.handles = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.norms[name] = []
                self.handles.append(p.register_hook(
                    lambda grad, name=name: self.norms[name].append(grad.norm())))

    def remove(self):
        for h in self.handles:
            h.remove()
""",
        {_GN: 0, _GR: 1, _GH: 0},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "hooks frozen parameters too (register_hook raises)",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.handles = []
        for name, p in model.named_parameters():
            self.norms[name] = []
            self.handles.append(p.register_hook(
                lambda grad, name=name: self.norms[name].append(grad.norm().item())))

    def remove(self):
        for h in self.handles:
            h.remove()
""",
        {_GN: 1, _GR: 1, _GH: 0},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "post-accumulate hook: norms of the accumulated .grad",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.handles = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.norms[name] = []
                self.handles.append(p.register_post_accumulate_grad_hook(
                    lambda param, name=name: self.norms[name].append(param.grad.norm().item())))

    def remove(self):
        for h in self.handles:
            h.remove()
""",
        {_GN: 1, _GR: 1, _GH: 0},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "squared norm (no square root)",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.handles = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.norms[name] = []
                self.handles.append(p.register_hook(
                    lambda grad, name=name: self.norms[name].append(grad.pow(2).sum().item())))

    def remove(self):
        for h in self.handles:
            h.remove()
""",
        {_GN: 0, _GR: 1, _GH: 0},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "remove() only sets a flag: the hooks stay registered",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.active = True
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.norms[name] = []
                p.register_hook(self._hook(name))

    def _hook(self, name):
        def hook(grad):
            if self.active:
                self.norms[name].append(grad.norm().item())
        return hook

    def remove(self):
        self.active = False
""",
        {_GN: 1, _GR: 0, _GH: 2},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "correct: defaultdict, linalg.vector_norm, float(), warns",
        """
import warnings
from collections import defaultdict

class GradNormMonitor:
    def __init__(self, model):
        warnings.warn("monitoring gradient norms", UserWarning)
        self.norms = defaultdict(list)
        self._handles = [p.register_hook(self._record(n))
                         for n, p in model.named_parameters() if p.requires_grad]

    def _record(self, name):
        def hook(grad):
            self.norms[name].append(float(torch.linalg.vector_norm(grad)))
        return hook

    def remove(self):
        while self._handles:
            self._handles.pop().remove()
""",
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "correct: sqrt of the sum of squares, handle dict",
        """
import math

class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.hooks = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            self.norms[name] = []

            def hook(g, key=name):
                self.norms[key].append(math.sqrt((g.double() ** 2).sum().item()))
                return None

            self.hooks[name] = param.register_hook(hook)

    def remove(self):
        for handle in self.hooks.values():
            handle.remove()
        self.hooks = {}
""",
    ),
    # ------------------------------------------------------------------ ex4_5
    Variant(
        "ex4_5_scale_output",
        "scales in place (output.mul_) and returns nothing",
        """
def scale_output(module, factor):
    def hook(module, args, output):
        output.mul_(factor)
    return module.register_forward_hook(hook)
""",
        {_SS: 1, _SH: 0},
    ),
    Variant(
        "ex4_5_scale_output",
        "computes output * factor but does not return it",
        """
def scale_output(module, factor):
    def hook(module, args, output):
        output = output * factor
    return module.register_forward_hook(hook)
""",
        {_SS: 0, _SH: 0},
    ),
    Variant(
        "ex4_5_scale_output",
        "a pre-hook scaling the input instead",
        """
def scale_output(module, factor):
    return module.register_forward_pre_hook(lambda module, args: (args[0] * factor,) + args[1:])
""",
        {_SS: 0, _SH: 0},
    ),
    Variant(
        "ex4_5_scale_output",
        "returns output.detach() * factor: gradients stop",
        """
def scale_output(module, factor):
    return module.register_forward_hook(lambda module, args, output: output.detach() * factor)
""",
        {_SS: 0, _SH: 0},
    ),
    Variant(
        "ex4_5_scale_output",
        "correct: torch.mul, a named function, warns",
        """
import warnings

def scale_output(module, factor):
    warnings.warn("scaling an output", UserWarning)

    def rescale(mod, inputs, out):
        return torch.mul(out, factor)

    handle = module.register_forward_hook(rescale)
    return handle
""",
    ),
    Variant(
        "ex4_5_scale_output",
        "correct: factor * output via a lambda",
        """
def scale_output(module, factor):
    return module.register_forward_hook(lambda m, i, o: factor * o)
""",
    ),
    # ------------------------------------------------------------------ added for issue 16
    Variant(
        "ex4_1_shape_logger",
        "correct: keyword registration, children() listed, a hook factory",
        """
def _make_hook(log, name):
    def hook(module, args, output):
        log.append((name, tuple(int(d) for d in output.shape)))
    return hook


def register_shape_logger(model, log):
    leaves = [(name, m) for name, m in model.named_modules() if len(list(m.children())) == 0]
    return [m.register_forward_hook(hook=_make_hook(log, name)) for name, m in leaves]
""",
    ),
    Variant(
        "ex4_1_shape_logger",
        "correct: reads module._modules (chapter 1) and a with_kwargs hook",
        """
def register_shape_logger(model, log):
    handles = []
    for qualified, sub in model.named_modules():
        if not sub._modules:
            def record(mod, args, kwargs, out, qualified=qualified):
                log.append((qualified, tuple(out.shape)))
            handles.append(sub.register_forward_hook(record, with_kwargs=True))
    return handles
""",
    ),
    Variant(
        "ex4_1_shape_logger",
        "logs the input's shape instead of the output's",
        """
def register_shape_logger(model, log):
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            def hook(module, args, output, name=name):
                log.append((name, tuple(args[0].shape)))
            handles.append(module.register_forward_hook(hook))
    return handles
""",
        {_L: 0, _R: 1, _H: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "correct: functools.partial hooks, keyword registration, __exit__(*exc)",
        """
import functools

class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model, self.layer_types = model, layer_types
        self.activations = {}
        self.handles = []

    def _store(self, name, module, args, output):
        self.activations[name] = output.detach()

    def __enter__(self):
        self.handles = [
            module.register_forward_hook(hook=functools.partial(self._store, name))
            for name, module in self.model.named_modules()
            if isinstance(module, self.layer_types)
        ]
        return self

    def __exit__(self, *exc):
        while self.handles:
            self.handles.pop().remove()
""",
    ),
    Variant(
        "ex4_2_activation_recorder",
        "clears the activations on exit",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model = model
        self.layer_types = layer_types
        self.activations = {}
        self._handles = []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = output.detach()
                self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.activations.clear()
        return False
""",
        {_AR: 1, _AC: 0, _AH: 0},
    ),
    Variant(
        "ex4_2_activation_recorder",
        "records the module's input instead of its output",
        """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model = model
        self.layer_types = layer_types
        self.activations = {}
        self._handles = []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                def hook(module, args, output, name=name):
                    self.activations[name] = args[0].detach()
                self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False
""",
        {_AR: 0, _AC: 0, _AH: 0},
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "correct: clone().clamp_() on a copy, keyword registration, list splice",
        """
def clamp_inputs(module, min_val, max_val):
    def pre_hook(mod, inputs):
        new_inputs = list(inputs)
        new_inputs[0] = inputs[0].clone().clamp_(min=min_val, max=max_val)
        return tuple(new_inputs)
    return module.register_forward_pre_hook(hook=pre_hook)
""",
    ),
    Variant(
        "ex4_3_clamp_inputs",
        "clamps into a local variable and returns nothing",
        """
def clamp_inputs(module, min_val, max_val):
    def pre_hook(module, args):
        x = args[0].clamp(min_val, max_val)
    return module.register_forward_pre_hook(pre_hook)
""",
        {_CC: 0, _CT: 0, _CH: 0},
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "correct: keyword register_hook, setdefault, grad.norm(p=2), a lambda per parameter",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self.handles = [
            p.register_hook(hook=lambda g, n=n: self.norms.setdefault(n, []).append(float(g.norm(p=2))))
            for n, p in model.named_parameters()
            if p.requires_grad
        ]

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []
""",
    ),
    Variant(
        "ex4_4_grad_norm_monitor",
        "L1 norm (sum of absolute values) instead of L2",
        """
class GradNormMonitor:
    def __init__(self, model):
        self.norms = {}
        self._handles = []
        for name, param in model.named_parameters():
            if param.requires_grad:
                self.norms[name] = []
                def hook(grad, name=name):
                    self.norms[name].append(grad.abs().sum().item())
                self._handles.append(param.register_hook(hook))

    def remove(self):
        for handle in self._handles:
            handle.remove()
""",
        {_GN: 0, _GR: 1, _GH: 0},
    ),
    Variant(
        "ex4_5_scale_output",
        "correct: functools.partial with a keyword factor, with_kwargs hook",
        """
import functools

def _scaled(module, args, kwargs, output, factor):
    return output * factor

def scale_output(module, factor):
    return module.register_forward_hook(functools.partial(_scaled, factor=factor), with_kwargs=True)
""",
    ),
    Variant(
        "ex4_5_scale_output",
        "`if factor:` guard: a factor of 0 leaves the output unchanged",
        """
def scale_output(module, factor):
    def hook(module, args, output):
        if factor:
            return output * factor
    return module.register_forward_hook(hook)
""",
        {_SS: 1, _SH: 0},
    ),
    # ------------------------------------------------------------------ ex4_6
    Variant(
        "ex4_6_clip_grad_step",
        "correct: model.zero_grad, nn.utils with keywords, float()",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    model.zero_grad(set_to_none=True)
    output = model(x)
    loss_fn(output, y).backward()
    norm = nn.utils.clip_grad_norm_(parameters=list(model.parameters()), max_norm=max_norm, norm_type=2.0)
    optimizer.step()
    return float(norm)
""",
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "correct: clipping written by hand from the per-parameter norms",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    total = math.sqrt(sum(g.norm().item() ** 2 for g in grads))
    factor = max_norm / (total + 1e-6)
    if factor < 1:
        with torch.no_grad():
            for g in grads:
                g.mul_(factor)
    optimizer.step()
    return total
""",
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "correct: clips every parameter the optimizer holds, all groups",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return total.item()
""",
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "clips after optimizer.step(): the step used the unclipped gradients",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
    return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()
""",
        {_KS: 0, _KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "clips each parameter on its own and returns the last one's norm",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    norm = 0.0
    for p in model.parameters():
        if p.grad is not None:
            norm = torch.nn.utils.clip_grad_norm_(p, max_norm).item()
    optimizer.step()
    return norm
""",
        {_KS: 0, _KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "clip_grad_value_ with max_norm as the clip value",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
    torch.nn.utils.clip_grad_value_(model.parameters(), max_norm)
    optimizer.step()
    return total.item()
""",
        {_KS: 0, _KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "returns the norm after clipping",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    after = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None))
    optimizer.step()
    return after.item()
""",
        {_KS: 0, _KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "forgets to zero the gradients",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    loss = loss_fn(model(x), y)
    loss.backward()
    total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return total_norm.item()
""",
        {_KS: 0, _KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "clips the weights only, not the biases",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    total = torch.nn.utils.clip_grad_norm_(weights, max_norm)
    optimizer.step()
    return total.item()
""",
        {_KS: 0, _KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "clips the first param group only",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    total = torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], max_norm)
    optimizer.step()
    return total.item()
""",
        {_KH: 0},
    ),
    Variant(
        "ex4_6_clip_grad_step",
        "hand-written clipping that always rescales to max_norm",
        """
def train_step_clipped(model, loss_fn, optimizer, x, y, max_norm):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    total = torch.sqrt(sum(p.grad.norm() ** 2 for p in model.parameters() if p.grad is not None))
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.grad *= max_norm / total
    optimizer.step()
    return total.item()
""",
        {_KH: 0},
    ),
    # ------------------------------------------------------------------ ex4_7
    Variant(
        "ex4_7_scale_input_grad",
        "correct: functools.partial, a loop, keyword registration",
        """
import functools


def _scale_grads(module, grad_input, grad_output, factor):
    scaled = []
    for g in grad_input:
        scaled.append(g * factor if g is not None else None)
    return tuple(scaled)


def scale_input_grad(module, factor):
    return module.register_full_backward_hook(hook=functools.partial(_scale_grads, factor=factor))
""",
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "correct: a lambda with torch.mul",
        """
def scale_input_grad(module, factor):
    return module.register_full_backward_hook(
        lambda mod, gin, gout: tuple(g if g is None else torch.mul(g, factor) for g in gin)
    )
""",
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "the deprecated register_backward_hook",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        return tuple(None if g is None else g * factor for g in grad_input)
    return module.register_backward_hook(hook)
""",
        {_IS: 0, _IH: 0},
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "scales the received gradients in place",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        for g in grad_input:
            if g is not None:
                g.mul_(factor)
    return module.register_full_backward_hook(hook)
""",
        {_IS: 0, _IH: 0},
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "returns a 1-tuple whatever the number of inputs",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        return (grad_input[0] * factor,)
    return module.register_full_backward_hook(hook)
""",
        {_IH: 0},
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "multiplies None entries too",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        return tuple(g * factor for g in grad_input)
    return module.register_full_backward_hook(hook)
""",
        {_IH: 0},
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "scales grad_output instead of grad_input",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        return tuple(None if g is None else g * factor for g in grad_output)
    return module.register_full_backward_hook(hook)
""",
        {_IS: 0, _IH: 0},
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "does not return the handle",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        return tuple(None if g is None else g * factor for g in grad_input)
    module.register_full_backward_hook(hook)
""",
        {_IS: 0, _IH: 0},
    ),
    Variant(
        "ex4_7_scale_input_grad",
        "`if factor:` guard: a factor of 0 leaves the gradients unscaled",
        """
def scale_input_grad(module, factor):
    def hook(module, grad_input, grad_output):
        if factor:
            return tuple(None if g is None else g * factor for g in grad_input)
    return module.register_full_backward_hook(hook)
""",
        {_IH: 0},
    ),
]
