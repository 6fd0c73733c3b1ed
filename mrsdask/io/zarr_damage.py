"""Chunks that do not decode, named: a zarr codec pipeline that says which file is damaged.

zarr reports a chunk file that is truncated or overwritten with the bare error of its codec
("Zstd decompression error", or a reshape that fails), naming neither the store nor the chunk.
Arrays opened within :func:`naming_damaged_chunks` read through :class:`ChunkNamingPipeline`
instead: the same reads, and where a batch of chunks fails to decode, each of its chunks is
decoded again on its own and the ones that fail are named in a
:class:`~mrsdask.errors.DamagedStoreError`, with the repair. Any other failure (the store
unreachable, a permission) is raised as it was.

The pipeline travels with a pickled array (to Dask workers), so a worker's error names the
chunk too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import zarr
from zarr.core.codec_pipeline import BatchedCodecPipeline
from zarr.registry import register_pipeline

from mrsdask.errors import DamagedStoreError

#: What to do about a damaged chunk of a cube store (also :class:`mrsdask.extract.stored.PlaneFiles`').
CUBE_REPAIR = "remove that file and run the same 'mrsdask cube' command again to recompute it"


def chunk_location(byte_getter) -> str:
    """A chunk's file path (local store) or URL-like name (any other store)."""
    store, path = getattr(byte_getter, "store", None), getattr(byte_getter, "path", "")
    root = getattr(store, "root", None)
    if type(store).__name__ == "LocalStore" and root is not None:
        return os.path.join(str(root), *path.split("/"))
    return str(byte_getter)


class ChunkNamingPipeline(BatchedCodecPipeline):
    """zarr's batched codec pipeline, whose read failures name the chunks that do not decode."""

    async def read_batch(self, batch_info: Iterable, out, drop_axes: tuple[int, ...] = ()) -> None:
        batch_info = list(batch_info)
        try:
            await super().read_batch(batch_info, out, drop_axes)
        except Exception as exc:
            damaged = await self.undecodable(batch_info)
            if not damaged:
                raise
            raise DamagedStoreError(
                f"{', '.join(location for location, _ in damaged)}: chunk cannot be decoded ({damaged[0][1]}); "
                f"the store is damaged: {CUBE_REPAIR}") from exc

    async def undecodable(self, batch_info: list) -> list[tuple[str, str]]:
        """The chunks of a batch that are stored but do not decode to their shape: (location, why)."""
        damaged = []
        for byte_getter, chunk_spec, *_ in batch_info:
            try:
                data = await byte_getter.get(prototype=chunk_spec.prototype)
            except Exception:  # not readable at all: not a damaged chunk (the original error says it)
                continue
            if data is None:  # never written: its fill value
                continue
            try:
                (chunk,) = await self.decode_batch([(data, chunk_spec)])
                if chunk is None or tuple(chunk.shape) != tuple(chunk_spec.shape):
                    raise ValueError(f"decodes to shape {getattr(chunk, 'shape', None)}, not {chunk_spec.shape}")
            except Exception as exc:
                damaged.append((chunk_location(byte_getter), f"{type(exc).__name__}: {exc}"))
        return damaged


register_pipeline(ChunkNamingPipeline)
_PIPELINE_PATH = f"{ChunkNamingPipeline.__module__}.{ChunkNamingPipeline.__qualname__}"


@contextmanager
def naming_damaged_chunks() -> Iterator[None]:
    """Arrays opened within read through :class:`ChunkNamingPipeline` (for as long as they live)."""
    with zarr.config.set({"codec_pipeline.path": _PIPELINE_PATH}):
        yield
