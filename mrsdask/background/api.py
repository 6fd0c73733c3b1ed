"""``mrsdask.background.subtract``: the Python entry point of background subtraction."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import xarray as xr

from mrsdask.background.request import BackgroundRequest
from mrsdask.scheduling import Scheduling, job_scheduler, write_detector_output

log = logging.getLogger("mrsdask.background")


def subtract(inputs_or_dataset: Any, request: BackgroundRequest | None = None, *, output: str | None = None,
             overwrite: bool = False, scheduling: Scheduling | None = None, **options: Any) -> xr.Dataset:
    """Background-subtract detector data: a lazy Dataset, or a detector store written and opened.

    The same work as ``mrsdask background`` and the pipeline ``background`` step, with the
    same options (:class:`~mrsdask.background.request.BackgroundRequest`).

    Parameters
    ----------
    inputs_or_dataset : str, list of str or xarray.Dataset
        cal files, globs, an association JSON (science and background members; background
        members may be x1d files), one detector store, or a detector Dataset (in memory or
        from a store).
    request : BackgroundRequest, optional
        The options; keyword ``options`` change its fields.
    output : str, optional
        Detector store (path or URL) to write. None: nothing is written (but ``save_master``)
        and the subtracted Dataset is returned lazily.
    overwrite : bool
        Replace a complete store at ``output``.
    scheduling : Scheduling, optional
        Where the work runs, and progress bars (:class:`~mrsdask.scheduling.Scheduling`; its fields also as keywords).
        Used only when something is computed here: the store, or the master background from
        cubes of the background exposures.
    **options
        Fields of :class:`BackgroundRequest` by name (``method="master"``,
        ``median_kernel=5``…) or by their pipeline names (``force``).

    Returns
    -------
    xarray.Dataset
        Without ``output``: the subtracted detector Dataset, lazy (Dask arrays); what was
        subtracted (method, source, background members) is in ``attrs["mrsdask_background"]``
        (JSON) and the full summary is logged. With ``output``: the written store, opened lazily.

    Raises
    ------
    ParameterError
        For an unknown option (naming the closest one) or a bad value, before any work.
    InputError
        For inputs that cannot be used (e.g. no background exposure for the pixel method).

    Examples
    --------
    >>> import mrsdask.background
    >>> sub = mrsdask.background.subtract("obs_asn.json", output="bkg.zarr", method="pixel")  # doctest: +SKIP
    >>> lazy = mrsdask.background.subtract("obs_asn.json", method="master", median_kernel=5)  # doctest: +SKIP
    """
    from mrsdask.background.run import run_background, subtract_inputs
    from mrsdask.options import request_from

    scheduling = Scheduling.pop_from(options, scheduling, "mrsdask.background.subtract")
    request = request_from(BackgroundRequest, request, "mrsdask.background.subtract", **options)
    progress = scheduling.progress
    if output is not None:
        return write_detector_output(
            inputs_or_dataset, output,
            lambda out: run_background(inputs_or_dataset, out, **request.run_arguments(), overwrite=overwrite,
                                       progress=progress),
            overwrite=overwrite, scheduling=scheduling)
    # Lazy: only a master spectrum from cubes of the background exposures is computed here.
    computes = request.method == "master" and request.user_background is None
    arguments = request.run_arguments()
    method = arguments.pop("method")
    with job_scheduler(inputs_or_dataset, scheduling, detector_job=True) if computes else contextlib.nullcontext():
        out, summary, _ = subtract_inputs(inputs_or_dataset, method, progress=progress, **arguments)
    for line in summary.lines():
        log.info(line)
    return out
