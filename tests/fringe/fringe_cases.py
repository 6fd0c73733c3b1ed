"""Simulated MRS 1-D spectra for the residual-fringe situations of issue 19, with known truth.

Three situations that real spectra showed the fit getting wrong:

* :func:`channel4_spectrum` — a channel-4 band (4A, 4B or 4C) with the main detector fringe
  (period ≈ 2.9 cm⁻¹, a few per cent, contrast and period drifting along the band) and the
  dichroic fringe (period ≈ 0.4 cm⁻¹, strongest in 4C);
* :func:`edge_spectrum` — band 4C run to its 28.8 µm end, where the throughput falls and the
  S/N drops to a few per pixel beyond ~27.5 µm;
* :func:`line_spectrum` — strong unresolved emission lines (FWHM = λ/R, R the band's
  resolving power) centred on peaks of the main fringe, on a continuum.

Numbers are those of the MRS (``/work/shared/refdata/mrs_band_facts.json``): the wavelength
ranges of each band and the spectral step of its cubes (≈ dλ per detector pixel), resolving
powers from ≈ 3500 in 1A to ≈ 1500 in 4C (Labiano et al. 2021; Jones et al. 2023). Each
spectrum is a :class:`fringe_synth.Column` (``truth`` fringe-free and noise-free, ``perfect``
the data divided by the true fringe). The metrics the tests and the comparison with the
official fit share are here too: :func:`residual_amplitudes`, :func:`line_fluxes`,
:func:`edge_scatter`.
"""

from __future__ import annotations

import numpy as np
from fringe_synth import Column

from mrsdask.fringe.kernels import fringe_amplitude

#: (first, last wavelength µm, spectral step µm) of each band (ground regions, FLT-9 step).
BANDS = {
    "1A": (4.851, 5.777, 0.000872), "1B": (5.602, 6.673, 0.001007), "1C": (6.466, 7.701, 0.001162),
    "2A": (7.425, 8.846, 0.001321), "2B": (8.576, 10.218, 0.001524), "2C": (9.905, 11.799, 0.00176),
    "3A": (11.426, 13.587, 0.00201), "3B": (13.203, 15.703, 0.002325), "3C": (15.256, 18.134, 0.002682),
    "4A": (17.521, 21.080, 0.00332), "4B": (20.467, 24.627, 0.003883), "4C": (23.946, 28.789, 0.004532),
}

#: Approximate resolving power λ/Δλ at the band centre.
RESOLVING_POWER = {"1A": 3500, "1B": 3500, "1C": 3400, "2A": 3100, "2B": 3000, "2C": 2800, "3A": 2500,
                   "3B": 2300, "3C": 2100, "4A": 1900, "4B": 1700, "4C": 1500}

#: Beyond this wavelength the official 1-D fit gives no weight (calibration uncertain).
EDGE_UM = 27.6

MAIN_PERIOD = 2.9
DICHROIC_PERIOD = 0.4


def _fringe(nu, main_amp, main_period, dichroic_amp, dichroic_period, phase, dphase, am, chirp, harmonic, drift=0.0):
    """Relative fringe F(ν): drifting main fringe with a 2nd harmonic, plus the dichroic fringe.

    ``drift`` (radians, per pixel) is added to the main-fringe phase (3× to the dichroic one).
    Returns F and the main-fringe phase without the drift.
    """
    order = np.argsort(nu)
    t = (nu - nu.mean()) / np.ptp(nu)
    per = main_period * (1.0 + chirp * 2.0 * t)
    ph = np.empty_like(nu)
    ph[order] = 2.0 * np.pi * np.cumsum(np.gradient(nu[order]) / per[order]) + phase
    amp = main_amp * (1.0 + am * 2.0 * t)
    f = amp * (np.sin(ph + drift) + harmonic * np.sin(2.0 * (ph + drift) + 0.7))
    if dichroic_amp:
        damp = dichroic_amp * (1.0 - 0.3 * 2.0 * t)  # contrast changes along the band
        f = f + damp * np.sin(2.0 * np.pi * (nu - nu.min()) / dichroic_period + dphase + 3.0 * drift)
    return f, ph


def mrs_spectrum(band: str, *, main_amp: float = 0.05, dichroic_amp: float = 0.0, snr: float = 200.0,
                 lines=(), line_on_peak: bool = True, seed: int = 0, main_period: float = MAIN_PERIOD,
                 dichroic_period: float = DICHROIC_PERIOD, edge_fall: float | None = None,
                 slope: float = 1.5, phase: float = 0.3, chirp: float = 0.01, am: float = 0.3,
                 harmonic: float = 0.1, wings: float = 0.15, edge_drift: float = 0.0) -> Column:
    """A 1-D MRS spectrum of one band: continuum (+ lines) × (1 + F) + noise.

    Parameters
    ----------
    band : str
        MRS band (``"1A"`` … ``"4C"``): wavelength range and step.
    main_amp, dichroic_amp : float
        Relative amplitudes of the main (≈ 2.9 cm⁻¹) and dichroic (≈ 0.4 cm⁻¹) fringes.
    snr : float
        Continuum S/N per pixel (at the start of the band).
    lines : sequence of (float, float)
        (wavelength µm, equivalent width µm) of unresolved emission lines, FWHM = λ/R.
    wings : float
        Lorentzian fraction of the line profile (pseudo-Voigt of the same FWHM): the MRS line
        spread function has wings that a Gaussian core does not.
    line_on_peak : bool
        Move each line to the nearest peak of the main fringe.
    edge_fall : float, optional
        Beyond 27.0 µm the throughput falls as exp(−(λ − 27)/edge_fall): the S/N per pixel
        drops (to ≈ 5 at 28.8 µm for ``edge_fall=0.5`` and ``snr=200``).
    slope : float
        Continuum ∝ λ^slope (a rising dusty continuum by default).
    edge_drift : float
        Beyond 27.6 µm the fringe phase drifts by ``edge_drift · π · ((λ − 27.6)/0.4)²``: where
        the fringe flat is uncertain the residual fringe is not the one of the rest of the
        band, so a model extrapolated there is wrong.
    """
    lo, hi, step = BANDS[band]
    rng = np.random.default_rng(seed)
    lam = np.arange(lo, hi, step)
    nu = 1.0e4 / lam
    drift = edge_drift * np.pi * (np.clip(lam - EDGE_UM, 0.0, None) / 0.4) ** 2 if edge_drift else 0.0
    f_rel, ph = _fringe(nu, main_amp, main_period, dichroic_amp, dichroic_period, phase, 1.1 + seed, am, chirp,
                        harmonic, drift)
    x = (lam - lam.mean()) / np.ptp(lam)
    continuum = 100.0 * (lam / lam.mean()) ** slope * (1.0 + 0.04 * np.sin(3.0 * x))
    truth = continuum.copy()
    used = []
    for centre, ew in lines:
        if line_on_peak and main_amp > 0:
            # nearest pixel where the main fringe phase is at a crest (sin = 1)
            crest = np.cos(ph) ** 2 < 0.02
            crest &= np.sin(ph) > 0
            cand = np.flatnonzero(crest)
            centre = float(lam[cand[np.argmin(np.abs(lam[cand] - centre))]])
        fwhm = centre / RESOLVING_POWER[band]
        sigma = fwhm / 2.3548
        cont = float(np.interp(centre, lam, continuum))
        gauss = np.exp(-0.5 * ((lam - centre) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))
        lorentz = (0.5 * fwhm / np.pi) / ((lam - centre) ** 2 + (0.5 * fwhm) ** 2)
        profile = (1.0 - wings) * gauss + wings * lorentz  # unit area
        peak = ew * ((1.0 - wings) / (sigma * np.sqrt(2.0 * np.pi)) + wings * 2.0 / (np.pi * fwhm))
        truth += ew * cont * profile
        used.append((centre, peak, fwhm))
    throughput = np.ones_like(lam) if edge_fall is None else np.exp(-np.clip(lam - 27.0, 0.0, None) / edge_fall)
    # photon noise: σ ∝ √(signal · throughput) / throughput in flux units
    err = np.sqrt(truth / continuum[0]) * continuum[0] / snr / np.sqrt(throughput)
    fringe = 1.0 + f_rel
    flux = truth * fringe + rng.normal(0.0, 1.0, lam.size) * err
    return Column(lam, flux, err, truth, flux / fringe, fringe, continuum, used)


def channel4_spectrum(band: str, seed: int = 0, snr: float = 150.0) -> Column:
    """Band 4A/4B/4C with the main fringe and the dichroic fringe (stronger in 4C)."""
    amps = {"4A": (0.05, 0.010), "4B": (0.06, 0.015), "4C": (0.07, 0.025)}[band]
    return mrs_spectrum(band, main_amp=amps[0], dichroic_amp=amps[1], snr=snr, seed=seed,
                        phase=0.3 + 1.3 * seed, edge_fall=0.5 if band == "4C" else None)


def edge_spectrum(seed: int = 0) -> Column:
    """Band 4C to 28.8 µm: S/N falling from 200 to ≈ 5 beyond 27 µm, main (5 %) and dichroic (2 %)
    fringe, whose phases drift away from the rest of the band beyond 27.6 µm (``edge_drift``)."""
    return mrs_spectrum("4C", main_amp=0.05, dichroic_amp=0.02, snr=200.0, seed=seed, edge_fall=0.5,
                        phase=0.9 + seed, edge_drift=1.0)


def line_spectrum(band: str, seed: int = 0, ews=(0.05, 0.02, 0.1), snr: float = 200.0) -> Column:
    """Strong unresolved lines of equivalent widths ``ews`` (µm) on main-fringe peaks of ``band``.

    The lines sit at 25 %, 50 % and 75 % of the band (below 27.3 µm); the fringe has 4 %
    (channels 1–2), 5 % (channel 3) or 6 % (channel 4) amplitude, plus the dichroic fringe in
    channels 3 and 4.
    """
    lo, hi, _ = BANDS[band]
    hi = min(hi, 27.3)
    ch = int(band[0])
    main_amp = {1: 0.04, 2: 0.04, 3: 0.05, 4: 0.06}[ch]
    dichroic = 0.01 if ch >= 3 else 0.0
    centres = [lo + q * (hi - lo) for q in (0.25, 0.5, 0.75)]
    return mrs_spectrum(band, main_amp=main_amp, dichroic_amp=dichroic, snr=snr, seed=seed,
                        lines=list(zip(centres, ews)), phase=0.5 + seed)


# --------------------------------------------------------------------------- metrics
def residual_amplitudes(col: Column, factor: np.ndarray, upto: float = EDGE_UM) -> tuple[float, float]:
    """Amplitudes (relative) of the main and the dichroic fringe left after ``factor``, noise-free.

    Measured on ``factor · (1 + F)`` (the fringe the corrected spectrum still has) by
    :func:`~mrsdask.fringe.kernels.fringe_amplitude`, lines masked, λ ≤ ``upto``.
    """
    keep = (col.wavelength <= upto) & ~_line_mask(col, 4.0)
    left = factor * col.fringe
    main = fringe_amplitude(left, col.wavenumber, keep.astype(float), MAIN_PERIOD, 1.5)
    dich = fringe_amplitude(left, col.wavenumber, keep.astype(float), DICHROIC_PERIOD, 0.15)
    return main, dich


def _line_mask(col: Column, window: float) -> np.ndarray:
    mask = np.zeros(col.wavelength.size, bool)
    for centre, _peak, fwhm in col.lines:
        mask |= np.abs(col.wavelength - centre) < window * fwhm
    return mask


def line_fluxes(col: Column, spectrum: np.ndarray, window: float = 2.5, side: float = 4.0) -> np.ndarray:
    """Flux of each line: Σ(spectrum − local continuum)·dλ over ±``window`` FWHM.

    The local continuum is a straight line fitted to the pixels between ``window`` and
    ``window + side`` FWHM on both sides — what one measures on a real spectrum.
    """
    out = []
    lam = col.wavelength
    dlam = np.gradient(lam)
    for centre, _peak, fwhm in col.lines:
        d = np.abs(lam - centre)
        core = d < window * fwhm
        wing = (d >= window * fwhm) & (d < (window + side) * fwhm)
        coef = np.polyfit(lam[wing] - centre, spectrum[wing], 1)
        cont = np.polyval(coef, lam[core] - centre)
        out.append(float(np.sum((spectrum[core] - cont) * dlam[core])))
    return np.asarray(out)


def line_flux_shifts(col: Column, corrected: np.ndarray) -> np.ndarray:
    """Relative change of each line's flux against the truth-corrected spectrum (``col.perfect``)."""
    ref = line_fluxes(col, col.perfect)
    return line_fluxes(col, corrected) / ref - 1.0


def short_scale_scatter(spectrum: np.ndarray, window: int = 15) -> np.ndarray:
    """``spectrum`` minus its running median over ``window`` pixels (ripple and noise)."""
    from scipy.ndimage import median_filter

    return spectrum - median_filter(spectrum, window, mode="nearest")


def edge_scatter(col: Column, spectrum: np.ndarray, start: float = EDGE_UM, window: int = 15) -> float:
    """Std of the short-scale scatter of ``spectrum`` beyond ``start`` µm, relative to its median."""
    sel = col.wavelength > start
    r = short_scale_scatter(spectrum, window)[sel]
    return float(np.std(r) / np.median(spectrum[sel]))
