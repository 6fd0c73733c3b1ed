"""Whole chunks of a zarr v3 array in a local store, written directly: the bytes zarr writes.

zarr writes a chunk through its asyncio pipeline (a coroutine per chunk and codec, encoding
handed to a thread, the event loop's Python holding the GIL meanwhile): on the 6-exposure
multi cube ~1 s of GIL time for 150 chunks, taken from the tasks that compute the next slabs.
For the layout mrsdask gives its cube arrays (regular chunks, the default ``/`` chunk keys,
``bytes`` then ``zstd``, no storage transformer) :func:`write_block` encodes each chunk with
the same codec (numcodecs' Zstd, which releases the GIL) and stores it as zarr's
``LocalStore`` does: into a temporary file renamed over the chunk's key. Edge chunks are
padded with the array's fill value, as zarr stores them. Any other layout or store is left to
zarr (the function says so and writes nothing).
"""

from __future__ import annotations

import itertools
import json
import os
import uuid

import numpy as np

#: zarr v3 data types :func:`write_block` writes, and the fill values it understands for them.
_DTYPES = {"float32": np.float32, "float64": np.float64, "uint32": np.uint32, "int32": np.int32,
           "uint8": np.uint8, "bool": np.bool_}
_SPECIAL_FLOATS = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


def write_block(array_path: str, start: tuple[int, ...], block: np.ndarray) -> bool:
    """Write ``block`` at ``start`` of the zarr v3 array in local folder ``array_path``, if the
    block covers whole chunks (or reaches the array's end) and the layout is the plain one.

    Returns
    -------
    bool
        True if written; False if nothing was written (another layout, a block not on chunk
        boundaries): write it with zarr instead.
    """
    layout = _plain_layout(array_path)
    if layout is None:
        return False
    shape, chunks, dtype, fill, codec = layout
    block = np.asarray(block)
    if block.ndim != len(shape) or block.dtype != dtype:
        return False
    stop = [s + n for s, n in zip(start, block.shape)]
    if any(s % c or (e % c and e != n) or e > n for s, e, c, n in zip(start, stop, chunks, shape)):
        return False
    ranges = [range(s // c, -(-e // c)) for s, e, c in zip(start, stop, chunks)]
    for index in itertools.product(*ranges):
        lo = [i * c - s for i, c, s in zip(index, chunks, start)]
        part = block[tuple(slice(a, a + c) for a, c in zip(lo, chunks))]
        if part.shape != tuple(chunks):  # an edge chunk: stored whole, padded with the fill value
            full = np.full(chunks, fill, dtype=dtype)
            full[tuple(slice(0, n) for n in part.shape)] = part
            part = full
        data = codec.encode(np.ascontiguousarray(part, dtype=dtype.newbyteorder("<")))
        _put(os.path.join(array_path, "c", *map(str, index)), data)
    return True


def _plain_layout(array_path: str):
    """(shape, chunks, dtype, fill value, zstd codec) of a plainly laid out array, else None."""
    try:
        with open(os.path.join(array_path, "zarr.json"), "rb") as fobj:
            meta = json.load(fobj)
    except (OSError, ValueError):
        return None
    codecs = meta.get("codecs", [])
    grid, keys = meta.get("chunk_grid", {}), meta.get("chunk_key_encoding", {})
    if (meta.get("zarr_format") != 3 or meta.get("node_type") != "array" or meta.get("storage_transformers")
            or grid.get("name") != "regular" or keys.get("name") != "default"
            or keys.get("configuration", {}).get("separator", "/") != "/"
            or meta.get("data_type") not in _DTYPES or len(codecs) != 2
            or codecs[0].get("name") != "bytes" or codecs[1].get("name") != "zstd"
            or codecs[0].get("configuration", {}).get("endian", "little") != "little"):
        return None
    dtype = np.dtype(_DTYPES[meta["data_type"]])
    fill = meta.get("fill_value")
    if isinstance(fill, str):
        if fill not in _SPECIAL_FLOATS or dtype.kind != "f":
            return None  # e.g. a hex bit pattern: zarr knows best
        fill = _SPECIAL_FLOATS[fill]
    if not isinstance(fill, (bool, int, float)):
        return None
    from numcodecs import Zstd

    config = codecs[1].get("configuration", {})
    codec = Zstd(level=int(config.get("level", 0)), checksum=bool(config.get("checksum", False)))
    return tuple(meta["shape"]), tuple(grid["configuration"]["chunk_shape"]), dtype, fill, codec


def _put(path: str, data) -> None:
    """Store ``data`` at ``path`` as zarr's LocalStore does: a temporary file renamed over it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, "wb") as fobj:
            fobj.write(memoryview(data).cast("B"))
        os.replace(partial, path)
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise
