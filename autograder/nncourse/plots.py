"""Figures the chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
from torch import nn


def draw_module_tree(model: nn.Module, title: str = "", ax=None):
    """Draw the submodule tree of ``model``: one box per module, its parameter count beside it.

    Leaves are laid out left to right; each parent sits above the middle of its children.
    """
    positions: dict[str, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(name: str, module: nn.Module, depth: int) -> float:
        children = list(module.named_children())
        if children:
            xs = [place(f"{name}.{child}" if name else child, sub, depth + 1) for child, sub in children]
            x = sum(xs) / len(xs)
        else:
            x = next_leaf[0]
            next_leaf[0] += 1.0
        positions[name] = (x, -depth)
        return x

    place("", model, 0)
    if ax is None:
        width = max(6.0, 1.6 * next_leaf[0])
        _, ax = plt.subplots(figsize=(width, 1.3 * (1 - min(y for _, y in positions.values())) + 0.6))
    modules = dict(model.named_modules(remove_duplicate=False))
    for name, (x, y) in positions.items():
        if name:
            parent = name.rpartition(".")[0]
            px, py = positions[parent]
            ax.plot([px, x], [py - 0.18, y + 0.18], color="0.6", lw=1, zorder=1)
        module = modules[name]
        own = sum(p.numel() for p in module.parameters(recurse=False))
        label = f"{name.rpartition('.')[2] or 'model'}\n{type(module).__name__}"
        if own:
            label += f"\n{own} params"
        leaf = not list(module.children())
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=8,
            zorder=2,
            bbox=dict(boxstyle="round,pad=0.3", fc="#dbe9f6" if leaf else "#f6e7d8", ec="0.4"),
        )
    ax.set_xlim(-0.7, next_leaf[0] - 0.3)
    ax.set_ylim(min(y for _, y in positions.values()) - 0.6, 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax
