"""The compiled least-squares spline of the baseline against scipy's FITPACK (``LSQUnivariateSpline``)."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import LSQUnivariateSpline

from mrsdask.fringe.kernels.spline_cores import knots_valid, lsq_spline_coefficients, spline_values


def _full_knots(x, knots, k):
    return np.concatenate([np.full(k + 1, x[0]), knots, np.full(k + 1, x[-1])])


def test_lsq_spline_matches_fitpack():
    """Same knot check as FITPACK's fpchec, same fitted values (weights with zeros, repeated x)."""
    rng = np.random.default_rng(1)
    outcomes = {True: 0, False: 0}
    worst, compared = 0.0, 0
    for _ in range(600):
        k = int(rng.integers(1, 4))
        x = np.sort(rng.uniform(0.0, 10.0, int(rng.integers(6, 80))))
        if rng.random() < 0.2:
            x = np.sort(np.concatenate([x, x[: int(rng.integers(1, 4))]]))  # repeated abscissae
        knots = np.sort(rng.uniform(x[0] + 0.01, x[-1] - 0.01, int(rng.integers(0, 16))))
        y = np.sin(x) + rng.normal(0.0, 0.1, x.size)
        w = rng.uniform(0.1, 2.0, x.size) * (rng.random(x.size) > 0.1)
        try:
            ref = LSQUnivariateSpline(x, y, knots, w=w, k=k)
            fitpack = True
        except ValueError:
            fitpack = False
        t = _full_knots(x, knots, k)
        assert knots_valid(x, t, k) == fitpack
        outcomes[fitpack] += 1
        if fitpack:
            ours = spline_values(t, lsq_spline_coefficients(x, y, w, t, k), k, x)
            expected = ref(x)
            if np.all(np.isfinite(expected)):
                worst = max(worst, float(np.max(np.abs(ours - expected))))
                compared += 1
    assert min(outcomes.values()) > 100  # both answers were exercised
    assert compared > 300
    assert worst < 1e-12  # the same operations in the same order: equal to rounding (here, bit for bit)
