"""Aperture sums of cube planes: the per-plane arithmetic of the official IFU ``extract_1d``.

One numba kernel (:func:`extract_slab`) works through a whole slab of planes without the GIL,
so Dask's threads extract slabs in parallel; nothing here knows about Dask. For every plane k:

* the weight map is clipped to 1 and spaxels with weight 0 are masked;
* the aperture "area" is the aperture sum of the clipped weight map (the effective number of
  covered spaxels), or the geometric area if nothing is covered (the plane is then flagged
  DO_NOT_USE);
* the source sum is the aperture sum of SCI, its variance that of ERR²;
* point sources: the background is the annulus sum of SCI after masking values outside
  mean ± n·σ of the sigma-clipped statistics of all spaxels of weight ≥ 1, scaled by
  aperture area / annulus area and subtracted; its variance is added with the same factor
  squared;
* extended sources: the aperture is the whole plane, nothing is subtracted, and the
  clipped sum over it is reported as the background (what master background uses).

The apertures are photutils' (:mod:`mrsdask.extract.overlap`, a port of its circular overlap;
the extended-source rectangle is photutils' own mask, built once per slab; numba's cache of
this module holds the overlap functions compiled in, so a change there must touch this file
for the cache to be rebuilt: done for the subpixel staircase count), the clipped
statistics astropy's ``sigma_clipped_stats`` (on values sorted once, in the cube's dtype, only
for the planes whose background uses them: :func:`sorted_unit_weight_values`), and
the sums add the same products in the same (pairwise) order as numpy: the numbers are those
of the plain numpy/photutils loop it replaces (``tests/extract/numpy_reference.py``), bit
for bit on the test cubes.

One difference on purpose: when an annulus is empty or degenerate for one plane, the official
loop turns background subtraction off for every later plane too; here it is off for that
plane only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from mrsdask.datamodel.dq import DO_NOT_USE  # planes with no covered spaxel in the aperture
from mrsdask.extract.overlap import circular_overlap_grid

OUTPUTS = ("temp_flux", "f_var", "background", "b_var", "npixels", "npixels_bkg", "dq")


def mask_method(method: str, subpixels: int) -> tuple[int, int]:
    """photutils' translation of an aperture method to (use_exact, subpixels)."""
    if method == "exact":
        return 1, 1
    if method == "center":
        return 0, 1
    return 0, int(subpixels)


def rectangle_weights(shape: tuple[int, int], method: str = "subpixel", subpixels: int = 10) -> np.ndarray:
    """The official extended-source aperture: photutils' mask of a rectangle covering the whole plane."""
    from photutils.aperture import RectangularAperture

    ny, nx = shape
    mask = RectangularAperture((nx / 2.0 - 0.5, ny / 2.0 - 0.5), nx, ny, theta=0.0).to_mask(
        method=method, subpixels=subpixels)
    return np.ascontiguousarray(mask.to_image(shape, dtype=np.float64))


@numba.njit(cache=True, nogil=True, inline="always")
def _term(a, j, center, square):
    """``a[j]``, or ``(a[j] - center)²`` (``square``): a summand of :func:`_pairwise`."""
    if square:
        d = a[j] - center
        return d * d
    return a[j]


@numba.njit(cache=True, nogil=True)
def _block_sum(a, lo, n, center, square):
    """numpy's sum of at most 128 values (:func:`_term` of ``a[lo:lo+n]``): 8 running sums, then
    the rest one by one."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += _term(a, i, center, square)
        return res
    r0, r1 = _term(a, lo, center, square), _term(a, lo + 1, center, square)
    r2, r3 = _term(a, lo + 2, center, square), _term(a, lo + 3, center, square)
    r4, r5 = _term(a, lo + 4, center, square), _term(a, lo + 5, center, square)
    r6, r7 = _term(a, lo + 6, center, square), _term(a, lo + 7, center, square)
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += _term(a, j, center, square)
        r1 += _term(a, j + 1, center, square)
        r2 += _term(a, j + 2, center, square)
        r3 += _term(a, j + 3, center, square)
        r4 += _term(a, j + 4, center, square)
        r5 += _term(a, j + 5, center, square)
        r6 += _term(a, j + 6, center, square)
        r7 += _term(a, j + 7, center, square)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += _term(a, lo + i, center, square)
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _left_size(n):
    n2 = n // 2
    return n2 - n2 % 8


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a, lo, n):
    """Σ a[lo:lo+n] with numpy's pairwise summation (``np.sum`` of a contiguous float64 array, bit for bit).

    numpy halves the range (the left half a multiple of 8) until at most 128 values are left
    and adds the halves' sums; the recursion is unrolled onto a stack (numba's cache does
    not hold recursive functions safely).
    """
    return _pairwise(a, lo, n, 0.0, False)


@numba.njit(cache=True, nogil=True)
def _pairwise(a, lo, n, center, square):
    """:func:`pairwise_sum` of :func:`_term` of ``a[lo:lo+n]``: with ``square``, numpy's sum of the
    array of ``(a - center)**2`` without making that array."""
    if n <= 128:
        return _block_sum(a, lo, n, center, square)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    left_done = np.zeros(64, dtype=np.bool_)
    left_sums = np.empty(64)
    top = 0
    starts[0], sizes[0], left_done[0] = lo, n, False
    while True:
        if sizes[top] > 128:  # descend into the left half
            n2 = _left_size(sizes[top])
            starts[top + 1], sizes[top + 1], left_done[top + 1] = starts[top], n2, False
            top += 1
            continue
        value = _block_sum(a, starts[top], sizes[top], center, square)
        while True:  # hand the finished sum up
            if top == 0:
                return value
            top -= 1
            if not left_done[top]:
                left_sums[top], left_done[top] = value, True
                n2 = _left_size(sizes[top])
                starts[top + 1], sizes[top + 1], left_done[top + 1] = starts[top] + n2, sizes[top] - n2, False
                top += 1
                break
            value = left_sums[top] + value


@numba.njit(cache=True, nogil=True)
def _mean_std(x, lo, hi):
    """``np.mean(x[lo:hi])`` and ``np.std(x[lo:hi])``, the same operations."""
    n = hi - lo
    mean = pairwise_sum(x, lo, n) / n
    return mean, math.sqrt(_pairwise(x, lo, n, mean, True) / n)


@numba.njit(cache=True, nogil=True)
def _search(x, value, right):
    """``np.searchsorted(x, value, side="right" if right else "left")`` on a sorted array."""
    lo, hi = 0, x.size
    while lo < hi:
        mid = (lo + hi) // 2
        if x[mid] < value or (right and x[mid] == value):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _clipped_sorted(x, sigma, maxiters):
    """Clipped mean and std of sorted finite values (see :func:`clipped_mean_std`)."""
    lo, hi = 0, x.size
    for _ in range(maxiters):
        if hi == lo:
            break
        n = hi - lo
        center = x[lo + n // 2] if n % 2 else (x[lo + n // 2 - 1] + x[lo + n // 2]) / 2.0
        mean, spread = _mean_std(x, lo, hi)
        new_lo = max(lo, _search(x, center - spread * sigma, False))
        new_hi = min(hi, _search(x, center + spread * sigma, True))
        if new_lo == lo and new_hi == hi:
            return mean, spread  # converged: the statistics of these very values, just taken
        lo, hi = new_lo, new_hi
    if hi == lo:
        return np.nan, np.nan
    return _mean_std(x, lo, hi)


@numba.njit(cache=True, nogil=True)
def clipped_mean_std(values, sigma, maxiters=5):
    """Mean and standard deviation after iterative clipping at median ± sigma·std.

    The algorithm of astropy's ``sigma_clipped_stats(values, sigma=sigma, maxiters=maxiters)``
    (non-finite values ignored, bounds from the median and the population standard deviation
    of what is left, until nothing changes or ``maxiters``). What is kept is always an
    interval of values, so the values are sorted once and each iteration only moves the two
    ends of a slice. NaN, NaN if no finite value is left.
    """
    x = np.empty(values.size)
    m = 0
    for v in values.ravel():
        if math.isfinite(v):
            x[m] = v
            m += 1
    return _clipped_sorted(np.sort(x[:m]), sigma, maxiters)


@numba.njit(cache=True, nogil=True)
def _unit_weight_values(sci, wmap, wanted):
    """Per wanted plane, its finite SCI values of spaxels of weight ≥ 1, in one flat array (in SCI's
    dtype), plane after plane; and where each plane's values end (see :func:`sorted_unit_weight_values`)."""
    nz, ny, nx = sci.shape
    values = np.empty(nz * ny * nx, dtype=sci.dtype)
    ends = np.zeros(nz, dtype=np.int64)
    m = 0
    for k in range(nz):
        if wanted[k]:
            for j in range(ny):
                for i in range(nx):
                    v = sci[k, j, i]
                    if wmap[k, j, i] >= 1 and math.isfinite(v):
                        values[m] = v
                        m += 1
        ends[k] = m
    return values[:m], ends


_SIGN = np.uint32(0x80000000)
_ALL = np.uint32(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True)
def _radix_sort_float32(values, keys, spare, counts):
    """Sort finite float32 values in place, ascending: an LSD radix sort of their bits (three
    passes of 11 bits; ``keys`` and ``spare`` hold at least ``values.size`` uint32, ``counts``
    is (3, 2048) int64). The order of numpy's sort but for ±0, which it leaves in any order and
    this puts -0 first (they are equal to every statistic taken from them)."""
    n = values.size
    bits = values.view(np.uint32)
    a, b = keys[:n], spare[:n]
    counts[:] = 0
    for i in range(n):  # the float order as unsigned order: negatives flipped, positives above them
        u = bits[i]
        a[i] = u ^ _ALL if u & _SIGN else u | _SIGN
        counts[0, a[i] & 2047] += 1
        counts[1, (a[i] >> 11) & 2047] += 1
        counts[2, a[i] >> 22] += 1
    for p in range(3):
        start = 0
        for d in range(2048):
            c = counts[p, d]
            counts[p, d] = start
            start += c
    for p in range(3):
        shift = 11 * p
        for i in range(n):
            d = (a[i] >> shift) & 2047
            b[counts[p, d]] = a[i]
            counts[p, d] += 1
        a, b = b, a
    for i in range(n):
        u = a[i]
        bits[i] = u ^ _SIGN if u & _SIGN else u ^ _ALL


@numba.njit(cache=True, nogil=True)
def _sort_planes_float32(values, ends):
    """Sort each plane's run of ``values`` (``ends`` as :func:`_unit_weight_values` gives them)."""
    keys, spare = np.empty(values.size, dtype=np.uint32), np.empty(values.size, dtype=np.uint32)
    counts = np.empty((3, 2048), dtype=np.int64)
    start = 0
    for k in range(ends.size):
        if ends[k] - start > 1:
            _radix_sort_float32(values[start:ends[k]], keys, spare, counts)
        start = ends[k]


def sorted_unit_weight_values(sci: np.ndarray, wmap: np.ndarray, wanted: np.ndarray | None = None
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Per plane, the finite SCI values of spaxels of weight ≥ 1, sorted (what the clipped statistics use).

    Plane k's values are ``values[ends[k - 1]:ends[k]]`` (from 0 for k = 0), in SCI's own
    dtype: float32 values (a cube's) are sorted by a radix sort of their bits without the GIL
    (~2.5× numpy's sort on the benchmark cube's planes) and convert to float64 exactly and in
    the same order; float64 values by numpy. Planes not ``wanted`` (default all) get no
    values: those whose background needs no clipped statistics.
    """
    wanted = np.ones(sci.shape[0], dtype=np.bool_) if wanted is None else np.asarray(wanted, dtype=np.bool_)
    values, ends = _unit_weight_values(sci, wmap, wanted)
    if values.dtype == np.float32:
        _sort_planes_float32(values, ends)
        return values, ends
    start = 0
    for end in ends.tolist():
        values[start:end].sort()
        start = end
    return values, ends


@numba.njit(cache=True, nogil=True)
def _circle(x, y, r_out, r_in, use_exact, subpixels):
    """photutils' circle (or annulus, r_in > 0) weights on its bounding box, and the box origin (y, x)."""
    if not r_out > 0:
        return np.zeros((0, 0)), 0, 0
    ixmin, ixmax = math.floor(x - r_out + 0.5), math.ceil(x + r_out + 0.5)
    iymin, iymax = math.floor(y - r_out + 0.5), math.ceil(y + r_out + 0.5)
    xmin, xmax, ymin, ymax = ixmin - 0.5 - x, ixmax - 0.5 - x, iymin - 0.5 - y, iymax - 0.5 - y
    w = circular_overlap_grid(xmin, xmax, ymin, ymax, ixmax - ixmin, iymax - iymin, r_out, use_exact, subpixels)
    if r_in > 0:
        w = w - circular_overlap_grid(xmin, xmax, ymin, ymax, ixmax - ixmin, iymax - iymin, r_in, use_exact, subpixels)
    return w, iymin, ixmin


@numba.njit(cache=True, nogil=True)
def _aperture_sum(w, oy, ox, values, mask, buf):
    """Σ weight × value over the spaxels of the plane under the weights (origin oy, ox) with weight > 0, unmasked."""
    ny, nx = values.shape
    m = 0
    for j in range(max(oy, 0), min(oy + w.shape[0], ny)):
        for i in range(max(ox, 0), min(ox + w.shape[1], nx)):
            weight = w[j - oy, i - ox]
            if weight > 0 and not mask[j, i]:
                buf[m] = weight * values[j, i]
                m += 1
    return pairwise_sum(buf, 0, m)


@numba.njit(cache=True, nogil=True)
def _clip_bounds(sigma, unit_sorted, buf):
    """mean ∓ sigma·std of the clipped statistics of the spaxels of weight 1 (``unit_sorted``: their
    finite values, sorted, as float64 in ``buf``): (True, low, high); (False, NaN, NaN) if there
    are no such values (nothing is then clipped, as bounds of NaN statistics would also give)."""
    n = unit_sorted.size
    if n == 0:
        return False, np.nan, np.nan
    for i in range(n):
        buf[i] = np.float64(unit_sorted[i])
    mean, std = _clipped_sorted(buf[:n], sigma, 5)
    return True, mean - sigma * std, mean + sigma * std


@numba.njit(cache=True, nogil=True)
def _clip_mask(plane, bmask, sigma, unit_sorted, buf, out, y0, y1, x0, x1):
    """Fill ``out[y0:y1, x0:x1]`` with the spaxels outside the bounds of :func:`_clip_bounds`, or
    masked; False if there are none (``out`` untouched: the mask is then ``bmask``)."""
    found, low, high = _clip_bounds(sigma, unit_sorted, buf)
    if not found:
        return False
    for j in range(y0, y1):
        for i in range(x0, x1):
            out[j, i] = plane[j, i] < low or plane[j, i] > high or bmask[j, i]
    return True


@numba.njit(cache=True, nogil=True)
def _clipped_aperture_sum(w, oy, ox, values, mask, low, high, buf):
    """:func:`_aperture_sum` with the spaxels outside [low, high] masked too: the sum over
    :func:`_clip_mask`'s mask, without filling it."""
    ny, nx = values.shape
    m = 0
    for j in range(max(oy, 0), min(oy + w.shape[0], ny)):
        for i in range(max(ox, 0), min(ox + w.shape[1], nx)):
            weight = w[j - oy, i - ox]
            v = values[j, i]
            if weight > 0 and not (v < low or v > high or mask[j, i]):
                buf[m] = weight * v
                m += 1
    return pairwise_sum(buf, 0, m)


@numba.njit(cache=True, nogil=True)
def _span(lo, size, n, a, b):
    """The range [a, b) widened to hold [lo, lo + size) cropped to [0, n) (an empty range adds nothing)."""
    start, end = max(lo, 0), min(lo + size, n)
    if start >= end:
        return a, b
    if a >= b:
        return start, end
    return min(a, start), max(b, end)


@numba.njit(cache=True, nogil=True)
def _extract_slab(sci, err, wmap, radius, inner_bkg, outer_bkg, x_center, y_center, point, subtract_background,
                  use_exact, subpixels, sigma, rectangle, unit_sorted, unit_ends):
    nz, ny, nx = sci.shape
    temp_flux, f_var_out = np.zeros(nz), np.zeros(nz)
    background_out, b_var_out = np.zeros(nz), np.zeros(nz)
    npixels, npixels_bkg = np.zeros(nz), np.zeros(nz)
    dq = np.zeros(nz, dtype=np.uint32)
    plane, var, clipped = np.empty((ny, nx)), np.empty((ny, nx)), np.empty((ny, nx))
    bmask, clipmask = np.empty((ny, nx), dtype=np.bool_), np.empty((ny, nx), dtype=np.bool_)
    buf, sorted64 = np.empty(ny * nx), np.empty(ny * nx)
    no_annulus = np.zeros((0, 0))
    for k in range(nz):
        unit = unit_sorted[unit_ends[k - 1] if k > 0 else 0:unit_ends[k]]
        annulus, an_y, an_x = no_annulus, 0, 0
        has_annulus = False
        r_in, r_out = inner_bkg[k], outer_bkg[k]
        if point:
            ap, ap_y, ap_x = _circle(x_center, y_center, radius[k], 0.0, use_exact, subpixels)
            if subtract_background and 0 < r_in and r_in < r_out:
                annulus, an_y, an_x = _circle(x_center, y_center, r_out, r_in, use_exact, subpixels)
                has_annulus = True
            full_area = np.pi * radius[k] ** 2 if radius[k] > 0 else 0.0
        else:
            ap, ap_y, ap_x = rectangle, 0, 0
            full_area = float(nx * ny)
        # Only the spaxels under the aperture and annulus are summed: only those are converted.
        y0, y1 = _span(an_y, annulus.shape[0], ny, *_span(ap_y, ap.shape[0], ny, 0, 0))
        x0, x1 = _span(an_x, annulus.shape[1], nx, *_span(ap_x, ap.shape[1], nx, 0, 0))
        for j in range(y0, y1):
            for i in range(x0, x1):
                w = np.float64(wmap[k, j, i])
                clipped[j, i] = 1.0 if w > 1.0 else w  # np.minimum: NaN stays NaN
                bmask[j, i] = clipped[j, i] == 0
                plane[j, i] = np.float64(sci[k, j, i])
                e = np.float64(err[k, j, i])
                var[j, i] = e * e
        area = _aperture_sum(ap, ap_y, ap_x, clipped, bmask, buf)
        if area == 0:
            dq[k] = 1  # DO_NOT_USE
            area = full_area if full_area > 0 else area
        npixels[k] = area
        flux = _aperture_sum(ap, ap_y, ap_x, plane, bmask, buf)
        f_var = _aperture_sum(ap, ap_y, ap_x, var, bmask, buf)
        if has_annulus:
            annulus_area = _aperture_sum(annulus, an_y, an_x, clipped, bmask, buf)
            if annulus_area == 0:
                annulus_area = np.pi * (r_out ** 2 - r_in ** 2)
            npixels_bkg[k] = annulus_area
            if annulus_area > 0:
                scale = area / annulus_area
                found, low, high = _clip_bounds(sigma, unit, sorted64)
                if found:
                    background = _clipped_aperture_sum(annulus, an_y, an_x, plane, bmask, low, high, buf)
                else:
                    background = _aperture_sum(annulus, an_y, an_x, plane, bmask, buf)
                b_var = _aperture_sum(annulus, an_y, an_x, var, bmask, buf)
                background_out[k], b_var_out[k] = background, b_var
                flux -= background * scale
                f_var += b_var * scale * scale
        elif not point:
            if _clip_mask(plane, bmask, sigma, unit, sorted64, clipmask, 0, ny, 0, nx):
                background_out[k] = _aperture_sum(ap, ap_y, ap_x, plane, clipmask, buf)
                npixels_bkg[k] = _aperture_sum(ap, ap_y, ap_x, clipped, clipmask, buf)
                b_var_out[k] = _aperture_sum(ap, ap_y, ap_x, var, clipmask, buf)
        temp_flux[k], f_var_out[k] = flux, f_var
    return temp_flux, f_var_out, background_out, b_var_out, npixels, npixels_bkg, dq


@dataclass(frozen=True)
class Box:
    """Aperture weights on the part of the plane they cover: ``weights`` over ``[y0:y1, x0:x1]``."""

    weights: np.ndarray
    y0: int
    y1: int
    x0: int
    x1: int


def circle_box(shape: tuple[int, int], x: float, y: float, r_out: float, r_in: float = 0.0,
               method: str = "subpixel", subpixels: int = 10) -> Box:
    """The kernel's weights of a circle (or annulus, with ``r_in``) centred on (x, y), cropped to the plane.

    Equal to photutils' ``CircularAperture``/``CircularAnnulus(...).to_mask(method,
    subpixels)`` placed on the plane (0-based spaxel centres).
    """
    ny, nx = shape
    w, oy, ox = _circle(float(x), float(y), float(r_out), float(r_in), *mask_method(method, subpixels))
    y0, y1, x0, x1 = max(oy, 0), min(oy + w.shape[0], ny), max(ox, 0), min(ox + w.shape[1], nx)
    if x0 >= x1 or y0 >= y1:
        return Box(np.zeros((0, 0)), 0, 0, 0, 0)
    return Box(w[y0 - oy:y1 - oy, x0 - ox:x1 - ox], y0, y1, x0, x1)


def clipped_statistics_used(point: bool, subtract_background: bool, inner_bkg: np.ndarray,
                            outer_bkg: np.ndarray) -> np.ndarray:
    """Per plane, whether the kernel may need the clipped statistics of its weight-1 values: every
    plane of an extended source; a point source's planes with an annulus (``0 < inner < outer``)
    when the background is subtracted; no plane otherwise."""
    if not point:
        return np.ones(inner_bkg.shape, dtype=np.bool_)
    if not subtract_background:
        return np.zeros(inner_bkg.shape, dtype=np.bool_)
    return (0 < inner_bkg) & (inner_bkg < outer_bkg)


def _native(a: np.ndarray) -> np.ndarray:
    """The array as numba takes it: native-endian float32/float64 (anything else as float64)."""
    a = np.asarray(a)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8) or not a.dtype.isnative:
        return a.astype(np.float64)
    return a


def extract_slab(
    sci: np.ndarray,
    err: np.ndarray,
    wmap: np.ndarray,
    radius: np.ndarray | None,
    inner_bkg: np.ndarray | None,
    outer_bkg: np.ndarray | None,
    x_center: float,
    y_center: float,
    *,
    point: bool = True,
    subtract_background: bool = True,
    method: str = "subpixel",
    subpixels: int = 10,
    bkg_sigma_clip: float = 3.0,
) -> dict[str, np.ndarray]:
    """Aperture sums of a slab of cube planes (see the module docstring), in one GIL-free kernel call.

    Parameters
    ----------
    sci, err, wmap : numpy.ndarray
        (nz, ny, nx) planes of the cube (MJy/sr, MJy/sr, weights).
    radius, inner_bkg, outer_bkg : numpy.ndarray or None
        Per plane, in spaxels (point sources; ignored for extended ones).
    x_center, y_center : float
        Aperture centre (0-based spaxel indices).
    point : bool
        Point source (circle and annulus) or extended (the whole plane).
    subtract_background : bool
        Subtract the annulus background (point sources).
    method, subpixels : str, int
        photutils' aperture method (``exact``, ``center``, ``subpixel``) and subpixel count.
    bkg_sigma_clip : float
        Clipping threshold (σ) of the background statistics.

    Returns
    -------
    dict of numpy.ndarray
        Per plane: ``temp_flux`` (aperture sum minus scaled background, MJy/sr × spaxels),
        ``f_var`` (its variance), ``background`` and ``b_var`` (the clipped background sum
        and its variance), ``npixels``, ``npixels_bkg`` (effective spaxel counts) and ``dq``.
    """
    sci, err, wmap = _native(sci), _native(err), _native(wmap)
    nz, ny, nx = sci.shape
    if err.shape != sci.shape or wmap.shape != sci.shape:
        raise ValueError(f"sci {sci.shape}, err {err.shape} and wmap {wmap.shape} must have one shape")
    if point:
        radii = [np.ascontiguousarray(r, dtype=np.float64) for r in (radius, inner_bkg, outer_bkg)]
        if any(r.shape != (nz,) for r in radii):
            raise ValueError(f"radius, inner_bkg and outer_bkg need one value per plane ({nz})")
        rectangle = np.zeros((0, 0))
    else:
        radii = [np.zeros(nz)] * 3
        rectangle = rectangle_weights((ny, nx), method, subpixels)
    use_exact, sub = mask_method(method, subpixels)
    unit_sorted, unit_ends = sorted_unit_weight_values(sci, wmap, clipped_statistics_used(
        point, subtract_background, *radii[1:]))
    columns = _extract_slab(sci, err, wmap, *radii, float(x_center), float(y_center), bool(point),
                            bool(subtract_background), use_exact, sub, float(bkg_sigma_clip), rectangle,
                            unit_sorted, unit_ends)
    return dict(zip(OUTPUTS, columns))
