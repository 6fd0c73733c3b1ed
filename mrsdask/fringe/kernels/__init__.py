"""Residual-fringe kernels: one detector column (or one spectrum) at a time, numpy and numba.

Nothing here knows about Dask, xarray, WCS objects or reference files: every function takes
plain arrays and numbers. :func:`fit_column` is the whole per-column algorithm; the other
functions are its steps, public so that they can be tested one by one. By concept:

* :mod:`~mrsdask.fringe.kernels.model` — components, settings, fitted sines, results;
* :mod:`~mrsdask.fringe.kernels.features` — spectral features and the column S/N;
* :mod:`~mrsdask.fringe.kernels.baseline` — the spline baseline;
* :mod:`~mrsdask.fringe.kernels.periodogram` — the Lomb–Scargle periodogram and segments;
* :mod:`~mrsdask.fringe.kernels.sines` — sines chosen by evidence;
* :mod:`~mrsdask.fringe.kernels.column` — the whole column and the runaway check;
* :mod:`~mrsdask.fringe.kernels.cores` — the numba-compiled loops underneath.

 The dense loops
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

1. **Baseline** ``B``: least-squares spline in ν with an interior knot every 1.5 fringe
   periods (``FitSettings.baseline_knot_periods``; the official step: every period, where a
   quadratic spline still follows part of the fringe and leaves a distorted residual that
   the sines fit with runaway pairs), quadratic with robust
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
6. **Support and gaps**: ``F`` is not extrapolated beyond the first/last pixel with weight
   (envelopes held at their end values, ``F`` tapered to 0 over one period:
   :func:`support_taper`; e.g. above 27.6 µm in 1-D), and under masked lines its local
   amplitude is bounded by the one around them (:func:`bound_in_features`).
7. **Runaway check** (:func:`clip_runaway`): where the local peak-to-peak amplitude of ``F``
   exceeds the allowed maximum, or ``|F|`` exceeds half of it (a nearly constant model on a
   short column), ``F`` is set to 0 (those pixels are flagged).
8. The column is multiplied by ``1/(1 + F)``; factors of the components multiply. With two
   components, each is then fitted again on the data divided by the other (continuing its
   search): the main fringe is first fitted with the dichroic fringe as noise, which hides
   its weaker sines (``FitSettings.component_rounds``). A component is fitted again only if
   the change of the others would move its model by more than
   ``FitSettings.round_tolerance`` (its own sines fitted to that change).
9. Each component gets a :class:`ComponentStatus`: fitted, or why not (no evidence, S/N,
   placeholder, pixels, periods, clipped).

Features are found twice: first from the envelope of the data (:func:`find_features`, as the
official 1-D variant does, but with clipping that starts from a robust scale, so that strong
lines do not hide themselves by inflating the standard deviation, and with their wings; a
feature must also stand out from envelopes through extrema over a quarter fringe period, so
that a shorter ripple such as the dichroic fringe cannot make the fringe crests look like
lines), then — after a first fit — as outliers of the data from the
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

from mrsdask.fringe.kernels.baseline import baseline_knots, fit_baseline, spline_well_posed
from mrsdask.fringe.kernels.column import (
    bound_in_features,
    clip_runaway,
    fit_column,
    fringe_amplitude,
    support_taper,
)
from mrsdask.fringe.kernels.features import (
    DER_SNR_FACTOR,
    der_snr,
    envelopes,
    find_features,
    local_extrema,
    residual_features,
    running_mean,
)
from mrsdask.fringe.kernels.model import (
    CLIPPED_BIT,
    COMPONENT_STATUS_MEANINGS,
    STATUS_MEANINGS,
    ColumnFit,
    ComponentStatus,
    FitSettings,
    FringeComponent,
    SineFit,
    Status,
)
from mrsdask.fringe.kernels.periodogram import gls_power, segments
from mrsdask.fringe.kernels.sines import fit_sines, log_evidence, refit_sines

__all__ = [
    "CLIPPED_BIT",
    "COMPONENT_STATUS_MEANINGS",
    "DER_SNR_FACTOR",
    "STATUS_MEANINGS",
    "ColumnFit",
    "ComponentStatus",
    "FitSettings",
    "FringeComponent",
    "SineFit",
    "Status",
    "baseline_knots",
    "bound_in_features",
    "clip_runaway",
    "der_snr",
    "envelopes",
    "find_features",
    "fit_baseline",
    "fit_column",
    "fit_sines",
    "fringe_amplitude",
    "gls_power",
    "local_extrema",
    "log_evidence",
    "refit_sines",
    "residual_features",
    "running_mean",
    "segments",
    "spline_well_posed",
    "support_taper",
]
