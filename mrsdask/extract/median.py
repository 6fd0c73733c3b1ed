"""The median over planes of each spaxel of a block of cube planes, non-finite values left out.

:func:`spaxel_medians` is auto-centring's collapse (:func:`mrsdask.extract.position.median_image`):
for each spaxel the mean of its middle finite value(s) in the planes' dtype — ``(x + x) / 2``
for an odd number of them, ``(lower + upper) / 2`` for an even one, summed from +0 — the
numbers of ``np.ma.median`` of the planes with invalid values masked (the official
``ifu_autocen``; ``np.nanmedian`` too, but for a huge odd median, which it does not double).
One numba kernel gathers each spaxel's finite values and selects the middle ones (Hoare's
selection: linear time on average), without the GIL, rows split over threads. ``np.nanmedian``
of a cube's 10,125 planes below 26 µm (105 x 87 spaxels) loops over spaxels in Python: 4.9 s;
this takes 0.3 s on 2 cores.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

#: Blocks of at least this many values have their rows shared by threads (by default).
SHARED_FROM = 1 << 20


def spaxel_medians(planes: np.ndarray, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 0 of each spaxel's finite values.

    Parameters
    ----------
    planes : numpy.ndarray
        (n_planes, ny, nx), float32 or float64 in this machine's byte order.
    threads : int, optional
        Threads that share the rows (default: Dask's count of this process's CPUs, which
        heeds a container's CPU quota, for blocks of 2**20 values or more; one below).

    Returns
    -------
    median : numpy.ndarray
        (ny, nx), the planes' dtype: NaN where a spaxel has no finite value.
    empty : numpy.ndarray
        (ny, nx) bool: the spaxels without a finite value.
    """
    planes = np.asarray(planes)
    if planes.ndim != 3 or planes.dtype not in (np.float32, np.float64) or not planes.dtype.isnative:
        raise ValueError(f"planes must be a 3-D float32 or float64 array in native byte order, not "
                         f"{planes.ndim}-D {planes.dtype.str}")
    n, ny, nx = planes.shape
    median = np.empty((ny, nx), dtype=planes.dtype)
    empty = np.empty((ny, nx), dtype=np.bool_)
    if threads is None:
        from dask.system import CPU_COUNT

        threads = CPU_COUNT if n * ny * nx >= SHARED_FROM else 1
    threads = max(1, min(int(threads), ny))
    if threads == 1:
        _medians_kernel(planes, 0, ny, median, empty)
        return median, empty
    edges = np.linspace(0, ny, threads + 1).astype(int)
    with ThreadPoolExecutor(threads, thread_name_prefix="mrsdask-median") as pool:
        for future in [pool.submit(_medians_kernel, planes, int(a), int(b), median, empty)
                       for a, b in zip(edges[:-1], edges[1:]) if b > a]:
            future.result()
    return median, empty


@numba.njit(cache=True, nogil=True)
def _medians_kernel(planes, y0, y1, median, empty):  # pragma: no cover - compiled
    """Rows ``y0:y1`` of :func:`spaxel_medians` into ``median`` and ``empty``."""
    n, _, nx = planes.shape
    values = np.empty(n, dtype=planes.dtype)
    zero = planes.dtype.type(0)
    two = planes.dtype.type(2)
    for y in range(y0, y1):
        for x in range(nx):
            m = 0
            for k in range(n):
                v = planes[k, y, x]
                if np.isfinite(v):
                    values[m] = v
                    m += 1
            if m == 0:
                median[y, x] = np.nan
                empty[y, x] = True
                continue
            empty[y, x] = False
            half = m // 2
            upper = _select(values, m, half)
            # np.ma.median takes the mean of the middle value twice, or of the two middle values,
            # summed from +0: a median of -0 is +0 there, and one above half the largest float
            # is inf; so here
            if m % 2 == 1:
                median[y, x] = ((upper + upper) + zero) / two
            else:  # the largest of the values below the upper middle one: the lower middle one
                lower = values[0]
                for k in range(1, half):
                    if values[k] > lower:
                        lower = values[k]
                median[y, x] = ((lower + upper) + zero) / two


@numba.njit(cache=True, nogil=True, inline="always")
def _select(values, m, k):  # pragma: no cover - compiled
    """Reorder ``values[:m]`` so that ``values[k]`` is its k-th smallest, no larger one before it
    and no smaller one after it (Hoare's selection, median-of-three pivots); return it."""
    lo, hi = 0, m - 1
    while hi > lo:
        mid = (lo + hi) // 2
        # median of three as the pivot: sorted values[lo] <= values[mid] <= values[hi]
        if values[mid] < values[lo]:
            values[mid], values[lo] = values[lo], values[mid]
        if values[hi] < values[lo]:
            values[hi], values[lo] = values[lo], values[hi]
        if values[hi] < values[mid]:
            values[hi], values[mid] = values[mid], values[hi]
        pivot = values[mid]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return values[k]
