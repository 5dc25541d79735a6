"""Plain data that crosses from the grading sandbox to the trusted scorer.

A probe returns a dict whose values are JSON values (None, bool, int, float, str, lists,
dicts with str keys) or tensors. Tensors travel as arrays in an ``.npz`` file read with
``allow_pickle=False``, everything else as JSON: nothing the sandbox writes is ever unpickled.
"""
import io
import json
import math
import zipfile

import numpy as np
import torch

MAX_BYTES = 64 * 1024 * 1024
_TENSOR_TAG = "__tensor__"


class PlainDataError(ValueError):
    pass


def encode(data) -> tuple[str, dict[str, np.ndarray]]:
    """Split ``data`` into a JSON text and a dict of numpy arrays."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.dtype in (torch.bfloat16, torch.float16):
                t = t.float()
            key = f"a{len(arrays)}"
            arrays[key] = t.numpy().copy()
            return {_TENSOR_TAG: key}
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise PlainDataError("dict keys must be str")
            return {k: walk(v) for k, v in value.items()}
        raise PlainDataError(f"cannot export a value of type {type(value).__name__}")

    return json.dumps(walk(data)), arrays


def decode(text: str, arrays: dict[str, np.ndarray]):
    def walk(value):
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            if set(value) == {_TENSOR_TAG}:
                return torch.from_numpy(np.array(arrays[value[_TENSOR_TAG]]))
            if set(value) == {"__float__"}:
                return float(value["__float__"])
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(json.loads(text))


def roundtrip(data):
    """What the scorer would see after export: the same path in memory."""
    return decode(*encode(data))


def dump(data, path) -> None:
    text, arrays = encode(data)
    buffer = io.BytesIO()
    np.savez(buffer, __json__=np.frombuffer(text.encode(), dtype=np.uint8), **arrays)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def load(path):
    """Read what ``dump`` wrote; anything malformed raises PlainDataError."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise PlainDataError("exported data too large")
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        text = arrays.pop("__json__").tobytes().decode()
        return decode(text, arrays)
    except PlainDataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise PlainDataError(f"unreadable exported data: {e}") from None
