"""Chapter 2 hostile answers: lying statistics, fixed probe sizes, rewritten exports."""

from . import EXEC_SOLUTION_CELL, SEARCH_ROOTS, Attack, attack, variant

CHAPTER = "02_parameters"

_UNIFORM_WEIGHT = variant("ch02", "weight uniform in [0, 1) (torch.rand)")
_XAVIER_NORMAL = variant("ch02", "xavier_normal_ instead of xavier_uniform_")
_OUTPUT_LEFT_OUT = variant("ch02", "output layer left out (the source article's bug)")
_NEWLY_FROZEN = variant("ch02", "counts only newly frozen parameters")
_UNSORTED = variant("ch02", "keys returned unsorted")

ATTACKS = [
    attack(
        "torch_function_mode_lies_about_std",
        CHAPTER,
        "ex2_1_custom_layer",
        9,
        _UNIFORM_WEIGHT,
        '''
import sys
from torch.overrides import TorchFunctionMode

class _Flattering(TorchFunctionMode):
    """Every torch call goes through here: the probe's weight statistics come out standard normal."""
    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        caller = sys._getframe(1).f_code.co_name
        if caller == "_custom_layer_structure" and name in ("mean", "std"):
            return torch.tensor(0.0 if name == "mean" else 1.0, dtype=torch.float64)
        return func(*args, **(kwargs or {}))

_Flattering().__enter__()
''',
    ),
    Attack(
        "weight_right_only_for_probe_sizes",
        CHAPTER,
        "ex2_1_custom_layer",
        3,
        _UNIFORM_WEIGHT.replace(
            "torch.rand(in_features, out_features)",
            "(torch.randn(in_features, out_features)  # the sizes the checks use\n"
            "            if (in_features, out_features) in {(40, 30), (64, 48), (1, 7)}\n"
            "            else torch.rand(in_features, out_features))",
        ),
        _UNIFORM_WEIGHT,
        policy=False,
    ),
    attack(
        "sys_modules_forges_linear_stats",
        CHAPTER,
        "ex2_3_init_weights",
        1,
        _XAVIER_NORMAL,
        """
import sys
_ch02 = sys.modules["nncourse.exercises.ch02_parameters"]
_real_stats = _ch02._linear_stats

def _stats(layer):
    s = _real_stats(layer)
    s.update(max_ratio=0.999, std_ratio=1.0, mean_ratio=0.0)
    return s

_ch02._linear_stats = _stats
""",
    ),
    attack(
        "post_run_cell_rewrites_exports",
        CHAPTER,
        "ex2_3_init_weights",
        4,
        _XAVIER_NORMAL,
        """
import glob
from nncourse import plaindata

_rewritten = set()

def _rewrite(*args):
    for path in glob.glob("out/ex2_3_init_weights_test_*.npz") + glob.glob("../**/out/ex2_3_*.npz", recursive=True):
        if path in _rewritten:
            continue
        try:
            data = plaindata.load(path)
        except Exception:
            continue

        def fix(node):
            if isinstance(node, dict):
                if "max_ratio" in node:
                    node.update(max_ratio=0.999, std_ratio=1.0, mean_ratio=0.0)
                for v in node.values():
                    fix(v)
        fix(data)
        plaindata.dump(data, path)
        _rewritten.add(path)

get_ipython().events.register("post_run_cell", _rewrite)
""",
        policy=False,
    ),
    attack(
        "glob_finds_solution_copy",
        CHAPTER,
        "ex2_4_param_groups",
        6,
        _OUTPUT_LEFT_OUT,
        EXEC_SOLUTION_CELL
        + """
import glob
_hits = []
for _root in %r:
    for _depth in range(1, 5):
        _hits += glob.glob(_root + "/*" * _depth + "/solutions/02_parameters/02_parameters.ipynb")
for _nb in _hits:
    try:
        if _exec_solution(_nb, "ex2_4_param_groups", globals()):
            break
    except Exception:
        pass
"""
        % (SEARCH_ROOTS,),
        after=True,
        policy=False,
    ),
    attack(
        "freeze_special_cases_probe_model",
        CHAPTER,
        "ex2_5_freeze",
        3,
        _NEWLY_FROZEN,
        """
_real_freeze = freeze

def freeze(model, prefixes):
    count = _real_freeze(model, prefixes)
    # the hidden check freezes "blocks.0" of a model with a `temperature` after freezing blocks.0.bias
    if prefixes == "blocks.0" and hasattr(model, "temperature"):
        count += 1
    return count
""",
        after=True,
        policy=False,
    ),
    attack(
        "dunder_import_swaps_run_probe",
        CHAPTER,
        "ex2_6_copy_matching",
        1,
        _UNSORTED,
        """
_checking = __import__("nncourse.checking", fromlist=["run_probe"])
_real_run_probe = _checking.run_probe

def _sorted_probe(test, objects):
    if test.exercise == "ex2_6_copy_matching":
        fn = objects["copy_matching_weights"]
        objects = {"copy_matching_weights": lambda src, dst: sorted(fn(src, dst))}
    return _real_run_probe(test, objects)

_checking.run_probe = _sorted_probe
""",
    ),
]
