"""Judging helpers: each raises Mistake with the learner's value beside the expected one."""

from __future__ import annotations

import torch

from .registry import Mistake

# float32 tolerance that also holds between a CPU reference and a CUDA submission
ATOL, RTOL = 1e-5, 1e-4


def expect_equal(got, expected, what: str, hint: str | None = None) -> None:
    if got != expected:
        raise Mistake(what, got=got, expected=expected, hint=hint)


def expect_true(condition: bool, what: str, hint: str | None = None, **shown) -> None:
    if not condition:
        raise Mistake(what, hint=hint, **shown)


def expect_close(got, expected, what: str, hint: str | None = None, atol: float = ATOL, rtol: float = RTOL) -> None:
    """Tensors of the same shape and close values (None must match None)."""
    if expected is None or got is None:
        if got is not expected:
            raise Mistake(f"{what}: one of the two is missing (None).", got=got, expected=expected, hint=hint)
        return
    if not isinstance(got, torch.Tensor):
        raise Mistake(f"{what}: expected a tensor, got {type(got).__name__}.", got=got, hint=hint)
    if tuple(got.shape) != tuple(expected.shape):
        raise Mistake(
            f"{what}: the shape is {tuple(got.shape)}, expected {tuple(expected.shape)}.",
            got=got,
            expected=expected,
            hint=hint,
        )
    g, e = got.double(), expected.double()
    if not torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=False):
        diff = (g - e).abs()
        diff = diff[~torch.isnan(diff)]
        worst = f" (largest difference {diff.max().item():.3g})" if diff.numel() else ""
        raise Mistake(f"{what} differs from the expected values{worst}.", got=got, expected=expected, hint=hint)


def expect_close_dict(got: dict, expected: dict, what: str, hint: str | None = None, **tol) -> None:
    expect_equal(sorted(got), sorted(expected), f"{what}: the names differ", hint)
    for key in sorted(expected):
        expect_close(got[key], expected[key], f"{what} '{key}'", hint, **tol)
