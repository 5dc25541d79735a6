"""Chapter 3 — known submissions for ex3_1 … ex3_7 and the points each must get."""

from . import Variant

CHAPTER = "03_train_eval_loop"

T1 = ("ex3_1_train_one_epoch_test_train", "ex3_1_train_one_epoch_test_hidden")
T2 = ("ex3_2_evaluate_test_evaluate", "ex3_2_evaluate_test_hidden")
T3 = ("ex3_3_fit_test_history", "ex3_3_fit_test_early_stopping", "ex3_3_fit_test_hidden")
T4 = ("ex3_4_adder_test_adder", "ex3_4_adder_test_hidden")
T5 = ("ex3_5_digits_classifier_test_interface", "ex3_5_digits_classifier_test_accuracy")
T6 = ("ex3_6_checkpoint_test_resume", "ex3_6_checkpoint_test_hidden")
T7 = ("ex3_7_momentum_sgd_test_steps", "ex3_7_momentum_sgd_test_hidden")


def pts(tests, *points):
    return dict(zip(tests, map(float, points)))


# --------------------------------------------------------------------- ex3_1 train_one_epoch
_TRAIN = """
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    {train}
    total, count = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = {move}
        {zero1}
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        {zero2}
        optimizer.step()
        {accumulate}
    return {result}
"""


def _train(
    train="model.train()",
    move="inputs.to(device), targets.to(device)",
    zero1="optimizer.zero_grad()",
    zero2="",
    accumulate="total += loss.item() * len(targets); count += len(targets)",
    result="total / count",
):
    return _TRAIN.format(train=train, move=move, zero1=zero1, zero2=zero2, accumulate=accumulate, result=result)


# --------------------------------------------------------------------- ex3_7 momentum_sgd
_MOMENTUM = """
class MomentumSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        defaults = {{"lr": lr, "momentum": momentum, "weight_decay": weight_decay}}
        {init}

{decorator}    def step(self, closure=None):
        loss = None
        if closure is not None:
            {closure}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    {skip}
                {decay}
                {state}
                if "momentum_buffer" not in state:
                    {first}
                else:
                    {later}
                {update}
        return {result}
"""


def _momentum(
    init="super().__init__(params, defaults)",
    decorator="    @torch.no_grad()\n",
    closure="with torch.enable_grad():\n                loss = closure()",
    skip="continue",
    decay='d_p = p.grad.add(p, alpha=group["weight_decay"])',
    state="state = self.state[p]",
    first='state["momentum_buffer"] = d_p.clone()',
    later='state["momentum_buffer"].mul_(group["momentum"]).add_(d_p)',
    update='p.add_(state["momentum_buffer"], alpha=-group["lr"])',
    result="loss",
):
    return _MOMENTUM.format(
        init=init,
        decorator=decorator,
        closure=closure,
        skip=skip,
        decay=decay,
        state=state,
        first=first,
        later=later,
        update=update,
        result=result,
    )


VARIANTS = [
    Variant("ex3_1_train_one_epoch", "no zero_grad: gradients accumulate", _train(zero1=""), pts(T1, 0, 0)),
    Variant(
        "ex3_1_train_one_epoch",
        "plain mean of the batch losses",
        _train(accumulate="total += loss.item(); count += 1"),
        pts(T1, 0, 0),
    ),
    Variant("ex3_1_train_one_epoch", "never calls model.train()", _train(train="pass"), pts(T1, 0, 0)),
    Variant("ex3_1_train_one_epoch", "batches not moved to device", _train(move="inputs, targets"), pts(T1, 0, 0)),
    Variant(
        "ex3_1_train_one_epoch",
        "adds up loss tensors, returns a tensor",
        _train(accumulate="total += loss * len(targets); count += len(targets)"),
        pts(T1, 0, 0),
    ),
    Variant(
        "ex3_1_train_one_epoch",
        "zero_grad between backward and step",
        _train(zero1="", zero2="optimizer.zero_grad()"),
        pts(T1, 0, 0),
    ),
    Variant("ex3_1_train_one_epoch", "returns the last batch's loss", _train(result="loss.item()"), pts(T1, 0, 0)),
    Variant(
        "ex3_1_train_one_epoch", "device has no default", _train().replace('device="cpu"', "device"), pts(T1, 2, 0)
    ),
    Variant(
        "ex3_1_train_one_epoch",
        "model.zero_grad, len(loader.dataset), zeroing after the step",
        """
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train()
    running = 0.0
    for batch in loader:
        x, y = (t.to(device) for t in batch)
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        model.zero_grad(set_to_none=False)
        running += loss.item() * x.size(0)
    return running / len(loader.dataset)
""",
    ),
    Variant(
        "ex3_1_train_one_epoch",
        "to(device, non_blocking=True), a list of losses, float()",
        """
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train(True)
    losses, sizes = [], []
    for inputs, targets in loader:
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device=device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach() * targets.shape[0])
        sizes.append(targets.shape[0])
    return float(torch.stack(losses).sum() / sum(sizes))
""",
    ),
    Variant(
        "ex3_1_train_one_epoch",
        "keyword calls of the model and the loss, enumerate, a helper for one step",
        """
def _one_step(model, loss_fn, optimizer, inputs, targets):
    optimizer.zero_grad()
    loss = loss_fn(input=model(input=inputs), target=targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train(mode=True)
    weighted, seen = 0.0, 0
    for step, (inputs, targets) in enumerate(loader):
        inputs = inputs.to(device=device)
        targets = targets.to(device=device)
        n = inputs.size(0)
        weighted += _one_step(model, loss_fn, optimizer, inputs, targets) * n
        seen += n
    return weighted / seen
""",
    ),
    Variant(
        "ex3_1_train_one_epoch",
        "a comprehension moves the batch, per-batch sizes in a list, zip and sum",
        """
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train()
    batch_losses, batch_sizes = [], []
    for batch in loader:
        xb, yb = [t.to(device) for t in batch]
        for p in model.parameters():
            p.grad = None
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        batch_losses.append(loss.item())
        batch_sizes.append(len(yb))
    return sum(l * n for l, n in zip(batch_losses, batch_sizes)) / sum(batch_sizes)
""",
    ),
    Variant(
        "ex3_1_train_one_epoch",
        "F.cross_entropy instead of the given loss_fn",
        _train().replace("loss_fn(model(inputs), targets)", "F.cross_entropy(model(inputs), targets)"),
        pts(T1, 0, 0),
    ),
    Variant("ex3_1_train_one_epoch", "model.train without parentheses", _train(train="model.train"), pts(T1, 0, 0)),
    Variant(
        "ex3_1_train_one_epoch", "targets not moved to device", _train(move="inputs.to(device), targets"), pts(T1, 0, 0)
    ),
    # ----------------------------------------------------------------- ex3_2 evaluate
    Variant(
        "ex3_2_evaluate",
        "never calls model.eval()",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return total / count, correct / count
""",
        pts(T2, 0, 0),
    ),
    Variant(
        "ex3_2_evaluate",
        "no torch.no_grad()",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    total, correct, count = 0.0, 0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        total += loss_fn(outputs, targets).item() * len(targets)
        correct += (outputs.argmax(dim=1) == targets).sum().item()
        count += len(targets)
    return total / count, correct / count
""",
        pts(T2, 0, 0),
    ),
    Variant(
        "ex3_2_evaluate",
        "accuracy in percent",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return total / count, 100.0 * correct / count
""",
        pts(T2, 0, 0),
    ),
    Variant(
        "ex3_2_evaluate",
        "plain mean of batch losses and batch accuracies",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    losses, accs = [], []
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            losses.append(loss_fn(outputs, targets).item())
            accs.append((outputs.argmax(dim=1) == targets).float().mean().item())
    return sum(losses) / len(losses), sum(accs) / len(accs)
""",
        pts(T2, 0, 0),
    ),
    Variant(
        "ex3_2_evaluate",
        "device has no default",
        """
def evaluate(model, loader, loss_fn, device):
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return total / count, correct / count
""",
        pts(T2, 2, 0),
    ),
    Variant(
        "ex3_2_evaluate",
        "inference_mode decorator, max(1), and a UserWarning",
        """
import warnings

@torch.inference_mode()
def evaluate(model, loader, loss_fn, device="cpu"):
    warnings.warn("evaluate: this is only a warning", UserWarning)
    model.eval()
    loss_sum, hits, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        scores = model(x)
        loss_sum += float(loss_fn(scores, y)) * y.numel()
        hits += int((scores.max(dim=1).indices == y).sum())
        seen += y.numel()
    return (loss_sum / seen, hits / seen)
""",
    ),
    Variant(
        "ex3_2_evaluate",
        "collects all outputs, one loss at the end, returns a list",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    outs, ys = [], []
    with torch.no_grad():
        for inputs, targets in loader:
            outs.append(model(inputs.to(device)))
            ys.append(targets.to(device))
        outputs, targets = torch.cat(outs), torch.cat(ys)
        loss = loss_fn(outputs, targets).item()
    return [loss, (outputs.argmax(1) == targets).float().mean().item()]
""",
    ),
    Variant(
        "ex3_2_evaluate",
        "inference_mode block, train(False), keyword loss call, eq().sum()",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.train(False)
    loss_total = 0.0
    n_correct = 0
    n_seen = 0
    with torch.inference_mode():
        for features, labels in loader:
            features, labels = features.to(device), labels.to(device)
            logits = model(features)
            batch = labels.shape[0]
            loss_total += loss_fn(input=logits, target=labels).item() * batch
            n_correct += logits.argmax(dim=1).eq(labels).sum().item()
            n_seen += batch
    mean_loss = loss_total / n_seen
    accuracy = n_correct / n_seen
    return mean_loss, accuracy
""",
    ),
    Variant(
        "ex3_2_evaluate",
        "F.cross_entropy instead of the given loss_fn",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += F.cross_entropy(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return total / count, correct / count
""",
        pts(T2, 0, 0),
    ),
    Variant(
        "ex3_2_evaluate",
        "counts len(loader) * batch_size samples (the last batch is smaller)",
        """
def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
    count = len(loader) * loader.batch_size
    return total / count, correct / count
""",
        pts(T2, 0, 0),
    ),
]


# --------------------------------------------------------------------- ex3_3 fit
_FIT = """
import copy

def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device="cpu", patience=None):
    history = {{"train_loss": [], "val_loss": [], "val_acc": []}}
    best_loss, best_state, bad_epochs, previous = math.inf, None, 0, math.inf
    for epoch in range(epochs):
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, {device})
        val_loss, val_acc = evaluate(model, val_loader, loss_fn, {device})
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        if patience is None:
            continue
        improved = {improved}
        if val_loss < best_loss:
            best_loss, best_state = val_loss, {snapshot}
        previous = val_loss
        if improved:
            bad_epochs = 0
        else:
            bad_epochs += 1
            if {stop}:
                {on_stop}
                break
    {restore}
    return history
"""


def _fit(
    device="device",
    improved="val_loss < best_loss",
    snapshot="copy.deepcopy(model.state_dict())",
    stop="bad_epochs >= patience",
    on_stop="pass",
    restore="if best_state is not None: model.load_state_dict(best_state)",
):
    return _FIT.format(device=device, improved=improved, snapshot=snapshot, stop=stop, on_stop=on_stop, restore=restore)


VARIANTS += [
    Variant(
        "ex3_3_fit",
        "calls the helpers with the contract's keyword names",
        _fit()
        .replace(
            "train_one_epoch(model, train_loader, loss_fn, optimizer, device)",
            "train_one_epoch(model=model, loader=train_loader, loss_fn=loss_fn, optimizer=optimizer, device=device)",
        )
        .replace(
            "evaluate(model, val_loader, loss_fn, device)",
            "evaluate(model=model, loader=val_loader, loss_fn=loss_fn, device=device)",
        ),
    ),
    Variant(
        "ex3_3_fit", "best = model.state_dict() without a copy", _fit(snapshot="model.state_dict()"), pts(T3, 1, 0, 0)
    ),
    Variant(
        "ex3_3_fit",
        "compares with the previous epoch, not the best",
        _fit(improved="val_loss < previous"),
        pts(T3, 1, 2, 0),
    ),
    Variant("ex3_3_fit", "a tie counts as an improvement", _fit(improved="val_loss <= best_loss"), pts(T3, 1, 0, 0)),
    Variant("ex3_3_fit", "never restores the best weights", _fit(restore="pass"), pts(T3, 1, 0, 0)),
    Variant("ex3_3_fit", "device not passed on", _fit(device="").replace(", )", ")"), pts(T3, 0, 0, 0)),
    Variant("ex3_3_fit", "patience off by one", _fit(stop="bad_epochs > patience"), pts(T3, 1, 0, 0)),
    Variant(
        "ex3_3_fit",
        "restores the best weights only when it stopped early",
        _fit(on_stop="model.load_state_dict(best_state)", restore="pass"),
        pts(T3, 1, 2, 0),
    ),
    Variant(
        "ex3_3_fit",
        "deep copy of the model, while loop, restores also without patience",
        """
import copy

def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device="cpu", patience=None):
    history = dict(train_loss=[], val_loss=[], val_acc=[])
    best_model, best, waited, epoch = None, None, 0, 0
    while epoch < epochs:
        epoch += 1
        tl = train_one_epoch(model, train_loader, loss_fn, optimizer, device=device)
        vl, va = evaluate(model, val_loader, loss_fn, device=device)
        for key, value in zip(history, (tl, vl, va)):
            history[key].append(value)
        if best is None or vl < best:
            best, best_model, waited = vl, copy.deepcopy(model), 0
        else:
            waited += 1
        if patience is not None and waited == patience:
            break
    model.load_state_dict(best_model.state_dict())
    return history
""",
    ),
    Variant(
        "ex3_3_fit",
        "clones the tensors, tqdm progress bar",
        """
from tqdm.auto import tqdm

def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device="cpu", patience=None):
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    best_val, best_weights, since_best = float("inf"), None, 0
    for _ in tqdm(range(epochs), desc="fit"):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))
        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        if val_loss < best_val:
            best_val, since_best = val_loss, 0
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        if patience and since_best >= patience:
            break
    if patience and best_weights is not None:
        model.load_state_dict(best_weights)
    return history
""",
    ),
    Variant(
        "ex3_3_fit",
        "mixed keyword calls, an early-stopping helper class, best epoch's weights cloned",
        """
class _EarlyStop:
    def __init__(self, patience):
        self.patience, self.best, self.bad, self.weights = patience, None, 0, None

    def update(self, value, model):
        if self.best is None or value < self.best:
            self.best, self.bad = value, 0
            self.weights = {name: t.clone() for name, t in model.state_dict().items()}
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device="cpu", patience=None):
    stopper = _EarlyStop(patience)
    history = {name: [] for name in ("train_loss", "val_loss", "val_acc")}
    for _ in range(epochs):
        history["train_loss"].append(
            train_one_epoch(model, train_loader, loss_fn=loss_fn, optimizer=optimizer, device=device)
        )
        val_loss, val_acc = evaluate(model, loader=val_loader, loss_fn=loss_fn, device=device)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        if stopper.update(val_loss, model):
            break
    if patience is not None:
        model.load_state_dict(stopper.weights)
    return history
""",
    ),
    Variant(
        "ex3_3_fit",
        "evaluate called before train_one_epoch",
        _fit()
        .replace("        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, device)\n", "")
        .replace(
            "        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)\n",
            "        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)\n"
            "        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, device)\n",
        ),
        pts(T3, 0, 0, 0),
    ),
    Variant(
        "ex3_3_fit",
        "the bad-epoch counter is never reset after an improvement",
        """
import copy

def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device="cpu", patience=None):
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    best_loss, best_state, bad_epochs = math.inf, None, 0
    for epoch in range(epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))
        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        if val_loss < best_loss:
            best_loss, best_state = val_loss, copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        if patience is not None and bad_epochs >= patience:
            break
    if best_state is not None and patience is not None:
        model.load_state_dict(best_state)
    return history
""",
        pts(T3, 1, 2, 0),
    ),
]


# --------------------------------------------------------------------- ex3_4 adder
_ADDER = """
class AdderNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 32)
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        return {forward}


def train_adder(seed=0):
    {seed}
    model = AdderNet()
    pairs = torch.rand(512, 2) * 20 - 10
    sums = {sums}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for step in range({steps}):
        optimizer.zero_grad()
        loss = F.mse_loss(model(pairs), sums)
        loss.backward()
        optimizer.step()
    return model
"""


def _adder(
    forward="self.out(F.relu(self.hidden(x)))",
    seed="torch.manual_seed(seed)",
    sums="pairs.sum(dim=1, keepdim=True)",
    steps=300,
):
    return _ADDER.format(forward=forward, seed=seed, sums=sums, steps=steps)


VARIANTS += [
    Variant("ex3_4_adder", "target of shape (N,): MSELoss broadcasts", _adder(sums="pairs.sum(dim=1)"), pts(T4, 0, 0)),
    Variant("ex3_4_adder", "not seeded: two calls give two models", _adder(seed="pass"), pts(T4, 2, 0)),
    Variant("ex3_4_adder", "far too few steps", _adder(steps=15), pts(T4, 0, 0)),
    Variant(
        "ex3_4_adder",
        "output of shape (N,)",
        _adder(forward="self.out(F.relu(self.hidden(x))).squeeze(1)", sums="pairs.sum(dim=1)"),
        pts(T4, 0, 0),
    ),
    Variant(
        "ex3_4_adder",
        "a single Linear layer, a seeded Generator, mini-batches",
        """
class AdderNet(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(2, 1))


def train_adder(seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = AdderNet()
    x = torch.rand(1024, 2, generator=gen) * 20 - 10
    y = x.sum(1).unsqueeze(1)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=gen)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    for epoch in range(10):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.MSELoss()(model(xb), yb).backward()
            optimizer.step()
    return model
""",
    ),
    Variant(
        "ex3_4_adder",
        "trains on device, view(-1, 1), warns",
        """
import warnings

class AdderNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x)


def train_adder(seed=0):
    warnings.warn("train_adder: training on " + str(device), UserWarning)
    torch.manual_seed(seed)
    model = AdderNet().to(device)
    x = (torch.rand(512, 2) * 20 - 10).to(device)
    y = (x[:, 0] + x[:, 1]).view(-1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    return model
""",
    ),
]


# --------------------------------------------------------------------- ex3_5 digits
VARIANTS += [
    Variant(
        "ex3_5_digits_classifier",
        "the model is never trained",
        """
torch.manual_seed(0)
digits_model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
""",
        pts(T5, 1, 0),
    ),
    Variant(
        "ex3_5_digits_classifier",
        "a linear model: about 93 % (half marks)",
        """
torch.manual_seed(0)
digits_model = nn.Linear(64, 10)
optimizer = torch.optim.SGD(digits_model.parameters(), lr=0.5)
for step in range(300):
    optimizer.zero_grad()
    F.cross_entropy(digits_model(X_train), y_train).backward()
    optimizer.step()
""",
        pts(T5, 1, 2),
    ),
    Variant(
        "ex3_5_digits_classifier",
        "the model returns class indices, not scores",
        """
class ArgmaxNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x).argmax(dim=1)

torch.manual_seed(0)
digits_model = ArgmaxNet()
optimizer = torch.optim.Adam(digits_model.parameters(), lr=0.01)
for step in range(150):
    optimizer.zero_grad()
    F.cross_entropy(digits_model.net(X_train), y_train).backward()
    optimizer.step()
""",
        pts(T5, 0, 0),
    ),
    Variant(
        "ex3_5_digits_classifier",
        "digits_model holds the history, not the model",
        """
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
digits_model = []
for step in range(150):
    optimizer.zero_grad()
    loss = F.cross_entropy(net(X_train), y_train)
    loss.backward()
    optimizer.step()
    digits_model.append(loss.item())
""",
        pts(T5, 0, 0),
    ),
    Variant(
        "ex3_5_digits_classifier",
        "dropout model trained with the learner's own fit, on device",
        """
torch.manual_seed(0)
digits_model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10)).to(device)
train_part = DataLoader(TensorDataset(X_train[:1200], y_train[:1200]), batch_size=32, shuffle=True)
val_part = DataLoader(TensorDataset(X_train[1200:], y_train[1200:]), batch_size=256)
fit(digits_model, train_part, val_part, nn.CrossEntropyLoss(),
    torch.optim.Adam(digits_model.parameters(), lr=2e-3), epochs=25, device=device, patience=4)
""",
    ),
    Variant(
        "ex3_5_digits_classifier",
        "full-batch Adam, left in training mode",
        """
torch.manual_seed(1)
digits_model = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(digits_model.parameters(), lr=0.01)
for step in range(200):
    optimizer.zero_grad()
    F.cross_entropy(digits_model(X_train), y_train).backward()
    optimizer.step()
""",
    ),
]


# --------------------------------------------------------------------- ex3_6 checkpoint
_CKPT = """
def save_checkpoint(path, model, optimizer, epoch):
    {prepare}
    torch.save({{"epoch": epoch, "model": model.state_dict(), {opt_save}}}, path)


def load_checkpoint(path, model, optimizer):
    {prepare}
    state = torch.load(path{map_location})
    model.load_state_dict(state["model"])
    {opt_load}
    return {result}
"""


def _ckpt(
    prepare="pass",
    opt_save='"optimizer": optimizer.state_dict()',
    map_location=", map_location=device",
    opt_load='optimizer.load_state_dict(state["optimizer"])',
    result='state["epoch"]',
):
    return _CKPT.format(prepare=prepare, opt_save=opt_save, map_location=map_location, opt_load=opt_load, result=result)


VARIANTS += [
    Variant("ex3_6_checkpoint", "optimizer state not saved", _ckpt(opt_save="", opt_load="pass"), pts(T6, 0, 0)),
    Variant("ex3_6_checkpoint", "no map_location", _ckpt(map_location=""), pts(T6, 2, 0)),
    Variant("ex3_6_checkpoint", "returns the next epoch", _ckpt(result='state["epoch"] + 1'), pts(T6, 0, 0)),
    Variant(
        "ex3_6_checkpoint",
        "path treated as a str",
        _ckpt(prepare='path = path if path.endswith((".pt", ".pth")) else path + ".pt"'),
        pts(T6, 2, 0),
    ),
    Variant(
        "ex3_6_checkpoint",
        "a new local model in load_checkpoint",
        """
import copy

def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path, map_location="cpu")
    model = copy.deepcopy(model)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"]
""",
        pts(T6, 0, 0),
    ),
    Variant(
        "ex3_6_checkpoint",
        "map_location='cpu', other keys, pathlib, int()",
        """
from pathlib import Path

def save_checkpoint(path, model, optimizer, epoch):
    path = Path(path)
    torch.save(dict(model_state=model.state_dict(), optim_state=optimizer.state_dict(), epoch=int(epoch)),
               str(path))


def load_checkpoint(path, model, optimizer):
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model_state"])
    optimizer.load_state_dict(ckpt["optim_state"])
    return int(ckpt["epoch"])
""",
    ),
    Variant(
        "ex3_6_checkpoint",
        "map_location as a function, an open file",
        """
def save_checkpoint(path, model, optimizer, epoch):
    with open(path, "wb") as f:
        torch.save({"e": epoch, "m": model.state_dict(), "o": optimizer.state_dict()}, f)


def load_checkpoint(path, model, optimizer):
    with open(path, "rb") as f:
        state = torch.load(f, map_location=lambda storage, location: storage)
    model.load_state_dict(state["m"])
    optimizer.load_state_dict(state["o"])
    return state["e"]
""",
    ),
    Variant(
        "ex3_6_checkpoint",
        "keyword arguments everywhere: torch.save(obj=, f=), torch.load(f=, map_location=)",
        """
def save_checkpoint(path, model, optimizer, epoch):
    checkpoint = {"epoch": epoch, "model_state_dict": model.state_dict(),
                  "optimizer_state_dict": optimizer.state_dict()}
    torch.save(obj=checkpoint, f=path)


def load_checkpoint(path, model, optimizer):
    checkpoint = torch.load(f=path, map_location=torch.device("cpu"), weights_only=True)
    model.load_state_dict(state_dict=checkpoint["model_state_dict"])
    optimizer.load_state_dict(state_dict=checkpoint["optimizer_state_dict"])
    return checkpoint["epoch"]
""",
    ),
    Variant(
        "ex3_6_checkpoint",
        "pickles the whole model and optimizer (torch.load refuses them)",
        """
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"epoch": epoch, "model": model, "optimizer": optimizer}, path)


def load_checkpoint(path, model, optimizer):
    state = torch.load(path, map_location=device)
    model.load_state_dict(state["model"].state_dict())
    optimizer.load_state_dict(state["optimizer"].state_dict())
    return state["epoch"]
""",
        pts(T6, 0, 0),
    ),
    # ----------------------------------------------------------------- ex3_7 momentum_sgd
    Variant(
        "ex3_7_momentum_sgd",
        "weight decay added to the update after momentum",
        _momentum(
            decay="d_p = p.grad",
            update='p.add_(state["momentum_buffer"] + group["weight_decay"] * p, alpha=-group["lr"])',
        ),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "momentum as an average: buffer = m * buffer + (1 - m) * grad, from zero",
        _momentum(
            first='state["momentum_buffer"] = (1 - group["momentum"]) * d_p',
            later='state["momentum_buffer"].mul_(group["momentum"]).add_(d_p, alpha=1 - group["momentum"])',
        ),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "one learning rate for every group (self.defaults)",
        _momentum(update='p.add_(state["momentum_buffer"], alpha=-self.defaults["lr"])'),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "buffers kept in a dict of its own, not in self.state",
        _momentum(
            init="super().__init__(params, defaults)\n        self.momentum_buffers = {}",
            state="state = self.momentum_buffers.setdefault(p, {})",
        ),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "a parameter without a gradient is moved (grad taken as zero)",
        _momentum(
            skip="pass",
            decay='d_p = (p.grad if p.grad is not None else torch.zeros_like(p)).add(p, alpha=group["weight_decay"])',
        ),
        pts(T7, 1, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "crashes on a parameter whose .grad is None",
        _momentum(skip="pass"),
        pts(T7, 1, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "closure called under no_grad: its backward() fails",
        _momentum(closure="loss = closure()"),
        pts(T7, 1, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "no @torch.no_grad(), .data to dodge the in-place error: the buffers carry a graph",
        _momentum(decorator="", update='p.data.add_(state["momentum_buffer"], alpha=-group["lr"])'),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "zero buffer used before it is updated: the first step does nothing",
        _momentum(
            first='state["momentum_buffer"] = torch.zeros_like(p)',
            later="pass",
            update='p.add_(state["momentum_buffer"], alpha=-group["lr"])\n'
            '                state["momentum_buffer"].mul_(group["momentum"]).add_(d_p)',
        ),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "momentum and weight decay read from self.defaults, not from the group",
        _momentum(
            decay='d_p = p.grad.add(p, alpha=self.defaults["weight_decay"])',
            later='state["momentum_buffer"].mul_(self.defaults["momentum"]).add_(d_p)',
        ),
        pts(T7, 1, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "weight decay added into p.grad in place",
        _momentum(decay='d_p = p.grad.add_(p, alpha=group["weight_decay"])'),
        pts(T7, 0, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "step() does not return the closure's loss",
        _momentum(result="None"),
        pts(T7, 1, 0),
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "zero-initialised buffer updated before use, torch.no_grad() as a block, -= on the parameter",
        """
class MomentumSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super(MomentumSGD, self).__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        with torch.no_grad():
            for group in self.param_groups:
                lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
                for param in group["params"]:
                    if param.grad is not None:
                        grad = param.grad + wd * param
                        state = self.state[param]
                        if "momentum_buffer" not in state:
                            state["momentum_buffer"] = torch.zeros_like(param)
                        buf = state["momentum_buffer"]
                        buf.mul_(mu).add_(grad)
                        param -= lr * buf
        return loss
""",
    ),
    Variant(
        "ex3_7_momentum_sgd",
        "functional style: the buffer rebuilt and stored again each step, params gathered first",
        """
class MomentumSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        super().__init__(params=params, defaults=defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            for p in with_grad:
                direction = p.grad.detach() + group["weight_decay"] * p.detach()
                previous = self.state[p].get("momentum_buffer")
                if previous is None:
                    buffer = direction.clone()
                else:
                    buffer = group["momentum"] * previous + direction
                self.state[p]["momentum_buffer"] = buffer
                p.sub_(group["lr"] * buffer)
        return loss
""",
    ),
]
