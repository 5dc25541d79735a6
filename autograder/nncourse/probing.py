"""Helpers for probes: seeded inputs, weights shared with the reference, gradients.

Random data is made on the CPU with a private generator and then moved to the course's
device, so the numbers are the same on CPU and CUDA.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from .runtime import device

_ModuleT = TypeVar("_ModuleT", bound=nn.Module)

# Set by the grader for each test cell, from a number drawn by the trusted grading process and sent
# to the child only once the answer cell has finished: at grading time the probes' inputs change from
# run to run, so an answer cannot special-case them. None (in a learner's notebook): fixed inputs.
_salt: list = [None]


def set_salt(salt: int | None) -> None:
    _salt[0] = salt


def mixed(seed: int) -> int:
    """The seed the probes really use: ``seed`` itself in a notebook, mixed with the run's salt when grading."""
    if _salt[0] is None:
        return seed
    return (seed * 1_000_003 + _salt[0] * 7_919 + 17) % (2**31 - 1)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(mixed(seed))


def vary(default, choices, seed: int):
    """``default`` in a notebook; at grading time one of ``choices`` (a sequence), drawn per run.

    For the sizes and names a probe uses, so an answer cannot key on them; the notebook's checks
    keep the values their stored outputs were made with.
    """
    if _salt[0] is None:
        return default
    return choices[int(torch.randint(len(choices), (1,), generator=generator(seed)))]


def reseed(seed: int) -> None:
    """``torch.manual_seed`` for probes: the global generator, salted like ``generator``."""
    torch.manual_seed(mixed(seed))


def randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, generator=generator(seed)) * scale).to(device)


def state_shapes(module: nn.Module) -> dict[str, list[int]]:
    """``state_dict`` keys with their shapes."""
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def seeded_state(shapes: dict[str, list[int]], seed: int, scale: float = 0.5) -> dict[str, torch.Tensor]:
    """One tensor per state_dict key, the same for the learner's module and the reference."""
    g = generator(seed)
    return {k: (torch.randn(*shapes[k], generator=g) * scale).to(device) for k in sorted(shapes)}


def load_seeded(module: _ModuleT, seed: int) -> _ModuleT:
    """Give ``module`` seeded weights (by state_dict key) and move it to the device."""
    module.to(device)
    module.load_state_dict(seeded_state(state_shapes(module), seed))
    return module


def linears(module: nn.Module) -> list[nn.Linear]:
    """The Linear submodules in registration order (for contracts that leave names free)."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def load_seeded_linears(module: _ModuleT, seed: int) -> _ModuleT:
    """Seeded weights for every Linear in order, whatever their names."""
    module.to(device)
    g = generator(seed)
    with torch.no_grad():
        for layer in linears(module):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.5)
            if layer.bias is not None:
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.5)
    return module


def output_and_grads(module: nn.Module, x: torch.Tensor, names=None) -> dict:
    """Forward ``x``, backpropagate a fixed weighting of the output, return output and grads.

    The weighting is seeded so that every output element matters to every gradient.
    """
    module.zero_grad(set_to_none=True)
    out = module(x)
    weights = torch.randn(out.shape, generator=generator(99)).to(out.device)
    (out * weights).sum().backward()
    named = dict(module.named_parameters())
    # clones: a later backward in the same probe must not change what was recorded
    grads = {
        n: (p.grad.detach().clone() if p.grad is not None else None)
        for n, p in named.items()
        if names is None or n in names
    }
    return {"output": out.detach(), "grads": grads}
