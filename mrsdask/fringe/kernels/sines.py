"""Choosing the sines of a column by Bayesian evidence.

:func:`fit_sines` adds sines one at a time while the evidence (:func:`log_evidence`, closed
form: see :mod:`mrsdask.fringe.kernels`) grows by more than the threshold; :func:`refit_sines`
solves the coefficients again for given frequencies (back-fitting).
"""

from __future__ import annotations

import math

import numpy as np

from mrsdask.fringe.kernels.cores import add_component, base_system, modulated_eval, modulated_solve
from mrsdask.fringe.kernels.model import FitSettings, FringeComponent, SineFit
from mrsdask.fringe.kernels.periodogram import Periodogram, refine_peak, segments


def log_evidence(chi2: float, n_pix: int, logdet: float, n_coef: int, log_prior_volume: float,
                 sum_log_w: float = 0.0, noise_limits: tuple[float, float] = (0.001, 10.0)) -> float:
    """Laplace (here exact) log evidence of a linear least-squares model with unknown noise scale.

    Parameters
    ----------
    chi2 : float
        Weighted χ² at the optimum (weights with mean 1).
    n_pix : int
        Number of data points N.
    logdet : float
        log det(ΦᵀWΦ) of the design matrix Φ.
    n_coef : int
        Number of linear coefficients k.
    log_prior_volume : float
        Σ log Δⱼ over the k coefficients (uniform priors of widths Δⱼ).
    sum_log_w : float
        Σ log wᵢ (model independent).
    noise_limits : tuple of float
        Range of the Jeffreys prior of the noise scale.

    Returns
    -------
    float
        log Z, or ``-inf`` if χ² is zero.
    """
    if not chi2 > 0:
        return -np.inf
    k = n_coef
    log_s = 0.5 * math.log(chi2 / n_pix)
    value = -(n_pix - k) * log_s - log_prior_volume + 0.5 * k * math.log(2 * math.pi) - 0.5 * logdet
    const = (0.5 * sum_log_w - 0.5 * n_pix * math.log(2 * math.pi) - 0.5 * n_pix - 0.5 * math.log(2 * n_pix)
             + 0.5 * math.log(2 * math.pi) - math.log(math.log(noise_limits[1] / noise_limits[0])))
    return float(value + const)


class _Problem:
    """The data of one sine search (sorted wavenumbers, residuals, weights, segments)."""

    def __init__(self, nu, resid, weights, gap, min_segment_pixels, settings, like: SineFit | None = None):
        """``like``: keep the segments and phase reference of these sines (a re-fit) instead of
        finding them in ``nu``."""
        order = np.argsort(np.asarray(nu, np.float64), kind="stable")
        self.nu = np.ascontiguousarray(np.asarray(nu, np.float64)[order])
        self.y = np.ascontiguousarray(np.asarray(resid, np.float64)[order])
        w = np.asarray(weights, np.float64)[order]
        if not (self.nu.size and np.all(np.isfinite(self.nu)) and np.all(np.isfinite(self.y))
                and np.all(np.isfinite(w)) and np.all(w > 0)):
            raise ValueError(f"a sine fit needs at least one pixel, all with finite wavenumber and residual and "
                             f"positive weight ({self.nu.size} pixels given)")
        self.w = np.ascontiguousarray(w / np.mean(w))
        if like is not None:
            self.breaks, self.seg_mid, self.seg_half, self.nu0 = like.breaks, like.seg_mid, like.seg_half, like.nu0
            self.nseg = like.n_segments
            self.seg = np.searchsorted(like.breaks, self.nu).astype(np.int64)
        else:
            self.seg, self.breaks = segments(self.nu, gap, min_segment_pixels)
            self.nseg = self.breaks.size + 1
            lo = np.array([self.nu[self.seg == s][0] for s in range(self.nseg)])
            hi = np.array([self.nu[self.seg == s][-1] for s in range(self.nseg)])
            self.seg_mid = 0.5 * (lo + hi)
            self.seg_half = np.maximum(0.5 * (hi - lo), 1e-9)
            self.span = float(np.max(hi - lo))
            self.nu0 = 0.5 * (self.nu[0] + self.nu[-1])
        self.x = np.ascontiguousarray(self.nu - self.nu0)
        self.t = np.ascontiguousarray((self.nu - self.seg_mid[self.seg]) / self.seg_half[self.seg])
        self.n = self.nu.size
        self.sum_log_w = float(np.sum(np.log(self.w)))
        self.settings = settings

    def solve(self, freqs, terms, w=None):
        return modulated_solve(self.x, self.t, self.seg, self.y, self.w if w is None else w,
                          np.ascontiguousarray(freqs, np.float64), np.ascontiguousarray(terms, np.int64), self.nseg)

    def model(self, coef, freqs, terms):
        return modulated_eval(self.x, self.t, self.seg, coef, np.ascontiguousarray(freqs, np.float64),
                         np.ascontiguousarray(terms, np.int64), self.nseg)

    def log_z(self, freqs, terms):
        """Linear log evidence for fixed frequencies, and the coefficients (−inf if singular)."""
        try:
            coef, chi, logdet = self.solve(freqs, terms)
        except np.linalg.LinAlgError:
            return -np.inf, None
        k = coef.size
        log_vol = k * math.log(2.0 * self.settings.amplitude_limit)
        return log_evidence(chi, self.n, logdet, k, log_vol, self.sum_log_w, self.settings.noise_limits), coef

    def set_base(self, freqs, terms):
        """Cache the factorised system of the current model, for :meth:`log_z_add`."""
        self.base = base_system(self.x, self.t, self.seg, self.y, self.w, np.ascontiguousarray(freqs, np.float64),
                                 np.ascontiguousarray(terms, np.int64), self.nseg)

    def log_z_add(self, f, d):
        """As :meth:`log_z` for the cached model plus one sine, by block elimination."""
        phi, low, u_vec, chi_old, logdet_old = self.base
        try:
            coef, chi, logdet = add_component(phi, low, u_vec, chi_old, logdet_old, self.x, self.t, self.seg,
                                               self.y, self.w, float(f), int(d), self.nseg)
        except np.linalg.LinAlgError:
            return -np.inf, None
        if not np.isfinite(logdet):
            return -np.inf, None
        k = coef.size
        log_vol = k * math.log(2.0 * self.settings.amplitude_limit)
        return log_evidence(chi, self.n, logdet, k, log_vol, self.sum_log_w, self.settings.noise_limits), coef

    def robust_coef(self, freqs, terms, domain, coef=None):
        """Coefficients with two rounds of Tukey-biweight reweighting (from ``coef``, the
        unweighted solution, if it is known)."""
        chi = None
        if coef is None:
            coef, chi, _ = self.solve(freqs, terms)
        k = coef.size
        for _ in range(2):
            res = self.y - self.model(coef, freqs, terms)
            if chi is None:
                chi = float(np.sum(self.w * res * res))
            scale = math.sqrt(float(np.sum(self.w * res * res)) / max(self.n - k, 1))
            if scale == 0.0:
                break
            u = res * np.sqrt(self.w) / (domain * scale)
            w_eff = np.where(u * u < 1.0, (1.0 - u * u) ** 2, 0.0) * self.w
            try:
                coef, chi_new, _ = self.solve(freqs, terms, np.ascontiguousarray(w_eff))
            except np.linalg.LinAlgError:
                break
            if abs(chi_new - chi) <= 1e-3 * max(chi, 1e-300):
                break
            chi = chi_new
        return coef


def _polish_frequencies(prob: _Problem, freqs: np.ndarray, terms: np.ndarray, delta: float):
    """One parabola step per frequency (the others fixed) towards the maximum of the evidence.

    Each trial frequency of sine k is solved by block elimination on the factorised model
    without sine k (:meth:`_Problem.log_z_add`), the cost of sine k's columns only. Returns
    the frequencies and ``prob.log_z`` at them (evidence and coefficients).
    """
    freqs = freqs.copy()
    current = prob.log_z(freqs, terms)
    sizes = 2 * prob.nseg * np.asarray(terms, np.int64)
    starts = prob.nseg + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    for k in range(freqs.size):
        others = np.arange(freqs.size) != k
        try:
            prob.set_base(freqs[others], terms[others])
        except np.linalg.LinAlgError:
            continue
        a, b = int(starts[k]), int(starts[k] + sizes[k])

        def z_at(f):
            z, c = prob.log_z_add(f, int(terms[k]))
            if c is None:
                return z, c
            # sine k's block from the end back to its place
            n_before = c.size - (b - a)
            return z, np.concatenate([c[:a], c[n_before:], c[a:n_before]])

        f0 = freqs[k]
        z_lo, z_mid, z_hi = z_at(f0 - delta)[0], current[0], z_at(f0 + delta)[0]
        curv = -(z_hi - 2.0 * z_mid + z_lo)
        if not (curv > 0 and np.isfinite(curv)):
            continue
        f_new = f0 + float(np.clip(0.5 * delta * (z_hi - z_lo) / curv, -2.0 * delta, 2.0 * delta))
        at_new = z_at(f_new)
        if at_new[0] > z_mid:
            freqs[k] = f_new
            current = at_new
    return freqs, current


def _admissible(coef, amp_limit) -> bool:
    """True if all coefficients are finite and inside their uniform prior."""
    return coef is not None and bool(np.all(np.isfinite(coef))) and not np.any(np.abs(coef) > amp_limit)


def fit_sines(nu: np.ndarray, resid: np.ndarray, weights: np.ndarray, component: FringeComponent,
              settings: FitSettings = FitSettings(), start: SineFit | None = None,
              tables: dict | None = None) -> SineFit:
    """Fit amplitude-modulated sines to relative residuals, choosing them by the evidence.

    Sines are added one at a time. For each: the strongest frequency of the weighted
    periodogram of what is not yet modelled (grid ``1/(oversample·Δν)``, then ``PGRAM_RES``
    around the peak), moved to the vertex of a parabola through the plain-sine evidence at
    three frequencies around it; then the envelope (1 to ``settings.envelope_terms``
    Legendre coefficients, longer only while the evidence grows) with the highest evidence. The sine is kept if log Z grows by more than ``settings.evidence_threshold``.

    The evidence of a set of sines integrates the linear coefficients exactly (Gaussian) and
    each frequency by a Laplace approximation of that linear evidence as a function of the
    frequency (curvature by finite differences), with a uniform prior over the window:

        log Z = log Z_lin(φ̂) + Σₖ [log min(√(2π/−∂²log Z_lin/∂φₖ²), dₖ/Δν) − log Δφ] + log n!

    (curvature from the same three points; the width is capped at dₖ/Δν, the range of
    frequency offsets an envelope of dₖ terms absorbs; log n! counts the orderings of the
    sines).

    Parameters
    ----------
    nu : ndarray
        Wavenumbers (cm⁻¹) of the used pixels.
    resid : ndarray
        Relative residuals ``f/B − 1``.
    weights : ndarray
        Positive statistical weights.
    component : FringeComponent
        Window, number of sines, periodogram resolution.
    settings : FitSettings
        Priors, threshold, oversampling, segment gap, envelope terms.
    start : SineFit, optional
        Continue from these sines (their coefficients re-solved on the new data) instead of
        starting from none; used by the second feature pass.
    tables : dict, optional
        Cache of periodogram tables shared by the fits of one column (see :class:`Periodogram`).

    Returns
    -------
    SineFit
        With zero sines if none passed the evidence test.
    """
    prob = _Problem(nu, resid, weights, settings.segment_gap * component.ffreq, settings.min_segment_pixels,
                    settings)
    f_lo, f_hi = component.window()
    dx = np.diff(prob.nu)
    dx = dx[dx > 0]
    if dx.size:
        f_hi = min(f_hi, 0.5 / float(np.median(dx)))
    log_window = math.log(f_hi - f_lo) if f_hi > f_lo else 0.0
    freqs = np.zeros(0)
    terms = np.zeros(0, np.int64)
    freq_terms: list[float] = []
    z0, coef = prob.log_z(freqs, terms)
    evidences = [z0]
    best = (freqs, terms, coef)
    n_start = 0
    if start is not None and start.n and start.n_segments == prob.nseg and prob.span > 0:
        f_start, (z_start, c_start) = _polish_frequencies(prob, start.freq.copy(), start.terms,
                                                          0.5 / (settings.oversample * prob.span))
        if np.isfinite(z_start) and _admissible(c_start, settings.amplitude_limit):
            best = (f_start, start.terms.copy(), c_start)
            freq_terms = list(start.freq_terms)
            n_start = start.n
            evidences.append(z_start + sum(freq_terms) + math.lgamma(n_start + 1))

    def result():
        f, d, c = best
        if f.size and component.use_robust:
            c = prob.robust_coef(f, d, settings.robust_domain, c)
        return SineFit(f.copy(), d.copy(), c, prob.nu0, prob.breaks, prob.seg_mid, prob.seg_half,
                       np.asarray(evidences), np.asarray(freq_terms[: f.size]))

    if not f_hi > f_lo or prob.span <= 0:
        return result()
    df = 1.0 / (settings.oversample * prob.span)
    grid = np.arange(f_lo, f_hi + 0.5 * df, df)
    pgram = Periodogram(prob.x, prob.w, grid, prob.seg, tables)
    try:
        prob.set_base(best[0], best[1])
    except np.linalg.LinAlgError:
        return result()
    for n in range(n_start + 1, int(component.max_nfringes) + 1):
        rest = prob.y - prob.model(best[2], best[0], best[1])
        power = pgram.power(rest)
        if not power.size or not power.max() > 0:
            break
        f_peak = refine_peak(prob.x, prob.w, prob.seg, rest, float(grid[np.argmax(power)]), df, f_lo, f_hi,
                              component.pgram_res)
        # Candidates are solved by block elimination on the cached current model. The
        # frequency is refined on the plain-sine evidence: parabola through three points
        # around the peak (the evidence peak is ~ 2 grid steps wide), then its vertex.
        delta = 0.5 * df
        choice = None
        f_hat = f_peak
        for d in range(1, max(1, settings.envelope_terms) + 1):
            z_mid, c = prob.log_z_add(f_hat, d)
            cap = d / prob.span
            if choice is not None and (z_mid + sum(freq_terms) + math.log(cap) - log_window
                                       + math.lgamma(n + 1)) <= choice[0]:
                continue  # cannot win even with the widest frequency term: skip the curvature
            z_lo, z_hi = prob.log_z_add(f_hat - delta, d)[0], prob.log_z_add(f_hat + delta, d)[0]
            curv = -(z_hi - 2.0 * z_mid + z_lo) / (delta * delta)
            if d == 1 and curv > 0 and np.isfinite(curv):
                shift = 0.5 * delta * (z_hi - z_lo) / (curv * delta * delta)
                f_new = float(np.clip(f_hat + shift, max(f_lo, f_peak - df), min(f_hi, f_peak + df)))
                z_new, c_new = prob.log_z_add(f_new, d)
                if z_new > z_mid:
                    f_hat, z_mid, c = f_new, z_new, c_new
            if not np.isfinite(z_mid) or not _admissible(c, settings.amplitude_limit):
                continue
            width = min(math.sqrt(2.0 * math.pi / curv), cap) if curv > 0 else cap
            f_term = math.log(width) - log_window
            total = z_mid + sum(freq_terms) + f_term + math.lgamma(n + 1)
            if choice is None or total > choice[0]:
                choice = (total, np.append(best[1], d), c, f_term)
        if choice is None:
            evidences.append(-np.inf)
            break
        evidences.append(choice[0])
        if choice[0] - evidences[-2] > settings.evidence_threshold:
            best = (np.append(best[0], f_hat), choice[1], choice[2])
            freq_terms.append(choice[3])
            try:
                prob.set_base(best[0], best[1])
            except np.linalg.LinAlgError:
                break
        else:
            break
    return result()


def refit_sines(nu: np.ndarray, resid: np.ndarray, weights: np.ndarray, sines: SineFit,
                component: FringeComponent, settings: FitSettings = FitSettings()) -> SineFit:
    """Re-solve the coefficients of existing sines on new residuals (same frequencies/envelopes).

    Falls back to ``sines`` if the new coefficients leave the prior or the fit is singular.
    """
    if sines.n == 0:
        return sines
    # Keep the original segmentation and phase reference.
    prob = _Problem(nu, resid, weights, settings.segment_gap * component.ffreq, settings.min_segment_pixels,
                    settings, like=sines)
    try:
        if component.use_robust:
            coef = prob.robust_coef(sines.freq, sines.terms, settings.robust_domain)
        else:
            coef = prob.solve(sines.freq, sines.terms)[0]
    except np.linalg.LinAlgError:
        return sines
    if not _admissible(coef, settings.amplitude_limit):
        return sines
    return SineFit(sines.freq, sines.terms, coef, sines.nu0, sines.breaks, sines.seg_mid, sines.seg_half,
                   sines.log_evidence, sines.freq_terms)
