"""Chapter 1 submissions: realistic mistakes and correct answers in other styles."""

from . import Variant

CHAPTER = "01_module_basics"

S, F_, H = "ex1_1_simple_nn_test_structure", "ex1_1_simple_nn_test_forward", "ex1_1_simple_nn_test_hidden"
N1, N2, N3 = "ex1_2_simple_net_test_structure", "ex1_2_simple_net_test_forward", "ex1_2_simple_net_test_hidden"
M1, M2 = "ex1_3_mlp_test_structure", "ex1_3_mlp_test_hidden"
A1, A2 = "ex1_4_custom_activation_test_applies", "ex1_4_custom_activation_test_hidden"
C1, C2 = "ex1_5_count_parameters_test_basic", "ex1_5_count_parameters_test_hidden"
L1, L2 = "ex1_6_layer_names_test_linear", "ex1_6_layer_names_test_hidden"
G1, G2, G3 = (
    "ex1_7_custom_function_test_gradcheck",
    "ex1_7_custom_function_test_module",
    "ex1_7_custom_function_test_hidden",
)

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
    Variant(
        "ex1_1_simple_nn",
        "ReLU on the input, before fc1",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.fc1(F.relu(x)))
""",
        {S: 1, F_: 0, H: 0},
    ),
    Variant(
        "ex1_1_simple_nn",
        "dropout between the layers",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))
""",
        {S: 1, F_: 0, H: 0},
    ),
    Variant(
        "ex1_1_simple_nn",
        "keyword Linear arguments, in-place ReLU module, step by step",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(in_features=input_size, out_features=hidden_size)
        self.fc2 = nn.Linear(in_features=hidden_size, out_features=output_size, bias=True)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        hidden = self.fc1(x)
        hidden = self.activation(hidden)
        out = self.fc2(hidden)
        return out
""",
    ),
    Variant(
        "ex1_1_simple_nn",
        "tensor method relu, keyword call of the layer",
        """
class SimpleNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(input=self.fc1(input=x).relu())
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
    Variant(
        "ex1_2_simple_net",
        "ReLU after layer1 only",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.output(self.layer2(F.relu(self.layer1(x))))
""",
        {N1: 1, N2: 0, N3: 0},
    ),
    Variant(
        "ex1_2_simple_net",
        "tensor-method relu, helper method, keyword Linear arguments",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(in_features=input_size, out_features=hidden_size)
        self.layer2 = nn.Linear(in_features=hidden_size, out_features=hidden_size)
        self.output = nn.Linear(in_features=hidden_size, out_features=output_size)

    def hidden_step(self, layer, x):
        return layer(x).relu()

    def forward(self, x):
        x = self.hidden_step(self.layer1, x)
        x = self.hidden_step(self.layer2, x)
        return self.output(x)
""",
    ),
    Variant(
        "ex1_2_simple_net",
        "two ReLU modules, torch.relu-free, other variable names",
        """
class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(SimpleNet, self).__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.relu1 = nn.ReLU()
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.relu2 = nn.ReLU()
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, inputs):
        h1 = self.relu1(self.layer1(inputs))
        h2 = self.relu2(self.layer2(h1))
        return self.output(h2)
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
        "squeeze(0) on the output: right for every batch but a batch of 1 (Hypothesis draws one)",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        layers = [nn.Linear(sizes[0], sizes[1])]
        for a, b in zip(sizes[1:-1], sizes[2:]):
            layers += [activation(), nn.Linear(a, b)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).squeeze(0)
""",
        {M2: 0},
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
    Variant(
        "ex1_3_mlp",
        "activation made inside forward",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.activation = activation
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.activation()(layer(x))
        return self.layers[-1](x)
""",
        {M1: 2, M2: 0},
    ),
    Variant(
        "ex1_3_mlp",
        "off by one: the last pair of sizes forgotten",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 2):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            layers.append(activation())
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.net(x)
""",
        {M1: 0, M2: 0},
    ),
    Variant(
        "ex1_3_mlp",
        "Sequential from a comprehension (itertools), activation by keyword call",
        """
import itertools

class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        linears = [nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:])]
        acts = [activation() for _ in linears[:-1]]
        pieces = [m for pair in itertools.zip_longest(linears, acts) for m in pair if m is not None]
        self.model = nn.Sequential(*pieces)

    def forward(self, x):
        return self.model(input=x)
""",
    ),
    Variant(
        "ex1_3_mlp",
        "two ModuleLists and a helper, activations called with input=",
        """
def make_layers(sizes):
    return nn.ModuleList(nn.Linear(sizes[k], sizes[k + 1]) for k in range(len(sizes) - 1))

class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.linears = make_layers(sizes)
        self.activations = nn.ModuleList([activation() for k in range(len(sizes) - 2)])

    def forward(self, x):
        for k, linear in enumerate(self.linears):
            x = linear(x)
            if k < len(self.activations):
                x = self.activations[k](input=x)
        return x
""",
    ),
    Variant(
        "ex1_3_mlp",
        "ModuleDict of named layers",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        self.parts = nn.ModuleDict()
        depth = len(sizes) - 1
        for i in range(depth):
            self.parts[f"linear_{i}"] = nn.Linear(sizes[i], sizes[i + 1])
            if i != depth - 1:
                self.parts[f"act_{i}"] = activation()

    def forward(self, x):
        for part in self.parts.values():
            x = part(x)
        return x
""",
    ),
    Variant(
        "ex1_3_mlp",
        "an activation after every Linear, the last one dropped",
        """
class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), activation()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.net(x)
""",
    ),
    Variant(
        "ex1_3_mlp",
        "deep copies of one activation template",
        """
import copy

class MLP(nn.Module):
    def __init__(self, sizes, activation=nn.ReLU):
        super().__init__()
        template = activation()
        modules = []
        for i in range(len(sizes) - 1):
            if i > 0:
                modules.append(copy.deepcopy(template))
            modules.append(nn.Linear(sizes[i], sizes[i + 1]))
        self.body = nn.Sequential(*modules)

    def forward(self, x):
        return self.body(x)
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
    Variant(
        "ex1_4_custom_activation",
        "calls activation_func in __init__, as if it were a class",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.activation = activation_func()

    def forward(self, x):
        return self.activation(x)
""",
        {A1: 0, A2: 0},
    ),
    Variant(
        "ex1_4_custom_activation",
        "relu applied after the function",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.activation_func = activation_func

    def forward(self, x):
        return F.relu(self.activation_func(x))
""",
        {A1: 0, A2: 0},
    ),
    Variant(
        "ex1_4_custom_activation",
        "varargs passthrough, other names",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.func = activation_func

    def forward(self, *inputs):
        return self.func(*inputs)
""",
    ),
    Variant(
        "ex1_4_custom_activation",
        "wrapped in a lambda, extra_repr",
        """
class CustomActivationModule(nn.Module):
    def __init__(self, activation_func):
        super().__init__()
        self.apply_activation = lambda tensor: activation_func(tensor)
        self.description = repr(activation_func)

    def forward(self, x):
        out = self.apply_activation(x)
        return out

    def extra_repr(self):
        return self.description
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
    Variant(
        "ex1_5_count_parameters",
        "requires_grad == trainable_only",
        """
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad == trainable_only)
""",
        {C1: 0, C2: 0},
    ),
    Variant(
        "ex1_5_count_parameters",
        "buffers counted with the parameters",
        """
import itertools

def count_parameters(model, trainable_only=True):
    tensors = itertools.chain(model.parameters(), model.buffers())
    return sum(t.numel() for t in tensors if t.requires_grad or not trainable_only)
""",
        {C1: 1, C2: 0},
    ),
    Variant(
        "ex1_5_count_parameters",
        "explicit loop with continue, math.prod of the shape",
        """
def count_parameters(model, trainable_only=True):
    total = 0
    for param in model.parameters():
        if trainable_only and not param.requires_grad:
            continue
        total += math.prod(param.shape)
    return total
""",
    ),
    Variant(
        "ex1_5_count_parameters",
        "filter with a helper, dedup through a dict of ids",
        """
def count_parameters(model, trainable_only=True):
    def wanted(p):
        return p.requires_grad if trainable_only else True

    unique = {id(p): p for _, p in model.named_parameters()}
    return int(sum(p.nelement() for p in filter(wanted, unique.values())))
""",
    ),
    Variant(
        "ex1_5_count_parameters",
        "returns a tensor (torch.sum)",
        """
def count_parameters(model, trainable_only=True):
    sizes = [p.numel() for p in model.parameters() if p.requires_grad or not trainable_only]
    return torch.tensor(sizes).sum()
""",
        {C1: 0, C2: 0},
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
    Variant(
        "ex1_6_layer_names",
        "names sorted",
        """
def layer_names(model, layer_type=nn.Linear):
    return sorted(name for name, m in model.named_modules() if name and isinstance(m, layer_type))
""",
        {L1: 0, L2: 0},
    ),
    Variant(
        "ex1_6_layer_names",
        "recursive walk with unqualified names",
        """
def layer_names(model, layer_type=nn.Linear):
    names = []
    for name, child in model.named_children():
        if isinstance(child, layer_type):
            names.append(name)
        names.extend(layer_names(child, layer_type))
    return names
""",
        {L1: 0, L2: 0},
    ),
    Variant(
        "ex1_6_layer_names",
        "explicit loop, root skipped by slicing",
        """
def layer_names(model, layer_type=nn.Linear):
    result = []
    for qualified_name, submodule in list(model.named_modules())[1:]:
        if isinstance(submodule, layer_type):
            result.append(qualified_name)
    return result
""",
    ),
    Variant(
        "ex1_6_layer_names",
        "filter over named_modules, root compared by identity",
        """
def layer_names(model, layer_type=nn.Linear):
    pairs = filter(lambda item: item[1] is not model and isinstance(item[1], layer_type), model.named_modules())
    return [name for name, _ in pairs]
""",
    ),
    # ---------------------------------------------------------------- ex1_7
    Variant(
        "ex1_7_custom_function",
        "backward forgets grad_output",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return torch.sigmoid(x)


class MySoftplus(nn.Module):
    def forward(self, x):
        return SoftplusFunction.apply(x)
""",
        {G1: 0, G2: 1, G3: 0},
    ),
    Variant(
        "ex1_7_custom_function",
        "saves the output, takes its sigmoid",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(y)


class MySoftplus(nn.Module):
    def forward(self, x):
        return SoftplusFunction.apply(x)
""",
        {G1: 0, G2: 1, G3: 0},
    ),
    Variant(
        "ex1_7_custom_function",
        "Module defines backward instead of using the Function",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)


class MySoftplus(nn.Module):
    def forward(self, x):
        self.saved = x
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    def backward(self, grad_output):
        return grad_output * torch.sigmoid(self.saved)
""",
        {G1: 1, G2: 0, G3: 1},
    ),
    Variant(
        "ex1_7_custom_function",
        "Module calls forward directly instead of apply",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)


class MySoftplus(nn.Module):
    def forward(self, x):
        return SoftplusFunction.forward(self, x)
""",
        {G1: 1, G2: 0, G3: 1},
    ),
    Variant(
        "ex1_7_custom_function",
        "naive log(1 + exp(x)) and exp(x) / (1 + exp(x))",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(1 + torch.exp(x))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.exp(x) / (1 + torch.exp(x))


class MySoftplus(nn.Module):
    def forward(self, x):
        return SoftplusFunction.apply(x)
""",
        {G1: 1, G2: 1, G3: 0},
    ),
    Variant(
        "ex1_7_custom_function",
        "derivative of sigmoid instead of sigmoid",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * s * (1 - s)


class MySoftplus(nn.Module):
    def forward(self, x):
        return SoftplusFunction.apply(x)
""",
        {G1: 0, G2: 1, G3: 0},
    ),
    Variant(
        "ex1_7_custom_function",
        "Module uses F.softplus, not the Function",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.softplus(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)


class MySoftplus(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.Softplus()

    def forward(self, x):
        return self.act(x)
""",
        {G1: 1, G2: 0, G3: 1},
    ),
    Variant(
        "ex1_7_custom_function",
        "saves the output and uses 1 - exp(-y), super().__init__() in the Module",
        """
class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(x)))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        out = ctx.saved_tensors[0]
        return -torch.expm1(-out) * grad_output


class MySoftplus(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, inputs):
        return SoftplusFunction.apply(inputs)
""",
    ),
    Variant(
        "ex1_7_custom_function",
        "F.softplus forward, apply under another name, tuple returned",
        """
import torch.nn.functional as F


class SoftplusFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.softplus(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        derivative = 1 / (1 + torch.exp(-x))
        return (grad_output * derivative,)


softplus = SoftplusFunction.apply


class MySoftplus(nn.Module):
    def forward(self, x):
        y = softplus(x)
        return y
""",
    ),
]
