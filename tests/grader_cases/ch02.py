"""Chapter 2 submissions: realistic mistakes and correct answers in other styles."""

from . import Variant

CHAPTER = "02_parameters"

C1, C2, C3 = ("ex2_1_custom_layer_test_structure", "ex2_1_custom_layer_test_forward", "ex2_1_custom_layer_test_hidden")
B1, B2, B3, B4 = (
    "ex2_2_standardize_test_buffers",
    "ex2_2_standardize_test_train",
    "ex2_2_standardize_test_eval",
    "ex2_2_standardize_test_hidden",
)
I1, I2, I3 = "ex2_3_init_weights_test_xavier", "ex2_3_init_weights_test_in_place", "ex2_3_init_weights_test_hidden"
G1, G2 = "ex2_4_param_groups_test_groups", "ex2_4_param_groups_test_hidden"
F1, F2 = "ex2_5_freeze_test_basic", "ex2_5_freeze_test_hidden"
K1, K2 = "ex2_6_copy_matching_test_copy", "ex2_6_copy_matching_test_hidden"
R1, R2, R3 = (
    "ex2_7_rename_on_load_test_top_level",
    "ex2_7_rename_on_load_test_submodule",
    "ex2_7_rename_on_load_test_hidden",
)

VARIANTS = [
    # ---------------------------------------------------------------- ex2_1
    Variant(
        "ex2_1_custom_layer",
        "custom_param as a plain tensor",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.custom_param = torch.ones(out_features)

    def forward(self, x):
        return x @ self.weight + self.bias + self.custom_param
""",
        {C1: 0, C2: 0, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "weight in nn.Linear's (out, in) layout",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))

    def forward(self, x):
        return x @ self.weight.t() + self.bias + self.custom_param
""",
        {C1: 0, C2: 0, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "forward forgets custom_param",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))

    def forward(self, x):
        return torch.mm(x, self.weight) + self.bias
""",
        {C1: 1, C2: 0, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "bias drawn at random instead of zeros",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.randn(out_features))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))

    def forward(self, x):
        return x @ self.weight + self.bias + self.custom_param
""",
        {C1: 0, C2: 1, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "weight uniform in [0, 1) (torch.rand)",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))

    def forward(self, x):
        return x @ self.weight + self.bias + self.custom_param
""",
        {C1: 0, C2: 1, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "everything through register_parameter, F.linear, normal_()",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super(CustomLayer, self).__init__()
        self.register_parameter("weight", nn.Parameter(torch.empty(in_features, out_features).normal_()))
        self.register_parameter("bias", nn.Parameter(torch.zeros(out_features)))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))

    def forward(self, inputs):
        return F.linear(inputs, self.weight.t(), self.bias) + self.custom_param
""",
    ),
    Variant(
        "ex2_1_custom_layer",
        "torch.matmul, warns in forward",
        """
import warnings

class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_parameter("custom_param", nn.Parameter(torch.ones_like(self.bias)))

    def forward(self, x):
        warnings.warn("CustomLayer is a teaching example", UserWarning)
        return torch.matmul(x, self.weight) + (self.bias + self.custom_param)
""",
    ),
    Variant(
        "ex2_1_custom_layer",
        "weight scaled down (randn * 0.01)",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * 0.01)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(out_features)))

    def forward(self, x):
        return x @ self.weight + self.bias + self.custom_param
""",
        {C1: 0, C2: 1, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "bias and custom_param of shape (1,)",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_parameter("custom_param", nn.Parameter(torch.ones(1)))

    def forward(self, x):
        return x @ self.weight + self.bias + self.custom_param
""",
        {C1: 0, C2: 0, C3: 0},
    ),
    Variant(
        "ex2_1_custom_layer",
        "keyword arguments everywhere, torch.addmm",
        """
class CustomLayer(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(data=torch.randn(size=(in_features, out_features)), requires_grad=True)
        self.bias = nn.Parameter(torch.zeros(size=(out_features,)))
        self.register_parameter(name="custom_param", param=nn.Parameter(torch.ones(out_features)))

    def forward(self, x):
        return torch.addmm(self.bias + self.custom_param, x, self.weight)
""",
    ),
    # ---------------------------------------------------------------- ex2_2
    Variant(
        "ex2_2_standardize",
        "non-persistent buffers (not saved)",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features), persistent=False)
        self.register_buffer("running_var", torch.ones(num_features), persistent=False)

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * x.var(0, unbiased=True))
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 0, B2: 1, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "running_var from the biased variance",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 0, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "batch statistics in eval mode too",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        mean, var = x.mean(0), x.var(0, unbiased=False)
        if self.training:
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(x.var(0), self.momentum)
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 1, B3: 0, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "running stats updated in eval mode as well",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        with torch.no_grad():
            self.running_mean.lerp_(x.mean(0), self.momentum)
            self.running_var.lerp_(x.var(0), self.momentum)
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 1, B3: 0, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "batch statistics detached (no gradient through them)",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                mean, var = x.mean(0), x.var(0, unbiased=False)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(x.var(0), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 0, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "momentum the wrong way round",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.copy_(self.momentum * self.running_mean + (1 - self.momentum) * mean)
                self.running_var.copy_(self.momentum * self.running_var + (1 - self.momentum) * x.var(0))
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 0, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "eps added outside the square root",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(x.var(0), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / (var.sqrt() + self.eps)
""",
        {B1: 1, B2: 1, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "running stats updated with autograd tracking",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * x.var(0)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 0, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "counter buffer, correction=, reassignment under no_grad",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum = float(momentum)
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if not self.training:
            return (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps)
        n = x.size(0)
        centred = x - x.mean(dim=0, keepdim=True)
        var = (centred ** 2).sum(dim=0) / n
        with torch.no_grad():
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * x.mean(0)
            self.running_var = (1 - m) * self.running_var + m * torch.var(x, 0, correction=1)
            self.num_batches_tracked += 1
        return centred / torch.sqrt(var + self.eps)
""",
    ),
    Variant(
        "ex2_2_standardize",
        "warns once per forward",
        """
import warnings

class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        warnings.warn("Standardize: use nn.BatchNorm1d in real code", UserWarning)
        if self.training:
            var, mean = torch.var_mean(x, dim=0, unbiased=False)
            with torch.no_grad():
                n = x.shape[0]
                self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(var * n / (n - 1), alpha=self.momentum)
            return (x - mean) / (var + self.eps).sqrt()
        return (x - self.running_mean) / (self.running_var + self.eps).sqrt()
""",
    ),
    Variant(
        "ex2_2_standardize",
        "unbiased variance in the normalisation",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)
""",
        {B1: 1, B2: 0, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "momentum and eps hard-coded",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(0.9).add_(0.1 * mean)
                self.running_var.mul_(0.9).add_(0.1 * x.var(0))
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + 1e-5)
""",
        {B1: 1, B2: 1, B3: 1, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "F.batch_norm does the work (the contract forbids BatchNorm)",
        """
class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, training=self.training,
                            momentum=self.momentum, eps=self.eps)
""",
        {B1: 0, B2: 0, B3: 0, B4: 0},
    ),
    Variant(
        "ex2_2_standardize",
        "helper function, keepdim statistics, Bessel factor by hand",
        """
def batch_stats(x):
    mean = x.mean(dim=0, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=0, keepdim=True)
    return mean, var

class Standardize(nn.Module):
    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if self.training:
            mean, var = batch_stats(x)
            n = x.size(0)
            with torch.no_grad():
                self.running_mean.copy_((1 - self.momentum) * self.running_mean + self.momentum * mean.squeeze(0))
                unbiased = var.squeeze(0) * n / (n - 1)
                self.running_var.copy_((1 - self.momentum) * self.running_var + self.momentum * unbiased)
        else:
            mean, var = self.running_mean.unsqueeze(0), self.running_var.unsqueeze(0)
        return (x - mean) * (var + self.eps).rsqrt()
""",
    ),
    # ---------------------------------------------------------------- ex2_3
    Variant(
        "ex2_3_init_weights",
        "type(m) == nn.Linear misses subclasses",
        """
def initialize_weights(m):
    if type(m) == nn.Linear:
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.01)
""",
        {I1: 1, I2: 1, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "bias filled without checking for None",
        """
def initialize_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        m.bias.data.fill_(0.01)
""",
        {I1: 1, I2: 1, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "new Parameter objects",
        """
def initialize_weights(m):
    if isinstance(m, nn.Linear):
        m.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty_like(m.weight)))
        if m.bias is not None:
            m.bias = nn.Parameter(torch.full_like(m.bias, 0.01))
""",
        {I1: 0, I2: 0, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "xavier_normal_ instead of xavier_uniform_",
        """
def initialize_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.01)
""",
        {I1: 0, I2: 1, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "every module with a weight",
        """
def initialize_weights(m):
    if getattr(m, "weight", None) is not None and m.weight.dim() >= 2:
        nn.init.xavier_uniform_(m.weight)
        if getattr(m, "bias", None) is not None:
            nn.init.constant_(m.bias, 0.01)
""",
        {I1: 1, I2: 1, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "bias zeroed instead of 0.01",
        """
def initialize_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
""",
        {I1: 0, I2: 1, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "hand-written bound with .data and fill_",
        """
def initialize_weights(m):
    if not isinstance(m, nn.Linear):
        return
    fan_out, fan_in = m.weight.shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    m.weight.data.uniform_(-bound, bound)
    if m.bias is not None:
        m.bias.data.fill_(0.01)
""",
    ),
    Variant(
        "ex2_3_init_weights",
        "recurses itself, copy_ under no_grad, warns",
        """
import warnings

def initialize_weights(m):
    for layer in m.modules():
        if isinstance(layer, nn.Linear):
            warnings.warn("re-initialising a Linear layer", UserWarning)
            with torch.no_grad():
                layer.weight.copy_(nn.init.xavier_uniform_(torch.empty_like(layer.weight)))
                if layer.bias is not None:
                    layer.bias.fill_(0.01)
    return None
""",
    ),
    Variant(
        "ex2_3_init_weights",
        "only the children of m visited",
        """
def initialize_weights(m):
    for child in m.children():
        if isinstance(child, nn.Linear):
            nn.init.xavier_uniform_(child.weight)
            if child.bias is not None:
                nn.init.constant_(child.bias, 0.01)
""",
        {I1: 1, I2: 1, I3: 0},
    ),
    Variant(
        "ex2_3_init_weights",
        "keyword arguments, early return, torch.no_grad fill_",
        """
def initialize_weights(module):
    if not isinstance(module, (nn.Linear,)):
        return None
    torch.nn.init.xavier_uniform_(tensor=module.weight, gain=1.0)
    if module.bias is None:
        return None
    with torch.no_grad():
        module.bias.fill_(value=0.01)
""",
    ),
    # ---------------------------------------------------------------- ex2_4
    Variant(
        "ex2_4_param_groups",
        "output layer left out (the source article's bug)",
        """
def make_optimizer(model, base_lr=1e-3):
    return torch.optim.SGD([
        {"params": model.layer1.parameters(), "lr": 10 * base_lr},
        {"params": model.layer2.parameters(), "lr": base_lr},
    ], lr=base_lr, momentum=0.9)
""",
        {G1: 0, G2: 0},
    ),
    Variant(
        "ex2_4_param_groups",
        "learning rates the wrong way round",
        """
def make_optimizer(model, base_lr=1e-3):
    return torch.optim.SGD([
        {"params": model.layer1.parameters()},
        {"params": list(model.layer2.parameters()) + list(model.output.parameters()), "lr": 10 * base_lr},
    ], lr=base_lr, momentum=0.9)
""",
        {G1: 0, G2: 0},
    ),
    Variant(
        "ex2_4_param_groups",
        "momentum forgotten",
        """
def make_optimizer(model, base_lr=1e-3):
    return torch.optim.SGD([
        {"params": model.layer1.parameters(), "lr": 10 * base_lr},
        {"params": list(model.layer2.parameters()) + list(model.output.parameters())},
    ], lr=base_lr)
""",
        {G1: 0, G2: 0},
    ),
    Variant(
        "ex2_4_param_groups",
        "learning rate of layer1 hard-coded to 0.01",
        """
def make_optimizer(model, base_lr=1e-3):
    return torch.optim.SGD([
        {"params": model.layer1.parameters(), "lr": 0.01},
        {"params": list(model.layer2.parameters()) + list(model.output.parameters())},
    ], lr=base_lr, momentum=0.9)
""",
        {G1: 1, G2: 0},
    ),
    Variant(
        "ex2_4_param_groups",
        "weight decay added",
        """
def make_optimizer(model, base_lr=1e-3):
    return torch.optim.SGD([
        {"params": model.layer1.parameters(), "lr": 10 * base_lr},
        {"params": list(model.layer2.parameters()) + list(model.output.parameters())},
    ], lr=base_lr, momentum=0.9, weight_decay=1e-4)
""",
        {G1: 1, G2: 0},
    ),
    Variant(
        "ex2_4_param_groups",
        "Adam instead of SGD",
        """
def make_optimizer(model, base_lr=1e-3):
    return torch.optim.Adam([
        {"params": model.layer1.parameters(), "lr": 10 * base_lr},
        {"params": list(model.layer2.parameters()) + list(model.output.parameters())},
    ], lr=base_lr)
""",
        {G1: 0, G2: 0},
    ),
    Variant(
        "ex2_4_param_groups",
        "one group per layer, momentum per group",
        """
def make_optimizer(model, base_lr=1e-3):
    groups = []
    for name, layer in model.named_children():
        lr = base_lr * 10 if name == "layer1" else base_lr
        groups.append({"params": layer.parameters(), "lr": lr, "momentum": 0.9})
    return torch.optim.SGD(groups, lr=base_lr)
""",
    ),
    Variant(
        "ex2_4_param_groups",
        "groups by parameter name, warns",
        """
import warnings

def make_optimizer(model, base_lr=1e-3):
    warnings.warn("make_optimizer assumes a SimpleNet", UserWarning)
    named = list(model.named_parameters())
    fast = [p for n, p in named if n.startswith("layer1.")]
    slow = [p for n, p in named if not n.startswith("layer1.")]
    return torch.optim.SGD([{"params": slow}, {"params": fast, "lr": base_lr * 10}],
                           momentum=0.9, lr=base_lr)
""",
    ),
    Variant(
        "ex2_4_param_groups",
        "itertools.chain for the rest, keyword SGD(params=...)",
        """
import itertools

def make_optimizer(model, base_lr=1e-3):
    slow = itertools.chain(model.layer2.parameters(), model.output.parameters())
    return torch.optim.SGD(
        params=[dict(params=list(model.layer1.parameters()), lr=base_lr * 10), dict(params=list(slow))],
        lr=base_lr,
        momentum=0.9,
    )
""",
    ),
    Variant(
        "ex2_4_param_groups",
        "only layer1.weight in the fast group",
        """
def make_optimizer(model, base_lr=1e-3):
    fast = [model.layer1.weight]
    rest = [p for p in model.parameters() if p is not model.layer1.weight]
    return torch.optim.SGD([{"params": fast, "lr": 10 * base_lr}, {"params": rest}], lr=base_lr, momentum=0.9)
""",
        {G1: 0, G2: 0},
    ),
    # ---------------------------------------------------------------- ex2_5
    Variant(
        "ex2_5_freeze",
        "'prefix in name': contains, not starts with",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = list(prefixes)
    count = 0
    for name, p in model.named_parameters():
        if any(prefix in name for prefix in prefixes):
            p.requires_grad_(False)
            count += 1
    return count
""",
        {F1: 1, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "a string iterated letter by letter",
        """
def freeze(model, prefixes):
    count = 0
    for name, p in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            p.requires_grad = False
            count += 1
    return count
""",
        {F1: 0, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "unfreezes the parameters that do not match",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = tuple(prefixes)
    count = 0
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith(prefixes)
        count += name.startswith(prefixes)
    return count
""",
        {F1: 1, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "counts only newly frozen parameters",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = tuple(prefixes)
    count = 0
    for name, p in model.named_parameters():
        if name.startswith(prefixes) and p.requires_grad:
            p.requires_grad_(False)
            count += 1
    return count
""",
        {F1: 1, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "a generator of prefixes consumed by the first parameter",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    count = 0
    for name, p in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            p.requires_grad_(False)
            count += 1
    return count
""",
        {F1: 1, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "flags set on state_dict() tensors",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = list(prefixes)
    count = 0
    for name, tensor in model.state_dict().items():
        if any(name.startswith(prefix) for prefix in prefixes):
            tensor.requires_grad = False
            count += 1
    return count
""",
        {F1: 0, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "set of prefixes, sum of booleans",
        """
def freeze(model, prefixes):
    wanted = {prefixes} if isinstance(prefixes, str) else set(prefixes)
    matched = [p for name, p in model.named_parameters() if any(name.startswith(w) for w in wanted)]
    for p in matched:
        p.requires_grad = False
    return len(matched)
""",
    ),
    Variant(
        "ex2_5_freeze",
        "first dotted component compared",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = set(prefixes)
    count = 0
    for name, p in model.named_parameters():
        if name.split(".")[0] in prefixes:
            p.requires_grad = False
            count += 1
    return count
""",
        {F1: 1, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "a dot required after the prefix",
        """
def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = [p.rstrip(".") + "." for p in prefixes]
    count = 0
    for name, param in model.named_parameters():
        if any(name.startswith(p) for p in prefixes):
            param.requires_grad_(False)
            count += 1
    return count
""",
        {F1: 1, F2: 0},
    ),
    Variant(
        "ex2_5_freeze",
        "helper predicate, explicit loop with break",
        """
def starts_with_any(name, prefixes):
    for prefix in prefixes:
        if name.startswith(prefix):
            return True
    return False

def freeze(model, prefixes):
    prefix_list = [prefixes] if isinstance(prefixes, str) else [p for p in prefixes]
    frozen = 0
    for param_name, param in model.named_parameters():
        if starts_with_any(param_name, prefix_list):
            param.requires_grad = False
            frozen = frozen + 1
    return frozen
""",
    ),
    Variant(
        "ex2_5_freeze",
        "re.match on escaped prefixes",
        """
import re

def freeze(model, prefixes):
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    patterns = [re.compile(re.escape(prefix)) for prefix in prefixes]
    hits = [p for n, p in model.named_parameters() if any(pat.match(n) for pat in patterns)]
    for p in hits:
        p.requires_grad_(requires_grad=False)
    return len(hits)
""",
    ),
    # ---------------------------------------------------------------- ex2_6
    Variant(
        "ex2_6_copy_matching",
        "no shape check (load_state_dict raises)",
        """
def copy_matching_weights(src, dst):
    src_state = src.state_dict()
    dst.load_state_dict(src_state, strict=False)
    return sorted(k for k in src_state if k in dst.state_dict())
""",
        {K1: 0, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "keys returned unsorted",
        """
def copy_matching_weights(src, dst):
    dst_state = dst.state_dict()
    copied = []
    for key, value in src.state_dict().items():
        if key in dst_state and dst_state[key].shape == value.shape:
            dst_state[key].copy_(value)
            copied.append(key)
    return copied
""",
        {K1: 0, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "parameters only (buffers not copied)",
        """
def copy_matching_weights(src, dst):
    dst_params = dict(dst.named_parameters())
    copied = []
    with torch.no_grad():
        for key, value in src.named_parameters():
            if key in dst_params and dst_params[key].shape == value.shape:
                dst_params[key].copy_(value)
                copied.append(key)
    return sorted(copied)
""",
        {K1: 0, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "dst's state_dict updated but never loaded",
        """
def copy_matching_weights(src, dst):
    dst_state = dict(dst.state_dict())
    copied = []
    for key, value in src.state_dict().items():
        if key in dst_state and dst_state[key].shape == value.shape:
            dst_state[key] = value
            copied.append(key)
    return sorted(copied)
""",
        {K1: 0, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "returns every src key, copied or not",
        """
def copy_matching_weights(src, dst):
    dst_state = dst.state_dict()
    matching = {k: v for k, v in src.state_dict().items() if k in dst_state and v.shape == dst_state[k].shape}
    dst.load_state_dict(matching, strict=False)
    return sorted(src.state_dict())
""",
        {K1: 0, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "copy_ into dst's state_dict tensors",
        """
def copy_matching_weights(src, dst):
    targets = dst.state_dict()
    copied = []
    for key, value in src.state_dict().items():
        target = targets.get(key)
        if target is not None and target.shape == value.shape:
            target.copy_(value)
            copied.append(key)
    copied.sort()
    return copied
""",
    ),
    Variant(
        "ex2_6_copy_matching",
        "full dst state rebuilt and loaded strictly, warns",
        """
import warnings

def copy_matching_weights(src, dst):
    new_state = dst.state_dict()
    copied = []
    for key, value in src.state_dict().items():
        if key in new_state and tuple(new_state[key].shape) == tuple(value.shape):
            new_state[key] = value.clone()
            copied.append(key)
        elif key in new_state:
            warnings.warn(f"skipping {key}: shapes differ", UserWarning)
    dst.load_state_dict(new_state)
    return sorted(copied)
""",
    ),
    Variant(
        "ex2_6_copy_matching",
        "copied in the wrong direction (dst into src)",
        """
def copy_matching_weights(src, dst):
    src_state, dst_state = src.state_dict(), dst.state_dict()
    matching = {k: v for k, v in dst_state.items() if k in src_state and v.shape == src_state[k].shape}
    src.load_state_dict(matching, strict=False)
    return sorted(matching)
""",
        {K1: 0, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "shapes compared by number of elements",
        """
def copy_matching_weights(src, dst):
    dst_state = dst.state_dict()
    copied = []
    with torch.no_grad():
        for key, value in src.state_dict().items():
            if key in dst_state and dst_state[key].numel() == value.numel():
                dst_state[key].copy_(value.reshape(dst_state[key].shape))
                copied.append(key)
    return sorted(copied)
""",
        {K1: 1, K2: 0},
    ),
    Variant(
        "ex2_6_copy_matching",
        "set intersection of keys, update and strict load, torch.Size comparison",
        """
def copy_matching_weights(src, dst):
    source = src.state_dict()
    target = dst.state_dict()
    common = set(source) & set(target)
    keys = sorted(k for k in common if source[k].size() == target[k].size())
    target.update({k: source[k] for k in keys})
    dst.load_state_dict(target, strict=True)
    return keys
""",
    ),
    Variant(
        "ex2_6_copy_matching",
        "named_parameters and named_buffers instead of state_dict",
        """
def copy_matching_weights(src, dst):
    targets = {**dict(dst.named_parameters()), **dict(dst.named_buffers())}
    copied = []
    with torch.no_grad():
        for key, value in [*src.named_parameters(), *src.named_buffers()]:
            if key in targets and targets[key].shape == value.shape:
                targets[key].copy_(value)
                copied.append(key)
    return sorted(copied)
""",
        {K1: 1, K2: 0},
    ),
    # ---------------------------------------------------------------- ex2_7
    Variant(
        "ex2_7_rename_on_load",
        "prefix ignored (works only when the module is the model itself)",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for old, new in renames.items():
            if old in state_dict:
                state_dict[new] = state_dict.pop(old)

    return module.register_load_state_dict_pre_hook(hook)
""",
        {R1: 1, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "builds and returns a new dict instead of editing the one passed in",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        renamed = {}
        for key, value in state_dict.items():
            local = key[len(prefix):]
            renamed[prefix + renames.get(local, local)] = value
        state_dict = renamed
        return state_dict

    return module.register_load_state_dict_pre_hook(hook)
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "old key copied, left beside the new one",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for old, new in renames.items():
            if prefix + old in state_dict:
                state_dict[prefix + new] = state_dict[prefix + old]

    return module.register_load_state_dict_pre_hook(hook)
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "assumes every old key is present (new-format checkpoints raise KeyError)",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for old, new in renames.items():
            state_dict[prefix + new] = state_dict.pop(prefix + old)

    return module.register_load_state_dict_pre_hook(hook)
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "load_state_dict monkeypatched instead of a hook",
        """
def rename_on_load(module, renames):
    original = module.load_state_dict

    def load_renamed(state_dict, strict=True, assign=False):
        upgraded = {renames.get(key, key): value for key, value in state_dict.items()}
        return original(upgraded, strict=strict, assign=assign)

    module.load_state_dict = load_renamed
    return load_renamed
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "keys matched by their ending (endswith) instead of prefix + old",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for key in list(state_dict):
            for old, new in renames.items():
                if key.endswith(old):
                    state_dict[key[: len(key) - len(old)] + new] = state_dict.pop(key)

    return module.register_load_state_dict_pre_hook(hook)
""",
        {R1: 1, R2: 1, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "handle not returned",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for old, new in renames.items():
            if prefix + old in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)

    module.register_load_state_dict_pre_hook(hook)
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "registered with register_state_dict_pre_hook (a saving hook)",
        """
def rename_on_load(module, renames):
    def hook(module, state_dict, prefix, *args):
        for old, new in renames.items():
            if prefix + old in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)

    return module.register_state_dict_pre_hook(hook)
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "errors silenced in a load post-hook instead of renaming",
        """
def rename_on_load(module, renames):
    def forgive(module, incompatible_keys):
        incompatible_keys.missing_keys.clear()
        incompatible_keys.unexpected_keys.clear()

    return module.register_load_state_dict_post_hook(forgive)
""",
        {R1: 0, R2: 0, R3: 0},
    ),
    Variant(
        "ex2_7_rename_on_load",
        "*args hook, loop over the keys with startswith and a local name",
        """
def rename_on_load(module, renames):
    def upgrade(mod, state_dict, prefix, *rest):
        for key in list(state_dict.keys()):
            if not key.startswith(prefix):
                continue
            local = key[len(prefix):]
            if local in renames:
                value = state_dict[key]
                del state_dict[key]
                state_dict[prefix + renames[local]] = value

    handle = module.register_load_state_dict_pre_hook(upgrade)
    return handle
""",
    ),
    Variant(
        "ex2_7_rename_on_load",
        "a callable class, clear() and update() with f-string keys, values cloned",
        """
class KeyRenamer:
    def __init__(self, renames):
        self.renames = dict(renames)

    def __call__(self, module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        upgraded = {}
        for key, value in state_dict.items():
            for old, new in self.renames.items():
                if key == f"{prefix}{old}":
                    key, value = f"{prefix}{new}", value.clone()
                    break
            upgraded[key] = value
        state_dict.clear()
        state_dict.update(upgraded)


def rename_on_load(module, renames):
    return module.register_load_state_dict_pre_hook(KeyRenamer(renames))
""",
    ),
]
