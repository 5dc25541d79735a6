"""What every notebook's first cell needs: one device, one seed, tidy printing."""

import os
import random

import torch

# Chosen once for the whole course: CUDA when present, else CPU. NNCOURSE_DEVICE overrides it
# (for example to run a chapter on CPU on a GPU machine).
device = torch.device(os.environ.get("NNCOURSE_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))


def seed_everything(seed: int = 0) -> None:
    """Seed Python's and torch's generators so a notebook prints the same numbers every run."""
    random.seed(seed)
    torch.manual_seed(seed)


def show(label: str, value, digits: int = 4) -> None:
    """Print a scalar with fixed precision or a tensor after ``.cpu()``.

    Stored notebook outputs then read the same on CPU and CUDA (no ``device='cuda:0'``).
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dim() == 0:
            value = value.item()
    if isinstance(value, float):
        print(f"{label}: {value:.{digits}f}")
    else:
        print(f"{label}: {value}")
