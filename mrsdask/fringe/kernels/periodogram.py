"""The weighted generalised Lomb–Scargle periodogram of a column, and its segments.

:class:`Periodogram` computes the χ² reduction of one sine at every frequency of a fixed grid
(segments with their own amplitude and phase add); :func:`gls_power` is the one-call form;
:func:`refine_peak` sharpens a peak at the reference's ``PGRAM_RES``; :func:`segments` splits a
column where its used wavenumbers have wide gaps.
"""

from __future__ import annotations

import math

import numpy as np

from mrsdask.fringe.kernels.cores import gls_reduction, gls_reduction_direct, gls_setup, trig_tables


class Periodogram:
    """Weighted generalised Lomb–Scargle periodogram on a fixed uniform frequency grid.

    With several segments, each has its own amplitude and phase, and the χ² reductions of
    the segments add. The trigonometric tables and the weight-only sums are computed once;
    each call for a new residual costs two passes over the tables.
    """

    def __init__(self, x: np.ndarray, w: np.ndarray, freqs: np.ndarray, seg: np.ndarray | None = None,
                 tables: dict | None = None):
        """``tables``: a dict in which the trigonometric tables are kept and looked up by the
        segment's abscissae and the grid (the fits of one column share it: its later rounds
        search the same pixels on the same grid)."""
        self.freqs = np.ascontiguousarray(freqs, dtype=np.float64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        w = np.ascontiguousarray(w, dtype=np.float64)
        seg = np.zeros(x.size, np.int64) if seg is None else seg
        self.parts = []
        for s in np.unique(seg):
            sel = np.flatnonzero(seg == s)
            if sel.size < 4:
                continue
            xs = np.ascontiguousarray(x[sel])
            key = None if tables is None else (xs.tobytes(), self.freqs[0], self.freqs[-1], self.freqs.size)
            if key is not None and key in tables:
                cos_t, sin_t = tables[key]
            else:
                cos_t, sin_t = trig_tables(xs, self.freqs)
                if key is not None:
                    tables[key] = (cos_t, sin_t)
            ws = np.ascontiguousarray(w[sel])
            self.parts.append((sel, cos_t, sin_t, ws, gls_setup(cos_t, sin_t, ws)))

    def reduction(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Weighted χ² reduction by one sine at each frequency, and the χ² of constants."""
        y = np.asarray(y, dtype=np.float64)
        total = np.zeros(self.freqs.size)
        yy_total = 0.0
        for sel, cos_t, sin_t, ws, sums in self.parts:
            red, yy = gls_reduction(cos_t, sin_t, ws, np.ascontiguousarray(y[sel]), *sums)
            total += red
            yy_total += yy
        return total, yy_total

    def power(self, y: np.ndarray) -> np.ndarray:
        """Fraction of the weighted variance of ``y`` explained by one sine at each frequency."""
        total, yy_total = self.reduction(y)
        if not yy_total > 0:
            return np.zeros(self.freqs.size)
        return total / yy_total


def gls_power(x: np.ndarray, y: np.ndarray, weights: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Weighted generalised (floating-mean) Lomb–Scargle power of ``y(x)`` at ``freqs``.

    Power is the fraction of the weighted variance removed by fitting ``c + a cos + b sin``
    (Zechmeister & Kürster 2009), between 0 and 1. ``freqs`` must be uniformly spaced.
    """
    x = np.asarray(x, np.float64)
    return Periodogram(x - 0.5 * (x.min() + x.max()), np.asarray(weights, np.float64),
                        np.asarray(freqs, np.float64)).power(np.asarray(y, np.float64))


def refine_peak(x, w, seg, y, f_peak, df, f_lo, f_hi, pgram_res):
    """Best frequency near ``f_peak``, on a grid of step about ``pgram_res`` in period."""
    a, b = max(f_lo, f_peak - df), min(f_hi, f_peak + df)
    if not (b > a) or not pgram_res > 0:
        return f_peak
    n = int(min(400, math.floor((1.0 / a - 1.0 / b) / pgram_res) + 1))
    if n < 3:
        return f_peak
    freqs = np.linspace(a, b, n)
    # evaluated once: summed in one pass per segment, as Periodogram(...).power(y) without its tables
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    y = np.asarray(y, np.float64)
    seg = np.zeros(x.size, np.int64) if seg is None else seg
    total = np.zeros(n)
    yy_total = 0.0
    for s in np.unique(seg):
        sel = np.flatnonzero(seg == s)
        if sel.size < 4:
            continue
        red, yy = gls_reduction_direct(np.ascontiguousarray(x[sel]), freqs, np.ascontiguousarray(w[sel]),
                                       np.ascontiguousarray(y[sel]))
        total += red
        yy_total += yy
    if not yy_total > 0:
        return float(freqs[0])
    return float(freqs[np.argmax(total / yy_total)])


def segments(nu: np.ndarray, gap: float, min_pixels: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Split sorted wavenumbers into pieces separated by more than ``gap``.

    Pieces with fewer than ``min_pixels`` pixels are joined to their neighbour, so every
    segment holds at least one wavenumber.

    Returns
    -------
    seg : ndarray of int
        Segment index of each wavenumber.
    breaks : ndarray
        Wavenumbers (gap centres) separating the segments.

    Raises
    ------
    ValueError
        If ``nu`` is empty (there is no segment to make).
    """
    nu = np.asarray(nu, np.float64)
    if nu.size == 0:
        raise ValueError("no wavenumbers to split into segments")
    cut = np.flatnonzero(np.diff(nu) > gap) + 1 if nu.size > 1 else np.zeros(0, int)
    bounds = [0] + list(cut) + [nu.size]
    changed = True
    while changed and len(bounds) > 2:
        changed = False
        sizes = np.diff(bounds)
        j = int(np.argmin(sizes))
        if sizes[j] < min_pixels:
            # Remove the boundary shared with the smaller neighbour.
            if j == 0:
                del bounds[1]
            elif j == len(sizes) - 1:
                del bounds[-2]
            else:
                del bounds[j if sizes[j - 1] <= sizes[j + 1] else j + 1]
            changed = True
    inner = np.asarray(bounds[1:-1], int)
    breaks = 0.5 * (nu[inner - 1] + nu[inner]) if inner.size else np.zeros(0)
    seg = np.searchsorted(breaks, nu).astype(np.int64)
    return seg, breaks
