"""Triton's binary tensor data extension: raw tensor bytes that follow the JSON header of a v2 REST message.

A fixed-size datatype travels as its elements' little-endian bytes in row-major order (``FP32`` with shape
``[2, 3]`` is 24 bytes). A ``BYTES`` element travels as a 4-byte little-endian length followed by that many
bytes, elements back to back in row-major order. Pure logic, no I/O; :mod:`shipyard.serving.tensors` says
where each tensor's bytes start and how many there are (``parameters.binary_data_size``).
"""

from __future__ import annotations

import struct

import numpy as np

from shipyard.errors import InvalidInput

_LENGTH = struct.Struct("<I")


def unpack_fixed(buffer: memoryview, dtype: np.dtype, count: int, where: str) -> np.ndarray:
    """Reads ``count`` elements of a fixed-size ``dtype`` from exactly ``buffer``.

    Args:
        buffer: the tensor's bytes, exactly ``binary_data_size`` long.
        dtype: the numpy dtype of the datatype (native byte order; the wire is little-endian).
        count: the element count its shape holds.
        where: names the tensor in error messages (``"input 'x'"``).

    Returns:
        A flat array that owns its memory (a copy, so it does not pin the request body) in native order.

    Raises:
        InvalidInput: the size is not ``count * itemsize``, or a BOOL byte is neither 0 nor 1.
    """
    expected = count * dtype.itemsize
    if len(buffer) != expected:
        raise InvalidInput(
            f"{where}: binary_data_size {len(buffer)} does not match its shape, which needs {expected} bytes "
            f"({count} elements of {dtype.itemsize} bytes)"
        )
    if dtype.kind == "b":
        raw = np.frombuffer(buffer, dtype=np.uint8)
        if raw.size and int(raw.max()) > 1:
            index = int(np.argmax(raw > 1))
            raise InvalidInput(
                f"{where}: BOOL element {index} is byte {int(raw[index])}; BOOL bytes must be 0 or 1"
            )
        return raw.astype(np.bool_)
    return np.frombuffer(buffer, dtype=dtype.newbyteorder("<")).astype(dtype)


def unpack_bytes(buffer: memoryview, count: int, where: str) -> np.ndarray:
    """Reads ``count`` length-prefixed ``BYTES`` elements that fill exactly ``buffer``.

    Args:
        buffer: the tensor's bytes, exactly ``binary_data_size`` long.
        count: the element count its shape holds.
        where: names the tensor in error messages.

    Returns:
        A flat object array of Python ``bytes``.

    Raises:
        InvalidInput: a length prefix or element runs past the buffer, or bytes are left over.
    """
    size = len(buffer)
    if count * _LENGTH.size > size:  # checked before allocating: each element needs at least its prefix
        raise InvalidInput(
            f"{where}: binary_data_size {size} is too small for {count} BYTES elements "
            f"(each needs a {_LENGTH.size}-byte length prefix)"
        )
    out = np.empty(count, dtype=object)
    offset = 0
    for index in range(count):
        if offset + _LENGTH.size > size:
            raise InvalidInput(f"{where}: binary BYTES data ends inside the length prefix of element {index}")
        (length,) = _LENGTH.unpack_from(buffer, offset)
        offset += _LENGTH.size
        if offset + length > size:
            raise InvalidInput(
                f"{where}: BYTES element {index} declares {length} bytes but only {size - offset} remain "
                f"of binary_data_size {size}"
            )
        out[index] = bytes(buffer[offset : offset + length])
        offset += length
    if offset != size:
        raise InvalidInput(
            f"{where}: binary BYTES data has {size - offset} bytes left over after the {count} elements "
            "its shape holds"
        )
    return out


def pack_fixed(array: np.ndarray, dtype: np.dtype) -> bytes:
    """The little-endian, row-major bytes of ``array`` as ``dtype``."""
    return np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes()


def pack_bytes(flat: np.ndarray, where: str) -> bytes:
    """A flat BYTES array's elements (``bytes``, or ``str`` as UTF-8), each length-prefixed, back to back.

    Raises:
        InvalidInput: an element that is neither str nor bytes.
    """
    parts: list[bytes] = []
    for index, item in enumerate(flat.tolist()):
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, bytes):
            raise InvalidInput(f"{where}: BYTES element {index} is {type(item).__name__}, not str or bytes")
        parts += (_LENGTH.pack(len(item)), item)
    return b"".join(parts)
