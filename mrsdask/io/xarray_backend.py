"""An xarray backend: ``xarray.open_dataset(path, engine="mrsdask")`` for MRS files and stores.

Registered as the ``mrsdask`` engine (``[project.entry-points."xarray.backends"]``), it opens

* level-2 ``cal``/``rate`` files, globs and association JSON, and detector stores, as the lazy
  detector Dataset of :func:`mrsdask.io.detector_store.open_detector_inputs`;
* ``s3d`` cube files as a lazy cube (:func:`mrsdask.io.s3d.open_s3d`);
* one cube of a cube store, named by ``group`` (:func:`mrsdask.cube.reader.open_cube`).

What each returns follows :mod:`mrsdask.datamodel.detector` or :mod:`mrsdask.datamodel.cube`;
``drop_variables`` is honoured. The engine is chosen automatically only for names it is sure
of (``*_cal.fits``, ``*_rate.fits``, ``*_s3d.fits``, ``*_asn.json``).
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

from mrsdask.errors import InputError

_LEVEL2 = ("_cal.fits", "_rate.fits", "_cal.fits.gz", "_rate.fits.gz", "_asn.json")
_CUBES = ("_s3d.fits", "_s3d.fits.gz")


class MrsdaskBackend(BackendEntrypoint):
    """``engine="mrsdask"``: MIRI MRS detector files and stores, s3d files and cube stores."""

    description = "JWST MIRI MRS cal/rate files, associations, s3d cubes and mrsdask zarr stores"
    url = "https://github.com/mrsdask/mrsdask"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "group")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for the file names this engine is sure of (not for every ``.fits`` or ``.zarr``)."""
        name = str(filename_or_obj).lower() if isinstance(filename_or_obj, (str, os.PathLike)) else ""
        return name.endswith(_LEVEL2 + _CUBES)

    def open_dataset(self, filename_or_obj: Any, *, drop_variables=None, group: str | None = None) -> xr.Dataset:
        """Open ``filename_or_obj`` lazily (see the module docstring); ``group`` names a cube of a cube store."""
        from mrsdask.cube import store as cube_store
        from mrsdask.io.s3d import is_s3d_path, open_s3d

        path = str(filename_or_obj)
        if group is not None:
            if cube_store.store_kind(path) != "cubes":
                raise InputError(f"{path}: not a cube store; 'group' names a cube of a store that 'mrsdask cube' wrote")
            from mrsdask.cube.reader import open_cube

            ds = open_cube(path, group)
        elif is_s3d_path(path) and "_s3d" in os.path.basename(path).lower():
            ds = open_s3d(path)
        else:
            if cube_store.store_kind(path) == "cubes":
                raise InputError(f"{path}: a cube store; name the cube with group= (e.g. group='ch1-short')")
            from mrsdask.io.detector_store import open_detector_inputs

            ds = open_detector_inputs([path])
        if drop_variables:
            ds = ds.drop_vars([v for v in drop_variables if v in ds.variables])
        return ds
