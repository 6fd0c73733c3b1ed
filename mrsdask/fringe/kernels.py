"""Residual-fringe kernels: one detector column (or one spectrum) at a time, numpy and numba.

Nothing here knows about Dask, xarray, WCS objects or reference files: every function takes
plain arrays and numbers. :func:`fit_column` is the whole per-column algorithm; the other
functions are its steps, public so that they can be tested one by one. The dense loops
(periodogram sums, normal equations) are numba-compiled and release the GIL; they use no
multithreaded BLAS, which on these small problems is slower than one thread and would
oversubscribe the cores of Dask workers.

The model of a column
---------------------
In wavenumber ν = 10⁴/λ (cm⁻¹) a fringed column is ``f(ν) = B(ν) · (1 + F(ν))`` where ``B``
is the smooth source spectrum (continuum and lines) and ``F`` the residual fringe,

    F(ν) = c + Σₖ Aₖ(ν) cos(2π φₖ (ν − ν₀)) + Bₖ(ν) sin(2π φₖ (ν − ν₀)),

a sum of sines whose frequencies φₖ (cycles per cm⁻¹) lie in a window around ``1/FFREQ``,
with slowly varying envelopes ``Aₖ, Bₖ`` (Legendre polynomials of 1 to 3 terms along the
column: the fringe contrast and phase drift along a column, which the official fit can only
follow with pairs of nearly equal, nearly cancelling sines). As in the official step,
``FFREQ`` — "the fringe frequency" of the reference file — is the fringe **period in
wavenumber** (≈ 2.9 cm⁻¹ for the detector fringe, ≈ 0.4 cm⁻¹ for the dichroic fringe of
channels 3 and 4); the window is ``FFREQ ± DFFREQ``. Pieces of a column separated by more
than 5 periods (edge columns of curved slices) get their own envelopes (see
:class:`SineFit`).

For each fringe component (main, then dichroic):

1. **Baseline** ``B``: least-squares spline in ν with one interior knot per fringe period
   (a spline sampled once per period cannot follow the fringe itself), quadratic with robust
   Tukey-biweight reweighting (``domain = 10`` scale units) for the main fringe, linear and
   plain for the dichroic one (:func:`fit_baseline`). Emission/absorption features have zero
   weight; across them the baseline is interpolated linearly.
2. **Residual** ``r = f/B − 1``.
3. **Sines, one at a time** (:func:`fit_sines`): a weighted generalised Lomb–Scargle
   periodogram of what is not yet modelled (:func:`gls_power`) gives the strongest frequency
   in the window — on a grid 4× finer than the natural resolution 1/Δν, then the
   reference's ``PGRAM_RES`` around the peak, then the vertex of the evidence through three
   points —; for envelopes of 1, 2 and 3 terms the coefficients of all sines are solved
   linearly and the one of highest evidence is the candidate.
4. **How many sines**: the Bayesian evidence (formula below) of the model with n sines is
   compared with that of n − 1 sines (n = 0 is a constant); the new sine is kept only when
   log Z gains more than 1 (Kass & Raftery's "strong evidence", the official threshold).
   At most ``MAX_NFRINGES`` sines.
5. **Back-fitting**: the baseline is refitted to ``f/(1 + F)`` and the coefficients
   re-solved, so that the spline does not keep the part of the fringe it absorbed in step 1.
   The main-fringe coefficients get two rounds of biweight reweighting.
6. **Runaway check** (:func:`clip_runaway`): where the local peak-to-peak amplitude of ``F``
   exceeds the allowed maximum, ``F`` is set to 0 (those pixels are flagged).
7. The column is multiplied by ``1/(1 + F)``; factors of the components multiply.

Features are found twice: first from the envelope of the data (:func:`find_features`, as the
official 1-D variant does), then — after a first fit — as outliers of the data from the
fringe-corrected smooth model (:func:`residual_features`), which finds lines weaker than the
fringe amplitude. If the second pass finds new features, baselines and coefficients are
fitted again without them, and the search for sines continues from those of the first pass.

The evidence
------------
BayesicFitting (used by the official step) is slow (its Levenberg–Marquardt and evidence
take most of the official ~1.5 s per column) and its evidence puts the same prior
``[-3, 10]`` on every parameter whatever its units. Here the evidence is computed in closed
form. With N used pixels, weights wᵢ normalised to mean 1, design matrix Φ (the constants and
the envelope × cos/sin columns) for given frequencies, χ² = min Σ wᵢ (rᵢ − (Φβ)ᵢ)², an
unknown noise scale s (data variance s²/wᵢ) with a Jeffreys prior on [s₁, s₂], and k linear
coefficients β with uniform priors of width Δ = 6 (``[-3, 3]``, :class:`FitSettings`), the
marginal likelihood integrated over β (exactly: the likelihood is Gaussian in β) and over s
(Laplace, at ŝ² = χ²/N) is

    log Z_lin = −(N − k) log ŝ − k log Δ + (k/2) log 2π − ½ log det(ΦᵀWΦ)
                + [½ Σ log wᵢ − (N/2) log 2π − N/2 − ½ log 2N + ½ log 2π − log ln(s₂/s₁)]

(the bracket is the same for every model). Each frequency φₖ, uniform over the window of
width Δφ, is integrated by a Laplace approximation of ``log Z_lin`` as a function of φₖ:

    log Z = log Z_lin(φ̂) + Σₖ [log wₖ − log Δφ] + log n!,   wₖ = min(√(2π / −∂²log Z_lin/∂φₖ²), dₖ/Δν)

(curvature from three evaluations; the width is capped at the range dₖ/Δν of frequency
offsets that an envelope of dₖ terms absorbs; log n! counts the n! orderings of the sines,
identical modes of the posterior). :func:`log_evidence` is checked against brute-force
integration in the tests. This is invariant to the units of ν, exact in the linear
coefficients, and costs one Cholesky factorisation per candidate model (sub-millisecond).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
import numba
from scipy.interpolate import LSQUnivariateSpline, PchipInterpolator
from scipy.ndimage import maximum_filter1d, minimum_filter1d

#: DER_SNR noise factor, 1.482602/√6 (Stoehr et al. 2008), as used by the official step.
DER_SNR_FACTOR = 1.482602 / math.sqrt(6.0)

#: Bit OR-ed into a pixel flag where the fit was zeroed by :func:`clip_runaway`.
CLIPPED_BIT = 16


class Status(IntEnum):
    """Outcome of the residual-fringe fit of one column of one slice.

    The same codes are used per pixel (``rf_flag``, with :data:`CLIPPED_BIT` added where the
    fit was zeroed) and per (slice, column) (``rf_status``).
    """

    #: Pixel/column not part of any processed slice.
    NOT_PROCESSED = 0
    #: Fringes found and divided out.
    CORRECTED = 1
    #: Fit done, but no sine passed the evidence test: factor 1.
    NO_FRINGES = 2
    #: Fewer usable pixels than ``min_pixels`` (the official step needs more than 50).
    TOO_FEW_PIXELS = 3
    #: Column S/N (DER_SNR) below ``MIN_SNR`` of the main component.
    LOW_SNR = 4
    #: The used wavenumber range spans fewer than ``min_periods`` fringe periods.
    TOO_FEW_PERIODS = 5
    #: A numerical failure; the column is left uncorrected.
    FIT_FAILED = 6


#: Names of the status codes, for ``flag_meanings`` attributes.
STATUS_MEANINGS = {int(s): s.name.lower() for s in Status}


@dataclass(frozen=True)
class FringeComponent:
    """Search parameters of one fringe component (one row entry of a FRINGEFREQ table).

    Attributes
    ----------
    ffreq : float
        Fringe period in wavenumber, cm⁻¹ (the reference file's FFREQ). ``<= 1e-3`` marks a
        placeholder: the component is skipped.
    dffreq : float
        Half-width of the search window, cm⁻¹: periods in ``ffreq ± dffreq``.
    max_nfringes : int
        Most sines fitted for this component.
    min_snr : float
        Column S/N (DER_SNR) needed to fit this component.
    pgram_res : float
        Periodogram resolution in period, cm⁻¹.
    robust : bool or None
        Biweight reweighting of baseline and sines; default: ``ffreq > 1.5`` (the official
        rule: the main fringe robust, the dichroic one not).
    """

    ffreq: float
    dffreq: float
    max_nfringes: int = 10
    min_snr: float = 0.0
    pgram_res: float = 0.001
    robust: bool | None = None

    @property
    def is_placeholder(self) -> bool:
        """True if this entry is a placeholder (``ffreq <= 1e-3``)."""
        return not (self.ffreq > 1e-3)

    @property
    def use_robust(self) -> bool:
        """Whether baseline and sine fits use biweight reweighting."""
        return bool(self.ffreq > 1.5) if self.robust is None else bool(self.robust)

    @property
    def baseline_degree(self) -> int:
        """Spline degree of the baseline: 2 for the main fringe, 1 for the dichroic one."""
        return 2 if self.ffreq > 1.5 else 1

    def window(self) -> tuple[float, float]:
        """Search window in frequency (cycles per cm⁻¹), ``(1/(P+dP), 1/(P−dP))``."""
        lo_period = self.ffreq - self.dffreq
        f_hi = 1.0 / lo_period if lo_period > 1e-6 else np.inf
        return 1.0 / (self.ffreq + self.dffreq), f_hi


@dataclass(frozen=True)
class FitSettings:
    """Tuning of :func:`fit_column` (defaults follow the official step where it has one).

    Attributes
    ----------
    min_pixels : int
        Fewest usable pixels in a column (official: more than 50).
    min_periods : float
        Fewest fringe periods the used wavenumber range must span (official: 5).
    min_pixel_snr : float
        With an error array, pixels of lower S/N get no weight (official: 10).
    amplitude_limit : float
        Half-width of the uniform prior of sine amplitudes and of the constant. The sines of
        a close pair that follows a changing fringe contrast can each exceed the fringe
        amplitude; 3 is the lower limit of the official prior ``[-3, 10]``.
    evidence_threshold : float
        A sine is kept if log Z grows by more than this (official: 1).
    noise_limits : tuple of float
        Range of the Jeffreys prior of the relative noise scale (official: 0.001, 10).
    feature_sigma : float
        Clipping threshold of :func:`find_features` and :func:`residual_features`.
    feature_grow : int
        Pixels added on each side of a feature.
    smooth_features : int
        If > 1, features are also searched on a running mean of this many pixels (the
        official step uses 7 in channels 3 and 4, against the dichroic fringe).
    refine_features : bool
        Second feature pass on the residuals of a first fit (see module notes).
    backfit : int
        Baseline/sine re-fitting rounds after the sines are chosen.
    oversample : float
        Periodogram grid step is ``1/(oversample · Δν)``.
    robust_domain : float
        Biweight cut-off in units of the residual scale (official: 10).
    segment_gap : float
        A gap in the used wavenumbers wider than this many fringe periods splits a column
        into segments with their own amplitudes and phases (see :class:`SineFit`).
    min_segment_pixels : int
        Smaller segments are joined to a neighbour.
    envelope_terms : int
        Most Legendre coefficients of a sine's amplitude envelope (1: plain sines).
    """

    min_pixels: int = 51
    min_periods: float = 5.0
    min_pixel_snr: float = 10.0
    amplitude_limit: float = 3.0
    evidence_threshold: float = 1.0
    noise_limits: tuple[float, float] = (0.001, 10.0)
    feature_sigma: float = 5.0
    feature_grow: int = 1
    smooth_features: int = 0
    refine_features: bool = True
    backfit: int = 1
    oversample: float = 4.0
    robust_domain: float = 10.0
    segment_gap: float = 5.0
    min_segment_pixels: int = 20
    envelope_terms: int = 3


@dataclass
class SineFit:
    """A fitted sum of amplitude-modulated sines (the fringe model of one column).

    ``F(ν) = c_s + Σₖ Aₖ(ν) cos(2πφₖ(ν−ν₀)) + Bₖ(ν) sin(2πφₖ(ν−ν₀))`` where the envelopes
    ``Aₖ, Bₖ`` are Legendre polynomials with ``terms[k]`` coefficients in
    ``t = (ν − mid_s)/half_s`` ∈ [−1, 1] of each segment s (``terms = 1``: a plain sine).
    A column whose used pixels fall in pieces separated by more than a few fringe periods
    (the two ends of a curved slice in an edge column) gets its own constants and envelope
    coefficients per piece and shares the frequencies: one phase-coherent sine across a gap
    of tens of periods would extrapolate the phase where there is no data, and gives a comb
    of aliases the data cannot tell apart.

    Attributes
    ----------
    freq : ndarray
        φₖ in cycles per cm⁻¹ (the period is 1/φₖ), shape (n,).
    terms : ndarray of int
        Envelope coefficients of each sine, shape (n,).
    coef : ndarray
        Linear coefficients: the S constants, then per sine k, per segment s, per Legendre
        order m, the cos and the sin coefficient.
    nu0 : float
        Phase reference ν₀ (cm⁻¹).
    breaks : ndarray
        Wavenumbers separating the S segments, shape (S − 1,).
    seg_mid, seg_half : ndarray
        Centre and half-width (cm⁻¹) of each segment, shape (S,).
    log_evidence : ndarray
        log Z of the models with 0, 1, … sines that were tried (the last may be rejected).
    freq_terms : ndarray
        Per sine, its frequency term ``log wₖ − log Δφ`` of the evidence (see
        :func:`fit_sines`), kept so that a later search can continue from this fit.
    """

    freq: np.ndarray
    terms: np.ndarray
    coef: np.ndarray
    nu0: float
    breaks: np.ndarray
    seg_mid: np.ndarray
    seg_half: np.ndarray
    log_evidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    freq_terms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        """Number of sines."""
        return int(self.freq.size)

    @property
    def n_segments(self) -> int:
        """Number of segments S."""
        return int(self.seg_mid.size)

    def _coords(self, nu):
        nu = np.asarray(nu, np.float64).ravel()
        seg = np.searchsorted(self.breaks, nu).astype(np.int64)
        t = (nu - self.seg_mid[seg]) / self.seg_half[seg]
        return np.ascontiguousarray(nu - self.nu0), np.ascontiguousarray(t), seg

    def __call__(self, nu: np.ndarray, with_offset: bool = True) -> np.ndarray:
        """Evaluate the model at wavenumbers ``nu`` (the constants included if ``with_offset``)."""
        x, t, seg = self._coords(nu)
        coef = self.coef.copy()
        if not with_offset:
            coef[: self.n_segments] = 0.0
        out = _mod_eval(x, t, seg, coef, self.freq, self.terms, self.n_segments)
        return out.reshape(np.shape(nu))

    @property
    def amplitude(self) -> np.ndarray:
        """RMS amplitude of each sine over its segments: √(mean over t of A² + B²)."""
        out = np.zeros(self.n)
        base = self.n_segments
        for k in range(self.n):
            d = int(self.terms[k])
            block = self.coef[base : base + 2 * self.n_segments * d].reshape(self.n_segments, d, 2)
            norm = 1.0 / (2.0 * np.arange(d) + 1.0)
            out[k] = math.sqrt(float(np.mean(np.sum(block**2 * norm[None, :, None], axis=(1, 2)))))
            base += 2 * self.n_segments * d
        return out

    @property
    def period(self) -> np.ndarray:
        """Periods 1/φₖ in cm⁻¹."""
        return 1.0 / self.freq

    def dominant_period(self) -> float:
        """Period of the sine of largest amplitude (NaN without sines)."""
        if self.n == 0:
            return float("nan")
        return float(self.period[np.argmax(self.amplitude)])


@dataclass
class ColumnFit:
    """Result of :func:`fit_column` (arrays in the order of the input pixels).

    Attributes
    ----------
    factor : ndarray
        Multiplicative correction: corrected = input × factor (1 where nothing was done).
    status : Status
        Outcome (see :class:`Status`).
    snr : float
        Column S/N (DER_SNR), NaN if not computed.
    periods : ndarray
        Per component, period (cm⁻¹) of its strongest sine; NaN where none was fitted.
    n_sines : ndarray
        Per component, number of sines kept.
    clipped : ndarray of bool
        Pixels where the fit was zeroed by the runaway check.
    features : ndarray of bool
        Pixels masked as spectral features (or ignored) during the fit.
    sines : list
        Per component, the :class:`SineFit` (or None).
    message : str
        Why the fit failed or was skipped, if it was.
    """

    factor: np.ndarray
    status: Status
    snr: float
    periods: np.ndarray
    n_sines: np.ndarray
    clipped: np.ndarray
    features: np.ndarray
    sines: list = field(default_factory=list)
    message: str = ""


# --------------------------------------------------------------------------- small helpers
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


def _grow(mask: np.ndarray, n: int) -> np.ndarray:
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
        mask |= _grow(hit, grow)
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
    return _grow(mask, grow)


# --------------------------------------------------------------------------- baseline
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
    kept = []
    start = 0
    for t in knots:
        count = np.searchsorted(x, t, side="left") - start
        if count >= need:
            kept.append(t)
            start += count
    if kept:
        last_count = x.size - np.searchsorted(x, kept[-1], side="left")
        while kept and last_count < need:
            kept.pop()
            last_count = x.size - (np.searchsorted(x, kept[-1], side="left") if kept else 0)
    return np.asarray(kept, dtype=np.float64)


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
    xs = np.unique(np.asarray(x, np.float64))
    k = int(degree)
    t = np.concatenate([np.full(k + 1, lo), np.asarray(knots, np.float64), np.full(k + 1, hi)])
    n = t.size - k - 1
    if xs.size < n:
        return False
    i = 0
    for j in range(n):
        lower, upper = t[j], t[j + k + 1]
        # first unused point above the lower knot (at or above ``lo`` for the first coefficient)
        i = max(i, int(np.searchsorted(xs, lower, side="left" if j == 0 else "right")))
        if i >= xs.size:
            return False
        if not (xs[i] < upper or (j == n - 1 and xs[i] <= upper)):
            return False
        i += 1
    return True


def fit_baseline(x: np.ndarray, y: np.ndarray, weights: np.ndarray, period: float, degree: int = 2,
                 robust: bool = True, domain: float = 10.0, max_iter: int = 10) -> np.ndarray:
    """Smooth baseline of ``y(x)``: LSQ spline with one knot per ``period``.

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
    knots = baseline_knots(xu, period, degree)
    w_eff = wu.copy()
    chi_old = np.inf
    spline = None
    n_par = knots.size + degree + 1
    for _ in range(max_iter if robust else 1):
        spline = LSQUnivariateSpline(xu, yu, knots, w=np.sqrt(w_eff), k=degree)
        res = yu - spline(xu)
        chi = float(np.sum(w_eff * res * res))
        if not robust:
            break
        dof = max(float(np.count_nonzero(w_eff)) - n_par, 1.0)
        scale = math.sqrt(chi / dof) if chi > 0 else 0.0
        if scale == 0.0:
            break
        u = res * np.sqrt(wu) / (domain * scale)
        w_new = np.where(u * u < 1.0, (1.0 - u * u) ** 2, 0.0) * wu
        if abs(chi_old - chi) <= 1e-4 * max(chi, 1.0) or np.count_nonzero(w_new) <= n_par + 1:
            break
        if not spline_well_posed(xu[w_new > 0], knots, degree, xu[0], xu[-1]):
            break
        chi_old = chi
        w_eff = w_new
    base = np.empty(x.shape)
    base[use] = spline(xu)
    if (~use).any():
        base[~use] = np.interp(x[~use], xu, base[use])
    return base


# --------------------------------------------------------------------------- numba cores
# Small dense algebra is done in compiled loops: multithreaded BLAS is 10-40x slower than a
# single thread on these (1000 x 31) problems, and Dask workers must not oversubscribe cores.
# Sine-model parameters are laid out as [c (S), a (n*S), b (n*S), f (n)], a[k*S + s].
@numba.njit(cache=True, nogil=True)
def _trig_tables(x, freqs):
    """cos and sin of 2π·freqs[k]·x[i] for a uniform frequency grid (angle-addition recurrence)."""
    nk, nx = freqs.size, x.size
    cos_t = np.empty((nk, nx))
    sin_t = np.empty((nk, nx))
    if nk == 0:
        return cos_t, sin_t
    step = freqs[1] - freqs[0] if nk > 1 else 0.0
    for i in range(nx):
        cd = math.cos(2.0 * math.pi * step * x[i])
        sd = math.sin(2.0 * math.pi * step * x[i])
        c = 1.0
        s = 0.0
        for k in range(nk):
            if k % 32 == 0:
                # Re-anchor now and then so that rounding cannot accumulate.
                c = math.cos(2.0 * math.pi * freqs[k] * x[i])
                s = math.sin(2.0 * math.pi * freqs[k] * x[i])
            cos_t[k, i] = c
            sin_t[k, i] = s
            c, s = c * cd - s * sd, s * cd + c * sd
    return cos_t, sin_t


@numba.njit(cache=True, nogil=True)
def _gls_setup(cos_t, sin_t, w):
    """Weight-only sums of the generalised Lomb-Scargle periodogram (centred)."""
    nk, nx = cos_t.shape
    wsum = 0.0
    for i in range(nx):
        wsum += w[i]
    cc = np.empty(nk)
    ss = np.empty(nk)
    cs = np.empty(nk)
    csum = np.empty(nk)
    ssum = np.empty(nk)
    for k in range(nk):
        c1 = s1 = c2 = s2 = cs1 = 0.0
        for i in range(nx):
            c = cos_t[k, i]
            s = sin_t[k, i]
            wi = w[i]
            c1 += wi * c
            s1 += wi * s
            c2 += wi * c * c
            s2 += wi * s * s
            cs1 += wi * c * s
        csum[k] = c1
        ssum[k] = s1
        cc[k] = c2 - c1 * c1 / wsum
        ss[k] = s2 - s1 * s1 / wsum
        cs[k] = cs1 - c1 * s1 / wsum
    return wsum, csum, ssum, cc, ss, cs


@numba.njit(cache=True, nogil=True)
def _gls_reduction(cos_t, sin_t, w, y, wsum, csum, ssum, cc, ss, cs):
    """χ² reduction by one sine at each frequency, and the centred Σw·y² (χ² of a constant)."""
    nk, nx = cos_t.shape
    ysum = 0.0
    yy = 0.0
    for i in range(nx):
        ysum += w[i] * y[i]
        yy += w[i] * y[i] * y[i]
    yy -= ysum * ysum / wsum
    out = np.zeros(nk)
    for k in range(nk):
        yc = 0.0
        ys = 0.0
        for i in range(nx):
            wy = w[i] * y[i]
            yc += wy * cos_t[k, i]
            ys += wy * sin_t[k, i]
        yc -= ysum * csum[k] / wsum
        ys -= ysum * ssum[k] / wsum
        d = cc[k] * ss[k] - cs[k] * cs[k]
        if d > 0.0:
            out[k] = (ss[k] * yc * yc + cc[k] * ys * ys - 2.0 * cs[k] * yc * ys) / d
    return out, yy


@numba.njit(cache=True, nogil=True)
def _legendre(t, d, out):
    out[0] = 1.0
    if d > 1:
        out[1] = t
    for m in range(2, d):
        out[m] = ((2 * m - 1) * t * out[m - 1] - (m - 1) * out[m - 2]) / m


@numba.njit(cache=True, nogil=True)
def _mod_rows(x, t, s, freqs, terms, nseg, idx, val):
    """Indices and values of the non-zero design-matrix entries of one pixel."""
    dmax = 1
    for k in range(terms.size):
        dmax = max(dmax, terms[k])
    leg = np.empty(dmax)
    _legendre(t, dmax, leg)
    idx[0] = s
    val[0] = 1.0
    pos = 1
    base = nseg
    for k in range(freqs.size):
        d = terms[k]
        ph = 2.0 * math.pi * freqs[k] * x
        c = math.cos(ph)
        sn = math.sin(ph)
        for m in range(d):
            j = base + (s * d + m) * 2
            idx[pos] = j
            val[pos] = leg[m] * c
            idx[pos + 1] = j + 1
            val[pos + 1] = leg[m] * sn
            pos += 2
        base += 2 * nseg * d
    return pos


@numba.njit(cache=True, nogil=True)
def _mod_eval(x, t, seg, coef, freqs, terms, nseg):
    nz = 1 + 2 * int(terms.sum()) if terms.size else 1
    idx = np.empty(nz, np.int64)
    val = np.empty(nz)
    out = np.empty(x.size)
    for i in range(x.size):
        used = _mod_rows(x[i], t[i], seg[i], freqs, terms, nseg, idx, val)
        m = 0.0
        for u in range(used):
            m += coef[idx[u]] * val[u]
        out[i] = m
    return out


@numba.njit(cache=True, nogil=True)
def _mod_solve(x, t, seg, y, w, freqs, terms, nseg):
    """Weighted least squares of the linear coefficients for fixed frequencies and envelopes.

    Returns the coefficients, χ² and log det(ΦᵀWΦ) (Cholesky; raises LinAlgError if ΦᵀWΦ
    is not positive definite).
    """
    nz = 1 + 2 * int(terms.sum()) if terms.size else 1
    nl = nseg * nz
    a_mat = np.zeros((nl, nl))
    g = np.zeros(nl)
    idx = np.empty(nz, np.int64)
    val = np.empty(nz)
    yy = 0.0
    for i in range(x.size):
        used = _mod_rows(x[i], t[i], seg[i], freqs, terms, nseg, idx, val)
        wi = w[i]
        yy += wi * y[i] * y[i]
        for u in range(used):
            wu = wi * val[u]
            g[idx[u]] += wu * y[i]
            for v in range(used):
                a_mat[idx[u], idx[v]] += wu * val[v]
    chol = np.linalg.cholesky(a_mat)
    # forward and back substitution
    z = np.empty(nl)
    for i in range(nl):
        acc = g[i]
        for j in range(i):
            acc -= chol[i, j] * z[j]
        z[i] = acc / chol[i, i]
    coef = np.empty(nl)
    for i in range(nl - 1, -1, -1):
        acc = z[i]
        for j in range(i + 1, nl):
            acc -= chol[j, i] * coef[j]
        coef[i] = acc / chol[i, i]
    logdet = 0.0
    zz = 0.0
    for i in range(nl):
        logdet += 2.0 * math.log(chol[i, i])
        zz += z[i] * z[i]
    chi = yy - zz
    if chi < 0.0:
        chi = 0.0
    return coef, chi, logdet


@numba.njit(cache=True, nogil=True)
def _forward(low, b):
    """Solve L z = b (L lower triangular, b of shape (k, m))."""
    k, m = b.shape
    z = np.empty((k, m))
    for j in range(m):
        for i in range(k):
            acc = b[i, j]
            for q in range(i):
                acc -= low[i, q] * z[q, j]
            z[i, j] = acc / low[i, i]
    return z


@numba.njit(cache=True, nogil=True)
def _backward(low, b):
    """Solve Lᵀ x = b (L lower triangular, b of shape (k, m))."""
    k, m = b.shape
    out = np.empty((k, m))
    for j in range(m):
        for i in range(k - 1, -1, -1):
            acc = b[i, j]
            for q in range(i + 1, k):
                acc -= low[q, i] * out[q, j]
            out[i, j] = acc / low[i, i]
    return out


@numba.njit(cache=True, nogil=True)
def _base_system(x, t, seg, y, w, freqs, terms, nseg):
    """Dense design matrix Φ, Cholesky factor L of ΦᵀWΦ, u = L⁻¹ΦᵀWy, χ² and log det."""
    nz = 1 + 2 * int(terms.sum()) if terms.size else 1
    nl = nseg * nz
    phi = np.zeros((x.size, nl))
    a_mat = np.zeros((nl, nl))
    g = np.zeros((nl, 1))
    idx = np.empty(nz, np.int64)
    val = np.empty(nz)
    yy = 0.0
    for i in range(x.size):
        used = _mod_rows(x[i], t[i], seg[i], freqs, terms, nseg, idx, val)
        wi = w[i]
        yy += wi * y[i] * y[i]
        for u in range(used):
            phi[i, idx[u]] = val[u]
            wu = wi * val[u]
            g[idx[u], 0] += wu * y[i]
            for v in range(used):
                a_mat[idx[u], idx[v]] += wu * val[v]
    low = np.linalg.cholesky(a_mat)
    u_vec = np.ascontiguousarray(_forward(low, g)[:, 0])
    chi = yy
    logdet = 0.0
    for i in range(nl):
        chi -= u_vec[i] * u_vec[i]
        logdet += 2.0 * math.log(low[i, i])
    return phi, low, u_vec, max(chi, 0.0), logdet


@numba.njit(cache=True, nogil=True)
def _add_component(phi, low, u_vec, chi_old, logdet_old, x, t, seg, y, w, f, d, nseg):
    """Solve the model extended by one sine (frequency ``f``, ``d`` envelope terms).

    Block elimination (Schur complement) on the cached factor of the current model: the cost
    is that of the new columns only. Returns the coefficients (current model's, then the new
    sine's), χ² and log det(ΦᵀWΦ) of the extended model.
    """
    n_old = phi.shape[1]
    m = 2 * nseg * d
    b_mat = np.zeros((n_old, m))
    c_mat = np.zeros((m, m))
    h = np.zeros(m)
    leg = np.empty(d)
    vals = np.empty(2 * d)
    for i in range(x.size):
        s = seg[i]
        _legendre(t[i], d, leg)
        ph = 2.0 * math.pi * f * x[i]
        c = math.cos(ph)
        sn = math.sin(ph)
        for mm in range(d):
            vals[2 * mm] = leg[mm] * c
            vals[2 * mm + 1] = leg[mm] * sn
        base = s * d * 2
        wi = w[i]
        for a in range(2 * d):
            wv = wi * vals[a]
            ja = base + a
            h[ja] += wv * y[i]
            for b in range(2 * d):
                c_mat[ja, base + b] += wv * vals[b]
            for r in range(n_old):
                pr = phi[i, r]
                if pr != 0.0:
                    b_mat[r, ja] += pr * wv
    v_mat = _forward(low, b_mat)
    schur = c_mat.copy()
    rr = h.copy()
    for a in range(m):
        for r in range(n_old):
            rr[a] -= v_mat[r, a] * u_vec[r]
        for b in range(m):
            acc = 0.0
            for r in range(n_old):
                acc += v_mat[r, a] * v_mat[r, b]
            schur[a, b] -= acc
    low_s = np.linalg.cholesky(schur)
    rhs = np.empty((m, 1))
    for a in range(m):
        rhs[a, 0] = rr[a]
    z = _forward(low_s, rhs)
    chi = chi_old
    logdet = logdet_old
    for i in range(m):
        chi -= z[i, 0] * z[i, 0]
        logdet += 2.0 * math.log(low_s[i, i])
    beta_new = _backward(low_s, z)
    rhs_old = np.empty((n_old, 1))
    for r in range(n_old):
        acc = u_vec[r]
        for a in range(m):
            acc -= v_mat[r, a] * beta_new[a, 0]
        rhs_old[r, 0] = acc
    beta_old = _backward(low, rhs_old)
    coef = np.empty(n_old + m)
    coef[:n_old] = beta_old[:, 0]
    coef[n_old:] = beta_new[:, 0]
    return coef, max(chi, 0.0), logdet


# --------------------------------------------------------------------------- periodogram
class _Periodogram:
    """Weighted generalised Lomb–Scargle periodogram on a fixed uniform frequency grid.

    With several segments, each has its own amplitude and phase, and the χ² reductions of
    the segments add. The trigonometric tables and the weight-only sums are computed once;
    each call for a new residual costs two passes over the tables.
    """

    def __init__(self, x: np.ndarray, w: np.ndarray, freqs: np.ndarray, seg: np.ndarray | None = None):
        self.freqs = np.ascontiguousarray(freqs, dtype=np.float64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        w = np.ascontiguousarray(w, dtype=np.float64)
        seg = np.zeros(x.size, np.int64) if seg is None else seg
        self.parts = []
        for s in np.unique(seg):
            sel = np.flatnonzero(seg == s)
            if sel.size < 4:
                continue
            cos_t, sin_t = _trig_tables(x[sel], self.freqs)
            ws = np.ascontiguousarray(w[sel])
            self.parts.append((sel, cos_t, sin_t, ws, _gls_setup(cos_t, sin_t, ws)))

    def reduction(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Weighted χ² reduction by one sine at each frequency, and the χ² of constants."""
        y = np.asarray(y, dtype=np.float64)
        total = np.zeros(self.freqs.size)
        yy_total = 0.0
        for sel, cos_t, sin_t, ws, sums in self.parts:
            red, yy = _gls_reduction(cos_t, sin_t, ws, np.ascontiguousarray(y[sel]), *sums)
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
    return _Periodogram(x - 0.5 * (x.min() + x.max()), np.asarray(weights, np.float64),
                        np.asarray(freqs, np.float64)).power(np.asarray(y, np.float64))


def _refine_peak(x, w, seg, y, f_peak, df, f_lo, f_hi, pgram_res):
    """Best frequency near ``f_peak``, on a grid of step about ``pgram_res`` in period."""
    a, b = max(f_lo, f_peak - df), min(f_hi, f_peak + df)
    if not (b > a) or not pgram_res > 0:
        return f_peak
    n = int(min(400, math.floor((1.0 / a - 1.0 / b) / pgram_res) + 1))
    if n < 3:
        return f_peak
    freqs = np.linspace(a, b, n)
    p = _Periodogram(x, w, freqs, seg).power(y)
    return float(freqs[np.argmax(p)])


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


# --------------------------------------------------------------------------- sines
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

    def __init__(self, nu, resid, weights, gap, min_segment_pixels, settings):
        order = np.argsort(np.asarray(nu, np.float64), kind="stable")
        self.nu = np.ascontiguousarray(np.asarray(nu, np.float64)[order])
        self.y = np.ascontiguousarray(np.asarray(resid, np.float64)[order])
        w = np.asarray(weights, np.float64)[order]
        if not (self.nu.size and np.all(np.isfinite(self.nu)) and np.all(np.isfinite(self.y))
                and np.all(np.isfinite(w)) and np.all(w > 0)):
            raise ValueError(f"a sine fit needs at least one pixel, all with finite wavenumber and residual and "
                             f"positive weight ({self.nu.size} pixels given)")
        self.w = np.ascontiguousarray(w / np.mean(w))
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
        return _mod_solve(self.x, self.t, self.seg, self.y, self.w if w is None else w,
                          np.ascontiguousarray(freqs, np.float64), np.ascontiguousarray(terms, np.int64), self.nseg)

    def model(self, coef, freqs, terms):
        return _mod_eval(self.x, self.t, self.seg, coef, np.ascontiguousarray(freqs, np.float64),
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
        self.base = _base_system(self.x, self.t, self.seg, self.y, self.w, np.ascontiguousarray(freqs, np.float64),
                                 np.ascontiguousarray(terms, np.int64), self.nseg)

    def log_z_add(self, f, d):
        """As :meth:`log_z` for the cached model plus one sine, by block elimination."""
        phi, low, u_vec, chi_old, logdet_old = self.base
        try:
            coef, chi, logdet = _add_component(phi, low, u_vec, chi_old, logdet_old, self.x, self.t, self.seg,
                                               self.y, self.w, float(f), int(d), self.nseg)
        except np.linalg.LinAlgError:
            return -np.inf, None
        if not np.isfinite(logdet):
            return -np.inf, None
        k = coef.size
        log_vol = k * math.log(2.0 * self.settings.amplitude_limit)
        return log_evidence(chi, self.n, logdet, k, log_vol, self.sum_log_w, self.settings.noise_limits), coef

    def robust_coef(self, freqs, terms, domain):
        """Coefficients with two rounds of Tukey-biweight reweighting."""
        coef, chi, _ = self.solve(freqs, terms)
        k = coef.size
        for _ in range(2):
            res = self.y - self.model(coef, freqs, terms)
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


def _polish_frequencies(prob: _Problem, freqs: np.ndarray, terms: np.ndarray, delta: float) -> np.ndarray:
    """One parabola step per frequency (the others fixed) towards the maximum of the evidence."""
    freqs = freqs.copy()
    for k in range(freqs.size):
        def z_at(f, _k=k):
            trial = freqs.copy()
            trial[_k] = f
            return prob.log_z(trial, terms)[0]

        f0 = freqs[k]
        z_lo, z_mid, z_hi = z_at(f0 - delta), z_at(f0), z_at(f0 + delta)
        curv = -(z_hi - 2.0 * z_mid + z_lo)
        if not (curv > 0 and np.isfinite(curv)):
            continue
        f_new = f0 + float(np.clip(0.5 * delta * (z_hi - z_lo) / curv, -2.0 * delta, 2.0 * delta))
        if z_at(f_new) > z_mid:
            freqs[k] = f_new
    return freqs


def _admissible(coef, amp_limit) -> bool:
    """True if all coefficients are finite and inside their uniform prior."""
    return coef is not None and bool(np.all(np.isfinite(coef))) and not np.any(np.abs(coef) > amp_limit)


def fit_sines(nu: np.ndarray, resid: np.ndarray, weights: np.ndarray, component: FringeComponent,
              settings: FitSettings = FitSettings(), start: SineFit | None = None) -> SineFit:
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
        f_start = _polish_frequencies(prob, start.freq.copy(), start.terms, 0.5 / (settings.oversample * prob.span))
        z_start, c_start = prob.log_z(f_start, start.terms)
        if np.isfinite(z_start) and _admissible(c_start, settings.amplitude_limit):
            best = (f_start, start.terms.copy(), c_start)
            freq_terms = list(start.freq_terms)
            n_start = start.n
            evidences.append(z_start + sum(freq_terms) + math.lgamma(n_start + 1))

    def result():
        f, d, c = best
        if f.size and component.use_robust:
            c = prob.robust_coef(f, d, settings.robust_domain)
        return SineFit(f.copy(), d.copy(), c, prob.nu0, prob.breaks, prob.seg_mid, prob.seg_half,
                       np.asarray(evidences), np.asarray(freq_terms[: f.size]))

    if not f_hi > f_lo or prob.span <= 0:
        return result()
    df = 1.0 / (settings.oversample * prob.span)
    grid = np.arange(f_lo, f_hi + 0.5 * df, df)
    pgram = _Periodogram(prob.x, prob.w, grid, prob.seg)
    try:
        prob.set_base(best[0], best[1])
    except np.linalg.LinAlgError:
        return result()
    for n in range(n_start + 1, int(component.max_nfringes) + 1):
        rest = prob.y - prob.model(best[2], best[0], best[1])
        power = pgram.power(rest)
        if not power.size or not power.max() > 0:
            break
        f_peak = _refine_peak(prob.x, prob.w, prob.seg, rest, float(grid[np.argmax(power)]), df, f_lo, f_hi,
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
    prob = _Problem(nu, resid, weights, settings.segment_gap * component.ffreq, settings.min_segment_pixels,
                    settings)
    # Keep the original segmentation and phase reference.
    prob.breaks, prob.seg_mid, prob.seg_half, prob.nu0 = sines.breaks, sines.seg_mid, sines.seg_half, sines.nu0
    prob.nseg = sines.n_segments
    prob.seg = np.searchsorted(sines.breaks, prob.nu).astype(np.int64)
    prob.x = np.ascontiguousarray(prob.nu - sines.nu0)
    prob.t = np.ascontiguousarray((prob.nu - sines.seg_mid[prob.seg]) / sines.seg_half[prob.seg])
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


# --------------------------------------------------------------------------- diagnostics
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
    red, _ = _Periodogram(x - x.mean(), ww, grid, seg).reduction(r)
    return float(np.sqrt(2.0 * red.max() / np.sum(ww)))


# --------------------------------------------------------------------------- runaway check
def clip_runaway(fringe: np.ndarray, nu: np.ndarray, max_ptp, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero the fringe model where its local peak-to-peak amplitude is too large.

    The local peak-to-peak amplitude is the running max minus the running min of the model
    over one fringe period. Where it exceeds ``max_ptp`` the model is set to 0, over that
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
    bad = ptp > np.asarray(max_ptp)
    if not bad.any():
        return fringe, bad
    bad = _grow(bad, win // 2 + 1)
    out = fringe.copy()
    out[bad] = 0.0
    return out, bad


# --------------------------------------------------------------------------- one column
def _fit_components(x, f, w, components, settings, max_ptp, previous=None):
    """Fit all components on one set of weights; returns factor, sines, clipped, last baseline.

    With ``previous`` (the sines of an earlier pass, per component) the search for sines
    continues from them instead of starting afresh (the second feature pass).
    """
    n = f.size
    factor = np.ones(n)
    g = f.copy()
    clipped = np.zeros(n, bool)
    sines_out: list = []
    baseline = None
    status_runs: list = []
    use = w > 0
    for i, comp in enumerate(components):
        prev = previous[i] if previous is not None else None
        if comp.is_placeholder:
            sines_out.append(None)
            status_runs.append("skip")
            continue
        xu = x[use]
        if xu.size < settings.min_pixels:
            sines_out.append(None)
            status_runs.append("pixels")
            continue
        if (xu[-1] - xu[0]) / comp.ffreq < settings.min_periods:
            sines_out.append(None)
            status_runs.append("periods")
            continue
        degree = comp.baseline_degree
        start = g if prev is None or prev.n == 0 else g / (1.0 + prev(x, with_offset=False))
        base = fit_baseline(x, start, w, comp.ffreq, degree, comp.use_robust, settings.robust_domain)
        ok = use & (base > 0)
        if np.count_nonzero(ok) < settings.min_pixels:
            # a baseline that is not positive where the data are: nothing to divide by
            sines_out.append(None)
            status_runs.append("pixels")
            continue
        resid = np.zeros(n)
        resid[ok] = g[ok] / base[ok] - 1.0
        sines = fit_sines(x[ok], resid[ok], w[ok], comp, settings, start=prev)
        for _ in range(settings.backfit if sines.n else 0):
            model = sines(x, with_offset=False)
            base_new = fit_baseline(x, g / (1.0 + model), w, comp.ffreq, degree, comp.use_robust,
                                    settings.robust_domain)
            ok_new = use & (base_new > 0)
            if np.count_nonzero(ok_new) < settings.min_pixels:
                break  # keep the last baseline and sines that had the pixels
            base, ok = base_new, ok_new
            resid = np.zeros(n)
            resid[ok] = g[ok] / base[ok] - 1.0
            sines = refit_sines(x[ok], resid[ok], w[ok], sines, comp, settings)
        baseline = base
        sines_out.append(sines)
        status_runs.append("fit")
        if sines.n == 0:
            continue
        fringe = sines(x, with_offset=False)
        fringe, bad = clip_runaway(fringe, x, max_ptp, comp.ffreq)
        clipped |= bad
        comp_factor = 1.0 / (1.0 + fringe)
        g = g * comp_factor
        factor *= comp_factor
    return factor, sines_out, clipped, baseline, status_runs


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
                    np.zeros(n_comp, np.int16), np.zeros(n_in, bool), np.zeros(n_in, bool), [None] * n_comp)
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
    active = [c if (not c.is_placeholder and snr > c.min_snr) or c is main else
              replace(c, ffreq=0.0) for c in components]
    try:
        feats = find_features(f, w > 0, settings.feature_sigma, settings.feature_grow, settings.smooth_features)
        wf = np.where(feats, 0.0, w)
        factor, sines, clipped, base, runs = _fit_components(x, f, wf, active, settings, max_ptp)
        if settings.refine_features and base is not None:
            corrected = f * factor
            base2 = fit_baseline(x, corrected, wf, main.ffreq, main.baseline_degree, True, settings.robust_domain)
            new = residual_features(corrected, base2, w, settings.feature_sigma, settings.feature_grow) & ~feats & (w > 0)
            if new.any():
                feats = feats | new
                wf = np.where(feats, 0.0, w)
                factor, sines, clipped, base, runs = _fit_components(x, f, wf, active, settings, max_ptp,
                                                                     previous=sines)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        out.status = Status.FIT_FAILED
        out.message = f"{type(exc).__name__}: {exc}"
        return out
    if not np.all(np.isfinite(factor)) or np.any(factor <= 0):
        out.status = Status.FIT_FAILED
        out.message = "non-finite correction"
        return out
    n_kept = np.array([s.n if s is not None else 0 for s in sines], np.int16)
    periods = np.array([s.dominant_period() if s is not None else np.nan for s in sines])
    if runs[components.index(main)] == "periods":
        out.status = Status.TOO_FEW_PERIODS
        out.message = "too few fringe periods with weight"
        return out
    if runs[components.index(main)] == "pixels":
        out.status = Status.TOO_FEW_PIXELS
        out.message = "too few pixels with weight and a positive baseline"
        return out
    out.factor[order] = factor
    out.clipped[order] = clipped
    out.features[order] = feats | excluded
    out.n_sines = n_kept
    out.periods = periods
    out.sines = sines
    out.status = Status.CORRECTED if n_kept.sum() > 0 else Status.NO_FRINGES
    return out
