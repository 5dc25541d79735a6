"""Chapter 5 hostile answers: hidden children and dropout, forged statistics, escaped bans."""

from . import attack, variant

CHAPTER = "05_functional_vs_modules"

_RELU_CHILD = variant("ch05", "Parameters right, but an nn.ReLU submodule")
_DROPOUT_CHILD = variant("ch05", "an nn.Dropout submodule")
_NO_RESCALE = variant("ch05", "hand-made mask without the 1/(1-p) rescaling")
_LOG_SOFTMAX = variant("ch05", "uses F.log_softmax (forbidden)")

ATTACKS = [
    attack(
        "named_children_overridden",
        CHAPTER,
        "ex5_1_functional_nn",
        7,
        _RELU_CHILD,
        """
def _no_children(self):
    return iter(())

FunctionalNN.named_children = _no_children      # the nn.ReLU child is still there, just not listed
""",
        after=True,
    ),
    attack(
        "traceback_frame_patches_param_info",
        CHAPTER,
        "ex5_1_functional_nn",
        9,
        _RELU_CHILD,
        """
def _probe_globals():
    try:
        raise RuntimeError
    except RuntimeError as e:
        # this function <- __init__ <- the probe that builds the model
        return e.__traceback__.tb_frame.f_back.f_back.f_globals

_real_init = FunctionalNN.__init__

def _init(self, *args, **kwargs):
    _real_init(self, *args, **kwargs)
    g = _probe_globals()
    real = g.get("_param_info")
    if real is not None and not getattr(real, "forged", False):
        def _param_info(model):
            info = real(model)
            info["children"] = []
            return info
        _param_info.forged = True
        g["_param_info"] = _param_info

FunctionalNN.__init__ = _init
""",
        after=True,
    ),
    attack(
        "dropout_types_tuple_emptied",
        CHAPTER,
        "ex5_2_dropout_mlp",
        1,
        _DROPOUT_CHILD,
        """
import sys
sys.modules["nncourse.exercises.ch05_functional_vs_modules"]._DROPOUT_TYPES = ()
""",
    ),
    attack(
        "named_modules_overridden",
        CHAPTER,
        "ex5_2_dropout_mlp",
        7,
        _DROPOUT_CHILD,
        """
_real_named_modules = DropoutMLP.named_modules

def _named_modules(self, *args, **kwargs):
    for name, module in _real_named_modules(self, *args, **kwargs):
        if not isinstance(module, nn.Dropout):
            yield name, module

DropoutMLP.named_modules = _named_modules
""",
        after=True,
    ),
    attack(
        "instance_setattr_shadows_named_modules",
        CHAPTER,
        "ex5_2_dropout_mlp",
        7,
        _DROPOUT_CHILD,
        """
_real_init = DropoutMLP.__init__

def _init(self, *args, **kwargs):
    _real_init(self, *args, **kwargs)
    real = self.named_modules
    # a computed name, so no literal `named_modules` appears; the instance attribute shadows the method
    setattr(self, "named_" + "modules",
            lambda *a, **k: ((n, m) for n, m in real(*a, **k) if not isinstance(m, nn.Dropout)))

DropoutMLP.__init__ = _init
""",
        after=True,
        policy=False,
    ),
    attack(
        "module_alias_hides_dropout",
        CHAPTER,
        "ex5_2_dropout_mlp",
        7,
        _DROPOUT_CHILD,
        """
M = nn.Module
_orig = M.named_modules
M.named_modules = lambda self, *a, **k: ((n, m) for n, m in _orig(self, *a, **k) if type(m).__name__ != "Dropout")
""",
    ),
    attack(
        "sys_modules_forges_dropout_stats",
        CHAPTER,
        "ex5_2_dropout_mlp",
        1,
        _NO_RESCALE,
        """
import sys
_ch05 = sys.modules["nncourse.exercises.ch05_functional_vs_modules"]
_real_stats = _ch05._dropout_stats

def _stats(model, first, x, keep_scale):
    s = _real_stats(model, first, x, keep_scale)
    s.update(worst_kept_error=0.0, kept_scale_min=keep_scale, kept_scale_max=keep_scale)
    return s

_ch05._dropout_stats = _stats
""",
    ),
    attack(
        "ban_helper_swapped",
        CHAPTER,
        "ex5_4_cross_entropy",
        1,
        _LOG_SOFTMAX,
        """
import sys
sys.modules["nncourse.exercises.ch05_functional_vs_modules"]._call_without_builtin_losses = (
    lambda fn, *args: fn(*args))
""",
    ),
    attack(
        "disable_torch_function_private_log_softmax",
        CHAPTER,
        "ex5_4_cross_entropy",
        2,
        """
def cross_entropy(logits, targets):
    log_probs = F.log_softmax(logits, dim=1)
    return -log_probs[torch.arange(len(targets)), targets].mean()
""",
        """
_log_softmax = torch._C.TensorBase.log_softmax     # a private handle, taken before the check bans anything
_Disable = torch._C.DisableTorchFunction

class _F:
    @staticmethod
    def log_softmax(x, dim):
        with _Disable():
            return _log_softmax(x, dim)

F = _F
""",
    ),
    attack(
        "torch_ops_aten_log_softmax",
        CHAPTER,
        "ex5_4_cross_entropy",
        2,
        """
def cross_entropy(logits, targets):
    log_probs = torch.log_softmax(logits, dim=1)
    return -log_probs[torch.arange(len(targets)), targets].mean()
""",
        '''
class _Torch:
    """torch, except that log_softmax goes straight to the aten operator."""
    def __getattr__(self, name):
        return getattr(__import__("torch"), name)

    @staticmethod
    def log_softmax(x, dim):
        return __import__("torch").ops.aten._log_softmax.default(x, dim, False)

torch = _Torch()
''',
    ),
    attack(
        "torch_ops_aten_softplus",
        CHAPTER,
        "ex5_5_bce_with_logits",
        2,
        """
def bce_with_logits(logits, targets):
    return (F.softplus(logits) - logits * targets).mean()
""",
        """
class _F:
    \"\"\"F, except that softplus goes straight to the aten operator, past the patched F.softplus.\"\"\"

    @staticmethod
    def softplus(x):
        return torch.ops.aten.softplus.default(x, 1.0, 20.0)

F = _F
""",
        policy=False,
    ),
]
