"""Residual fringe on any column: a column that cannot be fitted gets a status, never an exception.

The bug: the robust (biweight) baseline rejected every pixel of a knot interval next to a
bright line or a source peak; the spline problem became singular, FITPACK returned NaN
without an error, no pixel had a positive baseline, and the sine search got an empty
problem (``IndexError`` in ``_Problem``), which ended the whole ``mrsdask fringe --residual``
run.
"""

from __future__ import annotations

import dask
import numpy as np
import pytest
from scipy.interpolate import LSQUnivariateSpline

from mrsdask.fringe import kernels as K
from mrsdask.fringe import residual_fringe, residual_fringe_summary
from mrsdask.fringe.kernels import FitSettings, FringeComponent, Status

MAIN = FringeComponent(2.9, 1.5, 10, 10.0, 0.001)


def test_spline_well_posed_matches_fitpack():
    """The Schoenberg–Whitney test agrees with the check of scipy's LSQUnivariateSpline."""
    rng = np.random.default_rng(0)
    outcomes = {True: 0, False: 0}
    for _ in range(1500):
        k = int(rng.integers(1, 4))
        x = np.sort(rng.uniform(0.0, 10.0, int(rng.integers(5, 40))))
        knots = np.sort(rng.uniform(x[0] + 0.01, x[-1] - 0.01, int(rng.integers(0, 8))))
        keep = rng.random(x.size) < rng.uniform(0.3, 1.0)
        keep[[0, -1]] = True  # scipy wants data at both ends of the interval
        try:
            LSQUnivariateSpline(x[keep], np.ones(keep.sum()), knots, k=k, bbox=[x[0], x[-1]])
            fitpack = True
        except ValueError:
            fitpack = False
        assert K.spline_well_posed(x[keep], knots, k, x[0], x[-1]) == fitpack
        outcomes[fitpack] += 1
    assert min(outcomes.values()) > 100  # both answers were exercised


def test_robust_baseline_stays_finite_when_a_knot_interval_is_rejected():
    """Garbage over a few knot intervals: biweight rejects all of them; the spline stays well posed."""
    rng = np.random.default_rng(0)
    x = np.linspace(1740.0, 2040.0, 1000)
    y = 1.0 + rng.normal(0.0, 0.001, x.size)
    y[480:520] += 10.0 * np.where(np.arange(40) % 2, 1.0, -1.0)
    base = K.fit_baseline(x, y, np.ones(x.size), 2.9, degree=2, robust=True)
    assert np.all(np.isfinite(base))
    far = np.ones(x.size, bool)
    far[440:560] = False
    assert np.max(np.abs(base[far] - 1.0)) < 0.01


def test_baseline_ignores_non_finite_values():
    x = np.linspace(1740.0, 2040.0, 1000)
    y = np.ones(x.size)
    y[100] = np.inf
    base = K.fit_baseline(x, y, np.ones(x.size), 2.9, degree=2, robust=True)
    assert np.allclose(base, 1.0)


def test_component_without_a_positive_baseline_is_too_few_pixels():
    x = np.linspace(1740.0, 2040.0, 1000)
    f = -np.ones(x.size)  # a baseline that is negative everywhere: nothing to divide by
    from mrsdask.fringe.kernels import column

    factor, sines, clipped, _, codes, _ = column._fit_components(x, f, np.ones(x.size), [MAIN], FitSettings(), 0.8,
                                                                (x[0], x[-1]), np.zeros(x.size, bool))
    assert codes == [K.ComponentStatus.TOO_FEW_PIXELS]
    assert sines == [None]
    assert np.all(factor == 1.0) and not clipped.any()


def test_sine_search_without_pixels_raises_value_error():
    with pytest.raises(ValueError, match="segments"):
        K.segments(np.zeros(0), 10.0)
    with pytest.raises(ValueError, match="at least one pixel"):
        K.fit_sines(np.zeros(0), np.zeros(0), np.zeros(0), MAIN)
    with pytest.raises(ValueError, match="positive weight"):
        K.fit_sines(np.linspace(1740.0, 2040.0, 100), np.zeros(100), np.zeros(100), MAIN)
    with pytest.raises(ValueError, match="10 pixels"):
        K.fringe_amplitude(np.ones(5), np.arange(5.0), np.ones(5), 2.9, 1.5)


@pytest.fixture(scope="module")
def bright_fit(bright_columns_12a):
    with dask.config.set(scheduler="synchronous"):
        return residual_fringe(bright_columns_12a).compute()


@pytest.mark.parametrize("x0, x1, crashed_slice", [(929, 934, 208), (624, 629, 211)],
                         ids=["point-source-peak", "extended-source-line"])
def test_simulated_science_columns_that_crashed(bright_fit, x0, x1, crashed_slice):
    """Columns of a simulated 12A exposure (sky not subtracted) that raised IndexError before."""
    out = bright_fit.sel(x=slice(x0, x1 - 1))
    status = out["rf_status"].sel(rf_slice=crashed_slice).values[0]
    assert np.all(np.isin(status, [Status.CORRECTED, Status.NO_FRINGES]))
    assert np.any(status == Status.CORRECTED)
    # the fringe found is the injected one (the simulator's period, 2.9 cm⁻¹)
    period = out["rf_period"].sel(rf_slice=crashed_slice, rf_component="main").values[0]
    assert np.nanmedian(period[status == Status.CORRECTED]) == pytest.approx(2.9, abs=0.05)
    assert np.all(np.isfinite(out["rf_factor"].values))


def test_simulated_science_summary_has_no_failures(bright_fit):
    (summary,) = residual_fringe_summary(bright_fit)
    assert summary["fit_failed"] == 0
    assert summary["columns"] >= 10
    assert summary["corrected"] >= 4


@pytest.mark.slow
def test_cli_residual_fringe_on_a_simulated_science_file(bright_science_12a, tmp_path):
    """``mrsdask fringe FILE -o STORE --residual`` on a whole simulated exposure (~1 min)."""
    from mrsdask.io.detector_store import open_detector_store
    from tests.conftest import run_cli

    store = tmp_path / "rf.zarr"
    res = run_cli("fringe", bright_science_12a, "-o", str(store), "--residual", "--n-workers", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wrote the fringe-corrected detector store" in res.stdout
    (summary,) = residual_fringe_summary(open_detector_store(str(store)))
    assert summary["fit_failed"] == 0
    assert summary["corrected"] > 100
