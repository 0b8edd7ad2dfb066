"""The v2 datatypes: their numpy dtypes, and the names numpy arrays and model signatures map to.

Pure data and lookups; :mod:`shipyard.serving.tensors` uses them to decode and encode tensors.
"""

from __future__ import annotations

import numpy as np

from shipyard.errors import InvalidInput

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
"""Every v2 datatype this codec speaks, with the numpy dtype its tensors decode to."""

_BY_KIND_SIZE = {(dt.kind, dt.itemsize): name for name, dt in DATATYPES.items() if name != "BYTES"}
_SIGNATURE_DTYPES = {
    **{f"{sign}int{bits}": f"{sign.upper()}INT{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
    **{f"float{bits}": f"FP{bits}" for bits in (16, 32, 64)},
    "bool": "BOOL",
    "string": "BYTES",
    "object": "BYTES",
    "datetime64[ns]": "BYTES",  # travels as ISO 8601 strings
}


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype of a numpy array: str, bytes and object arrays are ``BYTES``.

    Raises:
        InvalidInput: a dtype the protocol cannot carry (complex, datetime64, float128, …), named.
    """
    dtype = array.dtype
    if dtype.kind in "OSU":
        return "BYTES"
    name = _BY_KIND_SIZE.get((dtype.kind, dtype.itemsize))
    if name is None:
        raise InvalidInput(
            f"dtype {dtype} has no v2 datatype; use bool, (u)int8-64, float16/32/64, str, bytes or object"
        )
    return name


def datatype_for(dtype_name: str) -> str:
    """The v2 datatype for a model-signature dtype name (``float32`` → ``FP32``; string/object → ``BYTES``).

    Raises:
        InvalidInput: an unknown dtype name.
    """
    try:
        return _SIGNATURE_DTYPES[dtype_name]
    except KeyError:
        known = ", ".join(_SIGNATURE_DTYPES)
        raise InvalidInput(f"signature dtype {dtype_name!r} has no v2 datatype; known: {known}") from None
