"""The baseline of a column: a least-squares spline in wavenumber with knots about a fringe period apart.

The spline and its reweighting rounds are one compiled call
(:func:`~mrsdask.fringe.kernels.spline_cores.robust_spline_values`, FITPACK's algorithm).

:func:`fit_baseline` (robust Tukey-biweight reweighting for the main fringe, plain for the
dichroic one), with features masked and interpolated across; :func:`baseline_knots` and
:func:`spline_well_posed` choose knots the data can constrain.
"""

from __future__ import annotations

import math

import numpy as np

from mrsdask.fringe.kernels.cores import schoenberg_whitney
from mrsdask.fringe.kernels.spline_cores import SPLINE_OK, robust_spline_values


def baseline_knots(x: np.ndarray, period: float, degree: int) -> np.ndarray:
    """Interior knots for a baseline spline: one per fringe period, uniformly in ν.

    Knots are then merged until every knot interval holds at least ``degree + 1`` of the
    data abscissae ``x`` (sorted), so that the least-squares problem is well posed even
    across masked features and gaps in a column.
    """
    lo, hi = float(x[0]), float(x[-1])
    m = int(math.floor((hi - lo) / period))
    if m < 2:
        return np.zeros(0)
    knots = lo + (hi - lo) / m * np.arange(1, m)
    need = degree + 1
    # Drop knots so that each interval [t_j, t_j+1) has enough points.
    pos = np.searchsorted(x, knots, side="left").tolist()
    kept = []
    start = 0
    for j, p in enumerate(pos):
        if p - start >= need:
            kept.append(j)
            start = p
    while kept and x.size - pos[kept[-1]] < need:
        kept.pop()
    return knots[kept].astype(np.float64)


def spline_well_posed(x: np.ndarray, knots: np.ndarray, degree: int, lo: float, hi: float) -> bool:
    """Whether a least-squares spline through points ``x`` has a unique solution.

    The Schoenberg–Whitney condition (FITPACK's ``fpchec``): with the full knot vector
    ``t`` (``lo`` and ``hi`` repeated ``degree + 1`` times around the interior ``knots``) and
    ``n = len(knots) + degree + 1`` coefficients, there must be points
    ``y₁ < … < yₙ`` of ``x`` with ``tⱼ < yⱼ < tⱼ₊ₖ₊₁`` (``lo ≤ y₁``, ``yₙ ≤ hi``).

    Parameters
    ----------
    x : ndarray
        Abscissae of the points with weight, increasing.
    knots : ndarray
        Interior knots, increasing.
    degree : int
        Spline degree k.
    lo, hi : float
        Ends of the spline's interval.

    Returns
    -------
    bool
    """
    xs = np.asarray(x, np.float64)
    if xs.size > 1 and not np.all(xs[1:] > xs[:-1]):
        xs = np.unique(xs)
    k = int(degree)
    t = np.concatenate([np.full(k + 1, lo), np.asarray(knots, np.float64), np.full(k + 1, hi)])
    return bool(schoenberg_whitney(xs, t, k))


def fit_baseline(x: np.ndarray, y: np.ndarray, weights: np.ndarray, period: float, degree: int = 2,
                 robust: bool = True, domain: float = 10.0, max_iter: int = 10) -> np.ndarray:
    """Smooth baseline of ``y(x)``: LSQ spline with a knot every ``period`` (the knot spacing).

    Parameters
    ----------
    x : ndarray
        Wavenumbers, increasing.
    y : ndarray
        Values.
    weights : ndarray
        Statistical weights (∝ inverse variance); 0 excludes a pixel (features, bad pixels).
    period : float
        Fringe period (cm⁻¹): the knot spacing.
    degree : int
        Spline degree.
    robust : bool
        Iterate Tukey-biweight reweighting with cut-off ``domain`` residual scales.
    max_iter : int
        Most reweighting rounds.

    Returns
    -------
    ndarray
        The baseline at every ``x``; linearly interpolated across runs of zero weight, and
        held constant beyond the first/last weighted pixel. Pixels with a non-finite ``y``
        get no weight.

    Notes
    -----
    A reweighting round that would leave the knots without enough weighted pixels (the
    Schoenberg–Whitney condition, :func:`spline_well_posed`: e.g. every pixel of a knot
    interval rejected next to a bright line) is not done: its least-squares problem is
    singular and FITPACK returns NaN or garbage without an error. The last well-posed fit
    is kept instead.
    """
    use = (weights > 0) & np.isfinite(y)
    xu, yu, wu = x[use], y[use], weights[use]
    if xu.size < degree + 2:
        value = np.average(yu, weights=wu) if xu.size else 1.0
        return np.full(x.shape, value)
    if xu.size > 1 and not np.all(xu[1:] >= xu[:-1]):
        raise ValueError("x must be increasing")
    knots = baseline_knots(xu, period, degree)
    values, code = robust_spline_values(np.ascontiguousarray(xu, np.float64), np.ascontiguousarray(yu, np.float64),
                                        np.ascontiguousarray(wu, np.float64), knots, int(degree), bool(robust),
                                        float(domain), int(max_iter))
    if code != SPLINE_OK:
        raise ValueError("the baseline knots do not satisfy the Schoenberg-Whitney conditions for the pixels")
    base = np.empty(x.shape)
    base[use] = values
    if (~use).any():
        base[~use] = np.interp(x[~use], xu, values)
    return base
