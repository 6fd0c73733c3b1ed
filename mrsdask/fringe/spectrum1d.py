"""Residual-fringe correction of extracted 1-D spectra (the official ``ifu_rfcorr`` behaviour).

The official ``extract_1d`` calls ``jwst.residual_fringe.utils.fit_residual_fringes_1d`` on
each extracted spectrum when ``ifu_rfcorr=True``. This module does the same with the
:mod:`mrsdask.fringe.kernels` fit. Its fixed parameters are the official 1-D constants:

* fringe periods 2.9 and 0.4 cm⁻¹ (main and dichroic), search half-widths 1.5 and
  0.15 cm⁻¹, at most 10 and 15 sines, periodogram resolution 0.001 cm⁻¹;
* channels 1 and 2 fit the main fringe only, channels 3 and 4 — or an unknown channel — both,
  ``dichroic_only`` the dichroic one only;
* weights ∝ flux, zero above 27.6 µm (calibration too uncertain there) and in
  ``ignore_regions``; unlike the official code, the fitted fringe is not extrapolated beyond
  the last pixel with weight (it is tapered to 0 over one period: ``FitSettings.taper_periods``),
  so nothing is corrected where the fit had no data;
* features removed by clipping (5σ) the relative deviation from the mean of the upper and
  lower envelopes, with their wings (down to 2σ), then again from the residuals of a first
  fit; the fringe model under them is bounded by its amplitude around them;
* robust fits for every component; a fitted fringe whose local peak-to-peak amplitude
  exceeds 0.4 is zeroed there.

No S/N threshold is applied (the official 1-D code has none); the evidence decides. Why a
spectrum or a component was not corrected is in its :class:`~mrsdask.fringe.kernels.ColumnFit`
(``status``, ``component_status``, ``reasons()``; ``return_fit=True``) and logged at INFO.
"""

from __future__ import annotations

import logging

import numpy as np

from mrsdask.errors import ParameterError
from mrsdask.fringe.kernels import ComponentStatus, FitSettings, FringeComponent, Status, fit_column

FFREQ_1D = (2.9, 0.4)
DFFREQ_1D = (1.5, 0.15)
MAX_NFRINGES_1D = (10, 15)
PGRAM_RES_1D = 0.001
MAXAMP_1D = 0.4
#: Weights are zero beyond this wavelength (µm), as in the official code.
MAX_WAVELENGTH_1D = 27.6

log = logging.getLogger(__name__)


def components_1d(channel: int | None = None, dichroic_only: bool = False) -> list[FringeComponent]:
    """Fringe components fitted in a 1-D spectrum of ``channel``.

    Raises
    ------
    ParameterError
        If ``dichroic_only`` is asked for channel 1 or 2 (they have no dichroic fringe).
    """
    main = FringeComponent(FFREQ_1D[0], DFFREQ_1D[0], MAX_NFRINGES_1D[0], 0.0, PGRAM_RES_1D, robust=True)
    dichroic = FringeComponent(FFREQ_1D[1], DFFREQ_1D[1], MAX_NFRINGES_1D[1], 0.0, PGRAM_RES_1D, robust=True)
    if channel is not None and int(channel) not in (1, 2, 3, 4):
        raise ParameterError(f"channel must be 1, 2, 3, 4 or None, got {channel!r}")
    if dichroic_only:
        if channel in (1, 2):
            raise ParameterError("the dichroic fringe exists only in channels 3 and 4")
        return [dichroic]
    if channel in (1, 2):
        return [main]
    return [main, dichroic]


def fit_residual_fringes_1d(flux, wavelength, channel: int | None = None, dichroic_only: bool = False, *,
                            ignore_regions=None, max_amp: float = MAXAMP_1D,
                            settings: FitSettings | None = None, return_fit: bool = False):
    """Remove residual fringes from extracted spectra.

    Parameters
    ----------
    flux : array_like
        One spectrum (n,) or several (..., n) sharing ``wavelength``; any flux units.
    wavelength : array_like
        Wavelengths (µm), shape (n,) (or the shape of ``flux``).
    channel : int, optional
        MRS channel (1–4); unknown (None) fits both the main and the dichroic fringe.
    dichroic_only : bool
        Fit only the dichroic fringe (channels 3 and 4).
    ignore_regions : sequence of (float, float), optional
        Wavelength ranges (µm) left out of the fit (still corrected).
    max_amp : float
        Largest peak-to-peak fringe amplitude accepted (official 0.4).
    settings : FitSettings, optional
        Kernel settings (feature clipping at 5σ with no smoothing by default).
    return_fit : bool
        Also return the :class:`~mrsdask.fringe.kernels.ColumnFit` of each spectrum.

    Returns
    -------
    ndarray
        The corrected flux, same shape as ``flux``; pixels with flux ≤ 0 or non-finite
        values are unchanged. With ``return_fit``, ``(flux, fits)``: per spectrum a
        :class:`~mrsdask.fringe.kernels.ColumnFit`, whose ``component_status`` says for each
        component whether it was fitted and, if not, why.
    """
    flux = np.asarray(flux, dtype=np.float64)
    wave = np.asarray(wavelength, dtype=np.float64)
    comps = components_1d(channel, dichroic_only)
    settings = settings or FitSettings(min_pixel_snr=0.0)
    single = flux.ndim == 1
    spectra = flux.reshape(1, -1) if single else flux.reshape(-1, flux.shape[-1])
    waves = np.broadcast_to(wave, flux.shape).reshape(spectra.shape)
    out = spectra.copy()
    fits = []
    for i in range(spectra.shape[0]):
        f, lam = spectra[i], waves[i]
        use = np.isfinite(f) & (f > 0) & np.isfinite(lam) & (lam > 0)
        idx = np.flatnonzero(use)
        ignore = lam[idx] > MAX_WAVELENGTH_1D
        for lo, hi in ignore_regions or ():
            ignore |= (lam[idx] > lo) & (lam[idx] < hi)
        fit = fit_column(f[idx], 1.0e4 / lam[idx], comps, max_ptp=max_amp, ignore=ignore, settings=settings)
        if fit.status == Status.CORRECTED:
            out[i, idx] = f[idx] * fit.factor
        if fit.status != Status.CORRECTED or ComponentStatus.FITTED not in fit.component_status:
            log.info("1-D residual fringe fit of spectrum %d: %s", i, fit.reasons(
                ["dichroic"] if dichroic_only else ["main", "dichroic"]))
        fits.append(fit)
    result = out.reshape(flux.shape)
    if return_fit:
        return result, fits if not single else fits[0]
    return result
