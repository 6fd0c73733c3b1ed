"""The fringe chain, once: fringe flat, residual fringes, the store, the summary.

``mrsdask fringe``, the pipeline ``fringe`` step and :func:`correct` all run it::

    import mrsdask.fringe

    lazy = mrsdask.fringe.correct("bkg.zarr", residual=True)                 # nothing computed yet
    ds = mrsdask.fringe.correct("bkg.zarr", output="fringe.zarr", residual=True)  # written, opened
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from mrsdask.errors import ParameterError
from mrsdask.fringe.request import FringeRequest
from mrsdask.scheduling import Scheduling, detector_result

log = logging.getLogger("mrsdask.fringe")

#: Reasons a column's fit is skipped (:func:`mrsdask.fringe.residual_fringe_summary`), in words.
SKIP_REASONS = {"low_snr": "low S/N", "too_few_pixels": "too few pixels",
                "too_few_periods": "too few fringe periods", "fit_failed": "fit failed"}
#: Counts of :func:`mrsdask.fringe.residual_fringe_summary` added up over the exposures.
SUMMARY_COUNTS = ("columns", "corrected", "no_fringes", "skipped", *SKIP_REASONS)


@dataclass
class FringeSummary:
    """What :func:`run_fringe` did.

    Attributes
    ----------
    flat, residual : bool
        Which corrections were made.
    per_exposure : list of dict
        Residual fringes: :func:`~mrsdask.fringe.residual_fringe_summary` of the written store.
    output_store : str or None
        The store written.
    seconds : float
        Wall time.
    """

    flat: bool
    residual: bool
    per_exposure: list[dict] = field(default_factory=list)
    output_store: str | None = None
    seconds: float = 0.0

    @property
    def totals(self) -> dict[str, int]:
        """The residual-fringe counts added up over the exposures."""
        return {key: sum(int(row[key]) for row in self.per_exposure) for key in SUMMARY_COUNTS}

    def __str__(self) -> str:
        done = ["fringe flat" if self.flat else "", "residual fringes" if self.residual else ""]
        text = " and ".join(d for d in done if d) + " removed"
        if self.residual:
            total = self.totals
            reasons = ", ".join(f"{total[k]} {label}" for k, label in SKIP_REASONS.items() if total[k])
            text += (f"; of {total['columns']} slice columns {total['corrected']} corrected, "
                     f"{total['no_fringes']} without significant fringes, {total['skipped']} skipped"
                     + (f" ({reasons})" if reasons else "") + "; per column in rf_status")
        return text


def _check(request: FringeRequest) -> None:
    if not request.override_fringe and not request.residual:
        raise ParameterError("nothing to correct: give fringe flats (override_fringe, --flat FRINGE…) and/or "
                             "residual (--residual)")


def open_fringe_inputs(inputs_or_dataset: Any) -> xr.Dataset:
    """A detector Dataset as given, or the files, association or store it names, opened lazily."""
    if isinstance(inputs_or_dataset, xr.Dataset):
        return inputs_or_dataset
    from mrsdask.io.detector_store import open_detector_inputs

    items = [inputs_or_dataset] if isinstance(inputs_or_dataset, (str, os.PathLike)) else list(inputs_or_dataset)
    return open_detector_inputs([str(i) for i in items])


def correct_dataset(ds: xr.Dataset, request: FringeRequest) -> xr.Dataset:
    """The fringe corrections of ``request`` on a detector Dataset, lazily (flat first, then residual).

    Raises
    ------
    ParameterError
        If the request corrects nothing, or a flat or the FRINGEFREQ reference does not fit.
    """
    _check(request)
    if request.override_fringe:
        from mrsdask.fringe.flat import apply_fringe_flat

        ds = apply_fringe_flat(ds, list(request.override_fringe))
    if request.residual:
        from mrsdask.fringe.residual import residual_fringe

        ds = residual_fringe(ds, request.override_fringefreq,
                             ignore_regions=list(request.ignore_regions) if request.ignore_regions else None)
    return ds


def run_fringe(inputs_or_dataset: Any, output: str, request: FringeRequest, *, overwrite: bool = False,
               progress: bool = False) -> FringeSummary:
    """Correct fringes and write a detector store; the summary (also logged on ``mrsdask.fringe``).

    The output is checked before any input is read. Runs on the current Dask scheduler.
    """
    from mrsdask.io.detector_store import check_detector_output, open_detector_store, write_detector_store

    t0 = time.perf_counter()
    _check(request)
    output = check_detector_output(str(output), overwrite)
    ds = correct_dataset(open_fringe_inputs(inputs_or_dataset), request)
    write_detector_store(ds, output, overwrite=overwrite, progress=progress)
    summary = FringeSummary(bool(request.override_fringe), request.residual, output_store=output)
    if request.residual:
        from mrsdask.fringe.residual import residual_fringe_summary

        summary.per_exposure = residual_fringe_summary(open_detector_store(output))
    summary.seconds = time.perf_counter() - t0
    log.info("%s; wrote %s in %.1f s", summary, output, summary.seconds)
    return summary


def correct(inputs_or_dataset: Any, request: FringeRequest | None = None, *, output: str | None = None,
            overwrite: bool = False, scheduling: Scheduling | None = None, **options: Any) -> xr.Dataset:
    """Fringe flat and/or residual-fringe correction: a lazy Dataset, or a store written and opened.

    The same work as ``mrsdask fringe`` and the pipeline ``fringe`` step, with the same
    options (:class:`~mrsdask.fringe.request.FringeRequest`).

    Parameters
    ----------
    inputs_or_dataset : str, list of str or xarray.Dataset
        cal files, globs, an association JSON, one detector store, or a detector Dataset (in
        memory or from a store).
    request : FringeRequest, optional
        The options; keyword ``options`` change its fields.
    output : str, optional
        Detector store (path or URL) to write. None: the corrected Dataset is returned lazily
        (nothing is computed; compute all its variables together, e.g. with ``to_zarr`` or
        ``persist``, or the residual-fringe fits run once per variable).
    overwrite : bool
        Replace a complete store at ``output``.
    scheduling : Scheduling, optional
        Where the work runs, and progress bars (:class:`~mrsdask.scheduling.Scheduling`; its fields also as keywords).
        By default a small job runs in this process (a residual-fringe fit only for one exposure),
        others on worker processes.
    **options
        Fields of :class:`FringeRequest` by name (``residual=True``, ``override_fringe=[...]``,
        ``ignore_regions=[(5.0, 5.1)]``) or by their older names (``flat``, ``fringefreq``).

    Returns
    -------
    xarray.Dataset
        The corrected detector Dataset (lazy), or the written store opened lazily. Residual
        fringes add the ``rf_*`` variables (:func:`mrsdask.fringe.residual_fringe`).

    Raises
    ------
    ParameterError
        For an unknown option (naming the closest one), a bad value, or nothing to correct.
    """
    from mrsdask.options import request_from

    scheduling = Scheduling.pop_from(options, scheduling, "mrsdask.fringe.correct")
    request = request_from(FringeRequest, request, "mrsdask.fringe.correct", **options)
    _check(request)
    return detector_result(inputs_or_dataset, open_fringe_inputs(inputs_or_dataset), request, output,
                           correct=correct_dataset, run=run_fringe, overwrite=overwrite, scheduling=scheduling,
                           fits_fringes=request.residual)
