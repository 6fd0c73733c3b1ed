"""Opening zarr stores, local or remote: the one place that turns a path or URL into a store.

Cube stores (:mod:`mrsdask.cube.store`), detector stores (:mod:`mrsdask.io.detector_store`) and
pixel tables all open their zarr (v3) hierarchies through :func:`zarr_store`, so that a URL
(``s3://…``) gets the credentials and retries of :func:`mrsdask.io.paths.storage_options_for`.
"""

from __future__ import annotations

import warnings

import zarr

from mrsdask.io import paths

#: Attribute of a store's root (detector store) or cube group (cube store), true only once
#: everything in it is written; readers refuse what lacks it.
COMPLETE_ATTR = "mrsdask_complete"


def zarr_store(path: str):
    """What ``zarr`` and ``xarray.open_zarr`` take for ``path``: the path itself, or an fsspec store for a URL."""
    if paths.is_remote(path):
        return zarr.storage.FsspecStore.from_url(path, storage_options=paths.storage_options_for(path))
    return str(path)


def open_group(path: str, mode: str = "r") -> zarr.Group:
    """Open a zarr (v3) group at a local path or URL.

    Its members are read from the store itself, never from consolidated metadata
    (:func:`consolidate`): that copy lags behind a build in progress.
    """
    return zarr.open_group(zarr_store(path), mode=mode, zarr_format=3, use_consolidated=False)


def consolidate(path: str) -> None:
    """Write the store's consolidated metadata: ``xarray.open_zarr`` then opens it in one read.

    Consolidated metadata is a copy of every group's and array's metadata in the root, so it
    must be written again whenever those change: mrsdask does it each time a cube group is
    created or marked complete or incomplete, and when a build or a detector store finishes.
    mrsdask's own readers read the groups themselves (``consolidated=False``), never the copy.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(zarr_store(path), zarr_format=3)
