"""Chapter 1 hostile answers: module table, file system, IPython, the clock."""

from . import EXEC_SOLUTION_CELL, FIND_WITH_OS_WALK, KEEPALIVE_SLEEP, SEARCH_ROOTS, Attack, attack, variant

CHAPTER = "01_module_basics"

_RELU_AFTER_FC2 = variant("ch01", "ReLU after fc2 as well")
_LAYER2_SKIPPED = variant("ch01", "layer2 skipped in forward")
_ACT_AFTER_LAST = variant("ch01", "activation after the last layer too")
_ALWAYS_SIGMOID = variant("ch01", "always sigmoid")
_COUNTS_TENSORS = variant("ch01", "counts tensors, not scalars")
_EXACT_TYPE = variant("ch01", "exact type comparison")
_MODULE_BACKWARD = variant("ch01", "Module defines backward instead of using the Function")
_SQUEEZES_BATCH = variant(
    "ch01", "squeeze(0) on the output: right for every batch but a batch of 1 (Hypothesis draws one)"
)

_SLOW_SIMPLE_NN = """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

# a "warm-up" far longer than the cell's time limit
for _step in range(14):
    time.sleep(1.0)
    _still_working()
"""

_NAMED_LAYER1 = variant("ch01", "layers named layer1/layer2")

# Reaches `sys` through `functools.reduce(getattr, ...)` (getattr handed on, never called by name),
# then, while the structure check builds the model, writes a forged "structure passed" frame into
# the grader's pipe before the real one. The forged data is the contract's own (names and shapes).
_FORGED_FRAME = """
import functools
_g = functools.reduce(getattr, ["__globals__"], torch.nn.functional.relu)
_sys = _g["sys"] if "sys" in _g else _g["torch"].sys
_os, _plain = _sys.modules["os"], _sys.modules["nncourse.plaindata"]
_sent = []

def _forge(sizes):
    if _sent or sizes != (5, 7, 3):
        return
    _sent.append(1)
    i, h, o = sizes
    data = {"is_module": True, "linear_names": ["fc1", "fc2"],
            "shapes": {"fc1.weight": [h, i], "fc1.bias": [h], "fc2.weight": [o, h], "fc2.bias": [o]},
            "__warnings__": [], "__check__": ["ex1_1_simple_nn", "structure"]}
    payload = _plain.dumps(data)
    frame = f"data ex1_1_simple_nn_test_structure 0 {len(payload)}\\n".encode() + payload
    for fd in range(3, 64):
        try:
            _os.write(fd, frame)
        except OSError:
            pass

_Real = SimpleNN

class SimpleNN(_Real):
    def __init__(self, input_size, hidden_size, output_size):
        _forge((input_size, hidden_size, output_size))
        super().__init__(input_size, hidden_size, output_size)
"""

ATTACKS = [
    attack("reduce_getattr_forges_pipe_frame", CHAPTER, "ex1_1_simple_nn", 4, _NAMED_LAYER1, _FORGED_FRAME, after=True),
    attack(
        "sys_modules_swaps_run_probe",
        CHAPTER,
        "ex1_1_simple_nn",
        1,
        _RELU_AFTER_FC2,
        """
import sys

class _Good(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

_checking = sys.modules["nncourse.checking"]
_real_run_probe = _checking.run_probe

def _run_probe(test, objects):
    if test.exercise == "ex1_1_simple_nn":
        objects = dict(objects, SimpleNN=_Good)
    return _real_run_probe(test, objects)

_checking.run_probe = _run_probe
""",
    ),
    # the same slow answer, announcing "still working" on the grader's progress pipe every second
    Attack(
        "progress_pipe_keepalive",
        CHAPTER,
        "ex1_1_simple_nn",
        5,
        KEEPALIVE_SLEEP.strip("\n") + "\n" + _SLOW_SIMPLE_NN.strip("\n") + "\n",
        "import time\n" + _SLOW_SIMPLE_NN.replace("    _still_working()\n", "").strip("\n") + "\n",
        policy=False,
    ),
    attack(
        "subclasses_reach_os_and_exec_solution",
        CHAPTER,
        "ex1_2_simple_net",
        9,
        _LAYER2_SKIPPED,
        """
# os without importing it: through object.__subclasses__() and a class defined in os.py
_g = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__
_walk, _join, _isfile = _g["walk"], _g["path"].join, _g["path"].isfile
_hit = None
for _root in %r:
    for _here, _dirs, _files in _walk(_root):
        _dirs[:] = [d for d in _dirs if d not in (".venv", ".git", "site-packages", "proc", ".cache")]
        if _here.count("/") - _root.count("/") >= 4:
            _dirs[:] = []
        _c = _join(_here, "solutions/01_module_basics/01_module_basics.ipynb")
        if _isfile(_c):
            try:
                _text = open(_c).read()
                _hit = _c
                break
            except Exception:
                pass
    if _hit:
        break
if _hit:
    for _cell in __import__("json").loads(_text)["cells"]:
        if _cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "ex1_2_simple_net":
            exec("".join(_cell["source"]), globals())
"""
        % (SEARCH_ROOTS,),
        after=True,
        policy=False,
    ),
    attack(
        "computed_names_wrap_mlp_probe",
        CHAPTER,
        "ex1_3_mlp",
        9,
        _ACT_AFTER_LAST,
        """
# no import statement for the checking library, no attribute written with a dot: computed names only
class _GoodMLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

_lib = getattr(__builtins__, "__im" + "port__", None) or __builtins__["__im" + "port__"]
_mod = _lib("nncourse.exercises." + "ch01_module_basics", fromlist=["_"])
_name = "_mlp" + "_probe"
_real = getattr(_mod, _name)
setattr(_mod, _name, lambda MLP, sizes, seed, **kw: _real(_GoodMLP, sizes, seed, **kw))
""",
    ),
    attack(
        "os_walk_finds_solution_copy",
        CHAPTER,
        "ex1_4_custom_activation",
        6,
        _ALWAYS_SIGMOID,
        FIND_WITH_OS_WALK
        + EXEC_SOLUTION_CELL
        + """
_nb = _find_copy("solutions/01_module_basics/01_module_basics.ipynb")
if _nb:
    _exec_solution(_nb, "ex1_4_custom_activation", globals())
""",
        after=True,
        policy=False,
    ),
    attack(
        "dir_fd_reads_hidden_solution",
        CHAPTER,
        "ex1_5_count_parameters",
        6,
        _COUNTS_TENSORS,
        EXEC_SOLUTION_CELL
        + '''
import os

def _read_relative(directory, relative):
    """os.open with dir_fd: the audit hook sees only the relative path."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open(relative, os.O_RDONLY, dir_fd=dfd)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(fd)
        return b"".join(chunks)
    finally:
        os.close(dfd)

_candidates = []
_root = os.environ.get("NNCOURSE_ROOT")
if _root:
    _candidates.append((os.path.dirname(_root.rstrip("/")), os.path.basename(_root.rstrip("/"))))
for _top in ("/tmp", "/opt", "/root", "/work"):
    try:
        _candidates += [(_top, name) for name in os.listdir(_top)]
    except OSError:
        pass
for _parent, _name in _candidates:
    for _sub in ("", "nn-module-course/"):
        try:
            _raw = _read_relative(_parent, f"{_name}/{_sub}solutions/01_module_basics/01_module_basics.ipynb")
        except OSError:
            continue
        _path = os.path.join(os.environ.get("TMPDIR", "."), "found.ipynb")
        with open(_path, "wb") as f:
            f.write(_raw)
        if _exec_solution(_path, "ex1_5_count_parameters", globals()):
            break
    else:
        continue
    break
''',
        after=True,
        policy=False,
    ),
    attack(
        "input_transformer_swaps_checked_object",
        CHAPTER,
        "ex1_6_layer_names",
        9,
        _EXACT_TYPE,
        """
def _layer_names_ok(model, layer_type=nn.Linear):
    return [n for n, m in model.named_modules() if n and isinstance(m, layer_type)]

def _swap(lines):
    return [line.replace("layer_names=layer_names", "layer_names=_layer_names_ok") for line in lines]

get_ipython().input_transformers_post.append(_swap)
""",
        after=True,
    ),
    # games the graph check of ex1_7: the Function's node is in the output's graph, but the gradient
    # that reaches it is multiplied by 0 (a hook on the node sees it)
    attack(
        "zero_times_apply_fakes_custom_gradient",
        CHAPTER,
        "ex1_7_custom_function",
        9,
        _MODULE_BACKWARD,
        """
class MySoftplus(nn.Module):
    def forward(self, x):
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())) + 0 * SoftplusFunction.apply(x)
""",
        after=True,
    ),
    # the hidden test of ex1_3 draws its inputs with Hypothesis in the child: make the child's
    # strategies start at 2, so the batch of 1 that exposes squeeze(0) is never drawn there
    attack(
        "hypothesis_strategies_skip_batch_of_one",
        CHAPTER,
        "ex1_3_mlp",
        3,
        _SQUEEZES_BATCH,
        """
import hypothesis.strategies as _st

_integers = _st.integers


def _no_ones(min_value=None, max_value=None):
    return _integers(max(2, min_value or 0), max_value)


_st.integers = _no_ones
""",
        policy=False,
    ),
]
