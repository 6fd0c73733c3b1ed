"""Area of a convex quadrilateral inside axis-aligned rectangles (numba).

:func:`clipped_area` clips against one rectangle (Sutherland–Hodgman, four half-planes), as
the official clipper does per spaxel. :func:`cell_areas` gives the areas inside every spaxel
of a block of the grid at once: it cuts the quadrilateral into column strips and each strip
into cells, one split per grid line, ~3x faster than clipping each spaxel on its own and equal
to it to ~1e-12 relative (where a cut falls between two float-rounded crossing points).
"""

from __future__ import annotations

import numba
import numpy as np

#: Vertex capacity of each :func:`cell_areas` work row.
CELL_WORK_VERTICES = 16

# The polygons being cut live in rows of one work array and are named by row numbers. numba
# counts references (a locked add on the array's header) whenever an array view is made or an
# array variable is reassigned: with a view per polygon and a swap of views per cut, those
# atomics took ~37 % of the drizzle kernel's time (perf); with row numbers, plain integers,
# 12 slabs of the channel benchmark take 0.34 CPU-s instead of 0.54, the sums bit for bit equal.


@numba.njit(cache=True, nogil=True, inline="always")
def _split(w, src, n, axis, bound, lo, hi):
    """Split the polygon in rows ``src`` (x) and ``src + 1`` (y) of ``w``, ``n`` vertices,
    along ``coord = bound`` (axis 0: x, 1: y) in one pass.

    Writes the part with ``coord < bound`` to rows ``lo``, ``lo + 1`` and the part with
    ``coord > bound`` to rows ``hi``, ``hi + 1``; returns both vertex counts. Each part is what
    Sutherland–Hodgman clipping to that open half-plane gives (vertices on the line count as
    outside).
    """
    nl = 0
    nh = 0
    for i in range(n):
        j = i + 1
        if j == n:
            j = 0
        x1 = w[src, i]
        y1 = w[src + 1, i]
        x2 = w[src, j]
        y2 = w[src + 1, j]
        c1 = x1 if axis == 0 else y1
        c2 = x2 if axis == 0 else y2
        l1 = c1 < bound
        l2 = c2 < bound
        h1 = c1 > bound
        h2 = c2 > bound
        if l1 != l2 or h1 != h2:
            t = (bound - c1) / (c2 - c1)
            if axis == 0:
                px = bound
                py = y1 + t * (y2 - y1)
            else:
                px = x1 + t * (x2 - x1)
                py = bound
            if l1 != l2:
                w[lo, nl] = px
                w[lo + 1, nl] = py
                nl += 1
            if h1 != h2:
                w[hi, nh] = px
                w[hi + 1, nh] = py
                nh += 1
        if l2:
            w[lo, nl] = x2
            w[lo + 1, nl] = y2
            nl += 1
        if h2:
            w[hi, nh] = x2
            w[hi + 1, nh] = y2
            nh += 1
    return nl, nh


@numba.njit(cache=True, nogil=True, inline="always")
def _polygon_area(w, r, n):
    """Shoelace area of the polygon in rows ``r``, ``r + 1`` of ``w`` (``n`` vertices),
    relative to its first vertex."""
    if n < 3:
        return 0.0
    x0 = w[r, 0]
    y0 = w[r + 1, 0]
    area = 0.0
    for i in range(n):
        j = i + 1
        if j == n:
            j = 0
        area += (w[r, i] - x0) * (w[r + 1, j] - y0) - (w[r, j] - x0) * (w[r + 1, i] - y0)
    return abs(0.5 * area)


@numba.njit(cache=True, nogil=True, inline="always")
def _copy(w, src, dst, n):
    """Rows ``src``, ``src + 1`` of ``w`` into rows ``dst``, ``dst + 1`` (``n`` vertices)."""
    for i in range(n):
        w[dst, i] = w[src, i]
        w[dst + 1, i] = w[src + 1, i]


@numba.njit(cache=True, nogil=True)
def cell_areas(qx, qy, xcoord, ycoord, cdelt1, cdelt2, ix0, ix1, iy0, iy1, areas, work):
    """Area of a convex quadrilateral inside each spaxel of the block ``[iy0:iy1, ix0:ix1]``.

    Parameters
    ----------
    qx, qy : ndarray
        The four vertices, in order around the quadrilateral.
    xcoord, ycoord : ndarray
        Spaxel centres; spaxel ``(iy, ix)`` is ``xcoord[ix] ± cdelt1/2`` × ``ycoord[iy] ± cdelt2/2``.
    cdelt1, cdelt2 : float
        Spaxel size.
    ix0, ix1, iy0, iy1 : int
        The block (non-empty, inside the grid).
    areas : ndarray, shape (ny, nx)
        Output: ``areas[iy, ix]`` is set for every spaxel of the block.
    work : ndarray, shape (8, CELL_WORK_VERTICES)
        Work space: four polygons (x and y rows each).
    """
    # The polygon being cut (p), the rest after a cut (t), a column strip (s), a cell (c).
    p, t, s, c = 0, 2, 4, 6
    for iy in range(iy0, iy1):
        for ix in range(ix0, ix1):
            areas[iy, ix] = 0.0
    for i in range(4):
        work[p, i] = qx[i]
        work[p + 1, i] = qy[i]
    n = 4
    # Trim to the block where the quadrilateral reaches beyond it (at the grid's edges).
    bounds = (xcoord[ix0] - cdelt1 * 0.5, xcoord[ix1 - 1] + cdelt1 * 0.5,
              ycoord[iy0] - cdelt2 * 0.5, ycoord[iy1 - 1] + cdelt2 * 0.5)
    for side in range(4):
        axis = side // 2
        bound = bounds[side]
        keep_high = side % 2 == 0  # left and bottom edges keep what is above them
        beyond = False
        for i in range(n):
            v = work[p + axis, i]
            if (keep_high and v <= bound) or (not keep_high and v >= bound):
                beyond = True
        if beyond:
            nl, nh = _split(work, p, n, axis, bound, c, t)
            if keep_high:
                p, t = t, p
                n = nh
            else:
                p, c = c, p
                n = nl
        if n < 3:
            return
    # Column strips, then cells: one split per grid line.
    for ix in range(ix0, ix1):
        if n < 3:
            return
        if ix < ix1 - 1:
            ns, nrest = _split(work, p, n, 0, xcoord[ix] + cdelt1 * 0.5, s, t)
            p, t = t, p  # the rest becomes the polygon
            n = nrest
        else:
            _copy(work, p, s, n)
            ns = n
            n = 0
        for iy in range(iy0, iy1):
            if ns < 3:
                break
            if iy < iy1 - 1:
                nc, nrest = _split(work, s, ns, 1, ycoord[iy] + cdelt2 * 0.5, c, t)
                areas[iy, ix] = _polygon_area(work, c, nc)
                s, t = t, s
                ns = nrest
            else:
                areas[iy, ix] = _polygon_area(work, s, ns)
                ns = 0


@numba.njit(cache=True, nogil=True)
def clipped_area(qx, qy, left, right, bottom, top):
    """Area of the quadrilateral (qx, qy) that lies inside [left, right] × [bottom, top].

    Sutherland–Hodgman clipping against the four edges (vertices on an edge count as
    outside, as in the official clipper), then the shoelace formula.

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
    w = np.empty((6, CELL_WORK_VERTICES))
    a, b, d = 0, 2, 4
    for i in range(4):
        w[a, i] = qx[i]
        w[a + 1, i] = qy[i]
    _, n = _split(w, a, 4, 0, left, d, b)  # keep x > left
    if n == 0:
        return 0.0
    n, _ = _split(w, b, n, 0, right, a, d)  # keep x < right
    if n == 0:
        return 0.0
    _, n = _split(w, a, n, 1, bottom, d, b)  # keep y > bottom
    if n == 0:
        return 0.0
    n, _ = _split(w, b, n, 1, top, a, d)  # keep y < top
    return _polygon_area(w, a, n)
