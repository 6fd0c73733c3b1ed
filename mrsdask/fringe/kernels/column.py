"""One column, whole: baseline, features, sines and the runaway check for every fringe component.

:func:`fit_column` is the per-column algorithm of :mod:`mrsdask.fringe.kernels`;
:func:`clip_runaway` zeroes a fit where its local amplitude runs away; :func:`fringe_amplitude`
measures what fringe is left in a column (a diagnostic, used by the tests and benchmarks).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from mrsdask.fringe.kernels.baseline import fit_baseline
from mrsdask.fringe.kernels.features import der_snr, find_features, grow_mask, residual_features
from mrsdask.fringe.kernels.model import ColumnFit, ComponentStatus, FitSettings, Status
from mrsdask.fringe.kernels.periodogram import Periodogram, segments
from mrsdask.fringe.kernels.sines import fit_sines, refit_sines


def fringe_amplitude(flux: np.ndarray, wavenumber: np.ndarray, weights: np.ndarray, period: float,
                     dperiod: float, segment_gap: float = 5.0, oversample: float = 8.0) -> float:
    """Amplitude of the strongest sine left in a spectrum, within a window of periods.

    A measure of (residual) fringing that does not depend on any fringe fit: the spectrum is
    divided by a smooth cubic spline with knots every ``2·(period + dperiod)`` (too stiff to
    follow a sine of the window), and the weighted single-sine amplitude
    ``√(2·Δχ²/Σw)`` is maximised over periods in ``period ± dperiod`` on a fine grid
    (independent phases in pieces separated by more than ``segment_gap`` periods).

    Parameters
    ----------
    flux, wavenumber : ndarray
        The spectrum and its wavenumbers (cm⁻¹).
    weights : ndarray
        Statistical weights; 0 excludes a pixel (mask features here).
    period, dperiod : float
        Window of periods (cm⁻¹).

    Returns
    -------
    float
        Relative amplitude (0.05 = 5 %).

    Raises
    ------
    ValueError
        If fewer than 10 pixels have weight and finite values.
    """
    nu = np.asarray(wavenumber, np.float64)
    f = np.asarray(flux, np.float64)
    w = np.asarray(weights, np.float64)
    use = (w > 0) & np.isfinite(f) & np.isfinite(nu)
    if np.count_nonzero(use) < 10:
        raise ValueError(f"fringe_amplitude needs at least 10 pixels with weight, got {np.count_nonzero(use)}")
    order = np.flatnonzero(use)[np.argsort(nu[use], kind="stable")]
    x, y, ww = nu[order], f[order], w[order] / np.mean(w[order])
    base = fit_baseline(x, y, ww, 2.0 * (period + dperiod), degree=3, robust=True)
    r = y / base - 1.0
    seg, _ = segments(x, segment_gap * period)
    span = max(float(np.ptp(x[seg == s])) for s in np.unique(seg))
    f_lo, f_hi = 1.0 / (period + dperiod), 1.0 / max(period - dperiod, 1e-6)
    grid = np.arange(f_lo, f_hi, 1.0 / (oversample * span))
    red, _ = Periodogram(x - x.mean(), ww, grid, seg).reduction(r)
    return float(np.sqrt(2.0 * red.max() / np.sum(ww)))


# --------------------------------------------------------------------------- runaway check
def clip_runaway(fringe: np.ndarray, nu: np.ndarray, max_ptp, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero the fringe model where its local peak-to-peak amplitude is too large.

    The local peak-to-peak amplitude is the running max minus the running min of the model
    over one fringe period. Where it exceeds ``max_ptp``, or where ``|F|`` itself exceeds
    ``max_ptp / 2`` (a model that is nearly constant over a period, e.g. a sine of unresolved
    frequency on the few pixels of a slice-edge column acting as an offset, has a small
    peak-to-peak amplitude but can be far from 0), the model is set to 0, over that
    stretch grown by one period, and the pixels are flagged. This is the intent of the
    official ``check_res_fringes`` (which compares the sum of the absolute envelopes with
    twice the MAX_AMP table), without its envelope nodes.

    Parameters
    ----------
    fringe : ndarray
        Fringe model F (relative), in wavenumber order.
    nu : ndarray
        Wavenumbers (increasing).
    max_ptp : float or ndarray
        Largest allowed peak-to-peak amplitude, per pixel or one value.
    period : float
        Fringe period (cm⁻¹).

    Returns
    -------
    fringe : ndarray
        The model, zeroed where it ran away.
    clipped : ndarray of bool
        Where it was zeroed.
    """
    n = fringe.size
    if n < 3:
        return fringe, np.zeros(n, bool)
    step = np.median(np.abs(np.diff(nu)))
    win = int(max(3, min(n, round(period / step) if step > 0 else 3)))
    ptp = maximum_filter1d(fringe, win, mode="nearest") - minimum_filter1d(fringe, win, mode="nearest")
    limit = np.asarray(max_ptp)
    bad = (ptp > limit) | (np.abs(fringe) > 0.5 * limit)
    if not bad.any():
        return fringe, bad
    bad = grow_mask(bad, win // 2 + 1)
    out = fringe.copy()
    out[bad] = 0.0
    return out, bad


# --------------------------------------------------------------------------- support and gaps
def support_taper(x: np.ndarray, lo: float, hi: float, length: float) -> np.ndarray:
    """Weight 1 on ``[lo, hi]`` falling to 0 (cos²) over ``length`` beyond each end.

    The fringe model is multiplied by it: no correction where the fit had no pixels (the
    official 1-D fit gives no weight above 27.6 µm), rather than an extrapolated one.
    """
    d = np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0)
    if not length > 0:
        return (d == 0.0).astype(np.float64)
    u = np.clip(d / length, 0.0, 1.0)
    return np.cos(0.5 * np.pi * u) ** 2


def bound_in_features(fringe: np.ndarray, x: np.ndarray, features: np.ndarray, period: float,
                      margin: float = 1.1, max_periods: float = 3.0) -> np.ndarray:
    """Keep the fringe model under masked features to the amplitude it has around them.

    The local amplitude (running max of ``|F|`` over one period) outside the features is
    interpolated linearly across each feature narrower than ``max_periods`` periods (lines,
    not whole stretches of a column); where the model's own local amplitude there exceeds
    ``margin`` times that, it is scaled down to it. The phase is the model's (a line on a
    fringe peak keeps the peak's correction); only a model that grows where no data
    constrain it is changed.
    """
    if not features.any() or features.all():
        return fringe
    # runs of features, and which are narrow enough to interpolate across
    edges = np.diff(np.concatenate([[0], features.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    narrow = (x[stops - 1] - x[starts]) <= max_periods * period
    if not narrow.any():
        return fringe
    run_id = np.cumsum(edges[:-1] == 1) - 1
    features = features & narrow[np.clip(run_id, 0, None)]
    n = fringe.size
    step = np.median(np.abs(np.diff(x))) if n > 1 else 0.0
    win = int(max(3, min(n, round(period / step) if step > 0 else 3)))
    mag = np.abs(fringe)
    env_out = maximum_filter1d(np.where(features, 0.0, mag), win, mode="nearest")
    env_all = maximum_filter1d(mag, win, mode="nearest")
    allowed = np.interp(x[features], x[~features], env_out[~features]) * margin
    have = env_all[features]
    scale = np.ones(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale[features] = np.where(have > allowed, allowed / have, 1.0)
    return fringe * scale


# --------------------------------------------------------------------------- one column
def _fit_one(x, g, w, comp, settings, max_ptp, prev, support, feats, tables=None):
    """One component on data ``g``: (factor, sines, clipped, baseline, ComponentStatus)."""
    n = g.size
    use = w > 0
    xu = x[use]
    if xu.size < settings.min_pixels:
        return None, prev, None, None, ComponentStatus.TOO_FEW_PIXELS
    if (xu[-1] - xu[0]) / comp.ffreq < settings.min_periods:
        return None, prev, None, None, ComponentStatus.TOO_FEW_PERIODS
    degree = comp.baseline_degree
    start = g if prev is None or prev.n == 0 else g / (1.0 + prev(x, with_offset=False))
    spacing = settings.baseline_knot_periods * comp.ffreq
    base = fit_baseline(x, start, w, spacing, degree, comp.use_robust, settings.robust_domain)
    ok = use & (base > 0)
    if np.count_nonzero(ok) < settings.min_pixels:
        # a baseline that is not positive where the data are: nothing to divide by
        return None, prev, None, None, ComponentStatus.TOO_FEW_PIXELS
    resid = np.zeros(n)
    resid[ok] = g[ok] / base[ok] - 1.0
    sines = fit_sines(x[ok], resid[ok], w[ok], comp, settings, start=prev, tables=tables)
    for _ in range(settings.backfit if sines.n else 0):
        model = sines(x, with_offset=False)
        base_new = fit_baseline(x, g / (1.0 + model), w, spacing, degree, comp.use_robust, settings.robust_domain)
        ok_new = use & (base_new > 0)
        if np.count_nonzero(ok_new) < settings.min_pixels:
            break  # keep the last baseline and sines that had the pixels
        base, ok = base_new, ok_new
        resid = np.zeros(n)
        resid[ok] = g[ok] / base[ok] - 1.0
        sines = refit_sines(x[ok], resid[ok], w[ok], sines, comp, settings)
    if sines.n == 0:
        return np.ones(n), sines, np.zeros(n, bool), base, ComponentStatus.NO_EVIDENCE
    fringe = sines(x, with_offset=False) * support_taper(x, support[0], support[1],
                                                         settings.taper_periods * comp.ffreq)
    fringe, bad = clip_runaway(fringe, x, max_ptp, comp.ffreq)
    if settings.protect_features:
        fringe = bound_in_features(fringe, x, feats, comp.ffreq)
    code = ComponentStatus.CLIPPED if bad.all() else ComponentStatus.FITTED
    return 1.0 / (1.0 + fringe), sines, bad, base, code


def _response(change, x, w, sines, comp, settings) -> float:
    """How much a relative change of a component's input moves its fitted fringe, to first order.

    The fringe model is linear in its coefficients: a change ``Δ`` of the input (the data
    divided by the others' factors) changes the residual by about ``Δ``, and the model by
    the fit of its own sines (same frequencies and envelopes) to ``Δ``. Returns the largest
    absolute value of that fit over the weighted pixels; without sines, the largest ``|Δ|``.
    """
    use = w > 0
    if sines is None or sines.n == 0 or np.count_nonzero(use) <= 2 * sines.coef.size:
        return float(np.max(np.abs(change[use]))) if use.any() else 0.0
    moved = refit_sines(x[use], change[use], w[use], sines, replace(comp, robust=False), settings)
    if moved is sines:  # singular: no estimate
        return np.inf
    return float(np.max(np.abs(moved(x[use], with_offset=False))))


def _fit_components(x, f, w, components, settings, max_ptp, support, feats, previous=None, codes=None,
                    tables=None):
    """Fit all components on one set of weights.

    Returns the factor, the sines, the clipped pixels, the last baseline, the codes and the
    factor of each component (``previous`` of a later pass).

    Component k is fitted on the data divided by the factors of the others: in the first
    round those before it, in later rounds (``settings.component_rounds``) all others, its
    sine search continuing from the previous round. A component is not fitted again while
    the change of the others since its last fit would not move its model by more than
    ``settings.round_tolerance`` (:func:`_response`), and the rounds stop when no component
    was fitted again. With ``previous`` (the sines and the factors of an earlier pass, per
    component: the second feature pass) the first round continues from those sines too, and
    divides out all the other components' factors from the start, as a later round. ``codes`` are the :class:`ComponentStatus` decided before fitting
    (placeholders, low S/N); others are filled in. ``tables``: the column's periodogram
    tables (see :class:`~mrsdask.fringe.kernels.periodogram.Periodogram`).
    """
    n = f.size
    n_comp = len(components)
    factors = [np.ones(n) for _ in range(n_comp)] if previous is None else list(previous[1])
    clipped = [np.zeros(n, bool) for _ in range(n_comp)]
    sines_out = list(previous[0]) if previous is not None else [None] * n_comp
    codes = list(codes) if codes is not None else [ComponentStatus.NOT_RUN] * n_comp
    fixed = [c in (ComponentStatus.PLACEHOLDER, ComponentStatus.LOW_SNR) for c in codes]
    baseline = None
    rounds = max(1, int(settings.component_rounds)) if sum(not fx for fx in fixed) > 1 else 1
    fitted_on = [None] * n_comp  # per component, the product of the others' factors it was last fitted with
    for rnd in range(rounds):
        refitted = False
        for i, comp in enumerate(components):
            if fixed[i] or comp.is_placeholder:
                continue
            if rnd > 0 and codes[i] not in (ComponentStatus.FITTED, ComponentStatus.NO_EVIDENCE,
                                            ComponentStatus.CLIPPED):
                continue  # could not be fitted at all: the others do not change that
            others = [k for k in range(n_comp) if k != i and (rnd > 0 or k < i or previous is not None)]
            divided = np.prod([factors[k] for k in others], axis=0) if others else np.ones(n)
            if fitted_on[i] is not None and _response(divided / fitted_on[i] - 1.0, x, w, sines_out[i], comp,
                                                      settings) <= settings.round_tolerance:
                continue  # what changed in the others would not change this component's fit
            fitted_on[i] = divided
            refitted = True
            fac, sines, bad, base, code = _fit_one(x, f * divided, w, comp, settings, max_ptp, sines_out[i],
                                                   support, feats, tables)
            codes[i] = code
            sines_out[i] = sines
            if fac is None:
                continue
            factors[i], clipped[i] = fac, bad
            baseline = base if base is not None else baseline
        if not refitted or (rounds > 1 and not any(c == ComponentStatus.FITTED for c in codes)):
            break
    factor = np.prod(factors, axis=0)
    return factor, sines_out, np.logical_or.reduce(clipped), baseline, codes, factors


def fit_column(flux: np.ndarray, wavenumber: np.ndarray, components, *, err: np.ndarray | None = None,
               weights: np.ndarray | None = None, max_ptp=0.4, ignore: np.ndarray | None = None,
               settings: FitSettings = FitSettings()) -> ColumnFit:
    """Fit and remove residual fringes from one column of one slice (or one spectrum).

    Parameters
    ----------
    flux : ndarray
        Pixel values of the column's pixels in one slice (any units; any order).
    wavenumber : ndarray
        Their wavenumbers ν = 10⁴/λ, cm⁻¹.
    components : sequence of FringeComponent
        Main fringe first, then e.g. the dichroic fringe.
    err : ndarray, optional
        1-σ errors: pixels with S/N below ``settings.min_pixel_snr`` get no weight.
    weights : ndarray, optional
        Statistical weights; by default ∝ flux (Poisson-limited data, as the official step).
    max_ptp : float or ndarray
        Largest allowed peak-to-peak fringe amplitude (see :func:`clip_runaway`).
    ignore : ndarray of bool, optional
        Pixels excluded from the fit (still corrected), e.g. user wavelength ranges.
    settings : FitSettings
        Thresholds and tuning.

    Returns
    -------
    ColumnFit
        Non-finite pixels get factor 1. Nothing raises for bad data: a failure is a status.
    """
    flux = np.asarray(flux, np.float64)
    nu = np.asarray(wavenumber, np.float64)
    n_in = flux.size
    n_comp = len(components)
    out = ColumnFit(np.ones(n_in), Status.TOO_FEW_PIXELS, float("nan"), np.full(n_comp, np.nan),
                    np.zeros(n_comp, np.int16), np.zeros(n_in, bool), np.zeros(n_in, bool), [None] * n_comp,
                    component_status=np.zeros(n_comp, np.int8))
    good = np.isfinite(flux) & np.isfinite(nu) & (nu > 0)
    if good.sum() < settings.min_pixels:
        out.message = f"{int(good.sum())} usable pixels"
        return out
    sel = np.flatnonzero(good)
    order = sel[np.argsort(nu[sel], kind="stable")]
    x = nu[order]
    f = flux[order]
    positive = f > 0
    scale = float(np.median(f[positive])) if positive.any() else float("nan")
    if not scale > 0:
        out.status = Status.LOW_SNR
        out.message = "no positive flux"
        return out
    f = f / scale
    snr = der_snr(np.where(positive, f, 1e-8))
    out.snr = snr
    main = next((c for c in components if not c.is_placeholder), None)
    if main is None:
        out.status = Status.NO_FRINGES
        out.message = "no fringe component"
        out.component_status[:] = ComponentStatus.PLACEHOLDER
        return out
    if not snr >= main.min_snr:
        out.status = Status.LOW_SNR
        out.message = f"S/N {snr:.1f} < {main.min_snr}"
        return out
    if weights is None:
        w = np.where(positive, f, 0.0)
    else:
        w = np.clip(np.nan_to_num(np.asarray(weights, np.float64)[order]), 0.0, None)
        w[~positive] = 0.0
    if err is not None:
        e = np.asarray(err, np.float64)[order] / scale
        with np.errstate(divide="ignore", invalid="ignore"):
            pix_snr = f / e
        w[~(pix_snr > settings.min_pixel_snr)] = 0.0
    excluded = np.zeros(f.size, bool)
    if ignore is not None:
        excluded |= np.asarray(ignore, bool)[order]
    w[excluded] = 0.0
    max_ptp = np.asarray(max_ptp, np.float64)
    if max_ptp.ndim:
        max_ptp = max_ptp[order]
    if np.count_nonzero(w) < settings.min_pixels:
        out.status = Status.TOO_FEW_PIXELS
        out.message = f"{int(np.count_nonzero(w))} pixels with weight"
        return out
    if (x[w > 0][-1] - x[w > 0][0]) / main.ffreq < settings.min_periods:
        out.status = Status.TOO_FEW_PERIODS
        out.message = f"{(x[w > 0][-1] - x[w > 0][0]) / main.ffreq:.1f} fringe periods"
        return out
    # Components to run (S/N thresholds per component, as the official step).
    codes = [ComponentStatus.PLACEHOLDER if c.is_placeholder else
             ComponentStatus.NOT_RUN if (snr > c.min_snr or c is main) else ComponentStatus.LOW_SNR
             for c in components]
    active = [c if code == ComponentStatus.NOT_RUN else replace(c, ffreq=0.0) for c, code in zip(components, codes)]
    out.component_status = np.asarray(codes, np.int8)
    xw = x[w > 0]
    support = (float(xw[0]), float(xw[-1]))
    try:
        step = float(np.median(np.diff(x)))
        half_width = max(2, int(settings.envelope_window * main.ffreq / step)) if step > 0 else 2
        feats = find_features(f, w > 0, settings.feature_sigma, settings.feature_grow, settings.smooth_features,
                              settings.feature_sigma_wings, half_width)
        wf = np.where(feats, 0.0, w)
        tables = {}
        factor, sines, clipped, base, codes, factors = _fit_components(x, f, wf, active, settings, max_ptp,
                                                                       support, feats, codes=codes, tables=tables)
        if settings.refine_features and base is not None:
            corrected = f * factor
            base2 = fit_baseline(x, corrected, wf, main.ffreq, main.baseline_degree, True, settings.robust_domain)
            new = residual_features(corrected, base2, w, settings.feature_sigma, settings.feature_grow,
                                    settings.feature_sigma_wings) & ~feats & (w > 0)
            if new.any():
                feats = feats | new
                wf = np.where(feats, 0.0, w)
                factor, sines, clipped, base, codes, factors = _fit_components(
                    x, f, wf, active, settings, max_ptp, support, feats, previous=(sines, factors), codes=codes,
                    tables=tables)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        out.status = Status.FIT_FAILED
        out.message = f"{type(exc).__name__}: {exc}"
        return out
    out.component_status = np.asarray(codes, np.int8)
    if not np.all(np.isfinite(factor)) or np.any(factor <= 0):
        out.status = Status.FIT_FAILED
        out.message = "non-finite correction"
        return out
    n_kept = np.array([s.n if s is not None else 0 for s in sines], np.int16)
    periods = np.array([s.dominant_period() if s is not None else np.nan for s in sines])
    main_code = codes[components.index(main)]
    if main_code == ComponentStatus.TOO_FEW_PERIODS:
        out.status = Status.TOO_FEW_PERIODS
        out.message = "too few fringe periods with weight"
        return out
    if main_code == ComponentStatus.TOO_FEW_PIXELS:
        out.status = Status.TOO_FEW_PIXELS
        out.message = "too few pixels with weight and a positive baseline"
        return out
    out.factor[order] = factor
    out.clipped[order] = clipped
    out.features[order] = feats | excluded
    out.n_sines = n_kept
    out.periods = periods
    out.sines = sines
    out.status = Status.CORRECTED if ComponentStatus.FITTED in codes else Status.NO_FRINGES
    return out
