"""Chapter 1 submissions: realistic mistakes and correct answers in other styles."""

from . import Variant

CHAPTER = "01_module_basics"

S, F_, H = "ex1_1_simple_nn_test_structure", "ex1_1_simple_nn_test_forward", "ex1_1_simple_nn_test_hidden"
N1, N2, N3 = "ex1_2_simple_net_test_structure", "ex1_2_simple_net_test_forward", "ex1_2_simple_net_test_hidden"
M1, M2 = "ex1_3_mlp_test_structure", "ex1_3_mlp_test_hidden"
A1, A2 = "ex1_4_custom_activation_test_applies", "ex1_4_custom_activation_test_hidden"
C1, C2 = "ex1_5_count_parameters_test_basic", "ex1_5_count_parameters_test_hidden"
L1, L2 = "ex1_6_layer_names_test_linear", "ex1_6_layer_names_test_hidden"

VARIANTS = [
    # ---------------------------------------------------------------- ex1_1
    Variant(
        "ex1_1_simple_nn",
        "ReLU after fc2 as well",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return torch.relu(self.fc2(torch.relu(self.fc1(x))))
""",
        {S: 1, F_: 0, H: 0},
    ),
    Variant(
        "ex1_1_simple_nn",
        "no activation at all",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.fc1(x))
""",
        {S: 1, F_: 0, H: 0},
    ),
    Variant(
        "ex1_1_simple_nn",
        "layers named layer1/layer2",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.layer2(F.relu(self.layer1(x)))
""",
        {S: 0, F_: 0, H: 0},
    ),
    Variant(
        "ex1_1_simple_nn",
        "forgot super().__init__()",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
""",
        {S: 0, F_: 0, H: 0},
    ),
    Variant(
        "ex1_1_simple_nn",
        "functional relu, old-style super",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(SimpleNN, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, inputs):
        hidden = F.relu(self.fc1(inputs))
        return self.fc2(hidden)
""",
    ),
    Variant(
        "ex1_1_simple_nn",
        "clamp as ReLU, warns on construction",
        """
import warnings

class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        warnings.warn("this SimpleNN is experimental", UserWarning)
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.fc1(x).clamp(min=0))
""",
    ),
    # ---------------------------------------------------------------- ex1_2
    Variant(
        "ex1_2_simple_net",
        "ReLU after the output layer",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return F.relu(self.output(F.relu(self.layer2(F.relu(self.layer1(x))))))
""",
        {N1: 1, N2: 0, N3: 0},
    ),
    Variant(
        "ex1_2_simple_net",
        "layer2 skipped in forward",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.output(F.relu(self.layer1(x)))
""",
        {N1: 1, N2: 0, N3: 0},
    ),
    Variant(
        "ex1_2_simple_net",
        "layer2 maps hidden to output",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, output_size)
        self.output = nn.Linear(output_size, output_size)

    def forward(self, x):
        return self.output(F.relu(self.layer2(F.relu(self.layer1(x)))))
""",
        {N1: 0, N2: 0, N3: 0},
    ),
    Variant(
        "ex1_2_simple_net",
        "ReLU modules, shared ReLU instance",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, output_size)
        self.act = nn.ReLU()

    def forward(self, x):
        for layer in (self.layer1, self.layer2):
            x = self.act(layer(x))
        return self.output(x)
""",
    ),
    # ---------------------------------------------------------------- ex1_3
    Variant(
        "ex1_3_mlp",
        "layers kept in a plain list",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.acts = [activation() for _ in sizes[1:-1]]

    def forward(self, x):
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return self.layers[-1](x)
""",
        {M1: 0, M2: 0},
    ),
    Variant(
        "ex1_3_mlp",
        "activation after the last layer too",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), activation()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
""",
        {M1: 0, M2: 0},
    ),
    Variant(
        "ex1_3_mlp",
        "ignores activation, always ReLU",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)
""",
        {M1: 2, M2: 0},
    ),
    Variant(
        "ex1_3_mlp",
        "one activation instance reused",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = activation()

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)
""",
        {M1: 2, M2: 0},
    ),
    Variant(
        "ex1_3_mlp",
        "ModuleList with interleaved activations, other names",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(len(sizes) - 1):
            self.blocks.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i + 2 < len(sizes):
                self.blocks.append(activation())

    def forward(self, inputs):
        out = inputs
        for block in self.blocks:
            out = block(out)
        return out
""",
    ),
    Variant(
        "ex1_3_mlp",
        "add_module by name",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.n = len(sizes) - 1
        for i in range(self.n):
            self.add_module(f"linear{i}", nn.Linear(sizes[i], sizes[i + 1]))
            if i < self.n - 1:
                self.add_module(f"act{i}", activation())

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, f"linear{i}")(x)
            if i < self.n - 1:
                x = getattr(self, f"act{i}")(x)
        return x
""",
    ),
    # ---------------------------------------------------------------- ex1_4
    Variant(
        "ex1_4_custom_activation",
        "always sigmoid",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.activation_func = activation_func

    def forward(self, x):
        return torch.sigmoid(x)
""",
        {A1: 0, A2: 0},
    ),
    Variant(
        "ex1_4_custom_activation",
        "wraps the function into a Linear",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.f = activation_func
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.f(x) * self.scale
""",
        {A1: 0, A2: 0},
    ),
    Variant(
        "ex1_4_custom_activation",
        "applies the function twice",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.f = activation_func

    def forward(self, x):
        return self.f(self.f(x))
""",
        {A1: 0, A2: 0},
    ),
    Variant(
        "ex1_4_custom_activation",
        "other attribute name",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super(CustomActivationModule, self).__init__()
        self.fn = activation_func

    def forward(self, tensor):
        return self.fn(tensor)
""",
    ),
    # ---------------------------------------------------------------- ex1_5
    Variant(
        "ex1_5_count_parameters",
        "ignores trainable_only",
        """
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters())
""",
        {C1: 0, C2: 0},
    ),
    Variant(
        "ex1_5_count_parameters",
        "counts tensors, not scalars",
        """
def count_parameters(model, trainable_only=True):
    return len([p for p in model.parameters() if p.requires_grad or not trainable_only])
""",
        {C1: 0, C2: 0},
    ),
    Variant(
        "ex1_5_count_parameters",
        "counts the state_dict",
        """
def count_parameters(model, trainable_only=True):
    if trainable_only:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    return sum(t.numel() for t in model.state_dict().values())
""",
        {C1: 1, C2: 0},
    ),
    Variant(
        "ex1_5_count_parameters",
        "named_parameters without dedup",
        """
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)
               if p.requires_grad or not trainable_only)
""",
        {C1: 1, C2: 0},
    ),
    Variant(
        "ex1_5_count_parameters",
        "loop with a set of ids",
        """
def count_parameters(model, trainable_only=True):
    seen, total = set(), 0
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) in seen or (trainable_only and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
    return int(total)
""",
    ),
    # ---------------------------------------------------------------- ex1_6
    Variant(
        "ex1_6_layer_names",
        "named_children only",
        """
def layer_names(model, layer_type=nn.Linear):
    return [name for name, m in model.named_children() if isinstance(m, layer_type)]
""",
        {L1: 0, L2: 0},
    ),
    Variant(
        "ex1_6_layer_names",
        "exact type comparison",
        """
def layer_names(model, layer_type=nn.Linear):
    return [name for name, m in model.named_modules() if name and type(m) == layer_type]
""",
        {L1: 1, L2: 0},
    ),
    Variant(
        "ex1_6_layer_names",
        "root included",
        """
def layer_names(model, layer_type=nn.Linear):
    return [name for name, m in model.named_modules() if isinstance(m, layer_type)]
""",
        {L1: 1, L2: 0},
    ),
    Variant(
        "ex1_6_layer_names",
        "recursive walk over children",
        """
def layer_names(model, layer_type=nn.Linear):
    found, seen = [], set()

    def visit(module, prefix):
        for name, child in module.named_children():
            if id(child) in seen:
                continue
            seen.add(id(child))
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, layer_type):
                found.append(full)
            visit(child, full)

    visit(model, "")
    return found
""",
    ),
]
