"""Reading a finished cube from a cube store (no cube-building code: no numba kernels).

:func:`open_cube` opens one cube group lazily as an xarray Dataset
(:mod:`mrsdask.datamodel.cube`), refusing a cube whose build did not finish or whose store lost
chunks since (:func:`check_cube_whole`); a chunk that is there but does not decode is named when
it is read (:mod:`mrsdask.io.zarr_damage`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mrsdask.cube import store as cube_store
from mrsdask.errors import DamagedStoreError, IncompleteStoreError, InputError
from mrsdask.io.zarr_damage import naming_damaged_chunks
from mrsdask.io.zarr_store import COMPLETE_ATTR, zarr_store

if TYPE_CHECKING:
    import xarray as xr


def check_cube_whole(root: str, name: str) -> None:
    """Refuse a complete cube whose store lost chunks since it was built (one listing, no data read).

    Raises
    ------
    DamagedStoreError
        Naming the cube, the arrays and planes missing, and the repair.
    """
    absent = cube_store.missing_chunks(root, name)
    if absent:
        raise DamagedStoreError(
            f"{cube_store.group_path(root, name)}: cube is damaged, chunks missing on disk: "
            f"{cube_store.describe_missing(root, name, absent)}; run the same 'mrsdask cube' command "
            "again to recompute them")


def open_cube(root: str, name: str, dask: bool = True) -> xr.Dataset:
    """Open a finished cube lazily (``xarray.open_zarr``), refusing an unfinished one.

    ``dask``: Dask arrays with the store's chunks (the default), else xarray's lazily indexed
    arrays, without Dask: a whole-cube stream, such as the s3d export, then reads each block
    straight from zarr (half the CPU time of a Dask read).
    """
    import xarray as xr

    if not cube_store.cube_exists(root, name):
        raise InputError(f"{root}: holds no cube {name!r}")
    # Not chunks="auto": that merges the store's chunks into ~128 MiB Dask chunks (an
    # extraction of the 24-exposure multi cube then held 2.6 GB instead of 0.55).
    no_dask = {} if dask else {"chunks": None}
    with naming_damaged_chunks():  # a chunk file that does not decode is named, with the repair
        ds = xr.open_zarr(zarr_store(root), group=name, consolidated=False, zarr_format=3, **no_dask)
    if not ds.attrs.get(COMPLETE_ATTR):
        raise IncompleteStoreError(f"{root}/{name}: cube is incomplete (interrupted build); run the build again to resume")
    check_cube_whole(root, name)
    return ds.drop_vars("slab_done", errors="ignore")  # stores written before the markers moved to _build/


def output_prefix(store: str, names: list[str], prefix: str | None = None, *, first=None) -> str:
    """The start of the file names of a store's cubes: ``prefix`` if given, else the cubes' product.

    The product name is the one the cubes were built under (attribute ``product_name``: an
    association's product name, as the official ``Spec3Pipeline`` names its s3d and x1d files,
    or the first science file's name without its suffix); ``"mrsdask"`` for older stores.
    ``first``: the first cube, opened already (else it is opened): anything with its ``attrs``.
    """
    if prefix:
        return prefix
    if names:
        from mrsdask.datamodel.detector import PRODUCT_ATTR

        name = (open_cube(store, names[0]) if first is None else first).attrs.get(PRODUCT_ATTR)
        if name:
            return str(name)
    return "mrsdask"
