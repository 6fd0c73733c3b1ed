"""Fringe corrections of MIRI MRS data: fringe flat, residual fringes on detector frames and 1-D.

Public API
----------
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

from mrsdask.fringe.flat import apply_fringe_flat, divide_by_fringe_flat
from mrsdask.fringe.kernels import (
    ColumnFit,
    FitSettings,
    FringeComponent,
    Status,
    fit_column,
    fringe_amplitude,
)
from mrsdask.fringe.reference import (
    FringeFreqReference,
    SliceFringeParams,
    documented_fringefreq,
    read_fringe_flat,
    read_fringefreq,
    write_fringe_flat,
    write_fringefreq,
)
from mrsdask.fringe.residual import correct_columns, residual_fringe, residual_fringe_summary
from mrsdask.fringe.spectrum1d import fit_residual_fringes_1d

__all__ = [
    "ColumnFit",
    "FitSettings",
    "FringeComponent",
    "FringeFreqReference",
    "SliceFringeParams",
    "Status",
    "apply_fringe_flat",
    "correct_columns",
    "divide_by_fringe_flat",
    "documented_fringefreq",
    "fit_column",
    "fit_residual_fringes_1d",
    "fringe_amplitude",
    "read_fringe_flat",
    "read_fringefreq",
    "residual_fringe",
    "residual_fringe_summary",
    "write_fringe_flat",
    "write_fringefreq",
]
