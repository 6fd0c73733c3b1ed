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

# Public names by the module defining them; imported on first use, so that the light modules
# (mrsdask.fringe.request, for the command-line flags) do not import the numba kernels.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "run": ("correct", "run_fringe", "FringeSummary"),
    "request": ("FringeRequest",),
    "flat": ("apply_fringe_flat", "divide_by_fringe_flat"),
    "kernels": ("ColumnFit", "FitSettings", "FringeComponent", "Status", "fit_column", "fringe_amplitude"),
    "reference": ("FringeFreqReference", "SliceFringeParams", "documented_fringefreq", "read_fringe_flat",
                  "read_fringefreq", "write_fringe_flat", "write_fringefreq"),
    "residual": ("correct_columns", "residual_fringe", "residual_fringe_summary"),
    "spectrum1d": ("fit_residual_fringes_1d",),
})
