"""The course's data sets, shipped in ``data/`` and checked before use.

    from nncourse.data import load_digits
    X_train, y_train = load_digits("train")

Only numpy and torch are needed (the files were converted once; see ``data/digits/README.md``).
"""

from __future__ import annotations

import hashlib
import io
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import course

DIGITS_FILE = course.DATA_DIR / "digits" / "digits.csv"
# SHA-256 of data/digits/digits.csv as written by data/digits/make_digits.py
DIGITS_SHA256 = "cda77b52a71bd5de0328c36f17f5b0e2290901eaa2c8ffcde3a3b8d7d374348b"
DIGITS_SPLITS = ("train", "test")
# Set by the grader inside its sandbox: a folder with the training split and the test split's
# inputs only. The test labels never enter the sandbox, so an answer cannot train on them.
GRADING_DATA_ENV = "NNCOURSE_GRADING_DATA"


class DataError(RuntimeError):
    """A shipped data file is missing or is not the file the course was written for."""


def _verified_bytes(path: Path, sha256: str) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"the data file {path} is missing: it ships with the course repository "
            f"(restore it with `git checkout -- {Path(path).name}` in its folder)."
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DataError(
            f"the data file {path} is not the one the course ships: its SHA-256 is {digest}, "
            f"expected {sha256}. It was modified or damaged (a line-ending conversion does this); "
            f"restore it with `git checkout -- {Path(path).name}` in its folder."
        )
    return raw


@lru_cache(maxsize=1)
def _digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    raw = _verified_bytes(DIGITS_FILE, DIGITS_SHA256)
    lines = raw.decode("ascii").splitlines()
    header = lines[0].split(",")
    if header[:3] != ["index", "split", "label"] or len(header) != 3 + 64:
        raise DataError(f"unexpected header in {DIGITS_FILE}")
    rows = [line.split(",") for line in lines[1:]]
    split = np.array([r[1] for r in rows])
    numbers = np.array([r[2:] for r in rows], dtype=np.uint8)  # label, then 64 pixels 0..16
    out = {}
    for name in DIGITS_SPLITS:
        keep = split == name
        out[name] = (numbers[keep, 1:], numbers[keep, 0])
    return out


def grading_files() -> dict[str, bytes]:
    """The files the grading sandbox gets instead of ``data/`` (see GRADING_DATA_ENV)."""
    files = {}
    for split in DIGITS_SPLITS:
        pixels, labels = _digits_arrays()[split]
        buffer = io.BytesIO()
        # Any: numpy's stub would take **arrays as possibly filling savez's bool allow_pickle
        arrays: dict[str, Any] = {"pixels": pixels} if split == "test" else {"pixels": pixels, "labels": labels}
        np.savez(buffer, **arrays)
        files[f"digits_{split}.npz"] = buffer.getvalue()
    return files


def _split_arrays(split: str):
    folder = os.environ.get(GRADING_DATA_ENV)
    if not folder:
        return _digits_arrays()[split]
    with np.load(Path(folder) / f"digits_{split}.npz", allow_pickle=False) as f:
        return f["pixels"], (f["labels"] if "labels" in f.files else None)


def load_digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The 8×8 handwritten digits (UCI, Alpaydin & Kaynak), one fixed split.

    Returns ``(X, y)``: ``X`` float32 of shape ``(N, 64)`` with values in [0, 1] (pixel / 16,
    row by row of the 8×8 image), ``y`` int64 of shape ``(N,)`` with the digit 0..9.
    ``split`` is ``"train"`` (1,437 images) or ``"test"`` (360 images). Fresh CPU tensors on
    every call. Raises :class:`DataError` if the shipped file is missing or altered.
    """
    if split not in DIGITS_SPLITS:
        raise ValueError(f"split must be one of {DIGITS_SPLITS}, not {split!r}")
    pixels, labels = _split_arrays(split)
    X = torch.from_numpy(pixels.astype(np.float32) / 16.0)
    y = None if labels is None else torch.from_numpy(labels.astype(np.int64))  # None: test labels while grading
    return X, y
