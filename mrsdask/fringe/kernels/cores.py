"""Numba-compiled cores of the residual-fringe fit: periodogram sums and the sine-model algebra.

Small dense algebra is done in compiled loops: multithreaded BLAS is 10-40x slower than a
single thread on these (1000 x 31) problems, and Dask workers must not oversubscribe cores.
Sine-model parameters are laid out as [c (S), a (n*S), b (n*S), f (n)], a[k*S + s].
Every function releases the GIL (``nogil``).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def trig_tables(x, freqs):
    """cos and sin of 2π·freqs[k]·x[i] for a uniform frequency grid (angle-addition recurrence).

    Computed in float64, stored in float32: the tables (frequencies × pixels, 6 MB each for
    the dichroic window of a channel-4 column in float64) are written once and read for
    every periodogram, so their memory traffic is the cost; the sums over them stay in
    float64, and the grid only locates peaks (refined by :func:`gls_reduction_direct`).
    """
    nk, nx = freqs.size, x.size
    cos_t = np.empty((nk, nx), np.float32)
    sin_t = np.empty((nk, nx), np.float32)
    if nk == 0:
        return cos_t, sin_t
    step = freqs[1] - freqs[0] if nk > 1 else 0.0
    # Frequency-major, so that the tables are written contiguously; per pixel the values
    # are those of the recurrence along the grid (the same operations in the same order).
    cd = np.empty(nx)
    sd = np.empty(nx)
    c = np.empty(nx)
    s = np.empty(nx)
    for i in range(nx):
        cd[i] = math.cos(2.0 * math.pi * step * x[i])
        sd[i] = math.sin(2.0 * math.pi * step * x[i])
    for k in range(nk):
        if k % 32 == 0:
            # Re-anchor now and then so that rounding cannot accumulate.
            for i in range(nx):
                c[i] = math.cos(2.0 * math.pi * freqs[k] * x[i])
                s[i] = math.sin(2.0 * math.pi * freqs[k] * x[i])
        for i in range(nx):
            ci = c[i]
            si = s[i]
            cos_t[k, i] = np.float32(ci)
            sin_t[k, i] = np.float32(si)
            c[i] = ci * cd[i] - si * sd[i]
            s[i] = si * cd[i] + ci * sd[i]
    return cos_t, sin_t


@numba.njit(cache=True, nogil=True)
def gls_setup(cos_t, sin_t, w):
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
def gls_reduction(cos_t, sin_t, w, y, wsum, csum, ssum, cc, ss, cs):
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
def _mod_rows(x, t, s, freqs, terms, nseg, idx, val, leg):
    """Indices and values of the non-zero design-matrix entries of one pixel (``leg``: scratch
    of :func:`_legendre_scratch`, allocated once per call of the callers, not per pixel)."""
    dmax = leg.size
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
def _legendre_scratch(terms):
    """Room for the Legendre values of the longest envelope of ``terms`` (at least 1)."""
    dmax = 1
    for k in range(terms.size):
        dmax = max(dmax, terms[k])
    return np.empty(dmax)


@numba.njit(cache=True, nogil=True)
def modulated_eval(x, t, seg, coef, freqs, terms, nseg):
    nz = 1 + 2 * int(terms.sum()) if terms.size else 1
    idx = np.empty(nz, np.int64)
    val = np.empty(nz)
    leg = _legendre_scratch(terms)
    out = np.empty(x.size)
    for i in range(x.size):
        used = _mod_rows(x[i], t[i], seg[i], freqs, terms, nseg, idx, val, leg)
        m = 0.0
        for u in range(used):
            m += coef[idx[u]] * val[u]
        out[i] = m
    return out


@numba.njit(cache=True, nogil=True)
def _normal_equations(x, t, seg, y, w, freqs, terms, nseg, phi):
    """ΦᵀWΦ (its lower triangle), ΦᵀWy (shape (nl, 1)) and yᵀWy of the modulated model for fixed frequencies.

    Φ itself is written into ``phi`` when it has one row per pixel (pass zero rows to skip it).
    """
    nz = 1 + 2 * int(terms.sum()) if terms.size else 1
    nl = nseg * nz
    a_mat = np.zeros((nl, nl))
    g = np.zeros((nl, 1))
    idx = np.empty(nz, np.int64)
    val = np.empty(nz)
    leg = _legendre_scratch(terms)
    keep = phi.shape[0] == x.size
    yy = 0.0
    for i in range(x.size):
        used = _mod_rows(x[i], t[i], seg[i], freqs, terms, nseg, idx, val, leg)
        wi = w[i]
        yy += wi * y[i] * y[i]
        for u in range(used):
            if keep:
                phi[i, idx[u]] = val[u]
            wu = wi * val[u]
            g[idx[u], 0] += wu * y[i]
            # the lower triangle only (idx increases with u): Cholesky reads no more
            for v in range(u + 1):
                a_mat[idx[u], idx[v]] += wu * val[v]
    return a_mat, g, yy


@numba.njit(cache=True, nogil=True)
def modulated_solve(x, t, seg, y, w, freqs, terms, nseg):
    """Weighted least squares of the linear coefficients for fixed frequencies and envelopes.

    Returns the coefficients, χ² and log det(ΦᵀWΦ) (Cholesky; raises LinAlgError if ΦᵀWΦ
    is not positive definite).
    """
    nl = nseg * (1 + 2 * int(terms.sum()) if terms.size else 1)
    a_mat, g, yy = _normal_equations(x, t, seg, y, w, freqs, terms, nseg, np.zeros((0, nl)))
    chol = np.linalg.cholesky(a_mat)
    z = _forward(chol, g)  # forward and back substitution
    coef = np.ascontiguousarray(_backward(chol, z)[:, 0])
    logdet = 0.0
    zz = 0.0
    for i in range(nl):
        logdet += 2.0 * math.log(chol[i, i])
        zz += z[i, 0] * z[i, 0]
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
def base_system(x, t, seg, y, w, freqs, terms, nseg):
    """Dense design matrix Φ, Cholesky factor L of ΦᵀWΦ, u = L⁻¹ΦᵀWy, χ² and log det."""
    nl = nseg * (1 + 2 * int(terms.sum()) if terms.size else 1)
    phi = np.zeros((x.size, nl))
    a_mat, g, yy = _normal_equations(x, t, seg, y, w, freqs, terms, nseg, phi)
    low = np.linalg.cholesky(a_mat)
    u_vec = np.ascontiguousarray(_forward(low, g)[:, 0])
    chi = yy
    logdet = 0.0
    for i in range(nl):
        chi -= u_vec[i] * u_vec[i]
        logdet += 2.0 * math.log(low[i, i])
    return phi, low, u_vec, max(chi, 0.0), logdet


@numba.njit(cache=True, nogil=True)
def add_component(phi, low, u_vec, chi_old, logdet_old, x, t, seg, y, w, f, d, nseg):
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
            for b in range(a + 1):  # lower triangles of C and of the Schur complement: Cholesky reads no more
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
        for b in range(a + 1):
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


@numba.njit(cache=True, nogil=True)
def gls_reduction_direct(x, freqs, w, y):
    """:func:`gls_setup` and :func:`gls_reduction` in one pass, without storing the tables.

    For a periodogram evaluated once (the fine grid around a peak): the cos/sin values come
    from the same recurrence as :func:`trig_tables` and every sum runs over the pixels in the
    same order, so the result is that of the tabulated path (to the float32 rounding of the
    tables), without writing and reading two ``freqs × pixels`` tables.
    """
    nk, nx = freqs.size, x.size
    wsum = 0.0
    ysum = 0.0
    yy = 0.0
    for i in range(nx):
        wsum += w[i]
        ysum += w[i] * y[i]
        yy += w[i] * y[i] * y[i]
    yy -= ysum * ysum / wsum
    c1 = np.zeros(nk)
    s1 = np.zeros(nk)
    c2 = np.zeros(nk)
    s2 = np.zeros(nk)
    cs1 = np.zeros(nk)
    yc = np.zeros(nk)
    ys = np.zeros(nk)
    out = np.zeros(nk)
    if nk == 0:
        return out, yy
    step = freqs[1] - freqs[0] if nk > 1 else 0.0
    for i in range(nx):
        cd = math.cos(2.0 * math.pi * step * x[i])
        sd = math.sin(2.0 * math.pi * step * x[i])
        wi = w[i]
        wy = w[i] * y[i]
        c = 1.0
        s = 0.0
        for k in range(nk):
            if k % 32 == 0:
                c = math.cos(2.0 * math.pi * freqs[k] * x[i])
                s = math.sin(2.0 * math.pi * freqs[k] * x[i])
            c1[k] += wi * c
            s1[k] += wi * s
            c2[k] += wi * c * c
            s2[k] += wi * s * s
            cs1[k] += wi * c * s
            yc[k] += wy * c
            ys[k] += wy * s
            c, s = c * cd - s * sd, s * cd + c * sd
    for k in range(nk):
        cc = c2[k] - c1[k] * c1[k] / wsum
        ss = s2[k] - s1[k] * s1[k] / wsum
        cs = cs1[k] - c1[k] * s1[k] / wsum
        ycc = yc[k] - ysum * c1[k] / wsum
        yss = ys[k] - ysum * s1[k] / wsum
        d = cc * ss - cs * cs
        if d > 0.0:
            out[k] = (ss * ycc * ycc + cc * yss * yss - 2.0 * cs * ycc * yss) / d
    return out, yy


@numba.njit(cache=True, nogil=True)
def schoenberg_whitney(xs, t, k):
    """The Schoenberg–Whitney test of :func:`~mrsdask.fringe.kernels.baseline.spline_well_posed`
    on distinct increasing ``xs`` and the full knot vector ``t`` of degree ``k``."""
    n = t.size - k - 1
    if xs.size < n:
        return False
    i = 0
    for j in range(n):
        lower = t[j]
        upper = t[j + k + 1]
        if j == 0:
            pos = np.searchsorted(xs, lower, side="left")
        else:
            pos = np.searchsorted(xs, lower, side="right")
        i = max(i, pos)
        if i >= xs.size:
            return False
        if not (xs[i] < upper or (j == n - 1 and xs[i] <= upper)):
            return False
        i += 1
    return True
