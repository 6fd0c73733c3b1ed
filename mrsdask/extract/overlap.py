"""Circle–pixel overlap weights in numba: photutils' ``circular_overlap_grid``, operation for operation.

A port of ``photutils.geometry.circular_overlap`` and the helpers it uses from
``photutils.geometry.core`` (3-clause BSD, the photutils developers; algorithm by Thomas
Robitaille), so that the extraction kernel can build its apertures for every plane without
the GIL. The same floating-point operations in the same order: the weights equal photutils'
bit for bit (checked in ``tests/extract/test_kernels.py``). Three methods, as photutils'
``(use_exact, subpixels)``: ``exact`` is ``(1, 1)``, ``center`` is ``(0, 1)``, ``subpixel``
is ``(0, n)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _floor_sqrt(x):
    """√x, with round-off negatives treated as 0."""
    return math.sqrt(x) if x > 0 else 0.0


@numba.njit(cache=True, nogil=True)
def _area_arc(x1, y1, x2, y2, r):
    """Area of the circular segment of radius r cut by the chord (x1, y1)–(x2, y2)."""
    a = math.sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)
    theta = 2.0 * math.asin(0.5 * a / r)
    return 0.5 * r * r * (theta - math.sin(theta))


@numba.njit(cache=True, nogil=True)
def _area_triangle(x1, y1, x2, y2, x3, y3):
    return 0.5 * abs(x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))


@numba.njit(cache=True, nogil=True)
def _overlap_core(xmin, ymin, xmax, ymax, r):
    """Overlap of a rectangle with the circle of radius r at the origin, the rectangle in x, y ≥ 0."""
    if xmin * xmin + ymin * ymin > r * r:
        return 0.0
    if xmax * xmax + ymax * ymax < r * r:
        return (xmax - xmin) * (ymax - ymin)
    d1 = _floor_sqrt(xmax * xmax + ymin * ymin)
    d2 = _floor_sqrt(xmin * xmin + ymax * ymax)
    if d1 < r and d2 < r:
        x1, y1 = _floor_sqrt(r * r - ymax * ymax), ymax
        x2, y2 = xmax, _floor_sqrt(r * r - xmax * xmax)
        return ((xmax - xmin) * (ymax - ymin) - _area_triangle(x1, y1, x2, y2, xmax, ymax)
                + _area_arc(x1, y1, x2, y2, r))
    if d1 < r:
        x1, y1 = xmin, _floor_sqrt(r * r - xmin * xmin)
        x2, y2 = xmax, _floor_sqrt(r * r - xmax * xmax)
        return (_area_arc(x1, y1, x2, y2, r) + _area_triangle(x1, y1, x1, ymin, xmax, ymin)
                + _area_triangle(x1, y1, x2, ymin, x2, y2))
    if d2 < r:
        x1, y1 = _floor_sqrt(r * r - ymin * ymin), ymin
        x2, y2 = _floor_sqrt(r * r - ymax * ymax), ymax
        return (_area_arc(x1, y1, x2, y2, r) + _area_triangle(x1, y1, xmin, y1, xmin, ymax)
                + _area_triangle(x1, y1, xmin, y2, x2, y2))
    x1, y1 = _floor_sqrt(r * r - ymin * ymin), ymin
    x2, y2 = xmin, _floor_sqrt(r * r - xmin * xmin)
    return _area_arc(x1, y1, x2, y2, r) + _area_triangle(x1, y1, x2, y2, xmin, ymin)


@numba.njit(cache=True, nogil=True)
def _overlap_quadrant(xmin, ymin, xmax, ymax, r):
    """Overlap of a rectangle that does not straddle either axis, mirrored into the first quadrant."""
    if 0.0 <= xmin:
        if 0.0 <= ymin:
            return _overlap_core(xmin, ymin, xmax, ymax, r)
        return _overlap_core(-ymax, xmin, -ymin, xmax, r)
    if 0.0 <= ymin:
        return _overlap_core(-xmax, ymin, -xmin, ymax, r)
    return _overlap_core(-xmax, -ymax, -xmin, -ymin, r)


@numba.njit(cache=True, nogil=True)
def circular_overlap_single_exact(xmin, ymin, xmax, ymax, r):
    """Exact area of overlap of the rectangle [xmin, xmax] × [ymin, ymax] with the circle of radius r.

    photutils' recursive split of the rectangle at the axes, unrolled: the pieces are the
    same and are added in the same order.
    """
    x_split = not (0.0 <= xmin or 0.0 >= xmax)
    y_split = not (0.0 <= ymin or 0.0 >= ymax)
    if not x_split:
        if not y_split:
            return _overlap_quadrant(xmin, ymin, xmax, ymax, r)
        return _overlap_quadrant(xmin, ymin, xmax, 0.0, r) + _overlap_quadrant(xmin, 0.0, xmax, ymax, r)
    if not y_split:
        return _overlap_quadrant(xmin, ymin, 0.0, ymax, r) + _overlap_quadrant(0.0, ymin, xmax, ymax, r)
    return (_overlap_quadrant(xmin, ymin, 0.0, 0.0, r) + _overlap_quadrant(0.0, ymin, xmax, 0.0, r)
            + _overlap_quadrant(xmin, 0.0, 0.0, ymax, r) + _overlap_quadrant(0.0, 0.0, xmax, ymax, r))


@numba.njit(cache=True, nogil=True)
def circular_overlap_single_subpixel(x0, y0, x1, y1, r, subpixels):
    """Fraction of the pixel [x0, x1] × [y0, y1] whose subpixel centres fall inside the circle."""
    dx = (x1 - x0) / subpixels
    dy = (y1 - y0) / subpixels
    r_squared = r ** 2
    frac = 0.0
    x = x0 - 0.5 * dx
    for _ in range(subpixels):
        x += dx
        y = y0 - 0.5 * dy
        for _ in range(subpixels):
            y += dy
            if x * x + y * y < r_squared:
                frac += 1.0
    return frac / (subpixels * subpixels)


@numba.njit(cache=True, nogil=True)
def circular_overlap_grid(xmin, xmax, ymin, ymax, nx, ny, r, use_exact, subpixels):
    """Overlap of the circle of radius r at the origin with each pixel of a grid (photutils' function).

    Parameters
    ----------
    xmin, xmax, ymin, ymax : float
        Extent of the grid.
    nx, ny : int
        Grid size.
    r : float
        Circle radius.
    use_exact, subpixels : int
        ``1, 1`` exact; ``0, 1`` pixel centres; ``0, n`` n × n subpixel centres.

    Returns
    -------
    numpy.ndarray
        (ny, nx) fractions in [0, 1].
    """
    frac = np.zeros((ny, nx))
    dx = (xmax - xmin) / nx
    dy = (ymax - ymin) / ny
    pixel_radius = 0.5 * math.sqrt(dx * dx + dy * dy)
    bxmin = -r - 0.5 * dx
    bxmax = r + 0.5 * dx
    bymin = -r - 0.5 * dy
    bymax = r + 0.5 * dy
    if not use_exact:  # the squared subpixel centres of every column and row, computed once
        x_squares, x_order = _subpixel_squares(xmin, dx, nx, subpixels)
        y_squares, y_order = _subpixel_squares(ymin, dy, ny, subpixels)
    for i in range(nx):
        pxmin = xmin + i * dx
        pxcen = pxmin + dx * 0.5
        pxmax = pxmin + dx
        if pxmax > bxmin and pxmin < bxmax:
            for j in range(ny):
                pymin = ymin + j * dy
                pycen = pymin + dy * 0.5
                pymax = pymin + dy
                if pymax > bymin and pymin < bymax:
                    d = math.sqrt(pxcen * pxcen + pycen * pycen)
                    if d < r - pixel_radius:
                        frac[j, i] = 1.0
                    elif d < r + pixel_radius:
                        if use_exact:
                            frac[j, i] = circular_overlap_single_exact(pxmin, pymin, pxmax, pymax, r) / (dx * dy)
                        else:
                            frac[j, i] = _subpixel_fraction(x_squares[i], x_order[i], y_squares[j], y_order[j],
                                                            r ** 2)
    return frac


@numba.njit(cache=True, nogil=True)
def _subpixel_squares(vmin, step, n, subpixels):
    """Per pixel of a grid axis, the squares of its subpixel centres, each centre computed as
    :func:`circular_overlap_single_subpixel` computes it (the same additions in the same order);
    and per pixel whether its squares never decrease (1), never increase (-1) or neither (0)."""
    out = np.empty((n, subpixels))
    order = np.zeros(n, dtype=np.int8)
    for i in range(n):
        pmin = vmin + i * step
        d = (pmin + step - pmin) / subpixels
        v = pmin - 0.5 * d
        up, down = True, True
        for s in range(subpixels):
            v += d
            out[i, s] = v * v
            if s > 0:
                up = up and out[i, s - 1] <= out[i, s]
                down = down and out[i, s - 1] >= out[i, s]
        order[i] = 1 if up else (-1 if down else 0)
    return out, order


@numba.njit(cache=True, nogil=True)
def _subpixel_fraction(x_squares, x_order, y_squares, y_order, r_squared):
    """:func:`circular_overlap_single_subpixel` from the squared subpixel centres of the pixel's column
    and row (:func:`_subpixel_squares`): the same comparisons' outcome, counted in an integer.

    ``x² + y² < r²`` with x² and y² taken in increasing order: rounded addition never decreases
    when an operand grows, so for each x² the y² that pass are the first k, and k never grows
    from one x² to the next; the count walks that staircase (~2n comparisons instead of n²)
    when both sequences are monotonic (a pixel off both axes), else counts every pair.
    """
    n, m = x_squares.size, y_squares.size
    count = 0
    if x_order == 0 or y_order == 0:
        for xx in x_squares:
            for yy in y_squares:
                if xx + yy < r_squared:
                    count += 1
        return count / (n * m)
    k = m
    for a in range(n):
        xx = x_squares[a] if x_order > 0 else x_squares[n - 1 - a]
        while k > 0 and not xx + (y_squares[k - 1] if y_order > 0 else y_squares[m - k]) < r_squared:
            k -= 1
        if k == 0:
            break
        count += k
    return count / (n * m)
