"""Residual-fringe correction of detector frames: the per-column kernel mapped over Dask tasks.

:func:`correct_columns` is a pure numpy function of one block of full-height detector columns
of one exposure: for every column and every slice that crosses it, it runs
:func:`mrsdask.fringe.kernels.fit_column` on the slice's pixels and writes back the corrected
values, the correction factor, a per-pixel flag and a per-(slice, column) status.
:func:`residual_fringe` maps it with :func:`mrsdask.dispatch.map_exposures` and returns a lazy
Dataset.

How the frames are cut (:func:`column_block_for`): the fit costs seconds per column block and
nothing else in the step is costly, so the tasks are as large as the job allows: about
:data:`TASKS_PER_THREAD` per scheduler thread (enough to even out the end of the run). A job of
many exposures gets one task per exposure: the kernel loops over all the columns of the frame,
the exposure's row chunks are joined for it and its outputs split back into them, with no
rows-to-columns rechunk (about 10× fewer tasks than 64-column blocks). A job of few exposures
gets each frame cut into bands of whole columns, where the rechunk is worth the parallelism.

Differences from the official ``residual_fringe`` step, on purpose:

* ERR is multiplied by the same factor as SCI (a multiplicative gain changes both; the
  official step leaves ERR alone).
* Columns are normalised by their own median instead of the image median (the fit is
  scale-free, and columns become independent tasks).
* A column crossing a slice in separate pieces fits one amplitude and phase per piece (see
  :class:`~mrsdask.fringe.kernels.SineFit`).
* Everything that was not corrected says why (``rf_status``, ``rf_flag``, and per fringe
  component ``rf_component_status``), and :func:`residual_fringe_summary` counts it per
  exposure.
* The fitted fringe is not extrapolated beyond the pixels the fit used (ignored regions at a
  column's ends); strong lines are masked with their wings.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace

import numpy as np
import xarray as xr

from mrsdask.datamodel.dq import DO_NOT_USE
from mrsdask.dispatch import Output, map_exposures, scheduler_threads
from mrsdask.errors import ParameterError
from mrsdask.fringe.kernels import (
    CLIPPED_BIT,
    COMPONENT_STATUS_MEANINGS,
    STATUS_MEANINGS,
    FitSettings,
    Status,
    fit_column,
)
from mrsdask.fringe.reference import FringeFreqReference, documented_fringefreq, read_fringefreq
from mrsdask.instrument.bands import CHANNEL_INFO

#: Residual-fringe tasks per scheduler thread aimed at when the frames are cut (:func:`column_block_for`).
TASKS_PER_THREAD = 4
#: Running-mean window of the second feature search in channels 3 and 4 (official value).
DICHROIC_SMOOTHING = 7
#: Component names (index 0 = main detector fringe, 1 = dichroic fringe).
COMPONENT_NAMES = ("main", "dichroic")
SKIPPED = (Status.TOO_FEW_PIXELS, Status.LOW_SNR, Status.TOO_FEW_PERIODS, Status.FIT_FAILED)


def slices_of_detector(detector: str) -> list[int]:
    """All slice numbers (``100·channel + slice``) of a detector's two channels."""
    det = str(detector).strip().upper()
    out = []
    for info in CHANNEL_INFO.values():
        if info.detector == det:
            out.extend(range(info.first_slice, info.last_slice + 1))
    if not out:
        raise ParameterError(f"unknown MRS detector {detector!r}; expected MIRIFUSHORT or MIRIFULONG")
    return out


def _ignore_mask(wavelength: np.ndarray, ignore_regions) -> np.ndarray | None:
    if not ignore_regions:
        return None
    mask = np.zeros(wavelength.shape, bool)
    for lo, hi in ignore_regions:
        mask |= (wavelength > lo) & (wavelength < hi)
    return mask


def correct_columns(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, slices: np.ndarray,
                    wavelength: np.ndarray, band: str, reference: FringeFreqReference,
                    slice_ids, ignore_regions=None, settings: FitSettings | None = None) -> dict:
    """Residual-fringe correction of a block of detector columns of one exposure (numpy).

    Parameters
    ----------
    sci, err : ndarray
        Shape (ny, nb): full-height columns.
    dq : ndarray
        DQ bits; DO_NOT_USE pixels are neither fitted nor corrected.
    slices : ndarray
        Slice map, ``100·channel + slice``, 0 off-slice.
    wavelength : ndarray
        Pixel wavelengths (µm).
    band : str
        SHORT, MEDIUM or LONG: which FRINGEFREQ table.
    reference : FringeFreqReference
        Per-slice search parameters and MAX_AMP.
    slice_ids : sequence of int
        Slice numbers indexing the per-slice outputs (others are ignored).
    ignore_regions : sequence of (float, float), optional
        Wavelength ranges (µm) excluded from the fits (still corrected).
    settings : FitSettings, optional
        Kernel settings; channels 3 and 4 add the smoothed feature search.

    Returns
    -------
    dict
        ``sci``, ``err`` (corrected), ``factor`` (float32), ``flag`` (uint8), all (ny, nb);
        ``status`` (uint8), ``snr`` (float32), both (n_slices, nb); ``period`` (float32),
        ``n_sines`` (int8) and ``component_status`` (uint8,
        :class:`~mrsdask.fringe.kernels.ComponentStatus`), all (n_slices, nb, n_components).
    """
    settings = settings or FitSettings()
    slice_ids = [int(s) for s in slice_ids]
    index = {s: i for i, s in enumerate(slice_ids)}
    ny, nb = sci.shape
    n_comp = reference.n_components
    out_sci = np.array(sci, dtype=np.float32, copy=True)
    out_err = np.array(err, dtype=np.float32, copy=True)
    factor = np.ones((ny, nb), np.float32)
    flag = np.zeros((ny, nb), np.uint8)
    status = np.zeros((len(slice_ids), nb), np.uint8)
    snr = np.full((len(slice_ids), nb), np.nan, np.float32)
    period = np.full((len(slice_ids), nb, n_comp), np.nan, np.float32)
    n_sines = np.zeros((len(slice_ids), nb, n_comp), np.int8)
    comp_status = np.zeros((len(slice_ids), nb, n_comp), np.uint8)
    wave = np.asarray(wavelength, np.float64)
    usable = np.isfinite(wave) & (wave > 0) & np.isfinite(sci) & ((np.asarray(dq) & DO_NOT_USE) == 0)
    ignore = _ignore_mask(wave, ignore_regions)
    per_channel = {}
    for j in range(nb):
        col_slices = np.asarray(slices[:, j])
        for s in np.unique(col_slices[col_slices > 0]):
            s = int(s)
            if s not in index:
                continue
            rows = np.flatnonzero((col_slices == s) & usable[:, j])
            channel = s // 100
            if channel not in per_channel:
                per_channel[channel] = replace(settings, smooth_features=DICHROIC_SMOOTHING) \
                    if channel in (3, 4) and settings.smooth_features <= 1 else settings
            comps = reference.slice_params(band, s).components()
            lam = wave[rows, j]
            fit = fit_column(
                sci[rows, j], 1.0e4 / lam, comps, err=err[rows, j],
                max_ptp=2.0 * reference.max_amp_at(lam),
                ignore=None if ignore is None else ignore[rows, j],
                settings=per_channel[channel],
            )
            k = index[s]
            status[k, j] = int(fit.status)
            snr[k, j] = fit.snr
            m = min(n_comp, fit.periods.size)
            period[k, j, :m] = fit.periods[:m]
            n_sines[k, j, :m] = fit.n_sines[:m]
            comp_status[k, j, :m] = fit.component_status[:m]
            pix_flag = np.full(rows.size, int(fit.status), np.uint8)
            pix_flag[fit.clipped] |= CLIPPED_BIT
            flag[rows, j] = pix_flag
            if fit.status == Status.CORRECTED:
                out_sci[rows, j] = sci[rows, j] * fit.factor
                out_err[rows, j] = err[rows, j] * fit.factor
                factor[rows, j] = fit.factor
    return {"sci": out_sci, "err": out_err, "factor": factor, "flag": flag, "status": status, "snr": snr,
            "period": period, "n_sines": n_sines, "component_status": comp_status}


def _reference(fringefreq) -> FringeFreqReference:
    if fringefreq is None:
        return documented_fringefreq()
    if isinstance(fringefreq, FringeFreqReference):
        return fringefreq
    if isinstance(fringefreq, (str, os.PathLike)):
        return read_fringefreq(fringefreq)
    raise ParameterError(f"fringefreq must be a path, a FringeFreqReference or None, not {type(fringefreq).__name__}")


def column_block_for(n_exposures: int, nx: int, threads: int) -> int | None:
    """Detector columns per residual-fringe task; None for whole frames (one task per exposure).

    Each frame is cut into ``ceil(TASKS_PER_THREAD · threads / n_exposures)`` bands of whole
    columns, so that every scheduler thread gets about :data:`TASKS_PER_THREAD` tasks (enough to
    even out the end of the run), and no more; whole frames when one band per exposure is enough.
    """
    bands = -(-TASKS_PER_THREAD * max(1, threads) // max(1, n_exposures))
    if bands <= 1:
        return None
    return max(1, -(-nx // bands))


def residual_fringe(ds: xr.Dataset, fringefreq=None, *, column_block: int | None = None,
                    ignore_regions=None, settings: FitSettings | None = None) -> xr.Dataset:
    """Fit and remove residual fringes from every slice and column of a detector stack (lazy).

    Parameters
    ----------
    ds : xarray.Dataset
        Detector stack (:mod:`mrsdask.datamodel.detector`): ``sci``, ``err``, ``dq``,
        ``slice``, ``wavelength`` (exposure, y, x) and the per-exposure ``detector`` and
        ``band``. Any x range (``ds.isel(x=...)``) works.
    fringefreq : str, path-like or FringeFreqReference, optional
        Official FRINGEFREQ reference file (per-slice periods, windows, limits). By default
        the documented values (:func:`~mrsdask.fringe.reference.documented_fringefreq`).
    column_block : int, optional
        Detector columns per task; default chosen from the number of exposures and of
        scheduler threads (:func:`column_block_for`: whole frames when there are enough
        exposures).
    ignore_regions : sequence of (float, float), optional
        Wavelength ranges (µm) left out of the fits, like the official
        ``ignore_region_min/max``.
    settings : FitSettings, optional
        Kernel settings.

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``sci`` and ``err`` corrected (chunked like the input) and new variables

        * ``rf_factor`` (exposure, y, x) float32 — corrected = input × factor;
        * ``rf_flag`` (exposure, y, x) uint8 — status of the pixel's (slice, column), +16 where
          the fit was zeroed by the amplitude check (see ``flag_meanings``);
        * ``rf_status`` (exposure, rf_slice, x) uint8 — per slice and column;
        * ``rf_snr`` (exposure, rf_slice, x) float32 — column S/N;
        * ``rf_period`` (exposure, rf_slice, x, rf_component) float32 — period (cm⁻¹) of the
          strongest fitted sine, NaN if none;
        * ``rf_n_sines`` (exposure, rf_slice, x, rf_component) int8;
        * ``rf_component_status`` (exposure, rf_slice, x, rf_component) uint8 — per component,
          why it has sines or not (:class:`~mrsdask.fringe.kernels.ComponentStatus`: 1 fitted,
          2 no sine passed the evidence test, 3 placeholder period, 4 column S/N below the
          component's MIN_SNR, 5 too few pixels, 6 too few periods, 7 zeroed by the amplitude
          check; 0 the column was skipped, see ``rf_status``).

        Every output comes from the same tasks: compute them together (``dask.compute``,
        ``to_zarr``, ``persist``), not one after the other, or the fits run again. To build
        cubes from the corrected data, write it first with
        :func:`mrsdask.io.detector_store.write_detector_store` (the ``rf_*`` variables are
        kept; :func:`residual_fringe_summary` then reads them from the store).

    Raises
    ------
    ParameterError
        If a variable is missing or the reference lacks a slice of a band in use.
    """
    for name in ("sci", "err", "dq", "slice", "wavelength"):
        if name not in ds:
            raise ParameterError(f"dataset has no {name!r} variable (needed by residual_fringe)")
    for name in ("detector", "band"):
        if name not in ds.coords:
            raise ParameterError(f"dataset has no per-exposure {name!r} coordinate")
    if column_block is not None and column_block < 1:
        raise ParameterError(f"column_block must be >= 1, got {column_block}")
    if ignore_regions:
        for region in ignore_regions:
            if len(region) != 2 or not region[0] < region[1]:
                raise ParameterError(f"ignore region {region!r} is not (min, max) with min < max")
    reference = _reference(fringefreq)
    settings = settings or FitSettings()
    if column_block is None:
        column_block = column_block_for(ds.sizes["exposure"], ds.sizes["x"], scheduler_threads())
    detectors = [str(d).strip().upper() for d in ds["detector"].values]
    bands = [str(b).strip().upper() for b in ds["band"].values]
    slice_ids = sorted({s for det in set(detectors) for s in slices_of_detector(det)})
    for det, band in set(zip(detectors, bands)):
        reference.check_slices(band, slices_of_detector(det))
    n_comp = reference.n_components
    ns = len(slice_ids)
    per_column = {"rf_slice": ns, "rf_component": n_comp}
    outputs = {"sci": np.float32, "err": np.float32, "factor": np.float32, "flag": np.uint8,
               "status": Output(np.uint8, ("rf_slice", "x"), per_column),
               "snr": Output(np.float32, ("rf_slice", "x"), per_column),
               "period": Output(np.float32, ("rf_slice", "x", "rf_component"), per_column),
               "n_sines": Output(np.int8, ("rf_slice", "x", "rf_component"), per_column),
               "component_status": Output(np.uint8, ("rf_slice", "x", "rf_component"), per_column)}
    fitted = map_exposures(
        correct_columns, ds, outputs, inputs=("sci", "err", "dq", "slice", "wavelength"),
        blocks="exposure" if column_block is None else "columns", block_size=column_block,
        per_exposure={"band": bands},
        shared={"reference": reference, "slice_ids": np.asarray(slice_ids, np.int64),
                "ignore_regions": ignore_regions, "settings": settings},
        label="residual fringe",
    )
    out = ds.copy()
    for name in ("sci", "err"):
        out[name] = ds[name].copy(data=fitted[name])
    out["rf_factor"] = (("exposure", "y", "x"), fitted["factor"])
    out["rf_flag"] = (("exposure", "y", "x"), fitted["flag"])
    out["rf_status"] = (("exposure", "rf_slice", "x"), fitted["status"])
    out["rf_snr"] = (("exposure", "rf_slice", "x"), fitted["snr"])
    out["rf_period"] = (("exposure", "rf_slice", "x", "rf_component"), fitted["period"])
    out["rf_n_sines"] = (("exposure", "rf_slice", "x", "rf_component"), fitted["n_sines"])
    out["rf_component_status"] = (("exposure", "rf_slice", "x", "rf_component"), fitted["component_status"])
    out = out.assign_coords(rf_slice=("rf_slice", np.asarray(slice_ids, np.int16)),
                            rf_component=("rf_component", np.asarray(
                                [COMPONENT_NAMES[i] if i < len(COMPONENT_NAMES) else f"component{i}"
                                 for i in range(n_comp)])))
    codes = sorted(STATUS_MEANINGS)
    meanings = " ".join(STATUS_MEANINGS[c] for c in codes)
    out["rf_factor"].attrs.update(long_name="residual fringe correction factor (corrected = input * factor)")
    out["rf_flag"].attrs.update(long_name="residual fringe status of the pixel's slice column; +16: fit zeroed "
                                "by the amplitude check", flag_values=codes, flag_meanings=meanings,
                                clipped_bit=CLIPPED_BIT)
    out["rf_status"].attrs.update(long_name="residual fringe status per slice and column", flag_values=codes,
                                  flag_meanings=meanings)
    out["rf_snr"].attrs.update(long_name="column signal-to-noise (DER_SNR)")
    out["rf_period"].attrs.update(long_name="period of the strongest fitted fringe sine", units="cm-1")
    out["rf_n_sines"].attrs.update(long_name="number of fringe sines kept by the evidence test")
    comp_codes = sorted(COMPONENT_STATUS_MEANINGS)
    out["rf_component_status"].attrs.update(
        long_name="residual fringe outcome per component (why it has no sines)", flag_values=comp_codes,
        flag_meanings=" ".join(COMPONENT_STATUS_MEANINGS[c] for c in comp_codes))
    out.attrs["residual_fringe"] = {
        "fringefreq": reference.path or "documented values (mrsdask.fringe.reference.documented_fringefreq)",
        "column_block": int(column_block or ds.sizes["x"]),
        "ignore_regions": [list(map(float, r)) for r in (ignore_regions or [])],
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
    }
    return out


def residual_fringe_summary(ds: xr.Dataset) -> list[dict]:
    """Per-exposure counts of corrected and skipped (slice, column) fits.

    Computes ``rf_status`` (small) if it is lazy; compute or store the corrected Dataset
    first if the pixels are needed too, so that the fits run once.

    Returns
    -------
    list of dict
        Per exposure: ``exposure`` (index), ``filename`` (if known), one count per status
        name (``corrected``, ``no_fringes``, ``too_few_pixels``, ``low_snr``,
        ``too_few_periods``, ``fit_failed``), ``fitted`` (corrected + no_fringes),
        ``skipped`` (the four skip reasons) and ``columns`` (all slice columns seen).
    """
    if "rf_status" not in ds:
        raise ParameterError("dataset has no rf_status: run residual_fringe first")
    status = np.asarray(ds["rf_status"].values)
    rows = []
    for e in range(status.shape[0]):
        counts = np.bincount(status[e].ravel(), minlength=len(STATUS_MEANINGS))
        row = {"exposure": e}
        if "filename" in ds.coords:
            row["filename"] = str(ds["filename"].values[e])
        for code, name in STATUS_MEANINGS.items():
            if code != Status.NOT_PROCESSED:
                row[name] = int(counts[code])
        row["fitted"] = int(counts[Status.CORRECTED] + counts[Status.NO_FRINGES])
        row["skipped"] = int(sum(counts[s] for s in SKIPPED))
        row["columns"] = row["fitted"] + row["skipped"]
        rows.append(row)
    return rows
