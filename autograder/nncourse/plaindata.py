"""Plain data that crosses from the grading sandbox to the trusted scorer.

A probe returns a dict whose values are JSON values (None, bool, int, float, str, lists,
dicts with str keys) or tensors. Tensors travel as arrays in an ``.npz`` file read with
``allow_pickle=False``, everything else as JSON: nothing the sandbox writes is ever unpickled.
"""

import io
import json
import math
import zipfile
from typing import Any

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


def dumps(data) -> bytes:
    text, arrays = encode(data)
    # Any: numpy's stub would take **named as possibly filling savez's bool allow_pickle
    named: dict[str, Any] = arrays
    buffer = io.BytesIO()
    np.savez(buffer, __json__=np.frombuffer(text.encode(), dtype=np.uint8), **named)
    return buffer.getvalue()


# Limits on what the grader accepts from the sandbox: exports are untrusted bytes.
MAX_ARRAYS = 4096
MAX_ELEMENTS = 16 * 1024 * 1024  # over all arrays of one export
MAX_DIMS = 8
_ALLOWED_KINDS = "biuf"  # bool, int, unsigned, float: no objects, strings or voids


def loads(raw: bytes):
    """Read what ``dumps`` wrote, within the limits above; anything else raises PlainDataError.

    ``np.savez`` stores arrays uncompressed, so a zip member whose stored size differs from its
    declared size is refused before it is read (no decompression bombs), and ``allow_pickle=False``
    refuses object arrays.
    """
    if len(raw) > MAX_BYTES:
        raise PlainDataError(f"exported data too large ({len(raw)} bytes, limit {MAX_BYTES})")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS + 1:
                raise PlainDataError(f"exported data holds too many arrays ({len(members)})")
            for member in members:
                if member.compress_type != zipfile.ZIP_STORED or member.file_size > MAX_BYTES:
                    raise PlainDataError(f"exported array {member.filename!r} is compressed or too large")
        elements = 0
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {}
            for key in npz.files:
                array = npz[key]
                if array.dtype.kind not in _ALLOWED_KINDS or array.ndim > MAX_DIMS:
                    raise PlainDataError(f"exported array {key!r} has an unexpected type {array.dtype}/{array.ndim}-d")
                elements += array.size
                if elements > MAX_ELEMENTS:
                    raise PlainDataError("exported data holds too many numbers")
                arrays[key] = array
        text = arrays.pop("__json__").tobytes().decode()
        if len(text) > MAX_BYTES // 4:
            raise PlainDataError("exported JSON too large")
        return decode(text, arrays)
    except PlainDataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RecursionError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise PlainDataError(f"unreadable exported data: {e}") from None
