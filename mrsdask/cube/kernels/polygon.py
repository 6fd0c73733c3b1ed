"""Area of a convex quadrilateral inside an axis-aligned rectangle (numba)."""

from __future__ import annotations

import numba
import numpy as np

_MAXV = 12  # a quadrilateral clipped by four half-planes has at most 8 vertices


@numba.njit(cache=True, nogil=True)
def _clip_half_plane(xs, ys, n, out_x, out_y, axis, bound, keep_greater):
    """Clip polygon (xs, ys)[:n] to one half-plane; write result, return vertex count.

    The half-plane is ``coord > bound`` (keep_greater) or ``coord < bound`` along ``axis``
    (0 for x, 1 for y). Vertices exactly on the boundary count as outside, as in the
    official clipper; the area is unaffected.
    """
    m = 0
    for i in range(n):
        j = (i + 1) % n
        x1, y1 = xs[i], ys[i]
        x2, y2 = xs[j], ys[j]
        c1 = x1 if axis == 0 else y1
        c2 = x2 if axis == 0 else y2
        in1 = c1 > bound if keep_greater else c1 < bound
        in2 = c2 > bound if keep_greater else c2 < bound
        if in1 != in2:
            # Edge crosses the boundary: add the crossing point.
            t = (bound - c1) / (c2 - c1)
            if axis == 0:
                out_x[m] = bound
                out_y[m] = y1 + t * (y2 - y1)
            else:
                out_x[m] = x1 + t * (x2 - x1)
                out_y[m] = bound
            m += 1
        if in2:
            out_x[m] = x2
            out_y[m] = y2
            m += 1
    return m


@numba.njit(cache=True, nogil=True)
def clipped_area(qx, qy, left, right, bottom, top):
    """Area of the quadrilateral (qx, qy) that lies inside [left, right] × [bottom, top].

    Sutherland–Hodgman clipping against the four edges, then the shoelace formula.

    Parameters
    ----------
    qx, qy : ndarray
        The four vertices, in order around the quadrilateral.
    left, right, bottom, top : float
        The rectangle.

    Returns
    -------
    float
        The overlap area (same units as the coordinates squared).
    """
    work = np.empty((4, _MAXV))
    return clipped_area_buffered(qx, qy, left, right, bottom, top, work)


@numba.njit(cache=True, nogil=True)
def clipped_area_buffered(qx, qy, left, right, bottom, top, work):
    """:func:`clipped_area` with caller-provided work space ``work`` of shape (4, 12)."""
    ax = work[0]
    ay = work[1]
    bx = work[2]
    by = work[3]
    for i in range(4):
        ax[i] = qx[i]
        ay[i] = qy[i]
    n = 4
    n = _clip_half_plane(ax, ay, n, bx, by, 0, left, True)
    if n == 0:
        return 0.0
    n = _clip_half_plane(bx, by, n, ax, ay, 0, right, False)
    if n == 0:
        return 0.0
    n = _clip_half_plane(ax, ay, n, bx, by, 1, bottom, True)
    if n == 0:
        return 0.0
    n = _clip_half_plane(bx, by, n, ax, ay, 1, top, False)
    if n < 3:
        return 0.0
    # Shoelace with coordinates taken relative to the first vertex (less cancellation).
    x0 = ax[0]
    y0 = ay[0]
    area = 0.0
    for i in range(n):
        j = (i + 1) % n
        area += (ax[i] - x0) * (ay[j] - y0) - (ax[j] - x0) * (ay[i] - y0)
    return abs(0.5 * area)
