"""Correct answers in honest styles: none of them may lose a point to the tampering defences."""

from . import Honest

C1, C2, C3, C4, C5 = ("01_module_basics", "02_parameters", "03_train_eval_loop", "04_hooks", "05_functional_vs_modules")

HONEST = [
    Honest(
        "simple_nn_property_super_with_args",
        C1,
        "ex1_1_simple_nn",
        ("property", "super_with_args", "type_hints", "f_string", "print", "isinstance", "private_attribute"),
        '''
class SimpleNN(nn.Module):
    """fc1 -> ReLU -> fc2, with a read-only summary."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super(SimpleNN, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self._sizes = (input_size, hidden_size, output_size)

    @property
    def sizes(self) -> tuple:
        return self._sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert isinstance(x, torch.Tensor), f"expected a tensor, got {type(x).__name__}"
        return self.fc2(torch.relu(self.fc1(x)))


print(f"SimpleNN{SimpleNN(5, 7, 3).sizes}")
''',
    ),
    Honest(
        "simple_net_getattr_setattr_loop",
        C1,
        "ex1_2_simple_net",
        ("getattr_setattr_self", "f_string", "super_without_args", "generator_expression"),
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        sizes = [input_size, hidden_size, hidden_size]
        for i in (1, 2):
            setattr(self, f"layer{i}", nn.Linear(sizes[i - 1], sizes[i]))
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        for layer in (getattr(self, f"layer{i}") for i in (1, 2)):
            x = F.relu(layer(x))
        return self.output(x)
""",
    ),
    Honest(
        "mlp_modulelist_itertools_functools",
        C1,
        "ex1_3_mlp",
        ("ModuleList", "itertools", "functools", "lambda", "list_comprehension", "private_helper"),
        """
import functools
import itertools


def _pairs(sizes):
    return list(itertools.pairwise(sizes))


class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(a, b) for a, b in _pairs(sizes)])
        self.acts = nn.ModuleList([activation() for _ in range(len(sizes) - 2)])

    def forward(self, x):
        steps = list(itertools.chain.from_iterable(zip(self.linears, self.acts))) + [self.linears[-1]]
        return functools.reduce(lambda h, layer: layer(h), steps, x)
""",
    ),
    Honest(
        "mlp_moduledict_sequential_typing",
        C1,
        "ex1_3_mlp",
        ("ModuleDict", "Sequential", "typing", "dict_comprehension", "type_hints"),
        """
from typing import Callable, Sequence


class MLP(nn.Module):
    def __init__(self, sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        self.layers = nn.ModuleDict({f"linear{i}": nn.Linear(sizes[i], sizes[i + 1])
                                     for i in range(len(sizes) - 1)})
        self.acts = nn.Sequential(*[activation() for _ in range(len(sizes) - 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        names = list(self.layers)
        for i, name in enumerate(names):
            x = self.layers[name](x)
            if i < len(names) - 1:
                x = self.acts[i](x)
        return x
""",
    ),
    Honest(
        "count_parameters_nn_utils",
        C1,
        "ex1_5_count_parameters",
        ("torch.nn.utils", "generator_expression", "type_hints"),
        """
def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    params = [p for p in model.parameters() if p.requires_grad or not trainable_only]
    if not params:
        return 0
    return int(torch.nn.utils.parameters_to_vector(params).numel())
""",
    ),
    Honest(
        "layer_names_private_helper_filter",
        C1,
        "ex1_6_layer_names",
        ("private_helper", "lambda", "isinstance", "list_comprehension"),
        """
def _matches(layer_type):
    return lambda item: bool(item[0]) and isinstance(item[1], layer_type)


def layer_names(model, layer_type=nn.Linear):
    return [name for name, _ in filter(_matches(layer_type), model.named_modules())]
""",
    ),
    Honest(
        "custom_layer_nn_init_warns",
        C2,
        "ex2_1_custom_layer",
        ("torch.nn.init", "warnings", "no_grad", "getattr_setattr_self", "math"),
        """
import warnings


class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        nn.init.normal_(self.weight, mean=0.0, std=math.sqrt(1.0))
        setattr(self, "bias", nn.Parameter(torch.empty(out_features)))
        with torch.no_grad():
            self.bias.zero_()
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))
        if in_features > 10_000:
            warnings.warn("a very wide layer", UserWarning)

    def forward(self, x):
        return x @ self.weight + self.bias + self.custom_param


warnings.warn("CustomLayer uses (in, out) weights, unlike nn.Linear", UserWarning)
""",
    ),
    Honest(
        "init_weights_no_grad_isinstance",
        C2,
        "ex2_3_init_weights",
        ("torch.nn.init", "no_grad", "isinstance"),
        """
def initialize_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            with torch.no_grad():
                m.bias.fill_(0.01)
""",
    ),
    Honest(
        "freeze_collections_dataclass",
        C2,
        "ex2_5_freeze",
        ("collections", "dataclasses", "type_hints", "generator_expression"),
        """
import collections
from dataclasses import dataclass, field
from typing import Iterable, Union


@dataclass
class _Report:
    matched: collections.Counter = field(default_factory=collections.Counter)


def freeze(model: nn.Module, prefixes: Union[str, Iterable[str]]) -> int:
    prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    report = _Report()
    for name, p in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            p.requires_grad_(False)
            report.matched[name] += 1
    return sum(report.matched.values())
""",
    ),
    Honest(
        "copy_matching_copy_deepcopy",
        C2,
        "ex2_6_copy_matching",
        ("copy", "dict_comprehension", "print"),
        """
import copy


def copy_matching_weights(src, dst):
    target = copy.deepcopy(dst.state_dict())
    copied = {k: v for k, v in src.state_dict().items() if k in target and v.shape == target[k].shape}
    target.update(copied)
    dst.load_state_dict(target)
    print(f"copied {len(copied)} entries")
    return sorted(copied)
""",
    ),
    Honest(
        "evaluate_numpy_matplotlib",
        C3,
        "ex3_2_evaluate",
        ("numpy", "matplotlib", "plotting", "no_grad"),
        """
import numpy as np


def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    losses, sizes, correct = [], [], 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            losses.append(loss_fn(outputs, targets).item())
            sizes.append(len(targets))
            correct += int((outputs.argmax(dim=1) == targets).sum())
    sizes = np.asarray(sizes, dtype=np.float64)
    return float(np.dot(losses, sizes) / sizes.sum()), correct / float(sizes.sum())


fig, ax = plt.subplots(figsize=(3, 2))
ax.plot(np.linspace(0, 1, 5), np.linspace(1, 0, 5), label="a made-up validation curve")
ax.legend()
plt.close(fig)
""",
    ),
    Honest(
        "fit_copy_itertools",
        C3,
        "ex3_3_fit",
        ("copy", "itertools", "math", "dict_comprehension"),
        """
import copy
import itertools


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device="cpu", patience=None):
    history = {key: [] for key in ("train_loss", "val_loss", "val_acc")}
    best, best_state, waited = math.inf, None, 0
    for epoch in itertools.islice(itertools.count(), epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))
        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        if patience is None:
            continue
        if val_loss < best:
            best, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
""",
    ),
    Honest(
        "shape_logger_functools_partial",
        C4,
        "ex4_1_shape_logger",
        ("functools", "private_helper", "list_comprehension"),
        """
import functools


def _log_shape(log, name, module, args, output):
    log.append((name, tuple(output.shape)))


def register_shape_logger(model, log):
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    return [m.register_forward_hook(functools.partial(_log_shape, log, name)) for name, m in leaves]
""",
    ),
    Honest(
        "recorder_property_super_without_args",
        C4,
        "ex4_2_activation_recorder",
        ("property", "private_attribute", "super_without_args", "isinstance"),
        """
class _Base:
    def __init__(self, model):
        self.model = model
        self._handles = []


class ActivationRecorder(_Base):
    def __init__(self, model, layer_types=(nn.ReLU,)):
        super().__init__(model)
        self.layer_types = layer_types
        self._cache = {}

    @property
    def activations(self):
        return self._cache

    def __enter__(self):
        for name, module in self.model.named_modules():
            if isinstance(module, self.layer_types):
                self._handles.append(module.register_forward_hook(
                    lambda m, args, out, name=name: self._cache.__setitem__(name, out.detach())))
        return self

    def __exit__(self, *exc):
        while self._handles:
            self._handles.pop().remove()
        return False
""",
    ),
    Honest(
        "grad_norm_monitor_defaultdict_dataclass",
        C4,
        "ex4_4_grad_norm_monitor",
        ("collections", "dataclasses", "private_attribute", "f_string"),
        """
import collections
from dataclasses import dataclass


@dataclass
class _Entry:
    name: str

    def hook(self, monitor):
        return lambda grad: monitor.norms[self.name].append(float(grad.norm()))


class GradNormMonitor:
    def __init__(self, model):
        self.norms = collections.defaultdict(list)
        self._handles = [p.register_hook(_Entry(name).hook(self))
                         for name, p in model.named_parameters() if p.requires_grad]

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    def __repr__(self):
        return f"GradNormMonitor({len(self._handles)} hooks)"
""",
    ),
    Honest(
        "functional_nn_setattr_init",
        C5,
        "ex5_1_functional_nn",
        ("getattr_setattr_self", "torch.nn.init", "math", "f_string"),
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        for i, (n_out, n_in) in enumerate([(hidden_size, input_size), (output_size, hidden_size)], start=1):
            weight = nn.Parameter(torch.empty(n_out, n_in))
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            setattr(self, f"w{i}", weight)
            setattr(self, f"b{i}", nn.Parameter(torch.zeros(n_out)))

    def forward(self, x):
        h = F.relu(F.linear(x, getattr(self, "w1"), getattr(self, "b1")))
        return F.linear(h, self.w2, self.b2)
""",
    ),
    Honest(
        "forward_with_torch_func",
        C5,
        "ex5_3_functional_call",
        ("torch.func", "dict_comprehension"),
        """
import torch.func


def forward_with(model, params, x):
    merged = {**{k: v for k, v in model.named_parameters()}, **params}
    return torch.func.functional_call(model, merged, (x,))
""",
    ),
    Honest(
        "cross_entropy_logsumexp_math",
        C5,
        "ex5_4_cross_entropy",
        ("math", "type_hints", "private_helper"),
        """
def _target_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return logits[torch.arange(logits.shape[0], device=logits.device), targets]


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    shift = logits.max(dim=1, keepdim=True).values.detach()
    log_z = (logits - shift).exp().sum(dim=1).log() + shift.squeeze(1)
    return (log_z - _target_logits(logits, targets)).mean() * math.prod([1.0])
""",
    ),
]
