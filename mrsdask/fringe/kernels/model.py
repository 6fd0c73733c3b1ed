"""The objects of the residual-fringe fit: fringe components, settings, fitted sines, results.

:class:`FringeComponent` and :class:`FitSettings` are what :func:`~mrsdask.fringe.kernels.fit_column`
is given; :class:`SineFit` (one component's fringe model) and :class:`ColumnFit` (a column's
result, with its :class:`Status`) are what it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from mrsdask.fringe.kernels.cores import modulated_eval


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


class ComponentStatus(IntEnum):
    """Outcome of one fringe component (main, dichroic) in one column or spectrum.

    Says why a component has no sines: :class:`Status` is the column's outcome (a column is
    ``CORRECTED`` when any component was), this is per component (``rf_component_status``
    of the detector-level output; ``ColumnFit.component_status`` of a 1-D spectrum).
    """

    #: The column was skipped before the components were fitted (see its :class:`Status`).
    NOT_RUN = 0
    #: Sines kept by the evidence test and divided out.
    FITTED = 1
    #: Searched, but no sine passed the evidence test (no significant fringe of this period).
    NO_EVIDENCE = 2
    #: No such component here: placeholder period (FFREQ ≤ 1e-3) in the reference.
    PLACEHOLDER = 3
    #: The column S/N is not above this component's MIN_SNR.
    LOW_SNR = 4
    #: Too few pixels with weight (and a positive baseline) for this component.
    TOO_FEW_PIXELS = 5
    #: The weighted pixels span fewer than ``min_periods`` periods of this component.
    TOO_FEW_PERIODS = 6
    #: Sines were fitted but the model ran away (amplitude check) over every pixel: zeroed.
    CLIPPED = 7


#: Names of the component status codes, for ``flag_meanings`` attributes.
COMPONENT_STATUS_MEANINGS = {int(s): s.name.lower() for s in ComponentStatus}


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
    feature_sigma_wings : float
        A feature extends over its contiguous neighbours deviating by more than this many
        (robust) standard deviations: the wings of a strong line.
    envelope_window : float
        Extrema of the feature search's envelopes are the extremes over ± this many main
        fringe periods (at least 2 pixels each side): wide enough that a shorter ripple (the
        dichroic fringe, noise) has no extrema on the slopes of the main fringe.
    smooth_features : int
        If > 1, features are also searched on a running mean of this many pixels (the
        official step uses 7 in channels 3 and 4, against the dichroic fringe).
    refine_features : bool
        Second feature pass on the residuals of a first fit (see module notes).
    baseline_knot_periods : float
        Knot spacing of a component's baseline spline, in periods of that component (the
        official step: 1). A quadratic spline with a knot every period can follow part of
        the fringe itself: the residual it leaves is a distorted fringe, which the sines
        then fit with close pairs of large, cancelling amplitudes that run away at the
        column's ends (up to 7 % off over the last half period of 34A columns where the
        fringe is strongest). With 1.5 periods, on the 34A bench columns the fringe left
        is 0.0020 rms instead of 0.0047 (official 0.0077), on 12A 0.0019 instead of 0.0022,
        and 4C lines keep their flux at every fringe phase tried; 2 periods starts to cost
        line flux in channel 1 (1.06 % at a 15 % fringe).
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
    taper_periods : float
        Beyond the first and last pixel with weight (e.g. above 27.6 µm in a 1-D spectrum,
        where the official fit gives no weight) the fringe model is not extrapolated: it is
        tapered to 0 (cos²) over this many periods of its component, its envelope held at
        its end value. 0: cut at the last supported pixel.
    component_rounds : int
        With several components, rounds of fitting each one on the data corrected by the
        others (1: main, then dichroic, as the official step; 2: the main fringe is then
        fitted again with the dichroic fringe divided out, continuing its search, and the
        dichroic one again with the new main fringe).
    round_tolerance : float
        A component is fitted again in a later round only if the change of the other
        components' factors since its last fit would move its fringe model by more than this
        (to first order: its own sines fitted to the change; without sines, the largest
        relative change), otherwise its fit would not change; the rounds stop when no
        component is fitted again. On the 34A benchmark the dichroic fit is then not
        repeated after the main fringe's second round (3.5 instead of 4.7 fits per
        column, the same residual); 3e-4 starts skipping main-fringe refits that matter.
    protect_features : bool
        Under masked features (lines) the fringe model is kept to the local amplitude it has
        on both sides (interpolated across the feature): a model that is free under a gap
        must not grow there.
    """

    min_pixels: int = 51
    min_periods: float = 5.0
    min_pixel_snr: float = 10.0
    amplitude_limit: float = 3.0
    evidence_threshold: float = 1.0
    noise_limits: tuple[float, float] = (0.001, 10.0)
    feature_sigma: float = 5.0
    feature_grow: int = 1
    feature_sigma_wings: float = 2.0
    envelope_window: float = 0.25
    smooth_features: int = 0
    refine_features: bool = True
    baseline_knot_periods: float = 1.5
    backfit: int = 1
    oversample: float = 4.0
    robust_domain: float = 10.0
    segment_gap: float = 5.0
    min_segment_pixels: int = 20
    envelope_terms: int = 3
    taper_periods: float = 1.0
    component_rounds: int = 2
    round_tolerance: float = 1e-4
    protect_features: bool = True


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
        # Envelopes are polynomials fitted on t in [-1, 1]: beyond, they are held at their end
        # values, not extrapolated (a cubic grows fast outside the data).
        t = np.clip((nu - self.seg_mid[seg]) / self.seg_half[seg], -1.0, 1.0)
        return np.ascontiguousarray(nu - self.nu0), np.ascontiguousarray(t), seg

    def __call__(self, nu: np.ndarray, with_offset: bool = True) -> np.ndarray:
        """Evaluate the model at wavenumbers ``nu`` (the constants included if ``with_offset``)."""
        x, t, seg = self._coords(nu)
        coef = self.coef.copy()
        if not with_offset:
            coef[: self.n_segments] = 0.0
        out = modulated_eval(x, t, seg, coef, self.freq, self.terms, self.n_segments)
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
    component_status : ndarray of int8
        Per component, a :class:`ComponentStatus`: why a component has no sines.
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
    component_status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))

    def reasons(self, names=("main", "dichroic")) -> str:
        """One line: the column outcome and, per component, its outcome (e.g. for a log)."""
        parts = []
        for i, code in enumerate(self.component_status):
            name = names[i] if i < len(names) else f"component{i}"
            parts.append(f"{name}: {ComponentStatus(int(code)).name.lower()}")
        text = self.status.name.lower() + (f" ({self.message})" if self.message else "")
        return text + ("; " + ", ".join(parts) if parts else "")
