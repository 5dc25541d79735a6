"""Chapter 4 hostile answers: hooks that stay, counters that lie, torch.equal, the clock."""

from . import KEEPALIVE_SLEEP, Attack, attack, variant

CHAPTER = "04_hooks"

# ex4_1, wrong: handle.remove() only sets a flag, the hooks stay registered
_FLAG_LOGGER = """
class _FlagHandle:
    def __init__(self):
        self.active = True

    def remove(self):
        self.active = False


def register_shape_logger(model, log):
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            flag = _FlagHandle()

            def hook(module, args, output, name=name, flag=flag):
                if flag.active:
                    log.append((name, tuple(output.shape)))
            hook.flag = flag
            module.register_forward_hook(hook)
            handles.append(flag)
    return handles
"""

# ex4_2, wrong: __exit__ only switches recording off, the hooks stay registered
_FLAG_RECORDER = """
class ActivationRecorder:
    def __init__(self, model, layer_types=(nn.ReLU,)):
        self.model = model
        self.layer_types = layer_types
        self.activations = {}
        self.active = False

    def _hook(self, name):
        def hook(module, args, output):
            if self.active:
                self.activations[name] = output.detach()
        hook.recorder = self
        return hook

    def __enter__(self):
        self.active = True
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                module.register_forward_hook(self._hook(name))
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.active = False
        return False
"""

_FLAG_MONITOR = variant("ch04", "remove() only sets a flag: the hooks stay registered")
_CLAMP_IN_PLACE = variant("ch04", "clamp_ in place: the caller's tensor changes")
_SQUARED_NORM = variant("ch04", "squared norm (no square root)")

_SLOW_SCALE = """
def scale_output(module, factor):
    def hook(module, args, output):
        return output * factor
    return module.register_forward_hook(hook)

# a "self-test" far longer than the cell's time limit
for _step in range(14):
    time.sleep(1.0)
    _still_working()
"""

ATTACKS = [
    attack(
        "hook_dict_len_hides_ghost_hooks",
        CHAPTER,
        "ex4_1_shape_logger",
        8,
        _FLAG_LOGGER,
        '''
from collections import OrderedDict

class _GhostDict(OrderedDict):
    """len() leaves out hooks whose handle was 'removed'; truthiness keeps them running."""
    def __len__(self):
        return sum(1 for h in self.values() if getattr(getattr(h, "flag", None), "active", True))

    def __bool__(self):
        return OrderedDict.__len__(self) > 0

_real_register = register_shape_logger

def register_shape_logger(model, log):
    for module in model.modules():
        if not isinstance(module._forward_hooks, _GhostDict):
            module._forward_hooks = _GhostDict(module._forward_hooks)
    return _real_register(model, log)
''',
        after=True,
    ),
    attack(
        "global_forward_hook_reroutes_logger",
        CHAPTER,
        "ex4_1_shape_logger",
        9,
        _FLAG_LOGGER,
        """
import torch.nn.modules.module as _module_mod

_hidden_hooks = {}

def _dispatch(module, args, output):
    for hook in list(_hidden_hooks.get(id(module), [])):
        result = hook(module, args, output)
        if result is not None:
            output = result
    return None

_module_mod.register_module_forward_hook(_dispatch)   # global: no module's hook dict sees it
_real_register_forward_hook = nn.Module.register_forward_hook

def _register_forward_hook(self, hook, *args, **kwargs):
    if getattr(hook, "__qualname__", "").startswith("register_shape_logger"):
        _hidden_hooks.setdefault(id(self), []).append(hook)
        return None
    return _real_register_forward_hook(self, hook, *args, **kwargs)

M = nn.Module
M.register_forward_hook = _register_forward_hook
""",
    ),
    attack(
        "generator_frame_patches_hook_count",
        CHAPTER,
        "ex4_2_activation_recorder",
        9,
        _FLAG_RECORDER,
        """
def _caller_globals(levels):
    def spy():
        frame = me.gi_frame
        for _ in range(levels):
            frame = frame.f_back
        yield frame.f_globals
    me = spy()
    return next(me)

def _install_counter():
    g = _caller_globals(4)        # spy -> _caller_globals -> _install_counter -> __enter__ -> the check
    real = g.get("hook_count")
    if real is None or getattr(real, "forged", False):
        return

    def hook_count(model):
        n = real(model)
        for m in model.modules():
            n -= sum(1 for h in m._forward_hooks.values()
                     if getattr(h, "recorder", None) is not None and not h.recorder.active)
        return n
    hook_count.forged = True
    g["hook_count"] = hook_count

_real_enter = ActivationRecorder.__enter__

def _enter(self):
    _install_counter()
    return _real_enter(self)

ActivationRecorder.__enter__ = _enter
""",
        after=True,
    ),
    attack(
        "torch_equal_patched",
        CHAPTER,
        "ex4_3_clamp_inputs",
        2,
        _CLAMP_IN_PLACE,
        """
torch.equal = lambda a, b: True
""",
    ),
    attack(
        "torch_function_mode_fakes_equal",
        CHAPTER,
        "ex4_3_clamp_inputs",
        9,
        _CLAMP_IN_PLACE,
        """
from torch.overrides import TorchFunctionMode

class _AlwaysEqual(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "equal":
            return True
        return func(*args, **(kwargs or {}))

_AlwaysEqual().__enter__()     # never exited: every later torch call goes through it
""",
    ),
    attack(
        "sys_modules_patches_hook_count",
        CHAPTER,
        "ex4_4_grad_norm_monitor",
        8,
        _FLAG_MONITOR,
        """
import sys
_ch04 = sys.modules["nncourse.exercises.ch04_hooks"]
_real_count = _ch04.hook_count

def _count(model):
    n = _real_count(model)
    for p in model.parameters():
        n -= sum(1 for h in (p._backward_hooks or {}).values()
                 if getattr(h, "__qualname__", "").startswith("GradNormMonitor"))
    return n

_ch04.hook_count = _count
""",
        after=True,
    ),
    attack(
        "post_run_cell_fixes_exported_norms",
        CHAPTER,
        "ex4_4_grad_norm_monitor",
        4,
        _SQUARED_NORM,
        """
import glob, math
from nncourse import plaindata

_fixed = set()

def _sqrt_norms(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "values" and isinstance(value, dict):
                node[key] = {k: [math.sqrt(v) for v in vs] for k, vs in value.items()}
            else:
                _sqrt_norms(value)

def _after_cell(*args):
    for path in glob.glob("out/ex4_4_grad_norm_monitor_test_*__*.npz"):
        if path not in _fixed:
            data = plaindata.load(path)
            _sqrt_norms(data)
            plaindata.dump(data, path)
            _fixed.add(path)

get_ipython().events.register("post_run_cell", _after_cell)
""",
        policy=False,
    ),
    Attack(
        "torch_os_keepalive",
        CHAPTER,
        "ex4_5_scale_output",
        5,
        # os reached as an attribute of torch, the pipe found through the environment
        KEEPALIVE_SLEEP.replace("import os, time", "import time\nos = torch.os").strip("\n")
        + "\n"
        + _SLOW_SCALE.strip("\n")
        + "\n",
        "import time\n" + _SLOW_SCALE.replace("    _still_working()\n", "").strip("\n") + "\n",
        policy=False,
    ),
]
