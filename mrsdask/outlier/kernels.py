"""IFU outlier detection on plain arrays (the official ``outlier_detection`` ``mode="ifu"``).

Pure numpy/numba, no Dask. The algorithm (``jwst.outlier_detection.ifu.flag_outliers``):

1. per exposure, DO_NOT_USE pixels set to NaN, then the absolute differences of each pixel
   with its left and right neighbours **across the slices** (MIRI: along x, axis 1; the first
   and last column are differenced against 0) and their NaN-ignoring minimum
   (:func:`neighbour_min_difference`);
2. the NaN-ignoring minimum of those maps over the exposures of one detector
   (:func:`min_difference`): a pixel is sharp only if it is sharp in every exposure;
3. that map divided by ``max(median filter, nanmedian / 3)``, the median filter being a
   NaN-ignoring median over zero-padded windows, as ``stcal.outlier_detection.utils.medfilt``
   (:func:`nan_median_filter`);
4. the ``threshold_percent`` percentile of the normalised map, leaving out a 4-pixel border;
   pixels above it are outliers, and with the second check also pixels whose minimum is NaN
   (:func:`outlier_mask`);
5. in every exposure of the detector: SCI = NaN and DQ |= DO_NOT_USE | OUTLIER on outliers,
   then SCI, ERR and DQ made consistent as the official ``match_nans_and_flags`` does
   (:func:`apply_mask`).

:func:`flag_detector` runs 1-5 on a stack of exposures in memory: the reference the chunked
layer (:mod:`mrsdask.outlier.run`) is tested against.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numba
import numpy as np

from mrsdask.datamodel.dq import DO_NOT_USE, OUTLIER
#: Rows and columns at each detector edge left out of the percentile (official: 4).
BORDER = 4


def neighbour_min_difference(sci: np.ndarray, dq: np.ndarray, axis: int = -1) -> np.ndarray:
    """min(|left difference|, |right difference|) of each pixel across the slices.

    Parameters
    ----------
    sci : ndarray
        Surface brightness, ``(..., y, x)``; computed in its own dtype as the official code does.
    dq : ndarray of uint
        DQ bits, same shape; DO_NOT_USE pixels count as NaN.
    axis : int
        Axis across the slices (MIRI: x, the last axis).

    Returns
    -------
    ndarray of float64
        NaN where both neighbour differences are NaN.
    """
    data = np.where((dq & DO_NOT_USE).astype(bool), np.asarray(np.nan, dtype=sci.dtype), sci)
    left = np.abs(np.diff(data, axis=axis, prepend=0))
    right = np.abs(np.flip(np.diff(np.flip(data, axis=axis), axis=axis, prepend=0), axis=axis))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        return np.fmin(left, right).astype(np.float64)


def min_difference(sci: np.ndarray, dq: np.ndarray, axis: int = -1) -> np.ndarray:
    """The minimum neighbour difference over a stack of exposures ``(exposure, y, x)`` → ``(y, x)``.

    ``axis`` is the axis across the slices of one exposure (MIRI: x, the last). NaN where every
    exposure's difference is NaN. Works on a block of rows (all columns) as on whole frames.
    """
    out = neighbour_min_difference(sci[0], dq[0], axis)
    for i in range(1, sci.shape[0]):
        np.fmin(out, neighbour_min_difference(sci[i], dq[i], axis), out=out)
    return out


@numba.njit(cache=True, nogil=True)
def _median_filter(arr, ky, kx):  # pragma: no cover - compiled
    ny, nx = arr.shape
    hy, hx = ky // 2, kx // 2
    out = np.empty((ny, nx), dtype=np.float64)
    window = np.empty(ky * kx, dtype=np.float64)
    for j in range(ny):
        for i in range(nx):
            n = 0  # window[:n] kept sorted (insertion sort: windows are small)
            for jj in range(j - hy, j + hy + 1):
                for ii in range(i - hx, i + hx + 1):
                    if 0 <= jj < ny and 0 <= ii < nx:
                        v = arr[jj, ii]
                        if v != v:  # NaN: left out
                            continue
                    else:  # zero padding
                        v = 0.0
                    k = n
                    while k > 0 and window[k - 1] > v:
                        window[k] = window[k - 1]
                        k -= 1
                    window[k] = v
                    n += 1
            if n == 0:
                out[j, i] = np.nan
            elif n % 2 == 1:
                out[j, i] = window[n // 2]
            else:
                out[j, i] = (window[n // 2 - 1] + window[n // 2]) / 2.0
    return out


def nan_median_filter(arr: np.ndarray, kernel_size: tuple[int, int]) -> np.ndarray:
    """NaN-ignoring median over ``kernel_size`` windows of the zero-padded array.

    Equal to ``stcal.outlier_detection.utils.medfilt(arr, kernel_size)``: the array is padded
    with ``k // 2`` zeros on each side of each axis (the zeros take part in the median), NaN
    values are left out, and a window of NaN only gives NaN. ``kernel_size[0]`` is along axis 0.
    """
    ky, kx = (int(k) for k in kernel_size)
    return _median_filter(np.ascontiguousarray(arr, dtype=np.float64), ky, kx)


@dataclass(frozen=True)
class OutlierMap:
    """Outliers of one detector.

    Attributes
    ----------
    mask : ndarray of bool
        ``(y, x)``: pixels flagged by the percentile cut (and the second check, if done).
    threshold : float
        The percentile of the normalised minimum difference above which pixels are flagged.
    n_percentile : int
        Pixels above the threshold.
    n_nan : int
        Pixels flagged by the second check only (minimum difference NaN); 0 without it.
    """

    mask: np.ndarray
    threshold: float
    n_percentile: int
    n_nan: int


def outlier_mask(minarr: np.ndarray, kernel_size: tuple[int, int] = (7, 7), threshold_percent: float = 99.8,
                 second_check: bool = False) -> OutlierMap:
    """Outliers of a detector from its minimum neighbour difference ``minarr`` ``(y, x)``.

    Parameters
    ----------
    minarr : ndarray
        From :func:`min_difference` over all exposures of the detector.
    kernel_size : (int, int)
        Median-filter window (odd), ``kernel_size[0]`` along axis 0 (rows).
    threshold_percent : float
        Percentile (0-100) of the normalised map, 4-pixel border left out.
    second_check : bool
        Also flag pixels where ``minarr`` is NaN (official ``ifu_second_check``).
    """
    minarr = np.asarray(minarr, dtype=np.float64)
    ny, nx = minarr.shape
    norm = nan_median_filter(minarr, kernel_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value", RuntimeWarning)
        floor = np.nanmedian(minarr) / 3
        norm[norm < floor] = floor  # never divide by a tiny number
        normalised = minarr / norm
        threshold = float(np.nanpercentile(normalised[BORDER:ny - BORDER, BORDER:nx - BORDER], threshold_percent))
        above = normalised > threshold
    mask = above.copy()
    n_nan = 0
    if second_check:
        nan = np.isnan(minarr)
        n_nan = int((nan & ~above).sum())
        mask |= nan
    return OutlierMap(mask, threshold, int(above.sum()), n_nan)


def apply_mask(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, mask: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One exposure (or a block of rows of it) with its outliers flagged; new arrays.

    Outliers get SCI = NaN, DQ |= DO_NOT_USE | OUTLIER. Then, as the official
    ``match_nans_and_flags``: a pixel NaN in SCI or ERR or flagged DO_NOT_USE is NaN in both
    and flagged DO_NOT_USE.
    """
    dq = np.where(mask, dq | np.asarray(DO_NOT_USE | OUTLIER, dtype=dq.dtype), dq)
    invalid = mask | np.isnan(sci) | np.isnan(err) | (dq & DO_NOT_USE).astype(bool)
    dq = np.where(invalid, dq | np.asarray(DO_NOT_USE, dtype=dq.dtype), dq)
    sci = np.where(invalid, np.asarray(np.nan, dtype=sci.dtype), sci)
    err = np.where(invalid, np.asarray(np.nan, dtype=err.dtype), err)
    return sci, err, dq


def flag_detector(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, kernel_size: tuple[int, int] = (7, 7),
                  threshold_percent: float = 99.8, second_check: bool = False):
    """Steps 1-5 on the exposures ``(exposure, y, x)`` of one detector, in memory (MIRI: across x).

    Returns
    -------
    (sci, err, dq, OutlierMap)
    """
    found = outlier_mask(min_difference(sci, dq), kernel_size, threshold_percent, second_check)
    sci, err, dq = apply_mask(sci, err, dq, found.mask[None])
    return sci, err, dq, found
