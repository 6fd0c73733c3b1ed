"""Fringe corrections of MIRI MRS data: fringe flat, residual fringes on detector frames and 1-D.

Public API
----------
* :func:`correct` — the entry point: fringe flat and/or residual fringes on files, a store or
  a detector Dataset, returned lazily or written to a store (``output=``) and opened; its
  options are :class:`~mrsdask.fringe.request.FringeRequest`, the chain (also that of
  ``mrsdask fringe`` and the pipeline step) is :mod:`mrsdask.fringe.run`.
* :func:`apply_fringe_flat` — divide ``sci``/``err`` of a detector Dataset by the official
  FRINGE reference of each exposure's detector and band (lazy); :func:`divide_by_fringe_flat`
  is the numpy function underneath.
* :func:`residual_fringe` — fit and remove residual fringes per slice and detector column,
  as Dask tasks over (exposure, column block); :func:`residual_fringe_summary` counts what was
  corrected and what was skipped, and why; :func:`correct_columns` is the numpy function
  of one block.
* :func:`fit_residual_fringes_1d` — the same fit on extracted spectra (official
  ``ifu_rfcorr``).
* :func:`read_fringefreq`, :func:`write_fringefreq`, :func:`documented_fringefreq` — the
  FRINGEFREQ reference format; :func:`read_fringe_flat`, :func:`write_fringe_flat` — FRINGE.
* :mod:`mrsdask.fringe.kernels` — the per-column algorithm (:func:`fit_column`) and its
  steps (baseline, features, periodogram, sines, evidence), pure numpy/numba.
"""

from mrsdask.lazy import lazy_exports

#: Public names → the module defining them; imported on first use, so that the light modules
#: (:mod:`~mrsdask.fringe.request`, for the command-line flags) do not import the numba kernels.
_EXPORTS = {
    "correct": "run",
    "run_fringe": "run",
    "FringeSummary": "run",
    "FringeRequest": "request",
    "apply_fringe_flat": "flat",
    "divide_by_fringe_flat": "flat",
    "ColumnFit": "kernels",
    "FitSettings": "kernels",
    "FringeComponent": "kernels",
    "Status": "kernels",
    "fit_column": "kernels",
    "fringe_amplitude": "kernels",
    "FringeFreqReference": "reference",
    "SliceFringeParams": "reference",
    "documented_fringefreq": "reference",
    "read_fringe_flat": "reference",
    "read_fringefreq": "reference",
    "write_fringe_flat": "reference",
    "write_fringefreq": "reference",
    "correct_columns": "residual",
    "residual_fringe": "residual",
    "residual_fringe_summary": "residual",
    "fit_residual_fringes_1d": "spectrum1d",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
