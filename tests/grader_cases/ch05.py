"""Chapter 5 submissions: realistic mistakes and correct answers in other styles."""

from . import Variant

CHAPTER = "05_functional_vs_modules"

FS, FF, FH = (
    "ex5_1_functional_nn_test_structure",
    "ex5_1_functional_nn_test_forward",
    "ex5_1_functional_nn_test_hidden",
)
DS, DE, DT, DH = (
    "ex5_2_dropout_mlp_test_structure",
    "ex5_2_dropout_mlp_test_eval",
    "ex5_2_dropout_mlp_test_train",
    "ex5_2_dropout_mlp_test_hidden",
)
CO, CU, CH = (
    "ex5_3_functional_call_test_output",
    "ex5_3_functional_call_test_unchanged",
    "ex5_3_functional_call_test_hidden",
)
EV, ES, EH = ("ex5_4_cross_entropy_test_values", "ex5_4_cross_entropy_test_stable", "ex5_4_cross_entropy_test_hidden")
BV, BS, BH = (
    "ex5_5_bce_with_logits_test_values",
    "ex5_5_bce_with_logits_test_stable",
    "ex5_5_bce_with_logits_test_hidden",
)

VARIANTS = [
    # ---------------------------------------------------------------- ex5_1
    Variant(
        "ex5_1_functional_nn",
        "plain tensors with requires_grad instead of nn.Parameter",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = torch.randn(hidden_size, input_size, requires_grad=True)
        self.b1 = torch.zeros(hidden_size, requires_grad=True)
        self.w2 = torch.randn(output_size, hidden_size, requires_grad=True)
        self.b2 = torch.zeros(output_size, requires_grad=True)

    def forward(self, x):
        return F.linear(F.relu(F.linear(x, self.w1, self.b1)), self.w2, self.b2)
""",
        {FS: 0, FF: 0, FH: 0},
    ),
    Variant(
        "ex5_1_functional_nn",
        "nn.Linear submodules instead of Parameters",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
""",
        {FS: 0, FF: 0, FH: 0},
    ),
    Variant(
        "ex5_1_functional_nn",
        "w1 shaped (input, hidden), used as x @ w1",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(input_size, hidden_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(torch.randn(hidden_size, output_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))

    def forward(self, x):
        return F.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2
""",
        {FS: 0, FF: 0, FH: 0},
    ),
    Variant(
        "ex5_1_functional_nn",
        "no ReLU",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden_size, input_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(torch.randn(output_size, hidden_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))

    def forward(self, x):
        return F.linear(F.linear(x, self.w1, self.b1), self.w2, self.b2)
""",
        {FS: 1, FF: 0, FH: 0},
    ),
    Variant(
        "ex5_1_functional_nn",
        "ReLU after the output as well",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden_size, input_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(torch.randn(output_size, hidden_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))

    def forward(self, x):
        return F.relu(F.linear(F.relu(F.linear(x, self.w1, self.b1)), self.w2, self.b2))
""",
        {FS: 1, FF: 0, FH: 0},
    ),
    Variant(
        "ex5_1_functional_nn",
        "Parameters right, but an nn.ReLU submodule",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden_size, input_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(torch.randn(output_size, hidden_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))
        self.act = nn.ReLU()

    def forward(self, x):
        return F.linear(self.act(F.linear(x, self.w1, self.b1)), self.w2, self.b2)
""",
        {FS: 0, FF: 1, FH: 1},
    ),
    Variant(
        "ex5_1_functional_nn",
        "register_parameter, matmul with .T, torch.relu, nn.init",
        """
class FunctionalNN(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super(FunctionalNN, self).__init__()
        for name, shape in [("w1", (n_hidden, n_in)), ("b1", (n_hidden,)),
                            ("w2", (n_out, n_hidden)), ("b2", (n_out,))]:
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        nn.init.kaiming_uniform_(self.w1, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.w2, a=math.sqrt(5))
        nn.init.zeros_(self.b1)
        nn.init.zeros_(self.b2)

    def forward(self, inputs):
        hidden = torch.relu(inputs @ self.w1.T + self.b1)
        return hidden @ self.w2.t() + self.b2
""",
    ),
    Variant(
        "ex5_1_functional_nn",
        "clamp as ReLU, addmm, warns on construction",
        """
import warnings

class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        warnings.warn("FunctionalNN: weights start at small random values", UserWarning)
        self.w1 = nn.Parameter(0.1 * torch.randn(hidden_size, input_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(0.1 * torch.randn(output_size, hidden_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))

    def forward(self, x):
        h = torch.addmm(self.b1, x, self.w1.t()).clamp(min=0)
        return torch.addmm(self.b2, h, self.w2.t())
""",
    ),
    # ---------------------------------------------------------------- ex5_2
    Variant(
        "ex5_2_dropout_mlp",
        "F.dropout without training=self.training (drops in eval)",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.p = p

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.p))
""",
        {DS: 1, DE: 0, DT: 1, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "an nn.Dropout submodule",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.drop = nn.Dropout(p)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))
""",
        {DS: 0, DE: 1, DT: 1, DH: 1},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "hand-made mask without the 1/(1-p) rescaling",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.p = p

    def forward(self, x):
        h = F.relu(self.fc1(x))
        if self.training:
            h = h * (torch.rand_like(h) >= self.p)
        return self.fc2(h)
""",
        {DS: 1, DE: 1, DT: 0, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "p used as the keep probability",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.keep = p

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc2(F.dropout(h, 1 - self.keep, training=self.training))
""",
        {DS: 1, DE: 1, DT: 1, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "dropout after the last Linear",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.p = p

    def forward(self, x):
        return F.dropout(self.fc2(F.relu(self.fc1(x))), self.p, training=self.training)
""",
        {DS: 1, DE: 1, DT: 0, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "training flag read once in __init__",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.p = p
        self.use_dropout = self.training

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.p, training=self.use_dropout))
""",
        {DS: 1, DE: 0, DT: 1, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "p ignored (always 0.5)",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, training=self.training))
""",
        {DS: 1, DE: 1, DT: 1, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "dropout on the input instead of the hidden layer",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.p = p

    def forward(self, x):
        x = F.dropout(x, self.p, training=self.training)
        return self.fc2(F.relu(self.fc1(x)))
""",
        {DS: 1, DE: 1, DT: 0, DH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "hand-made inverted-dropout mask, ModuleList",
        """
class DropoutMLP(nn.Module):
    def __init__(self, n_in, n_hidden, n_out, p=0.5):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out)])
        self.p = float(p)

    def forward(self, x):
        h = torch.relu(self.layers[0](x))
        if self.training and self.p > 0:
            mask = (torch.rand_like(h) > self.p).to(h.dtype)
            h = h * mask / (1.0 - self.p)
        return self.layers[1](h)
""",
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "dropout before the ReLU, nn.ReLU submodule",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.hidden = nn.Linear(input_size, hidden_size)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden_size, output_size)
        self.p = p

    def forward(self, x):
        z = F.dropout(self.hidden(x), p=self.p, training=self.training)
        return self.out(self.act(z))
""",
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "own functional-dropout wrapper module, warns",
        """
import warnings

class FunctionalDropout(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        warnings.warn("DropoutMLP: p should be tuned", UserWarning)
        self.net = nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(), FunctionalDropout(p),
                                 nn.Linear(hidden_size, output_size))

    def forward(self, x):
        return self.net(x)
""",
    ),
    # ---------------------------------------------------------------- ex5_3
    Variant(
        "ex5_3_functional_call",
        "load_state_dict(params, strict=False), then model(x)",
        """
def forward_with(model, params, x):
    model.load_state_dict(params, strict=False)
    return model(x)
""",
        {CO: 0, CU: 0, CH: 0},
    ),
    Variant(
        "ex5_3_functional_call",
        "swaps the tensors in and never restores them",
        """
def forward_with(model, params, x):
    for name, tensor in params.items():
        prefix, _, attr = name.rpartition(".")
        module = model.get_submodule(prefix)
        del module._parameters[attr]
        setattr(module, attr, tensor)
    return model(x)
""",
        {CO: 1, CU: 0, CH: 0},
    ),
    Variant(
        "ex5_3_functional_call",
        "copies the values in and restores them (no gradient path)",
        """
def forward_with(model, params, x):
    own = dict(model.named_parameters())
    saved = {name: own[name].detach().clone() for name in params}
    with torch.no_grad():
        for name, tensor in params.items():
            own[name].copy_(tensor)
    out = model(x)
    out = out.detach().clone()
    with torch.no_grad():
        for name, tensor in saved.items():
            own[name].copy_(tensor)
    return out
""",
        {CO: 0, CU: 1, CH: 0},
    ),
    Variant(
        "ex5_3_functional_call",
        "functional_call with detached tensors",
        """
def forward_with(model, params, x):
    return functional_call(model, {k: v.detach() for k, v in params.items()}, (x,))
""",
        {CO: 0, CU: 1, CH: 0},
    ),
    Variant(
        "ex5_3_functional_call",
        "manual swap restored in finally",
        """
def forward_with(model, params, x):
    saved = []
    try:
        for name, tensor in params.items():
            prefix, _, attr = name.rpartition(".")
            module = model.get_submodule(prefix)
            saved.append((module, attr, module._parameters.pop(attr)))
            setattr(module, attr, tensor)
        return model(x)
    finally:
        for module, attr, original in reversed(saved):
            delattr(module, attr)
            module.register_parameter(attr, original)
""",
    ),
    Variant(
        "ex5_3_functional_call",
        "torch.func.functional_call with keyword args, warns",
        """
import warnings
import torch.func

def forward_with(model, params, x):
    warnings.warn("forward_with: params must live on the model's device", UserWarning)
    return torch.func.functional_call(model, parameter_and_buffer_dicts=dict(params), args=x)
""",
    ),
    Variant(
        "ex5_3_functional_call",
        "deprecated nn.utils.stateless.functional_call",
        """
def forward_with(model, params, x):
    return torch.nn.utils.stateless.functional_call(model, params, (x,))
""",
    ),
    # ---------------------------------------------------------------- ex5_4
    Variant(
        "ex5_4_cross_entropy",
        "naive log(exp / sum exp)",
        """
def cross_entropy(logits, targets):
    probs = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
    return -torch.log(probs[torch.arange(len(targets)), targets]).mean()
""",
        {EV: 1, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "sum over the batch instead of mean",
        """
def cross_entropy(logits, targets):
    log_z = torch.logsumexp(logits, dim=1)
    return (log_z - logits.gather(1, targets.unsqueeze(1)).squeeze(1)).sum()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "uses F.log_softmax (forbidden)",
        """
def cross_entropy(logits, targets):
    return -F.log_softmax(logits, dim=1).gather(1, targets.unsqueeze(1)).mean()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "returns .item()",
        """
def cross_entropy(logits, targets):
    log_z = torch.logsumexp(logits, dim=1)
    return (log_z - logits[torch.arange(logits.shape[0]), targets]).mean().item()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "wrong indexing: logits[:, targets]",
        """
def cross_entropy(logits, targets):
    return (torch.logsumexp(logits, dim=1) - logits[:, targets]).mean()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "log_softmax imported under another name (still forbidden)",
        """
from torch.nn.functional import log_softmax as stable_log_probs

def cross_entropy(logits, targets):
    return -stable_log_probs(logits, 1)[torch.arange(len(targets)), targets].mean()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "max shift forgotten when adding back",
        """
def cross_entropy(logits, targets):
    m = logits.max(dim=1, keepdim=True).values
    log_z = torch.log(torch.exp(logits - m).sum(dim=1))
    return (log_z - logits[torch.arange(len(targets)), targets]).mean()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "max-subtraction by hand with indexing",
        """
def cross_entropy(logits, targets):
    m = logits.max(dim=1, keepdim=True).values.detach()
    shifted = logits - m
    log_z = shifted.exp().sum(dim=1).log()
    n = logits.shape[0]
    return (log_z - shifted[torch.arange(n, device=logits.device), targets]).sum() / n
""",
    ),
    Variant(
        "ex5_4_cross_entropy",
        "one-hot weighted log-probabilities, warns",
        """
import warnings

def cross_entropy(logits, targets):
    warnings.warn("cross_entropy: no class weights supported", UserWarning)
    log_probs = logits - logits.logsumexp(dim=-1, keepdim=True)
    one_hot = F.one_hot(targets, num_classes=logits.shape[1]).to(logits.dtype)
    return -(one_hot * log_probs).sum(dim=1).mean()
""",
    ),
    # ------------------------------------------------------------------ added for issue 16
    Variant(
        "ex5_1_functional_nn",
        "setattr in a loop, F.linear with keyword arguments",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        shapes = {"w1": (hidden_size, input_size), "b1": (hidden_size,),
                  "w2": (output_size, hidden_size), "b2": (output_size,)}
        for name, shape in shapes.items():
            init = torch.randn(shape) * 0.1 if name.startswith("w") else torch.zeros(shape)
            setattr(self, name, nn.Parameter(init))

    def forward(self, x):
        hidden = F.relu(F.linear(input=x, weight=self.w1, bias=self.b1))
        return F.linear(input=hidden, weight=self.w2, bias=self.b2)
""",
    ),
    Variant(
        "ex5_1_functional_nn",
        "einsum for the products, torch.relu, a helper method per layer",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-0.5, 0.5))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(torch.empty(output_size, hidden_size).uniform_(-0.5, 0.5))
        self.b2 = nn.Parameter(torch.zeros(output_size))

    def _layer(self, x, w, b):
        return torch.einsum("ni,oi->no", x, w) + b

    def forward(self, x):
        return self._layer(torch.relu(self._layer(x, self.w1, self.b1)), self.w2, self.b2)
""",
    ),
    Variant(
        "ex5_1_functional_nn",
        "biases shaped (size, 1)",
        """
class FunctionalNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden_size, input_size) * 0.1)
        self.b1 = nn.Parameter(torch.zeros(hidden_size, 1))
        self.w2 = nn.Parameter(torch.randn(output_size, hidden_size) * 0.1)
        self.b2 = nn.Parameter(torch.zeros(output_size, 1))

    def forward(self, x):
        h = F.relu((self.w1 @ x.T + self.b1).T)
        return (self.w2 @ h.T + self.b2).T
""",
        {FS: 0, FF: 0, FH: 0},
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "F.dropout with keyword arguments, other layer names",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.hidden = nn.Linear(in_features=input_size, out_features=hidden_size)
        self.output = nn.Linear(in_features=hidden_size, out_features=output_size)
        self.drop_prob = float(p)

    def forward(self, x):
        h = F.dropout(input=F.relu(self.hidden(x)), p=self.drop_prob, training=self.training)
        return self.output(h)
""",
    ),
    Variant(
        "ex5_2_dropout_mlp",
        "dropout in place on the ReLU output: backward fails in training",
        """
class DropoutMLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.p = p

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = F.dropout(h, self.p, training=self.training, inplace=True)
        return self.fc2(h)
""",
        {DS: 1, DE: 1, DT: 1, DH: 0},
    ),
    Variant(
        "ex5_3_functional_call",
        "the model's own parameters merged with params, x passed as a bare tensor",
        """
def forward_with(model, params, x):
    merged = dict(model.named_parameters())
    merged.update(params)
    return functional_call(model, merged, x)
""",
    ),
    Variant(
        "ex5_3_functional_call",
        "switches the model to train() mode first",
        """
def forward_with(model, params, x):
    model.train()  # "we want gradients"
    return functional_call(model, params, (x,))
""",
        {CO: 0, CU: 0, CH: 0},
    ),
    Variant(
        "ex5_4_cross_entropy",
        "logsumexp with keepdim, arange indexing, keyword dims",
        """
def cross_entropy(logits, targets):
    n = logits.shape[0]
    log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)
    log_probs = logits - log_norm
    picked = log_probs[torch.arange(n, device=logits.device), targets]
    return -picked.mean()
""",
    ),
    Variant(
        "ex5_4_cross_entropy",
        "logsumexp over dim 0 (the batch) instead of the classes",
        """
def cross_entropy(logits, targets):
    log_z = torch.logsumexp(logits, dim=0)
    return (log_z - logits.gather(1, targets.unsqueeze(1)).squeeze(1)).mean()
""",
        {EV: 0, ES: 0, EH: 0},
    ),
    # ---------------------------------------------------------------- ex5_5
    Variant(
        "ex5_5_bce_with_logits",
        "torch.where on the sign of x, each branch with exp of a non-positive number",
        """
def bce_with_logits(logits, targets):
    e = torch.exp(-logits.abs())
    positive = logits - logits * targets + torch.log1p(e)
    negative = -logits * targets + torch.log1p(e)
    return torch.where(logits > 0, positive, negative).mean()
""",
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "logsumexp over a stacked zero, relu, divided by numel",
        """
def bce_with_logits(logits, targets):
    zeros = torch.zeros_like(logits)
    log_one_plus_exp = torch.logsumexp(torch.stack([zeros, logits]), dim=0)
    loss = log_one_plus_exp - logits * targets
    return loss.sum() / logits.numel()
""",
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "both log-sigmoid terms made stable by hand, soft labels weighted",
        """
def _log_sigmoid(z):
    return -(torch.relu(-z) + torch.log(1 + torch.exp(-torch.abs(z))))

def bce_with_logits(logits, targets):
    y = targets
    return -(y * _log_sigmoid(logits) + (1 - y) * _log_sigmoid(-logits)).mean()
""",
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "sigmoid first, then log",
        """
def bce_with_logits(logits, targets):
    p = torch.sigmoid(logits)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
""",
        {BV: 1, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "sigmoid, probabilities clamped to [1e-7, 1 - 1e-7], then log",
        """
def bce_with_logits(logits, targets, eps=1e-7):
    p = torch.sigmoid(logits).clamp(eps, 1 - eps)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
""",
        {BV: 1, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "log(1 + exp(x)) - x*y written directly (overflows for large positive x)",
        """
def bce_with_logits(logits, targets):
    return (torch.log(1 + torch.exp(logits)) - logits * targets).mean()
""",
        {BV: 1, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "sum over the elements instead of the mean",
        """
def bce_with_logits(logits, targets):
    return (logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))).sum()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "mean over the last dimension, summed over the rest",
        """
def bce_with_logits(logits, targets):
    per_element = logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
    return per_element.mean(dim=-1).sum()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "sign flipped (x*y added)",
        """
def bce_with_logits(logits, targets):
    return (logits.clamp(min=0) + logits * targets + torch.log1p(torch.exp(-logits.abs()))).mean()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "stable log-sigmoid terms, leading minus forgotten",
        """
def log_sigmoid(z):
    return -(torch.clamp(-z, min=0) + torch.log1p(torch.exp(-z.abs())))

def bce_with_logits(logits, targets):
    return (targets * log_sigmoid(logits) + (1 - targets) * log_sigmoid(-logits)).mean()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "targets assumed to be 0 or 1: one term picked with torch.where",
        """
def bce_with_logits(logits, targets):
    log1p_exp = logits.clamp(min=0) + torch.log1p(torch.exp(-logits.abs()))
    per_element = torch.where(targets > 0.5, log1p_exp - logits, log1p_exp)
    return per_element.mean()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "torch.where with both branches computing exp of +-x (nan gradient)",
        """
def bce_with_logits(logits, targets):
    pos = logits - logits * targets + torch.log1p(torch.exp(-logits))
    neg = -logits * targets + torch.log1p(torch.exp(logits))
    return torch.where(logits >= 0, pos, neg).mean()
""",
        {BV: 1, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "returns .item()",
        """
def bce_with_logits(logits, targets):
    loss = logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
    return loss.mean().item()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "computed under torch.no_grad() (no gradient)",
        """
def bce_with_logits(logits, targets):
    with torch.no_grad():
        loss = logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
    return loss.mean()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "clamps the logits in place",
        """
def bce_with_logits(logits, targets):
    linear = -logits * targets
    absolute = logits.abs()
    return (logits.clamp_(min=0) + linear + torch.log1p(torch.exp(-absolute))).mean()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "uses F.binary_cross_entropy_with_logits (forbidden)",
        """
def bce_with_logits(logits, targets):
    return F.binary_cross_entropy_with_logits(logits, targets)
""",
        {BV: 0, BS: 0, BH: 0},
    ),
    Variant(
        "ex5_5_bce_with_logits",
        "F.softplus under another name (forbidden during the call)",
        """
from torch.nn.functional import softplus as smooth_relu

def bce_with_logits(logits, targets):
    return (smooth_relu(logits) - logits * targets).mean()
""",
        {BV: 0, BS: 0, BH: 0},
    ),
]
