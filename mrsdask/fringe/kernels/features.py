"""Spectral features of a column (lines, edges) that the baseline and the sines must not follow.

:func:`find_features` finds them from the envelopes of the data (as the official 1-D variant);
:func:`residual_features` as outliers of the data from a first fringe-corrected model. Also the
column S/N (:func:`der_snr`) and the envelope helpers they use.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import maximum_filter1d

#: DER_SNR noise factor, 1.482602/√6 (Stoehr et al. 2008), as used by the official step.
DER_SNR_FACTOR = 1.482602 / math.sqrt(6.0)


def der_snr(flux: np.ndarray) -> float:
    """Signal-to-noise of a spectrum by DER_SNR: mean / (1.4826/√6 · median|2fᵢ − fᵢ₋₂ − fᵢ₊₂|).

    Returns 0 if the noise estimate is zero or the spectrum has fewer than 5 pixels.
    """
    f = np.asarray(flux, dtype=np.float64)
    f = f[np.isfinite(f)]
    if f.size < 5:
        return 0.0
    noise = DER_SNR_FACTOR * np.median(np.abs(2.0 * f[2:-2] - f[:-4] - f[4:]))
    if not noise > 0:
        return 0.0
    return float(np.mean(f) / noise)


def local_extrema(y: np.ndarray, wide: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices of strict local minima and maxima of ``y``.

    Parameters
    ----------
    y : ndarray
        1-D signal.
    wide : bool
        Compare with two neighbours on each side instead of one.

    Returns
    -------
    minima, maxima : ndarray of int
    """
    y = np.asarray(y, dtype=np.float64)
    r = 2 if wide else 1
    n = y.size
    if n < 2 * r + 1:
        return np.zeros(0, int), np.zeros(0, int)
    core = y[r : n - r]
    lower = np.ones(core.size, bool)
    upper = np.ones(core.size, bool)
    for d in range(1, r + 1):
        for side in (y[r - d : n - r - d], y[r + d : n - r + d]):
            lower &= core < side
            upper &= core > side
    return np.flatnonzero(lower) + r, np.flatnonzero(upper) + r


def envelopes(y: np.ndarray, wide: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper envelopes of ``y``: PCHIP through the local minima / maxima.

    The end points belong to both envelopes (as in the official ``fit_envelope``). The
    abscissa is the pixel index.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    idx = np.arange(n, dtype=np.float64)
    mins, maxs = local_extrema(y, wide)
    out = []
    for ext in (mins, maxs):
        nodes = np.unique(np.concatenate([[0], ext, [n - 1]]))
        if nodes.size < 2:
            out.append(y.copy())
            continue
        out.append(PchipInterpolator(idx[nodes], y[nodes])(idx))
    return out[0], out[1]


def grow_mask(mask: np.ndarray, n: int) -> np.ndarray:
    if n <= 0 or not mask.any():
        return mask
    return maximum_filter1d(mask.astype(np.uint8), size=2 * n + 1, mode="constant").astype(bool)


def _upper_clip_stats(values: np.ndarray, sigma: float, iters: int = 5) -> tuple[float, float]:
    """Median and standard deviation after iterative one-sided (upper) sigma clipping."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 0.0
    for _ in range(iters):
        med = float(np.median(v))
        std = float(np.std(v))
        keep = v < med + sigma * std
        if keep.all() or keep.sum() < 3:
            break
        v = v[keep]
    return float(np.median(v)), float(np.std(v))


def running_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean of ``y`` (same length; shorter windows at the ends)."""
    y = np.asarray(y, dtype=np.float64)
    if window <= 1 or y.size == 0:
        return y.copy()
    c = np.concatenate([[0.0], np.cumsum(y)])
    half = window // 2
    i = np.arange(y.size)
    lo = np.clip(i - half, 0, y.size)
    hi = np.clip(i - half + window, 0, y.size)
    return (c[hi] - c[lo]) / (hi - lo)


# --------------------------------------------------------------------------- features
def find_features(flux: np.ndarray, usable: np.ndarray | None = None, sigma: float = 5.0, grow: int = 1,
                  smooth: int = 0) -> np.ndarray:
    """Mask emission and absorption features so that they are not fitted as fringes.

    The midline of the lower and upper envelopes (through local extrema with two neighbours
    each side) follows the continuum and averages out the fringe; pixels whose relative
    deviation from it is an upper outlier (``> median + sigma·std`` after one-sided sigma
    clipping) are features, grown by ``grow`` pixels. With ``smooth > 1`` the search is
    repeated on a running mean of the flux (against the short-period dichroic fringe) and
    the masks are combined.

    Parameters
    ----------
    flux : ndarray
        Normalised flux, in wavenumber order.
    usable : ndarray of bool, optional
        Pixels to consider (others are ignored when computing the statistics).
    sigma, grow, smooth
        See above.

    Returns
    -------
    ndarray of bool
        True at features.
    """
    flux = np.asarray(flux, dtype=np.float64)
    usable = np.ones(flux.shape, bool) if usable is None else np.asarray(usable, bool)
    mask = np.zeros(flux.shape, bool)
    if usable.sum() < 10:
        return mask
    idx = np.flatnonzero(usable)
    variants = [flux[idx]]
    if smooth and smooth > 1:
        variants.append(running_mean(flux[idx], smooth))
    for y in variants:
        lower, upper = envelopes(y, wide=True)
        mid = 0.5 * (lower + upper)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.abs((flux[idx] - mid) / mid)
        dev[~np.isfinite(dev)] = np.inf
        med, std = _upper_clip_stats(dev[np.isfinite(dev)], sigma)
        hit = np.zeros(flux.shape, bool)
        hit[idx] = dev > med + sigma * std
        mask |= grow_mask(hit, grow)
    return mask


def residual_features(flux: np.ndarray, model: np.ndarray, weights: np.ndarray, sigma: float = 5.0,
                      grow: int = 1) -> np.ndarray:
    """Features as outliers of the data from a smooth, fringe-free model.

    ``t = (flux/model − 1)·√w / s`` with s the robust (MAD) scale of the weighted residuals;
    pixels with ``|t − median(t)| > sigma`` are features, grown by ``grow`` pixels. Only
    pixels with ``weights > 0`` are tested.
    """
    use = (weights > 0) & np.isfinite(model) & (model != 0)
    mask = np.zeros(flux.shape, bool)
    if use.sum() < 10:
        return mask
    t = (flux[use] / model[use] - 1.0) * np.sqrt(weights[use])
    med = np.median(t)
    scale = 1.4826 * np.median(np.abs(t - med))
    if not scale > 0:
        return mask
    mask[use] = np.abs(t - med) > sigma * scale
    return grow_mask(mask, grow)
