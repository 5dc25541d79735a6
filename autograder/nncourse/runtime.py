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


def reveal(prediction, actual: dict) -> None:
    """Compare a learner's prediction with what the code just did, one line per question.

    ``prediction`` is a dict with the same keys as ``actual`` (``...`` for a question not answered
    yet). Nothing is revealed until every question has an answer: predicting first is the point.
    Prints, and returns nothing (a value would add an ``Out[...]`` line under the cell).
    """
    if prediction is ... or not isinstance(prediction, dict):
        print("Make your prediction first: fill in the dict in the cell above, run it, then run this cell.")
        return
    missing = [key for key in actual if prediction.get(key, ...) is ...]
    unknown = [key for key in prediction if key not in actual]
    if unknown:
        print(f"Unknown question(s) {unknown}; the questions are {list(actual)}.")
        return
    if missing:
        print(f"Answer every question before you look: {missing} still say `...`.")
        return
    right = 0
    for key, value in actual.items():
        if prediction[key] == value:
            right += 1
            print(f"✔ {key}: {value!r}")
        else:
            print(f"✘ {key}: you predicted {prediction[key]!r}, it is {value!r}")
    print(f"{right}/{len(actual)} predicted right." + (" All of them!" if right == len(actual) else ""))
