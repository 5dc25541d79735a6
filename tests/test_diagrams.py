"""The conceptual figures of nncourse.diagrams: drawn on Agg, with every labelled part, each box's
label inside its box and every text inside the figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from nncourse import diagrams  # noqa: E402

CALL_PATH_LABELS = [
    "model(x)",
    "nn.Module.__call__",
    "forward pre-hooks",
    "forward(*args)",
    "forward hooks",
    "output",
    "model.forward(x)",
    "skips every hook of model",
    "loss.backward()",
    "full backward pre-hooks",
    "tensor hooks",
    "full backward hooks",
    "post-accumulate-grad",
]
TRAINING_STEP_LABELS = [
    "optimizer.zero_grad()",
    "output = model(x)",
    "loss = loss_fn(output, y)",
    "loss.backward()",
    "clip_grad_norm_(",
    "optimizer.step()",
    "forward pre-hooks",
    "full backward hooks",
    "next batch",
]


def _texts(fig):
    return [t for t in fig.findobj(Text) if t.get_text().strip()]


def _center(text, renderer):
    extent = text.get_window_extent(renderer)
    return (extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2


def _draw(factory, **kwargs):
    fig = factory(**kwargs)
    fig.canvas.draw()
    return fig


@pytest.mark.parametrize(
    "factory, labels",
    [(diagrams.call_path_figure, CALL_PATH_LABELS), (diagrams.training_step_figure, TRAINING_STEP_LABELS)],
)
def test_figure_has_its_labelled_parts(factory, labels):
    fig = _draw(factory)
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        text = "\n".join(t.get_text() for t in _texts(fig))
        for label in labels:
            assert label in text, f"{factory.__name__}: no label {label!r}"
        boxes = [p for p in fig.findobj(FancyBboxPatch) if p.get_width() > 0 and p.get_height() > 0]
        boxes = [p for p in boxes if p.axes is not None and p in p.axes.patches]
        assert len(boxes) >= 6, f"{factory.__name__}: {len(boxes)} boxes"
        arrows = [a for ax in fig.axes for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
        assert len(arrows) >= 5, f"{factory.__name__}: {len(arrows)} arrows"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("factory", [diagrams.call_path_figure, diagrams.training_step_figure])
def test_labels_are_readable(factory):
    """Every label lies inside the figure, and each box's label inside its box."""
    fig = _draw(factory)
    try:
        renderer = fig.canvas.get_renderer()
        figure_box = fig.bbox
        for t in _texts(fig):
            extent = t.get_window_extent(renderer)
            assert figure_box.x0 - 1 <= extent.x0 and extent.x1 <= figure_box.x1 + 1, t.get_text()
            assert figure_box.y0 - 1 <= extent.y0 and extent.y1 <= figure_box.y1 + 1, t.get_text()
        for ax in fig.axes:
            for patch in ax.patches:
                if not isinstance(patch, FancyBboxPatch):
                    continue
                box = patch.get_window_extent(renderer)
                inside = [t for t in ax.texts if t.get_text().strip() and box.contains(*_center(t, renderer))]
                assert inside, f"{factory.__name__}: a box without a label"
                for t in inside:
                    extent = t.get_window_extent(renderer)
                    assert box.x0 <= extent.x0 and extent.x1 <= box.x1, f"{t.get_text()!r} sticks out of its box"
                    assert box.y0 <= extent.y0 and extent.y1 <= box.y1, f"{t.get_text()!r} sticks out of its box"
    finally:
        plt.close(fig)


def test_training_step_without_clipping():
    fig = _draw(diagrams.training_step_figure, clip=False)
    try:
        text = "\n".join(t.get_text() for t in _texts(fig))
        assert "clip_grad_norm_" not in text
        assert "optimizer.step()" in text
    finally:
        plt.close(fig)
