"""Spectral features of a column (lines, edges) that the baseline and the sines must not follow.

:func:`find_features` finds them from the envelopes of the data (as the official 1-D variant);
:func:`residual_features` as outliers of the data from a first fringe-corrected model. Also the
column S/N (:func:`der_snr`) and the envelope helpers they use.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import label, maximum_filter1d

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


def local_extrema(y: np.ndarray, half_width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices of strict local minima and maxima of ``y``.

    Parameters
    ----------
    y : ndarray
        1-D signal.
    half_width : int
        A pixel is an extremum if it is strictly below (above) its ``half_width``
        neighbours on each side.

    Returns
    -------
    minima, maxima : ndarray of int
    """
    y = np.asarray(y, dtype=np.float64)
    r = max(1, int(half_width))
    n = y.size
    if n < 2 * r + 1:
        return np.zeros(0, int), np.zeros(0, int)
    win = np.lib.stride_tricks.sliding_window_view(y, 2 * r + 1)
    others = np.delete(win, r, axis=1)
    core = y[r : n - r]
    return np.flatnonzero(core < others.min(axis=1)) + r, np.flatnonzero(core > others.max(axis=1)) + r


def pchip(xn: np.ndarray, yn: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Monotone cubic (PCHIP) interpolation through ``(xn, yn)`` at ``x`` (within ``[xn[0], xn[-1]]``).

    The derivatives of scipy's ``PchipInterpolator`` (Fritsch–Carlson weighted harmonic mean,
    zero at local extrema, the shape-preserving three-point ends), evaluated as Hermite
    cubics without building the piecewise-polynomial object (5× faster on a column).
    """
    xn = np.asarray(xn, np.float64)
    yn = np.asarray(yn, np.float64)
    h = np.diff(xn)
    m = np.diff(yn) / h
    if xn.size == 2:
        d = np.array([m[0], m[0]])
    else:
        d = np.zeros(xn.size)
        w1 = 2.0 * h[1:] + h[:-1]
        w2 = h[1:] + 2.0 * h[:-1]
        same = (np.sign(m[1:]) == np.sign(m[:-1])) & (m[1:] != 0) & (m[:-1] != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            whmean = (w1 / m[:-1] + w2 / m[1:]) / (w1 + w2)
        d[1:-1][same] = 1.0 / whmean[same]
        for end, (h0, h1, m0, m1) in ((0, (h[0], h[1], m[0], m[1])), (-1, (h[-1], h[-2], m[-1], m[-2]))):
            e = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
            if np.sign(e) != np.sign(m0):
                e = 0.0
            elif np.sign(m0) != np.sign(m1) and abs(e) > 3.0 * abs(m0):
                e = 3.0 * m0
            d[end] = e
    j = np.clip(np.searchsorted(xn, x, side="right") - 1, 0, xn.size - 2)
    hj = h[j]
    t = (x - xn[j]) / hj
    t2 = t * t
    t3 = t2 * t
    return ((2.0 * t3 - 3.0 * t2 + 1.0) * yn[j] + (t3 - 2.0 * t2 + t) * hj * d[j]
            + (3.0 * t2 - 2.0 * t3) * yn[j + 1] + (t3 - t2) * hj * d[j + 1])


def envelopes(y: np.ndarray, half_width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper envelopes of ``y``: PCHIP through the local minima / maxima.

    The extrema are those of :func:`local_extrema` with ``half_width``. The end points
    belong to both envelopes (as in the official ``fit_envelope``). The abscissa is the
    pixel index.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    idx = np.arange(n, dtype=np.float64)
    mins, maxs = local_extrema(y, half_width)
    out = []
    for ext in (mins, maxs):
        nodes = np.unique(np.concatenate([[0], ext, [n - 1]]))
        if nodes.size < 2:
            out.append(y.copy())
            continue
        out.append(pchip(idx[nodes], y[nodes], idx))
    return out[0], out[1]


def grow_mask(mask: np.ndarray, n: int) -> np.ndarray:
    if n <= 0 or not mask.any():
        return mask
    return maximum_filter1d(mask.astype(np.uint8), size=2 * n + 1, mode="constant").astype(bool)


def _clipped_stats(values: np.ndarray, sigma: float, iters: int = 5, robust_start: bool = True) -> tuple[float, float]:
    """Median and standard deviation of the values below ``median + sigma·std`` (iterated).

    The first threshold uses the robust standard deviation (1.4826 × MAD), not the plain
    one: a few strong lines (ten times the continuum) inflate that so much that nothing, not
    even the lines, is clipped. The standard deviation of what is kept then follows the
    spread of the fringe, which is not Gaussian (MAD alone would clip fringe peaks). With
    ``robust_start=False`` the first threshold uses the plain standard deviation (and the
    clipping stops when it clips nothing): the statistics of the smoothed search, where a
    line spread over the running mean lifts the midline around it and a robust threshold
    would mask whole fringe periods there.
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 0.0
    med = float(np.median(v))
    scale = 1.4826 * float(np.median(np.abs(v - med))) if robust_start else float(np.std(v))
    for _ in range(iters):
        keep = v < med + sigma * scale
        if keep.sum() < 3 or (not robust_start and keep.all()):
            break
        new_med, new_scale = float(np.median(v[keep])), float(np.std(v[keep]))
        if new_med == med and new_scale == scale:
            break
        med, scale = new_med, new_scale
    return med, scale


def with_wings(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Grow each run of ``strong`` pixels over the contiguous ``weak`` pixels around it.

    Hysteresis: a line is detected by its core (``strong``) and masked with its wings (the
    neighbouring pixels still above a lower threshold, ``weak``), which a fringe fit would
    otherwise follow.
    """
    if not strong.any():
        return strong
    labels, _ = label(strong | weak)
    keep = np.unique(labels[strong])
    return np.isin(labels, keep[keep > 0])


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
                  smooth: int = 0, sigma_wings: float = 2.0, half_width: int = 2) -> np.ndarray:
    """Mask emission and absorption features so that they are not fitted as fringes.

    The midline of the lower and upper envelopes (through local extrema over ``half_width``
    pixels each side: :func:`envelopes`) follows the continuum and averages out the fringe; pixels whose relative
    deviation from it is an upper outlier (``> median + sigma·s``, s the standard deviation
    after one-sided clipping that starts from the robust one) are features, extended over their neighbours above ``median + sigma_wings·s``
    (the line wings: :func:`with_wings`; on the data, not the smoothed variant below) and
    grown by ``grow`` pixels. With ``smooth > 1`` the search is
    repeated on a running mean of the flux (against the short-period dichroic fringe) and
    the masks are combined.

    Parameters
    ----------
    flux : ndarray
        Normalised flux, in wavenumber order.
    usable : ndarray of bool, optional
        Pixels to consider (others are ignored when computing the statistics).
    sigma, grow, smooth, sigma_wings
        See above.
    half_width : int
        Extrema window of the envelopes (pixels each side). It must be wider than a ripple
        shorter than the fringe (the 0.4 cm⁻¹ dichroic fringe is 4–5 pixels in channels 3
        and 4, and with two pixels each side its extrema on the slopes of the main fringe
        pull the envelopes inside it: the midline then follows the fringe and its crests
        are masked as features), and narrower than half a fringe period.

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
    for i, y in enumerate(variants):
        dev, thresholds = _envelope_deviation(flux[idx], y, 2, sigma, sigma_wings, robust_start=i == 0)
        strong = dev > thresholds[0]
        # wings from the data themselves only: the smoothed variant spreads every line already
        found = with_wings(strong, dev > thresholds[1]) if i == 0 else strong
        if half_width > 2 and found.any():
            # only features that stand out from the midline of the wide envelopes too
            dev_wide, thresholds_wide = _envelope_deviation(flux[idx], y, half_width, sigma, sigma_wings,
                                                            robust_start=i == 0)
            found = with_wings(found & (dev_wide > thresholds_wide[0]), found)
        hit = np.zeros(flux.shape, bool)
        hit[idx] = found
        mask |= grow_mask(hit, grow)
    return mask


def _envelope_deviation(flux, y, half_width, sigma, sigma_wings, robust_start):
    """``|flux/mid − 1|`` (mid: midline of the envelopes of ``y``) and its core and wing thresholds."""
    lower, upper = envelopes(y, half_width)
    mid = 0.5 * (lower + upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs((flux - mid) / mid)
    dev[~np.isfinite(dev)] = np.inf
    med, scale = _clipped_stats(dev[np.isfinite(dev)], sigma, robust_start=robust_start)
    return dev, (med + sigma * scale, med + sigma_wings * scale)


def residual_features(flux: np.ndarray, model: np.ndarray, weights: np.ndarray, sigma: float = 5.0,
                      grow: int = 1, sigma_wings: float = 2.0) -> np.ndarray:
    """Features as outliers of the data from a smooth, fringe-free model.

    ``t = (flux/model − 1)·√w / s`` with s the robust (MAD) scale of the weighted residuals;
    pixels with ``|t − median(t)| > sigma`` are features, extended over their neighbours of
    the same sign above ``sigma_wings`` (:func:`with_wings`), grown by ``grow`` pixels. Only
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
    d = (t - med) / scale
    strong = np.abs(d) > sigma
    mask[use] = with_wings(strong & (d > 0), d > sigma_wings) | with_wings(strong & (d < 0), d < -sigma_wings)
    return grow_mask(mask, grow)
