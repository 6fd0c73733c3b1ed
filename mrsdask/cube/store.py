"""The zarr cube store: one zarr hierarchy holding one group per cube (``ch1-short`` …).

Each cube group follows :mod:`mrsdask.datamodel.cube`; its arrays are chunked by wavelength
slab so that independent tasks write disjoint chunks. A per-slab marker array records which
slabs are on disk (an interrupted build resumes from it) and the ``mrsdask_complete``
attribute is set only after the last slab and the final clean-up. The markers live in a child
group (``<cube>/_build/slab_done``), which ``xarray.open_zarr`` of the cube group does not read,
so users see only the data model's variables.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

from mrsdask.io import paths

COMPLETE_ATTR = "mrsdask_complete"
SCRATCH = "_scratch"
BUILD = "_build"  # child group of a cube holding the build's own bookkeeping (slab markers)


def _store(path: str):
    if paths.is_remote(path):
        return zarr.storage.FsspecStore.from_url(path, storage_options=paths.storage_options_for(path))
    return str(path)


def open_group(path: str, mode: str = "r") -> zarr.Group:
    """Open a zarr (v3) group at a local path or URL."""
    return zarr.open_group(_store(path), mode=mode, zarr_format=3)


def group_path(root: str, name: str) -> str:
    """Path of a child group of the store root (``name`` must stay inside it: no ``..`` or ``/``)."""
    return str(root).rstrip("/") + "/" + paths.check_store_name(name)


def create_cube_group(root: str, name: str, ds: xr.Dataset, slab_planes: int) -> None:
    """Write the metadata of an empty cube (no chunk data) with slab-aligned chunks."""
    name = paths.check_store_name(name)
    nz = ds.sizes["wavelength"]
    nslabs = -(-nz // slab_planes)
    encoding = {
        name_: {"chunks": (slab_planes, ds.sizes["y"], ds.sizes["x"])}
        for name_ in ("sci", "err", "dq", "wmap")
    }
    ds.to_zarr(_store(root), group=name, mode="w", compute=False, consolidated=False,
               zarr_format=3, encoding=encoding)
    build = open_group(group_path(root, name), mode="r+").require_group(BUILD)
    build.create_array("slab_done", shape=(nslabs,), chunks=(1,), dtype=bool, fill_value=False,
                       overwrite=True)


def slabs_done(root: str, name: str) -> np.ndarray:
    """Boolean per slab: already written."""
    return np.asarray(_markers(open_group(group_path(root, name), mode="r"))[:], dtype=bool)


def _markers(group: zarr.Group) -> zarr.Array:
    # Stores written before the markers moved to the child group keep them beside the data.
    return group[BUILD]["slab_done"] if BUILD in group else group["slab_done"]


def write_slab(root: str, name: str, z0: int, z1: int, slab_index: int, planes: dict[str, np.ndarray]) -> None:
    """Write planes ``z0:z1`` of a cube and mark the slab done (after the data)."""
    group = open_group(group_path(root, name), mode="r+")
    for key, values in planes.items():
        group[key][z0:z1] = values
    _markers(group)[slab_index] = True


def set_complete(root: str, name: str, value: bool = True) -> None:
    """Mark a cube group complete (or not)."""
    open_group(group_path(root, name), mode="r+").attrs[COMPLETE_ATTR] = value


def cube_exists(root: str, name: str) -> bool:
    """Whether a cube group exists in the store."""
    return paths.exists(group_path(root, name) + "/zarr.json")
