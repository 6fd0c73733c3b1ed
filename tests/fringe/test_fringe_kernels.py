"""Unit tests of the per-column residual-fringe kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrsdask.fringe import kernels as K
from mrsdask.fringe.kernels import FitSettings, FringeComponent, Status

MAIN = FringeComponent(2.9, 1.5, 10, 10.0, 0.001)


def _sine_data(n=900, period=2.9, amp=0.05, noise=0.005, seed=0, nu_range=(1740.0, 2040.0)):
    rng = np.random.default_rng(seed)
    nu = np.linspace(*nu_range, n)
    y = amp * np.sin(2 * np.pi * nu / period + 0.3) + rng.normal(0, noise, n)
    return nu, y, np.ones(n)


def test_der_snr_of_constant_plus_noise():
    rng = np.random.default_rng(1)
    flux = 100.0 + rng.normal(0, 1.0, 5000)
    assert K.der_snr(flux) == pytest.approx(100.0, rel=0.05)
    assert K.der_snr(np.ones(3)) == 0.0


def test_gls_power_peaks_at_injected_frequency():
    nu, y, w = _sine_data(noise=0.001)
    freqs = np.linspace(1 / 4.4, 1 / 1.4, 2000)
    power = K.gls_power(nu, y, w, freqs)
    assert 1 / freqs[np.argmax(power)] == pytest.approx(2.9, abs=0.005)
    assert 0.9 < power.max() <= 1.0


def test_fit_sines_recovers_a_sine():
    nu, y, w = _sine_data(amp=0.05, noise=0.005)
    fit = K.fit_sines(nu, y, w, MAIN)
    assert fit.n >= 1
    assert fit.dominant_period() == pytest.approx(2.9, abs=0.003)
    assert fit.amplitude.max() == pytest.approx(0.05, rel=0.03)
    model = fit(nu, with_offset=False)
    truth = 0.05 * np.sin(2 * np.pi * nu / 2.9 + 0.3)
    assert np.std(model - truth) < 0.001


@pytest.mark.parametrize("seed", range(5))
def test_fit_sines_finds_nothing_in_noise(seed):
    nu, y, w = _sine_data(amp=0.0, noise=0.01, seed=seed)
    fit = K.fit_sines(nu, y, w, MAIN)
    assert fit.n == 0
    assert fit.log_evidence.size >= 2  # the 1-sine model was tried and rejected


def test_linear_evidence_matches_numerical_integration():
    """log_evidence of a constant model against brute-force integration over (c, s)."""
    rng = np.random.default_rng(3)
    n = 60
    y = 0.2 + rng.normal(0, 0.05, n)
    w = np.ones(n)
    limits, noise = 3.0, (0.001, 10.0)
    chi_min = float(np.sum((y - y.mean()) ** 2))
    approx = K.log_evidence(chi_min, n, math.log(n), 1, math.log(2 * limits), 0.0, noise)
    c = np.linspace(y.mean() - 0.05, y.mean() + 0.05, 801)
    log_s = np.linspace(math.log(0.02), math.log(0.12), 801)
    cc, ll = np.meshgrid(c, log_s, indexing="ij")
    s = np.exp(ll)
    chi = chi_min + n * (cc - y.mean()) ** 2
    loglike = -n * np.log(s) - chi / (2 * s**2) - 0.5 * n * math.log(2 * math.pi)
    # priors: c uniform on [-3, 3]; s Jeffreys on [0.001, 10] → uniform in log s
    integrand = np.exp(loglike - loglike.max())
    z = integrand.sum() * (c[1] - c[0]) * (log_s[1] - log_s[0]) / (2 * limits) / math.log(noise[1] / noise[0])
    exact = math.log(z) + loglike.max()
    assert approx == pytest.approx(exact, abs=0.05)


def test_baseline_knots_respect_gaps():
    x = np.concatenate([np.linspace(0, 40, 200), np.linspace(100, 140, 200)])
    knots = K.baseline_knots(x, 3.0, 2)
    counts = np.diff(np.searchsorted(x, np.concatenate([[x[0]], knots, [x[-1] + 1]])))
    assert np.all(counts >= 3)
    assert np.count_nonzero((knots > 40) & (knots < 100)) <= 1  # no empty knot interval in the gap


def test_fit_baseline_follows_continuum_not_fringe():
    nu = np.linspace(1740.0, 2040.0, 1000)
    smooth = 1.0 + 0.2 * (nu - 1900) / 150
    w = np.ones(nu.size)
    w[480:500] = 0
    assert np.allclose(K.fit_baseline(nu, smooth, w, 2.9, 2, robust=True), smooth, rtol=1e-10)
    y = smooth * (1 + 0.05 * np.sin(2 * np.pi * nu / 2.9))
    dev = np.abs(K.fit_baseline(nu, y, w, 2.9, 2, robust=True) / smooth - 1)
    # One knot per period cannot follow the fringe; only the ends and the gap edges (where
    # knot intervals are short) pick some of it up, which the back-fitting of fit_column removes.
    assert dev[100:420].max() < 2e-3 and dev[560:900].max() < 2e-3
    assert dev[480:500].max() < 0.02


def test_find_features_masks_lines_not_fringes():
    nu = np.linspace(1740.0, 2040.0, 1000)
    y = 1.0 + 0.08 * np.sin(2 * np.pi * nu / 2.9)
    y[300:304] += np.array([0.5, 1.5, 1.4, 0.4])
    mask = K.find_features(y)
    assert mask[300:304].all()
    assert mask.sum() < 20


def test_clip_runaway_zeroes_large_excursions():
    nu = np.linspace(0, 300, 1000)
    fringe = 0.05 * np.sin(2 * np.pi * nu / 3.0)
    fringe[500:540] *= 10
    out, clipped = K.clip_runaway(fringe, nu, 0.4, 3.0)
    assert clipped[500:540].all()
    assert np.all(out[clipped] == 0)
    assert clipped.sum() < 120


def test_clip_runaway_zeroes_a_model_acting_as_an_offset():
    # a sine of unresolved frequency on the few pixels of a slice-edge column (seen in band 3A:
    # F ≈ +0.55 on 43 pixels, factor 0.63): small peak-to-peak over a period, far from 0
    nu = np.linspace(1000.0, 1010.0, 43)
    fringe = 0.55 + 0.02 * np.sin(2 * np.pi * nu / 3.0)
    out, clipped = K.clip_runaway(fringe, nu, 0.8, 3.0)
    assert clipped.all() and np.all(out == 0)
    # an ordinary fringe within the allowed amplitude is left alone
    out, clipped = K.clip_runaway(0.3 * np.sin(2 * np.pi * nu / 3.0), nu, 0.8, 3.0)
    assert not clipped.any()


def test_segments_split_on_large_gaps_and_join_small_pieces():
    nu = np.concatenate([np.arange(0, 50, 0.3), np.arange(200, 230, 0.3), np.arange(400, 401, 0.3)])
    seg, breaks = K.segments(nu, gap=15.0, min_pixels=20)
    assert breaks.size == 1
    assert seg.max() == 1
    assert np.all(seg[nu < 100] == 0) and np.all(seg[nu > 100] == 1)


def test_fit_column_statuses():
    nu = np.linspace(1740.0, 2040.0, 1000)
    flux = 100 * (1 + 0.05 * np.sin(2 * np.pi * nu / 2.9))
    assert K.fit_column(flux[:40], nu[:40], [MAIN]).status == Status.TOO_FEW_PIXELS
    noisy = np.random.default_rng(0).normal(1.0, 1.0, 1000)
    assert K.fit_column(noisy, nu, [MAIN]).status == Status.LOW_SNR
    short = np.linspace(1740.0, 1750.0, 200)
    res = K.fit_column(100 + np.sin(short), short, [MAIN])
    assert res.status == Status.TOO_FEW_PERIODS
    assert np.all(res.factor == 1)
    placeholder = FringeComponent(0.0, 0.0, 0)
    assert K.fit_column(flux, nu, [placeholder]).status == Status.NO_FRINGES
    flat = 100 + np.random.default_rng(2).normal(0, 0.2, 1000)
    res = K.fit_column(flat, nu, [MAIN])
    assert res.status == Status.NO_FRINGES
    assert np.all(res.factor == 1)


def test_fit_column_keeps_input_order_and_nans():
    nu = np.linspace(1740.0, 2040.0, 1000)[::-1]  # SW columns: ν decreases along the column
    flux = 100 * (1 + 0.05 * np.sin(2 * np.pi * nu / 2.9)) + np.random.default_rng(4).normal(0, 0.1, 1000)
    flux[10] = np.nan
    res = K.fit_column(flux, nu, [MAIN])
    assert res.status == Status.CORRECTED
    assert res.factor[10] == 1.0
    corrected = flux * res.factor
    good = np.isfinite(corrected)
    assert np.std(corrected[good] / 100 - 1) < 0.003
    assert res.periods[0] == pytest.approx(2.9, abs=0.005)


def test_fit_column_ignore_mask_excludes_pixels_from_fit():
    nu = np.linspace(1740.0, 2040.0, 1000)
    flux = 100 * (1 + 0.05 * np.sin(2 * np.pi * nu / 2.9))
    flux[400:450] *= 3.0  # garbage the user asks to ignore
    ignore = np.zeros(1000, bool)
    ignore[395:455] = True
    res = K.fit_column(flux, nu, [MAIN], ignore=ignore, settings=FitSettings(refine_features=False))
    assert res.status == Status.CORRECTED
    keep = ~ignore
    assert np.std(flux[keep] * res.factor[keep] / 100 - 1) < 0.003
    assert res.features[ignore].all()


def test_block_elimination_matches_full_solve():
    """The candidate solve on the cached model equals the full least-squares solve."""
    rng = np.random.default_rng(7)
    nu = np.concatenate([np.linspace(1740.0, 1800.0, 300), np.linspace(1900.0, 2000.0, 400)])
    y = 0.05 * np.sin(2 * np.pi * nu / 2.9) * (1 + 0.002 * (nu - 1870)) + rng.normal(0, 0.003, nu.size)
    w = rng.uniform(0.5, 1.5, nu.size)
    from mrsdask.fringe.kernels import sines as sine_search

    prob = sine_search._Problem(nu, y, w, 5 * 2.9, 20, FitSettings())
    assert prob.nseg == 2
    freqs, terms = np.array([1 / 2.9]), np.array([2])
    prob.set_base(freqs, terms)
    z_add, c_add = prob.log_z_add(1 / 3.05, 3)
    z_full, c_full = prob.log_z(np.array([1 / 2.9, 1 / 3.05]), np.array([2, 3]))
    assert z_add == pytest.approx(z_full, abs=1e-6)
    np.testing.assert_allclose(c_add, c_full, rtol=1e-6, atol=1e-9)


def test_max_ptp_array_follows_input_order():
    nu = np.linspace(2040.0, 1740.0, 1000)  # decreasing, as in SW columns
    # one fringe of 0.1 peak-to-peak (a model that follows it: no step in amplitude, which an
    # envelope of 3 Legendre terms cannot follow), allowed in the first half, not in the second
    fringe = 0.05 * np.sin(2 * np.pi * nu / 2.9)
    flux = 100 * (1 + fringe)
    limit = np.where(np.arange(1000) < 500, 0.2, 0.08)
    res = K.fit_column(flux, nu, [MAIN], max_ptp=limit)
    assert res.clipped[600:].mean() > 0.9
    assert res.clipped[:400].mean() < 0.1


def test_pchip_matches_scipy():
    from scipy.interpolate import PchipInterpolator

    rng = np.random.default_rng(3)
    x = np.arange(500.0)
    for n in (2, 3, 7, 40):
        xn = np.unique(np.concatenate([[0.0, 499.0], rng.choice(np.arange(1, 499), n - 2, replace=False)]))
        for yn in (rng.normal(size=xn.size), np.sin(xn / 30.0)):
            np.testing.assert_allclose(K.features.pchip(xn, yn, x), PchipInterpolator(xn, yn)(x), rtol=0, atol=1e-12)
