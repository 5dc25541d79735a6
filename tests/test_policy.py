"""The grading policy (nncourse.policy) on its own: fast, no grading run.

Each hostile snippet must be refused with a reason that names its line; each honest snippet must
pass. The end-to-end proof (refused cells score zero, honest styles keep full marks) is
tests/test_tamper.py; these pin down the rules one by one. `pytest -k tamper` selects them too.
"""

from __future__ import annotations

import pytest

from nncourse import course, policy

from .grader_cases.ch01 import VARIANTS

CONTEXT = policy.Context.from_setup(
    [c.source for c in course.read_source(course.chapters()[0]).cells if course.is_read_only(c)]
)

REFUSED = {
    "base_init_taken_as_a_value": "init = nn.Module.__init__",
    "base_init_on_another_object": "nn.Module.__init__(model)",
    "import_sys": "import sys\nsys.modules.clear()",
    "import_os_as": "import os as o",
    "from_os_import": "from os import walk",
    "importlib": "import importlib",
    "builtins": "import builtins\nbuiltins.len = lambda x: 0",
    "dunder_import": "m = __import__('sys')",
    "exec": "exec('x = 1')",
    "eval": "y = eval('1 + 1')",
    "compile": "c = compile('1', 'f', 'eval')",
    "open_file": "text = open('/etc/passwd').read()",
    "globals": "g = globals()",
    "vars": "v = vars(torch)",
    "get_ipython": "get_ipython().events.register('post_run_cell', print)",
    "ipython_history": "last = _ih[-1]",
    "shell_line": "!ls /",
    "line_magic": "%run other.py",
    "torch_sys": "s = torch.sys",
    "torch_os_via_alias": "t = torch\no = t.os",
    "private_torch_c": "f = torch._C._nn",
    "private_on_model": "model = nn.Linear(2, 2)\nmodel._forward_hooks.clear()",
    "torch_load": "sd = torch.load('weights.pt')",
    "numpy_load": "import numpy as np\na = np.load('x.npy')",
    "patch_torch_equal": "torch.equal = lambda *a: True",
    "patch_module_class": "nn.Module.named_modules = lambda self: iter(())",
    "patch_via_alias": "M = nn.Module\nM.named_modules = lambda self: iter(())",
    "patch_via_tuple_alias": "kinds = (nn.ReLU, nn.Tanh)\nkinds[0].forward = lambda self, x: x",
    "patch_via_type": "type(nn.Linear(2, 2)).forward = lambda self, x: x",
    "patch_own_class_later": "class Net(nn.Module):\n    pass\nNet.named_children = lambda self: iter(())",
    "override_named_modules": "class Net(nn.Module):\n    def named_modules(self, *a, **k):\n        return iter(())",
    "override_modules_property": "class Net(nn.Module):\n    _modules = property(lambda self: {})",
    "replace_modules_dict": "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self._modules = {}",
    "getattr_class": "c = nn.Linear(2, 2).__class__",
    "subclasses": "subs = object.__subclasses__()",
    "globals_of_function": "g = torch.relu.__globals__",
    "dynamic_getattr": "name = '__cl' + 'ass__'\nc = getattr(nn.Linear(2, 2), name)",
    "getattr_on_module": "f = getattr(torch, 'equal')",
    "setattr_private": "setattr(nn.Linear(2, 2), '_parameters', {})",
    "setattr_inspected": "class Net(nn.Module):\n    pass\nn = Net()\nsetattr(n, 'named_modules', None)",
    "frame_walk": "def g():\n    yield 1\nf = g().gi_frame.f_back",
    "traceback_frame": "try:\n    1 / 0\nexcept Exception as e:\n    f = e.__traceback__",
    "metaclass": "class Meta(type):\n    pass\nclass A(metaclass=Meta):\n    pass",
    "lying_eq": "class Any:\n    def __eq__(self, other):\n        return True",
    "lying_class": "class Fake(nn.Module):\n    __class__ = nn.Dropout",
    "torch_function": "class T(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, func, types, args=(), kwargs=None):\n        return True",
    "getattr_hook": "class Net(nn.Module):\n    def __getattr__(self, name):\n        return None",
    "module_global_hook": "h = nn.modules.module.register_module_forward_hook(print)",
    "torch_overrides": "from torch.overrides import TorchFunctionMode",
    "checking_library": "import nncourse.checking as c",
    "checking_function_attribute": "check.__wrapped__ = None",
    "rebind_check": "check = lambda *a, **k: None",
    "star_import": "from torch import *",
    "three_arg_type": "X = type('X', (nn.Module,), {})",
    "signal": "import signal",
    "threading": "import threading",
    "ctypes": "import ctypes",
    "subprocess": "import subprocess",
    "pathlib_outside_checkpoint": "from pathlib import Path\nPath('/').iterdir()",
    "syntax_error": "def f(:\n    pass",
    "attrgetter_dunder": "import operator\ng = operator.attrgetter('__globals__')(torch.relu)",
    "methodcaller": "from operator import methodcaller",
    "type_hints_eval": "import typing\ndef f(x: '1'):\n    pass\ntyping.get_type_hints(f)",
    "string_formatter": "import string\nstring.Formatter().get_field('0.__class__', [1], {})",
    "patch_through_default": "def f(t=torch):\n    t.equal = lambda *a: True",
    "patch_through_lambda_default": "g = lambda t=torch: setattr(t, 'equal', None)",
    "patch_through_loop": "for t in (torch,):\n    t.equal = lambda *a: True",
    "patch_through_walrus": "if (t := torch):\n    t.equal = None",
    "getattr_handed_to_reduce": "import functools\ng = functools.reduce(getattr, ['__globals__'], torch.relu)",
    "getattr_renamed": "g = getattr\nc = g(torch.relu, '__glob' + 'als__')",
    "getattr_mapped": "c = list(map(getattr, [torch.relu], ['__globals__']))",
    "computed_setattr_on_a_class_handed_in": "def patch(c, n):\n    setattr(c, n, None)\n",
    "computed_setattr_on_a_copied_parameter": "def patch(c, n):\n    k = c\n    delattr(k, n)\n",
    "patch_layer_type_param": "def names(model, layer_type=nn.Linear):\n    layer_type.forward = None",
}

HONEST = {
    "plain_module": "class SimpleNN(nn.Module):\n    def __init__(self, a, b, c):\n        super().__init__()\n"
    "        self.fc1 = nn.Linear(a, b)\n        self.fc2 = nn.Linear(b, c)\n\n"
    "    def forward(self, x):\n        return self.fc2(F.relu(self.fc1(x)))",
    "old_super": "class A(nn.Module):\n    def __init__(self):\n        super(A, self).__init__()",
    "explicit_base_init": "class A(nn.Module):\n    def __init__(self):\n        nn.Module.__init__(self)",
    "imports": "import copy, math, collections, functools, itertools, typing, dataclasses\nimport numpy as np\n"
    "import matplotlib.pyplot as plt\nfrom torch.nn import init\nfrom torch.func import functional_call\n"
    "from torch.nn.utils import parameters_to_vector\nfrom collections import defaultdict, OrderedDict",
    "comprehensions_lambdas": "sq = [i * i for i in range(3)]\nd = {k: v for k, v in zip('ab', sq)}\n"
    "f = lambda x: x + 1\ng = (x for x in sq)\nfor _ in range(2):\n    pass",
    "property_and_private_self": "class Rec:\n    def __init__(self):\n        self._cache = {}\n\n"
    "    @property\n    def cache(self):\n        return self._cache\n\n"
    "    def __len__(self):\n        return len(self._cache)",
    "containers": "net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())\nlayers = nn.ModuleList([nn.Linear(2, 2)])\n"
    "heads = nn.ModuleDict({'a': nn.Linear(2, 1)})",
    "computed_names": "class N(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        for i in range(2):\n            setattr(self, f'layer{i}', nn.Linear(2, 2))\n\n"
    "    def forward(self, x):\n        for i in range(2):\n            x = getattr(self, f'layer{i}')(x)\n"
    "        return x",
    "taught_dicts_read": "m = nn.Linear(2, 2)\nprint(list(m._parameters), len(m._modules), m._buffers)",
    "plot_and_print": "plt.plot([1, 2, 3])\nplt.title('loss')\nprint(f'{math.pi:.3f}')\nshow('x', torch.ones(2))",
    "inplace_and_grad": "w = torch.zeros(3, requires_grad=True)\nwith torch.no_grad():\n    w.add_(1)\n"
    "w.grad = None\nlayer = nn.Linear(2, 2)\nlayer.weight.requires_grad = False\n"
    "nn.init.xavier_uniform_(layer.weight)",
    "hooks_on_instances": "m = nn.Linear(2, 2)\nh = m.register_forward_hook(lambda mod, i, o: None)\nh.remove()",
    "warnings": "import warnings\nwarnings.warn('careful', UserWarning)",
    "dataclass": "from dataclasses import dataclass, field\n@dataclass\nclass Cfg:\n    lr: float = 0.1\n"
    "    sizes: list = field(default_factory=list)",
    "call_helpers": "seed_everything(0)\nx = torch.randn(2, device=device)\nprint(device.type)",
    "matplotlib_magic": "%matplotlib inline\nx = 1",
    "super_dunder_init": "class D(torch.utils.data.Dataset):\n    def __init__(self):\n        super().__init__()\n"
    "    def __len__(self):\n        return 3\n    def __getitem__(self, i):\n        return i",
    "name_dunder": "print(nn.Linear.__name__, type(nn.ReLU()).__name__)",
    "hook_object_call": "class Hook:\n    def __call__(self, module, inputs, output):\n        return output * 2",
    "dynamic_setattr_on_object": "def swap(model, name, tensor):\n    prefix, _, attr = name.rpartition('.')\n"
    "    module = model.get_submodule(prefix)\n    setattr(module, attr, tensor)",
    "library_default_kept_on_self": "class Recorder:\n    def __init__(self, model, layer_types=(nn.ReLU,)):\n"
    "        self.layer_types, self._handles = layer_types, []\n"
    "        for name, m in model.named_modules():\n"
    "            if isinstance(m, self.layer_types):\n"
    "                self._handles.append(m.register_forward_hook(print))",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_tamper_policy_refuses(name):
    refusals = policy.review(REFUSED[name], CONTEXT)
    assert refusals, f"{name} should be refused"
    assert all(r.line >= 1 and r.why for r in refusals)
    assert "line" in policy.explain(refusals)


@pytest.mark.parametrize("name", sorted(HONEST))
def test_tamper_policy_accepts_honest_styles(name):
    assert policy.review(HONEST[name], CONTEXT) == [], policy.explain(policy.review(HONEST[name], CONTEXT))


def test_tamper_policy_per_exercise_rules():
    """ex3_6 may save and load files; ex5_4 may not name the losses its contract bans, even aliased."""
    save = "from pathlib import Path\ndef save(path, model):\n    torch.save(model.state_dict(), Path(path))"
    assert policy.review_answer("ex3_6_checkpoint", save, CONTEXT) == []
    assert policy.review_answer("ex1_1_simple_nn", save, CONTEXT)
    for banned in (
        "F.log_softmax(x, 1)",
        "from torch.nn.functional import log_softmax as f",
        "nn.CrossEntropyLoss()",
        "torch.special.log_softmax(x, 1)",
        "x.log_softmax(1)",
    ):
        assert policy.review_answer("ex5_4_cross_entropy", banned, CONTEXT), banned
    assert policy.review_answer("ex5_4_cross_entropy", "torch.logsumexp(x, 1)", CONTEXT) == []


def test_tamper_policy_accepts_every_reference_solution():
    for chapter in course.chapters():
        source = course.read_source(chapter)
        context = policy.Context.from_setup([c.source for c in source.cells if course.is_read_only(c)])
        for cell in source.cells:
            if course.is_answer(cell):
                refusals = policy.review_answer(course.grade_id(cell), cell.source, context)
                assert not refusals, f"{course.grade_id(cell)}: {policy.explain(refusals)}"


# ----------------------------------------------------------------------------- end to end
HOSTILE_EX1_1 = "import sys\n" + next(v for v in VARIANTS if v.label == "ReLU after fc2 as well").code.lstrip("\n")
PATCHES_LAYER_TYPE = """
def layer_names(model, layer_type=nn.Linear):
    layer_type.named_modules = lambda self, *a, **k: iter([])
    return [name for name, module in model.named_modules() if name and isinstance(module, layer_type)]
"""


@pytest.mark.slow
def test_tamper_refusals_reach_the_csv_and_the_feedback(tmp_path):
    """A refused cell (policy) and a runtime change (integrity check, policy off for that run):
    the exercise scores zero, the `tampering` column and the top of the feedback say what was refused."""
    from .helpers import full_marks, grade, gradebook_scores, make_course, solution_notebook, submit, with_answers

    chapter = "01_module_basics"
    solution = solution_notebook(chapter)
    for policy_setting, student, answers, needle, in_html in [
        (
            "on",
            "refused",
            {"ex1_1_simple_nn": HOSTILE_EX1_1},
            "importing `sys` is not allowed",
            "is not allowed in answers",
        ),
        (
            "off",
            "patched",
            {"ex1_6_layer_names": PATCHES_LAYER_TYPE},
            "named_modules was added",
            "named_modules was added",
        ),
    ]:
        course_dir = make_course(tmp_path / student, [chapter])
        submit(course_dir, chapter, student, with_answers(solution, answers))
        run = grade(course_dir, chapter, env_extra={"NNCOURSE_POLICY": policy_setting})
        assert run.returncode == 0, run.stdout + run.stderr
        exercise = next(iter(answers))
        expected = {c: (0.0 if c.startswith(exercise) else p) for c, p in full_marks(chapter).items()}
        assert gradebook_scores(course_dir, chapter)[student] == expected
        csv = (course_dir / "autograder/grades" / f"{chapter}.csv").read_text()
        assert needle in csv and exercise in csv
        html = (course_dir / "autograder/feedback" / student / chapter / f"{chapter}.html").read_text()
        assert "Grading notes" in html and in_html in html


@pytest.mark.slow
def test_tamper_visible_check_and_validate_show_the_refusal(tmp_path):
    """The learner hears of a refusal before submitting: `nbgrader validate` fails at the check."""
    import subprocess
    import sys

    import nbformat

    from .helpers import make_course, release_notebook, with_answers

    chapter = "01_module_basics"
    course_dir = make_course(tmp_path, [chapter])
    path = tmp_path / "mine.ipynb"
    nbformat.write(with_answers(release_notebook(chapter), {"ex1_1_simple_nn": HOSTILE_EX1_1}), path)
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", str(path)],
        cwd=course_dir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout + run.stderr
    assert "VALIDATION FAILED" in out
    assert "grading refuses your answer cell" in out
    assert "line 1: `import sys` — importing `sys` is not allowed in answers" in out
