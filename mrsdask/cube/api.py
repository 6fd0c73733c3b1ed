"""``mrsdask.cube.build``: the Python entry point of cube building (exported by :mod:`mrsdask.cube`).

::

    import mrsdask.cube

    cubes = mrsdask.cube.build("obs_asn.json", "cubes.zarr", output_type="channel", weighting="emsm")
    cubes["ch1-short-medium-long"]["sci"]        # lazy (xarray over the zarr store)

    # A Dataset changed in memory is built from its own arrays (nothing written in between):
    import mrsdask.background

    lazy = mrsdask.background.subtract("obs_asn.json", method="pixel")
    cubes = mrsdask.cube.build(lazy, "bkg_cubes.zarr", channels=(1,))
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import xarray as xr

from mrsdask.cube.plan import CubeRequest
from mrsdask.phases import phase
from mrsdask.scheduling import Scheduling, choose_scheduler, scheduler_block

log = logging.getLogger("mrsdask.cube")


def open_build_inputs(inputs_or_dataset: Any, cubepar: Any = None):
    """The cube parameters (``cubepar``: a CUBEPAR file, CubePars or None) and the detector Dataset.

    Parameters
    ----------
    inputs_or_dataset : str, list of str or xarray.Dataset
        cal files, globs, association JSON or one detector store (opened lazily), or a
        detector Dataset (returned as it is).
    cubepar : str, CubePars or None
        Official CUBEPAR reference file, parameters already read, or None for the shipped
        FLT-9 values.

    Returns
    -------
    (CubePars, xarray.Dataset)
    """
    from mrsdask.cube.cubepars import CubePars, default_cubepars, read_cubepar

    if isinstance(cubepar, CubePars):
        pars = cubepar
    else:
        pars = read_cubepar(str(cubepar)) if cubepar else default_cubepars()
    if isinstance(inputs_or_dataset, xr.Dataset):
        return pars, inputs_or_dataset
    from mrsdask.io.detector_store import open_detector_inputs

    items = [inputs_or_dataset] if isinstance(inputs_or_dataset, (str, os.PathLike)) else list(inputs_or_dataset)
    return pars, open_detector_inputs([str(i) for i in items])


def build(inputs_or_dataset: Any, store: str, request: CubeRequest | None = None, *, cubepar: Any = None,
          overwrite: bool = False, keep_scratch: bool = False, scheduling: Scheduling | None = None,
          announce: Callable[[str], None] | None = None, s3d: str | None = None, s3d_prefix: str | None = None,
          **options: Any) -> dict[str, xr.Dataset]:
    """Build cubes into a zarr store, as ``mrsdask cube`` does; the cubes, opened lazily.

    Parameters
    ----------
    inputs_or_dataset : str, list of str or xarray.Dataset
        cal files, globs, an association JSON, one detector store, or a detector Dataset:
        opened from files or a store (:func:`mrsdask.io.detector_store.open_detector_inputs`),
        or changed in memory (e.g. by :func:`mrsdask.background.subtract` without ``output``,
        a selection, ``ds.assign(sci=...)``). The tasks read the files or the store while the
        Dataset's planes and geometry are those opened from them; otherwise each exposure's
        pixel-table task takes the Dataset's own arrays as its Dask inputs (no scratch store
        is written): its planes, and its per-pixel geometry variables unless they are still
        the lazy geometry of the exposure's FITS file (``path``), which is then computed from
        that file's gwcs, faster (:mod:`mrsdask.io.sources`). In-memory data are stamped by
        their Dask token: a resumed build whose data changed recomputes its pixel tables.
    store : str
        Cube store (path or URL); one group per cube. A build interrupted there resumes.
    request : CubeRequest, optional
        The official ``CubeBuildStep`` parameters; keyword ``options`` change its fields.
    cubepar : str or CubePars, optional
        Official CUBEPAR reference file (default: the shipped FLT-9 values).
    overwrite : bool
        Rebuild cubes already complete in the store.
    keep_scratch : bool
        Keep the pixel tables after the build.
    scheduling : Scheduling, optional
        Where the work runs, and progress bars (:class:`~mrsdask.scheduling.Scheduling`; its fields also as keywords).
        By default a small job runs in this process, else on the current client or a new local cluster.
    announce : callable, optional
        Called with the line naming the scheduler and a note on background exposures left
        out (default: logged on ``mrsdask.cube``).
    s3d : str, optional
        Folder (or ``s3://`` prefix) to write each cube into as an official ``s3d`` FITS file
        too, ``{s3d_prefix}_{name}_s3d.fits``: a new cube's file is written as its slabs are
        (:mod:`mrsdask.cube.s3d_sink`), no store read-back. An existing file is replaced only if
        mrsdask wrote it, or with ``overwrite``; checked before any work.
    s3d_prefix : str, optional
        Start of the s3d file names (default the product name of the inputs).
    **options
        Fields of :class:`~mrsdask.cube.plan.CubeRequest` by name (``output_type="multi"``,
        ``channels=(1, 2)``) or by their official names, valued as in a pipeline file
        (``channel=["1", "2"]``, ``band=["short"]``).

    Returns
    -------
    dict of str to xarray.Dataset
        Cube name → the cube, opened lazily from the store (:func:`mrsdask.cube.builder.open_cube`).

    Raises
    ------
    ParameterError
        For an unknown option (naming the closest one) or a bad value, before any work.
    InputError
        For inputs or a store that cannot be used, before any cluster starts (e.g. an
        in-memory exposure whose gwcs cannot be reached: no ``wcs_asdf``, its file gone).
    """
    with phase("imports"):  # the builder's modules (numba kernels, FITS writers): ~0.2 s, more with a cold disk cache
        from mrsdask.cube.builder import build_cubes, check_build, open_cube
    from mrsdask.options import request_from

    scheduling = Scheduling.pop_from(options, scheduling, "mrsdask.cube.build")  # its values checked
    request = request_from(CubeRequest, request, "mrsdask.cube.build", **options)
    with phase("open inputs"):
        pars, ds = open_build_inputs(inputs_or_dataset, cubepar)
    with phase("checks"):
        chosen = choose_scheduler(inputs_or_dataset, scheduling, channels=request.channels, cube=True)
        # Every check that needs no cluster runs before one starts.
        check_build(ds, store, request, pars, overwrite, scheduling.planned_budget(chosen))
    say = announce or log.info
    n_bkg = int((ds["exptype"].values == "background").sum()) if "exptype" in ds.coords else 0
    if n_bkg:
        say(f"{n_bkg} background exposure(s) in the input are not put in cubes")
    with contextlib.ExitStack() as stack:
        with phase("scheduler start"):
            stack.enter_context(scheduler_block(chosen, scheduling, announce=say, wait=False))
        try:
            names = build_cubes(ds, store, request, pars, progress=scheduling.progress, overwrite=overwrite,
                                keep_scratch=keep_scratch, s3d=s3d, s3d_prefix=s3d_prefix)
        finally:
            with phase("scheduler close"):
                stack.close()
    return {name: open_cube(store, name) for name in names}
