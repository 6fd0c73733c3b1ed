"""The MRS detector → (α, β, λ) model as plain arrays, evaluated by a numba kernel.

The first step of an MRS gwcs maps a detector pixel to its slice (a label array the size of
the detector) and, per slice, to α and λ by two 2-D polynomials and to β by a constant:
``x, y → (P_α(y, x + s_α), β, P_λ(y, x + s_λ))``. Built as astropy models, its ~1,200
components take ~1.4 s to create per setting, more than everything else in a setting's
geometry. :class:`DetectorModel` holds the same numbers in arrays (built from the ASDF tree by
:mod:`mrsdask.io.mrs_detector_step`) and evaluates them with the operations astropy performs,
in the same order (its multivariate Horner scheme, domain mapping, the gwcs label lookup), so
the results are the same bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


def horner_steps(degree: int) -> np.ndarray:
    """Which steps of astropy's 2-D multivariate Horner scheme advance the y power.

    Astropy orders the coefficients ``c{j}_{i}`` (xʲ yⁱ) by i, then j, reversed, and walks them
    with ``r1 = x (r0 + r1)`` or, when the y power changes, ``r2 = y (r0 + r1 + r2); r1 = 0``.
    """
    pairs = [(j, i) for i in range(degree + 1) for j in range(degree + 1) if i + j <= degree][::-1]
    return np.array([pairs[n + 1][1] != pairs[n][1] for n in range(len(pairs) - 1)], dtype=np.bool_)


def invlex_coefficients(coefficients: np.ndarray) -> np.ndarray:
    """Coefficients ``c[i, j]`` of xⁱ yʲ (the ASDF layout) in astropy's Horner order."""
    degree = coefficients.shape[0] - 1
    out = [coefficients[j, i] for i in range(degree + 1) for j in range(degree + 1) if i + j <= degree]
    return np.array(out[::-1], dtype=np.float64)


def domain_map(domain, window) -> tuple[float, float]:
    """(offset, scale) of astropy's ``poly_map_domain``; (0, 1) when there is no domain."""
    if domain is None:
        return 0.0, 1.0
    d0, d1 = (float(v) for v in domain)
    w0, w1 = (float(v) for v in (window if window is not None else (-1.0, 1.0)))
    return (w0 * d1 - w1 * d0) / (d1 - d0), (w1 - w0) / (d1 - d0)


@dataclass(frozen=True)
class SlicePolynomial:
    """One slice's α or λ polynomial: ``P(y, x + shift)`` with astropy's domain mapping."""

    coefficients: np.ndarray  # (degree + 1, degree + 1), c[i, j] multiplies uⁱ vʲ
    shift: float
    x_map: tuple[float, float]  # (offset, scale) applied to u = detector y
    y_map: tuple[float, float]  # (offset, scale) applied to v = detector x + shift


@dataclass(frozen=True)
class DetectorModel:
    """Detector → (α, β, λ) of one MRS setting, callable like the gwcs step it replaces.

    Attributes
    ----------
    slice_map : ndarray, shape (1024, 1032)
        Label (``100 × channel + slice``) of every detector pixel, 0 off-slice.
    labels : ndarray
        Labels that have a transform; row ``k`` of the tables belongs to ``labels[k]``.
    alpha, wavelength : tuple of ndarray
        Per-row polynomial tables ``(coefficients in Horner order, Horner steps, number of
        coefficients, shift, maps)``, padded to the largest degree.
    beta : ndarray
        β of each row (arcsec).
    """

    slice_map: np.ndarray
    labels: np.ndarray
    alpha: tuple
    wavelength: tuple
    beta: np.ndarray

    @classmethod
    def from_slices(cls, slice_map: np.ndarray, slices: dict[int, tuple[SlicePolynomial, float, SlicePolynomial]]):
        """Build from ``{label: (α polynomial, β, λ polynomial)}``."""
        labels = np.array(sorted(slices), dtype=np.int64)
        rows = [slices[int(label)] for label in labels]
        return cls(np.asarray(slice_map, dtype=np.int64), labels,
                   _table([r[0] for r in rows]), _table([r[2] for r in rows]),
                   np.array([r[1] for r in rows], dtype=np.float64))

    @property
    def label_mapper(self):
        """The slice map in the place where gwcs keeps it (``label_mapper.mapper``)."""
        return _Mapper(self.slice_map)

    def __call__(self, x, y):
        """(α, β, λ) at detector positions (x, y): NaN off-slice, as the gwcs step."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        shape = np.broadcast_shapes(x.shape, y.shape)
        xf = np.ascontiguousarray(np.broadcast_to(x, shape)).ravel()
        yf = np.ascontiguousarray(np.broadcast_to(y, shape)).ravel()
        # gwcs LabelMapperArray: mapper[to_index(y), to_index(x)], numpy indexing rules.
        ix = np.asarray(np.floor(xf + 0.5), dtype=int)
        iy = np.asarray(np.floor(yf + 0.5), dtype=int)
        found = self.slice_map[iy, ix]
        lookup = np.full(max(int(self.labels.max(initial=0)), int(found.max(initial=0))) + 1, -1, dtype=np.int64)
        lookup[self.labels] = np.arange(self.labels.size)
        row = np.where(found > 0, lookup[np.clip(found, 0, None)], -1)
        alpha = np.empty(xf.size)
        beta = np.empty(xf.size)
        lam = np.empty(xf.size)
        _evaluate(xf, yf, row, *self.alpha, *self.wavelength, self.beta, alpha, beta, lam)
        return alpha.reshape(shape), beta.reshape(shape), lam.reshape(shape)


@dataclass(frozen=True)
class _Mapper:
    mapper: np.ndarray


def _table(polys: list[SlicePolynomial]) -> tuple:
    n_coef = max((p.coefficients.shape[0] * (p.coefficients.shape[0] + 1)) // 2 for p in polys)
    coefficients = np.zeros((len(polys), n_coef))
    steps = np.zeros((len(polys), max(n_coef - 1, 1)), dtype=np.bool_)
    counts = np.zeros(len(polys), dtype=np.int64)
    shifts = np.zeros(len(polys))
    maps = np.zeros((len(polys), 4))
    for k, p in enumerate(polys):
        c = invlex_coefficients(np.asarray(p.coefficients, dtype=np.float64))
        coefficients[k, :c.size] = c
        s = horner_steps(p.coefficients.shape[0] - 1)
        steps[k, :s.size] = s
        counts[k] = c.size
        shifts[k] = p.shift
        maps[k] = (*p.x_map, *p.y_map)
    return coefficients, steps, counts, shifts, maps


@numba.njit(cache=True, nogil=True, inline="always")
def _horner(coefficients, steps, count, u, v):  # pragma: no cover - compiled
    """astropy's ``Polynomial2D.multivariate_horner`` for one point (same operation order)."""
    r0 = coefficients[0]
    r1 = 0.0
    r2 = 0.0
    for n in range(count - 1):
        if steps[n]:
            r2 = v * (r0 + r1 + r2)
            r1 = 0.0
        else:
            r1 = u * (r0 + r1)
        r0 = coefficients[n + 1]
    return r0 + r1 + r2


@numba.njit(cache=True, nogil=True)
def _evaluate(x, y, row, a_coef, a_steps, a_count, a_shift, a_maps, l_coef, l_steps, l_count, l_shift, l_maps,
              beta, out_alpha, out_beta, out_lam):  # pragma: no cover - compiled
    for k in range(x.size):
        r = row[k]
        if r < 0:
            out_alpha[k] = np.nan
            out_beta[k] = np.nan
            out_lam[k] = np.nan
            continue
        # The polynomial's first input is detector y, its second detector x + shift; each is
        # mapped from its domain to its window (offset + scale · value), as astropy does.
        ua = a_maps[r, 0] + a_maps[r, 1] * y[k]
        va = a_maps[r, 2] + a_maps[r, 3] * (x[k] + a_shift[r])
        ul = l_maps[r, 0] + l_maps[r, 1] * y[k]
        vl = l_maps[r, 2] + l_maps[r, 3] * (x[k] + l_shift[r])
        out_beta[k] = beta[r]
        if a_count[r] == l_count[r]:
            # Same degree: the two Horner chains advance together (independent chains overlap
            # in the CPU; each keeps astropy's operation order exactly).
            steps = a_steps[r]
            ca = a_coef[r]
            cl = l_coef[r]
            a0 = ca[0]
            a1 = 0.0
            a2 = 0.0
            l0 = cl[0]
            l1 = 0.0
            l2 = 0.0
            for n in range(a_count[r] - 1):
                if steps[n]:
                    a2 = va * (a0 + a1 + a2)
                    a1 = 0.0
                    l2 = vl * (l0 + l1 + l2)
                    l1 = 0.0
                else:
                    a1 = ua * (a0 + a1)
                    l1 = ul * (l0 + l1)
                a0 = ca[n + 1]
                l0 = cl[n + 1]
            out_alpha[k] = a0 + a1 + a2
            out_lam[k] = l0 + l1 + l2
        else:
            out_alpha[k] = _horner(a_coef[r], a_steps[r], a_count[r], ua, va)
            out_lam[k] = _horner(l_coef[r], l_steps[r], l_count[r], ul, vl)
