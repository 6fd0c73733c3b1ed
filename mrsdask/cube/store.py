"""The zarr cube store: one zarr hierarchy holding one group per cube (``ch1-short`` …).

Each cube group follows :mod:`mrsdask.datamodel.cube`; its arrays are chunked by wavelength
slab so that independent tasks write disjoint chunks. A per-slab marker array records which
slabs are on disk (an interrupted build resumes from it) and the ``mrsdask_complete``
attribute is set only after the last slab and the final clean-up. The markers live in a child
group (``<cube>/_build/slab_done``), which ``xarray.open_zarr`` of the cube group does not read,
so users see only the data model's variables.

Every chunk of a cube's arrays is written, even one holding only the fill value (zarr 3 skips
those by default: ``write_empty_chunks=False``), so a complete cube has every chunk of its
chunk grid on disk. At completion the group records that in :data:`CHUNKS_ATTR` (chunks per
array); :func:`missing_chunks` compares it with one listing of the store (a directory walk, or
an object listing on S3) without reading any data: a chunk lost after the build (deleted file,
partial copy, object-store lifecycle rule) is found when the cube is opened, and a rebuild
recomputes the slabs that hold it.
"""

from __future__ import annotations

import itertools
import os

from typing import TYPE_CHECKING

import numpy as np
import zarr

from mrsdask.io import paths, zarr_chunks
from mrsdask.io.zarr_store import COMPLETE_ATTR, consolidate, consolidated_names, open_group, zarr_store

if TYPE_CHECKING:
    import xarray as xr

SCRATCH = "_scratch"
BUILD = "_build"  # child group of a cube holding the build's own bookkeeping (slab markers)
#: Group attribute written at completion: ``{array: number of chunks}`` for every array of the
#: cube (all of them written, see the module docstring); cubes built before it have none.
CHUNKS_ATTR = "mrsdask_chunks"
#: Root attribute of a cube store (a detector store has ``convention = "mrsdask-detector/…"``).
STORE_CONVENTION = "mrsdask-cubes/1"
#: Arrays that are bookkeeping, not cube data (not in the manifest; stores written before the
#: markers moved to :data:`BUILD` hold them in the cube group itself).
BOOKKEEPING = ("slab_done",)
#: Runtime configuration of every write into a cube array.
WRITE_CONFIG = {"write_empty_chunks": True}
#: Compression of the cube planes: zstd at level 1 encodes the planes of a cube twice as fast
#: as zarr's default (level 3) for the same size (SCI 6.9x, ERR 7.4x, WMAP 24x, DQ 240x on the
#: 24-exposure multi cube); the writes are ~5 % of a build's CPU time.
CUBE_CODEC = zarr.codecs.ZstdCodec(level=1)


def group_path(root: str, name: str) -> str:
    """Path of a child group of the store root (``name`` must stay inside it: no ``..`` or ``/``)."""
    return str(root).rstrip("/") + "/" + paths.check_store_name(name)


def create_cube_group(root: str, name: str, ds: xr.Dataset, chunks: tuple[int, int, int]) -> None:
    """Write the metadata of an empty cube (no chunk data) with slab-aligned chunks.

    ``chunks``: a slab's planes, and spaxels along y and x (the whole field, or smaller chunks
    for spaxel queries); a slab writes whole chunks either way.
    """
    name = paths.check_store_name(name)
    nz = ds.sizes["wavelength"]
    nslabs = -(-nz // chunks[0])
    encoding = {name_: {"chunks": tuple(int(c) for c in chunks), "compressors": (CUBE_CODEC,)}
                for name_ in ("sci", "err", "dq", "wmap")}
    # write_empty_chunks: the coordinates are written here, the data planes by write_slab.
    ds.to_zarr(zarr_store(root), group=name, mode="w", compute=False, consolidated=False,
               zarr_format=3, encoding=encoding, write_empty_chunks=True)
    build = open_group(group_path(root, name), mode="r+").require_group(BUILD)
    build.create_array("slab_done", shape=(nslabs,), chunks=(1,), dtype=bool, fill_value=False,
                       overwrite=True)
    # An earlier cube of this name in the copy is gone: the copy is made again at once.
    consolidate(root, now=name in consolidated_names(root))


def slabs_done(root: str, name: str) -> np.ndarray:
    """Boolean per slab: already written."""
    return np.asarray(_markers(open_group(group_path(root, name), mode="r"))[:], dtype=bool)


def _markers(group: zarr.Group) -> zarr.Array:
    """The slab markers of a cube group (in its build group; older stores: in the group)."""
    return group[BUILD]["slab_done"] if BUILD in group else group["slab_done"]


def write_slab(root: str, name: str, z0: int, z1: int, slab_index: int, planes: dict[str, np.ndarray]) -> None:
    """Write planes ``z0:z1`` of a cube and mark the slab done (after the data).

    In a local store the chunks are written directly (:mod:`mrsdask.io.zarr_chunks`: zarr's
    bytes, without its event loop); in an object store, or for another layout, by zarr.
    """
    path = group_path(root, name)
    local = not paths.is_remote(path)
    left = {key: values for key, values in planes.items()
            if not (local and zarr_chunks.write_block(os.path.join(path, key), (z0, 0, 0), values))}
    if left:
        from zarr.core.sync import sync

        sync(_write_planes(path, z0, z1, left))
    done = np.ones(1, dtype=bool)
    if not (local and zarr_chunks.write_block(os.path.join(path, BUILD, "slab_done"), (slab_index,), done)):
        _markers(open_group(path, mode="r+"))[slab_index] = True


async def _write_planes(path: str, z0: int, z1: int, planes: dict[str, np.ndarray]) -> None:
    """Write the planes of every array at once: their chunks are encoded and stored side by side
    by zarr's I/O threads, and the calling task waits for the slowest array, not for their sum."""
    import asyncio

    import zarr.api.asynchronous as azarr

    group = await azarr.open_group(store=zarr_store(path), mode="r+", zarr_format=3, use_consolidated=False)
    arrays = await asyncio.gather(*(group.getitem(key) for key in planes))
    await asyncio.gather(*(array.with_config(WRITE_CONFIG).setitem(slice(z0, z1), values)
                           for array, values in zip(arrays, planes.values())))


def mark_slabs(root: str, name: str, slabs, value: bool) -> None:
    """Set the done markers of some slabs (``False``: recompute them on the next build)."""
    group = open_group(group_path(root, name), mode="r+")
    markers = _markers(group)
    for s in slabs:
        markers[int(s)] = value


def set_complete(root: str, name: str, value: bool = True) -> None:
    """Mark a cube group complete (recording its chunk manifest), or not."""
    group = open_group(group_path(root, name), mode="r+")
    if not value:
        group.attrs[COMPLETE_ATTR] = False
        consolidate(root, now=True)  # the copy must not say complete
        return
    manifest = {key: _n_chunks(group[key]) for key in sorted(group.array_keys()) if key not in BOOKKEEPING}
    group.attrs.update({CHUNKS_ATTR: manifest})
    absent = _absent_chunks(root, name, group, manifest)
    if absent:  # written with write_empty_chunks: a gap here is a failed write, not an empty chunk
        raise OSError(f"{group_path(root, name)}: chunks missing right after the build: {_describe(absent, group)}")
    group.attrs[COMPLETE_ATTR] = True
    consolidate(root)


def _n_chunks(array) -> int:
    return int(np.prod([-(-n // c) for n, c in zip(array.shape, array.chunks)], dtype=np.int64))


def _chunk_keys(array) -> list[tuple[tuple[int, ...], str]]:
    """Every chunk index of an array with its store key (``c/3/0/0``)."""
    grid = [range(-(-n // c)) for n, c in zip(array.shape, array.chunks)]
    encode = array.metadata.chunk_key_encoding.encode_chunk_key
    return [(idx, encode(idx)) for idx in itertools.product(*grid)]


def _listed_keys(path: str) -> set[str]:
    """Paths of every object under a group, relative to it (one listing, no data read)."""
    fs = paths.filesystem(path)
    base = str(path).split("://", 1)[1] if paths.is_remote(path) else os.path.abspath(os.path.expanduser(str(path)))
    base = base.rstrip("/")
    found = fs.find(base)
    if not paths.is_remote(path):
        found = [os.path.abspath(p) for p in found]
    return {p[len(base) + 1:].replace(os.sep, "/") for p in found if p.startswith(base + "/")}


def _absent_chunks(root: str, name: str, group, manifest: dict) -> dict[str, list[tuple[int, ...]]]:
    listed = _listed_keys(group_path(root, name))
    absent = {}
    for key in manifest:
        if key not in group:
            absent[key] = [()]
            continue
        gone = [idx for idx, ck in _chunk_keys(group[key]) if f"{key}/{ck}" not in listed]
        if gone or _n_chunks(group[key]) != manifest[key]:
            absent[key] = gone or [()]
    return absent


def missing_chunks(root: str, name: str) -> dict[str, list[tuple[int, ...]]]:
    """Chunks of a cube's arrays that its manifest expects and the store does not hold.

    Returns
    -------
    dict
        ``{array: [chunk index, …]}``; empty when the cube is whole, or has no manifest (an
        unfinished cube, or one built before manifests were recorded). An array absent
        altogether, or whose chunk grid no longer matches the manifest, is listed with ``[()]``.
    """
    group = open_group(group_path(root, name), mode="r")
    manifest = group.attrs.get(CHUNKS_ATTR)
    if not manifest:
        return {}
    return _absent_chunks(root, name, group, dict(manifest))


def describe_missing(root: str, name: str, absent: dict) -> str:
    """The missing chunks in words: ``sci planes 16-23, 40-47; wmap planes 16-23``."""
    return _describe(absent, open_group(group_path(root, name), mode="r"))


def _describe(absent: dict, group) -> str:
    parts = []
    for key, chunks in absent.items():
        if chunks == [()] or key not in group:
            parts.append(f"{key} (whole array)")
            continue
        array = group[key]
        if array.ndim == 3 and array.chunks[1:] == array.shape[1:]:
            step = array.chunks[0]
            spans = [f"{i[0] * step}-{min(array.shape[0], (i[0] + 1) * step) - 1}" for i in chunks[:6]]
            more = f" and {len(chunks) - 6} more" if len(chunks) > 6 else ""
            parts.append(f"{key} planes {', '.join(spans)}{more}")
        else:
            parts.append(f"{key} chunk(s) {', '.join(str(i) for i in chunks[:6])}")
    return "; ".join(parts)


def slabs_on_disk(root: str, name: str, n_slabs: int) -> np.ndarray:
    """Boolean per slab: every cube-data chunk of the slab is in the store (one listing).

    Only for cubes whose slabs were written with every chunk (a manifest, or a build in
    progress by this version); see :func:`missing_chunks`.
    """
    group = open_group(group_path(root, name), mode="r")
    listed = _listed_keys(group_path(root, name))
    ok = np.ones(n_slabs, dtype=bool)
    for key in ("sci", "err", "dq", "wmap"):
        for idx, ck in _chunk_keys(group[key]):
            if f"{key}/{ck}" not in listed and idx[0] < n_slabs:
                ok[idx[0]] = False
    return ok


def store_kind(root: str) -> str | None:
    """``"detector"``, ``"cubes"`` or ``"other"`` for an existing zarr store; None if there is none."""
    if not paths.exists(str(root).rstrip("/") + "/zarr.json"):
        return None
    group = open_group(root, mode="r")
    convention = str(group.attrs.get("convention", ""))
    if convention.startswith("mrsdask-detector"):
        return "detector"
    if convention == STORE_CONVENTION:
        return "cubes"
    keys = list(group.group_keys())
    if SCRATCH in keys or any(str(group[k].attrs.get("convention", "")).startswith("mrsdask-cube") for k in keys):
        return "cubes"  # built before the root was labelled
    return "other" if (keys or list(group.array_keys())) else None


def cube_exists(root: str, name: str) -> bool:
    """Whether a cube group exists in the store."""
    return paths.exists(group_path(root, name) + "/zarr.json")
