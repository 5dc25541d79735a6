"""Conceptual figures: boxes and arrows, no data.

    from nncourse.diagrams import call_path_figure, training_step_figure
    fig = call_path_figure()      # what model(x) and loss.backward() run, hooks included
    fig = training_step_figure()  # one training step, and where each kind of hook fires

Each function returns a matplotlib Figure made with pyplot (so ``plt.show()`` displays it in a
notebook); nothing is computed, and the same picture is drawn on every backend.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

__all__ = ["call_path_figure", "training_step_figure"]

# colours by role: the call machinery, a hook, the module's own code, data, gradient clipping
_CALL, _HOOK, _CODE, _DATA, _CLIP = "#dbe9f6", "#fde2c4", "#d9f0d3", "#eeeeee", "#e9def5"


def _box(ax, x, y, text, color, width=2.2, height=0.9, fontsize=9, style="round,pad=0.05", ls="-"):
    """A labelled box centred on (x, y); returns its (left, right, bottom, top) edges."""
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle=style,
        facecolor=color,
        edgecolor="#444444",
        linewidth=1.2,
        linestyle=ls,
    )
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, wrap=False)
    return (x - width / 2, x + width / 2, y - height / 2, y + height / 2)


def _arrow(ax, start, end, text=None, color="#333333", ls="-", text_offset=(0.0, 0.18), fontsize=8):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.3, "linestyle": ls, "shrinkA": 0, "shrinkB": 0},
    )
    if text:
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", fontsize=fontsize, color=color)


def _canvas(width, height, xlim, ylim, title) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("auto")
    ax.axis("off")
    ax.set_title(title, fontsize=11, loc="left")
    return fig, ax


def call_path_figure() -> Figure:
    """What ``model(x)`` runs (``__call__`` → forward pre-hooks → ``forward`` → forward hooks), what
    ``loss.backward()`` runs afterwards (the backward hooks, last module first), and the shortcut
    ``model.forward(x)`` that skips every hook of ``model``."""
    fig, ax = _canvas(14, 5.6, (0, 17.0), (0, 6.2), "What model(x) runs, and what loss.backward() runs later")
    y_fwd, y_bwd = 4.6, 1.3
    xs = [1.2, 3.8, 6.6, 9.4, 12.4, 15.6]
    boxes = [
        ("model(x)", _DATA),
        ("nn.Module.__call__", _CALL),
        ("forward pre-hooks\nhook(module, args)\nmay return new args", _HOOK),
        ("forward(*args)\nyour code", _CODE),
        ("forward hooks\nhook(module, args, output)\nmay return a new output", _HOOK),
        ("output", _DATA),
    ]
    edges = []
    for x, (text, color) in zip(xs, boxes):
        width = 2.7 if color == _HOOK else 2.0
        edges.append(_box(ax, x, y_fwd, text, color, width=width, height=1.15, fontsize=8))
    for left, right in zip(edges, edges[1:]):
        _arrow(ax, (left[1], y_fwd), (right[0], y_fwd))

    # the shortcut: model.forward(x) goes straight to forward, no hook of model runs
    _box(ax, 1.2, 2.95, "model.forward(x)", _DATA, width=2.0, height=0.6, fontsize=8)
    ax.annotate(
        "",
        xy=(xs[3], edges[3][2]),
        xytext=(2.2, 2.95),
        arrowprops={
            "arrowstyle": "-|>",
            "color": "#b03030",
            "linestyle": "--",
            "linewidth": 1.2,
            "connectionstyle": "angle,angleA=0,angleB=-90",
        },
    )
    ax.text(5.2, 3.05, "skips every hook of model", fontsize=8, color="#b03030", ha="center", va="bottom")

    # backward: from the loss back to the inputs (right to left)
    bwd = [
        (15.6, "loss.backward()", _DATA, 2.0),
        (12.4, "full backward pre-hooks\nhook(module, grad_output)\nmay return a new\ngrad_output", _HOOK, 2.7),
        (9.4, "tensor hooks\nhook(grad)\nmay return a new grad", _HOOK, 2.5),
        (6.6, "full backward hooks\nhook(module, grad_input,\ngrad_output); may return\na new grad_input", _HOOK, 2.7),
        (3.8, "post-accumulate-grad\nhooks: hook(param),\nafter .grad is updated", _HOOK, 2.5),
    ]
    bedges = [_box(ax, x, y_bwd, text, color, width=w, height=1.45, fontsize=8) for x, text, color, w in bwd]
    for right, left in zip(bedges, bedges[1:]):
        _arrow(ax, (right[0], y_bwd), (left[1], y_bwd))
    ax.text(
        8.5,
        0.15,
        "backward: each hook fires as soon as its gradient exists, last module first",
        ha="center",
        fontsize=8.5,
        style="italic",
    )
    _arrow(ax, (xs[5], edges[5][2]), (xs[5], bedges[0][3]))
    ax.text(xs[5] - 0.15, 2.95, "loss =\nloss_fn(output, y)", ha="right", va="center", fontsize=8)
    return fig


def training_step_figure(clip: bool = True) -> Figure:
    """One training step, zero_grad → forward → loss → backward → (clip) → step, with the hooks
    that fire during each part. ``clip=False`` leaves the clipping box out."""
    steps = [
        ("optimizer.zero_grad()", _CALL, "no hooks"),
        ("output = model(x)", _CODE, "forward pre-hooks,\nforward hooks"),
        ("loss = loss_fn(output, y)", _CODE, "the loss module's\nhooks, if any"),
        ("loss.backward()", _CODE, "backward pre-hooks,\ntensor hooks,\nfull backward hooks,\npost-accumulate hooks"),
    ]
    if clip:
        steps.append(
            ("clip_grad_norm_(\nmodel.parameters(),\nmax_norm)", _CLIP, "(optional) no hooks:\nrescales .grad in place")
        )
    steps.append(("optimizer.step()", _CALL, "no module hooks"))
    n = len(steps)
    spacing = 2.9
    fig, ax = _canvas(2.3 * n, 4.6, (0, spacing * n), (0, 5.4), "One training step, and where hooks fire")
    y = 3.4
    edges = []
    for i, (text, color, hooks) in enumerate(steps):
        x = spacing * (i + 0.5)
        edges.append(_box(ax, x, y, text, color, width=2.6, height=1.1, fontsize=8))
        ax.text(x, 1.85, hooks, ha="center", va="top", fontsize=8, color="#7a4a00")
        ax.plot([x, x], [y - 0.6, 1.95], color="#bbbbbb", linewidth=0.8, linestyle=":")
    for left, right in zip(edges, edges[1:]):
        _arrow(ax, (left[1], y), (right[0], y))
    ax.annotate(
        "",
        xy=(edges[0][0] + 0.3, y + 0.58),
        xytext=(edges[-1][1] - 0.3, y + 0.58),
        arrowprops={"arrowstyle": "-|>", "color": "#555555", "connectionstyle": "arc3,rad=0.12", "linestyle": "--"},
    )
    ax.text(spacing * n / 2, 5.05, "next batch", ha="center", fontsize=8.5, color="#555555")
    ax.text(0.1, 0.25, "hooks that fire during each part", fontsize=8, color="#7a4a00", style="italic")
    return fig
