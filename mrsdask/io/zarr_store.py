"""Opening zarr stores, local or remote: the one place that turns a path or URL into a store.

Cube stores (:mod:`mrsdask.cube.store`), detector stores (:mod:`mrsdask.io.detector_store`) and
pixel tables all open their zarr (v3) hierarchies through :func:`zarr_store`, so that a URL
(``s3://…``) gets the credentials and retries of :func:`mrsdask.io.paths.storage_options_for`.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

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


#: Stores whose consolidation is put off to the end of a block (:func:`consolidated_on_leaving`):
#: path → whether a change is waiting for it.
_PUT_OFF: dict[str, bool] = {}
_PUT_OFF_LOCK = threading.Lock()


@contextmanager
def consolidated_on_leaving(path: str):
    """Within this block, :func:`consolidate` of ``path`` is done once, on leaving it (also on an
    error), instead of at each call.

    For a job that creates and completes several cube groups: the copy is only behind meanwhile
    (a group missing, or not yet complete), which a reader of the copy takes as not ready. A
    change that would make the copy wrong instead (a group it holds is being replaced or marked
    incomplete) is consolidated at once (``now=True``).
    """
    key = str(path)
    with _PUT_OFF_LOCK:
        outer = key not in _PUT_OFF
        _PUT_OFF.setdefault(key, False)
    try:
        yield
    finally:
        if outer:
            with _PUT_OFF_LOCK:
                waiting = _PUT_OFF.pop(key)
            if waiting:
                consolidate(path)


def consolidated_names(path: str) -> set[str]:
    """Names of the groups and arrays directly under the root in its consolidated metadata
    (empty if it has none)."""
    try:
        root = zarr.open_group(zarr_store(path), mode="r", zarr_format=3, use_consolidated=True)
    except (FileNotFoundError, KeyError, ValueError):
        return set()
    copy = root.metadata.consolidated_metadata
    return {name.split("/")[0] for name in copy.metadata} if copy is not None else set()


def consolidate(path: str, now: bool = False) -> None:
    """Write the store's consolidated metadata: ``xarray.open_zarr`` then opens it in one read.

    Consolidated metadata is a copy of every group's and array's metadata in the root, so it
    must be written again whenever those change: mrsdask does it each time a cube group is
    created or marked complete or incomplete, and when a build or a detector store finishes
    (within :func:`consolidated_on_leaving`, once at its end unless ``now``). mrsdask's own
    readers read the groups themselves (``consolidated=False``), never the copy.
    """
    if not now:
        with _PUT_OFF_LOCK:
            if str(path) in _PUT_OFF:
                _PUT_OFF[str(path)] = True
                return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(zarr_store(path), zarr_format=3)
