"""Synthetic fringed spectra and detector columns for the fringe tests and the benchmark.

A column is ``data = (continuum + lines) · (1 + F) + noise`` with a realistic MRS fringe: in
wavenumber ν = 10⁴/λ a sine of period ≈ 2.9 cm⁻¹ whose amplitude changes by ±30 % and whose
period drifts by 0.5 % along the column, plus a 2nd harmonic (the Airy profile of a
low-finesse etalon is not a pure sine) and, optionally, the 0.4 cm⁻¹ dichroic fringe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Column:
    """A synthetic column; arrays in pixel order.

    Attributes
    ----------
    wavelength : ndarray
        µm.
    flux : ndarray
        Fringed, noisy data.
    err : ndarray
        1-σ noise.
    truth : ndarray
        Continuum + lines, no fringe, no noise.
    perfect : ndarray
        ``flux / (1 + F)``: what a perfect fringe correction gives (noise kept).
    fringe : ndarray
        1 + F.
    continuum : ndarray
        The continuum alone.
    lines : list of (float, float, float)
        (centre µm, peak relative to continuum, FWHM µm).
    """

    wavelength: np.ndarray
    flux: np.ndarray
    err: np.ndarray
    truth: np.ndarray
    perfect: np.ndarray
    fringe: np.ndarray
    continuum: np.ndarray
    lines: list

    @property
    def wavenumber(self) -> np.ndarray:
        """ν = 10⁴/λ in cm⁻¹."""
        return 1.0e4 / self.wavelength


def _gaps(nu: np.ndarray) -> np.ndarray:
    """Indices i where ν jumps between pixels i-1 and i: a step over 1.5 times both neighbouring steps."""
    step = np.abs(np.diff(nu))
    if step.size < 2:
        return np.zeros(0, int)
    before = np.concatenate([[np.inf], step[:-1]])
    after = np.concatenate([step[1:], [np.inf]])
    ref = np.minimum(np.where(np.isfinite(before), before, after), np.where(np.isfinite(after), after, before))
    return np.flatnonzero(step > 1.5 * ref) + 1


def _phase(nu: np.ndarray, per: np.ndarray) -> np.ndarray:
    """2π ∫ dν / P along ``nu``: per-pixel steps (``np.gradient``) within pieces, exact widths across gaps."""
    gaps = _gaps(nu)
    if not gaps.size:
        return 2.0 * np.pi * np.cumsum(np.gradient(nu) / per)
    ph = np.empty(nu.size)
    for k, idx in enumerate(np.split(np.arange(nu.size), gaps)):
        step = np.gradient(nu[idx]) if idx.size > 1 else np.zeros(1)
        piece = 2.0 * np.pi * np.cumsum(step / per[idx])
        if k:
            i, j = idx[0] - 1, idx[0]  # last pixel before the gap, first after it
            piece += ph[i] + 2.0 * np.pi * (nu[j] - nu[i]) / (0.5 * (per[i] + per[j])) - piece[0]
        ph[idx] = piece
    return ph


def fringe_pattern(nu: np.ndarray, amplitude: float = 0.1, period: float = 2.9, phase: float = 0.3,
                   am: float = 0.3, chirp: float = 0.005, harmonic: float = 0.1, dichroic: float = 0.0,
                   dichroic_period: float = 0.4) -> np.ndarray:
    """Relative fringe F(ν) (the data are multiplied by 1 + F).

    ``nu`` in pixel order may have gaps (a detector column crossing a curved slice in
    pieces): the phase ``2π ∫ dν / P(ν)`` is summed within each piece and carried across
    each gap by the gap's own width, so the fringe is one smooth function of ν everywhere.
    """
    t = (nu - nu.mean()) / np.ptp(nu)
    amp = amplitude * (1.0 + am * 2.0 * t)
    # Period drifts linearly: phase = 2π ∫ dν / P(ν).
    per = period * (1.0 + chirp * 2.0 * t)
    ph = _phase(nu, per) + phase
    fringe = amp * (np.sin(ph) + harmonic * np.sin(2.0 * ph + 0.7))
    if dichroic:
        fringe = fringe + dichroic * np.sin(2.0 * np.pi * nu / dichroic_period + 1.1)
    return fringe


def synthetic_column(n: int = 1024, wave_range=(4.9, 5.74), amplitude: float = 0.1, period: float = 2.9,
                     lines=((5.05, 2.0, 0.0016), (5.3, 0.6, 0.0016), (5.52, 1.2, 0.0018)), snr: float = 300.0,
                     seed: int = 1, dichroic: float = 0.0, level: float = 100.0, **fringe_kw) -> Column:
    """One synthetic detector column (or spectrum).

    Parameters
    ----------
    n : int
        Pixels.
    wave_range : tuple of float
        First and last wavelength (µm); increasing with pixel index.
    amplitude, period : float
        Fringe amplitude (relative) and period (cm⁻¹).
    lines : sequence of (centre, peak, fwhm)
        Gaussian emission lines, peak relative to the continuum, FWHM in µm.
    snr : float
        Continuum S/N per pixel.
    seed : int
        Noise seed.
    dichroic : float
        Amplitude of the 0.4 cm⁻¹ dichroic fringe.
    level : float
        Continuum level.
    """
    rng = np.random.default_rng(seed)
    lam = np.linspace(wave_range[0], wave_range[1], n)
    lam = lam + 1e-4 * np.sin(np.linspace(0, 3, n))  # a slightly non-linear dispersion
    x = (lam - lam.mean()) / np.ptp(lam)
    continuum = level * (1.0 + 0.25 * x - 0.15 * x**2 + 0.05 * np.sin(4 * x))
    line_flux = np.zeros(n)
    for centre, peak, fwhm in lines:
        sigma = fwhm / 2.3548
        line_flux += peak * np.interp(centre, lam, continuum) * np.exp(-0.5 * ((lam - centre) / sigma) ** 2)
    truth = continuum + line_flux
    nu = 1.0e4 / lam
    fringe = 1.0 + fringe_pattern(nu, amplitude, period, dichroic=dichroic, **fringe_kw)
    err = np.sqrt(truth * level) / snr
    noise = rng.normal(0.0, 1.0, n) * err
    flux = truth * fringe + noise
    return Column(lam, flux, err, truth, flux / fringe, fringe, continuum, list(lines))


def line_flux_errors(col: Column, corrected: np.ndarray, window: float = 3.0) -> np.ndarray:
    """Relative error of each line's flux after correction, against a perfect correction.

    The flux of a line is Σ(data − continuum) over ±``window`` FWHM. The reference is the
    same sum on ``col.perfect`` (the data divided by the true fringe: same noise), so only
    the fringe-model error at the line counts.
    """
    out = []
    for centre, _peak, fwhm in col.lines:
        sel = np.abs(col.wavelength - centre) < window * fwhm
        ref = np.sum(col.perfect[sel] - col.continuum[sel])
        got = np.sum(corrected[sel] - col.continuum[sel])
        out.append((got - ref) / ref)
    return np.asarray(out)


def line_mask(col: Column, window: float = 3.0) -> np.ndarray:
    """Pixels within ±``window`` FWHM of a line."""
    mask = np.zeros(col.wavelength.size, bool)
    for centre, _peak, fwhm in col.lines:
        mask |= np.abs(col.wavelength - centre) < window * fwhm
    return mask


def residual_fringe_rms(col: Column, factor: np.ndarray) -> tuple[float, float]:
    """RMS of the relative fringe before and after a correction (noise-free, lines excluded).

    Before: rms(F). After: rms(factor·(1 + F) − 1).
    """
    keep = ~line_mask(col)
    before = np.sqrt(np.mean((col.fringe[keep] - 1.0) ** 2))
    after = np.sqrt(np.mean((factor[keep] * col.fringe[keep] - 1.0) ** 2))
    return float(before), float(after)


def synthetic_detector(ncols_per_slice: int = 4, amplitude: float = 0.1, snr: float = 300.0, seed: int = 3,
                       detector: str = "MIRIFUSHORT", band: str = "SHORT", ny: int = 1024,
                       wave_range=(4.9, 5.74)):
    """A small detector Dataset (one exposure, two slices of channel 1 or 3, plus test cases).

    Columns: ``ncols_per_slice`` of slice 101 (301 for MIRIFULONG), as many of slice 102, then
    a column whose slice has only 30 pixels (too few), a faint column (low S/N), a column with
    no slice at all. Returns the Dataset and the list of true :class:`Column` per x (None for
    the special ones).
    """
    import xarray as xr

    ch = 1 if detector == "MIRIFUSHORT" else 3
    nx = 2 * ncols_per_slice + 3
    sci = np.full((1, ny, nx), np.nan, np.float32)
    err = np.full((1, ny, nx), np.nan, np.float32)
    dq = np.zeros((1, ny, nx), np.uint32)
    slc = np.zeros((1, ny, nx), np.int16)
    wave = np.full((1, ny, nx), np.nan)
    truth = []
    for j in range(2 * ncols_per_slice):
        s = 100 * ch + 1 + j // ncols_per_slice
        lo = 4 + (j % 3)
        hi = ny - 3 - (j % 2)
        shift = 0.0005 * j
        col = synthetic_column(n=hi - lo, wave_range=(wave_range[0] + shift, wave_range[1] + shift),
                               amplitude=amplitude, snr=snr, seed=seed + j,
                               lines=((np.mean(wave_range) - 0.2, 2.0, 0.0016), (np.mean(wave_range) + 0.15, 1.0,
                                                                                  0.0016)),
                               phase=0.4 * j)
        sci[0, lo:hi, j] = col.flux
        err[0, lo:hi, j] = col.err
        slc[0, lo:hi, j] = s
        wave[0, lo:hi, j] = col.wavelength
        truth.append((lo, hi, col))
    # a slice that barely crosses this column: 30 pixels
    j = 2 * ncols_per_slice
    col = synthetic_column(n=30, wave_range=(wave_range[0], wave_range[0] + 0.03), amplitude=amplitude, seed=seed)
    sci[0, 500:530, j] = col.flux
    err[0, 500:530, j] = col.err
    slc[0, 500:530, j] = 100 * ch + 2
    wave[0, 500:530, j] = col.wavelength
    truth.append(None)
    # a faint column: S/N ~ 2
    j += 1
    col = synthetic_column(n=ny - 10, wave_range=wave_range, amplitude=amplitude, snr=2.0, seed=seed + 99)
    sci[0, 5:ny - 5, j] = col.flux
    err[0, 5:ny - 5, j] = col.err
    slc[0, 5:ny - 5, j] = 100 * ch + 2
    wave[0, 5:ny - 5, j] = col.wavelength
    truth.append(None)
    truth.append(None)  # last column: off-slice
    ds = xr.Dataset(
        {
            "sci": (("exposure", "y", "x"), sci),
            "err": (("exposure", "y", "x"), err),
            "dq": (("exposure", "y", "x"), dq),
            "slice": (("exposure", "y", "x"), slc),
            "wavelength": (("exposure", "y", "x"), wave),
        },
        coords={"detector": ("exposure", [detector]), "band": ("exposure", [band]),
                "filename": ("exposure", ["synthetic_cal.fits"])},
    )
    return ds.chunk({"exposure": 1, "y": 256, "x": nx}), truth
