"""Sines, cosines and arctangents of small angles by series (numba, inlined into the kernels).

Pixel corners are ~1e-6 rad from their centres and from each other: the kernels that map them
(:mod:`mrsdask.instrument.pointing`, :func:`mrsdask.cube.grid.sky_to_tangent`) take the full
trigonometry once per pixel and the rest by angle addition with these series, which agree with
libm to rounding below :data:`SMALL_ANGLE` (truncation < 1e-27).
"""

from __future__ import annotations

import numba
import numpy as np

#: Angles (rad) below which the series are used (truncation < 1e-27).
SMALL_ANGLE = 1e-4


@numba.njit(cache=True, nogil=True, inline="always")
def sin_cos_series(d):  # pragma: no cover - compiled
    """sin and cos of an angle below SMALL_ANGLE, by series."""
    d2 = d * d
    return d * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0)), 1.0 - d2 / 2.0 * (1.0 - d2 / 12.0)


@numba.njit(cache=True, nogil=True, inline="always")
def sin_cos_sum(s0, c0, sd, cd):  # pragma: no cover - compiled
    """sin and cos of ``a + d`` from those of ``a`` (``s0``, ``c0``) and of ``d`` (``sd``, ``cd``)."""
    return s0 * cd + c0 * sd, c0 * cd - s0 * sd


@numba.njit(cache=True, nogil=True, inline="always")
def atan_series(t):  # pragma: no cover - compiled
    """atan(t) for |t| below SMALL_ANGLE, by series."""
    t2 = t * t
    return t * (1.0 - t2 * (1.0 / 3.0 - t2 / 5.0))


@numba.njit(cache=True, nogil=True, inline="always")
def sin_cos_small(d):  # pragma: no cover - compiled
    """sin and cos of an angle; by series when it is below SMALL_ANGLE (no libm call)."""
    if abs(d) > SMALL_ANGLE:
        return np.sin(d), np.cos(d)
    return sin_cos_series(d)


@numba.njit(cache=True, nogil=True, inline="always")
def atan2_small(y, x):  # pragma: no cover - compiled
    """atan2(y, x); by series when the angle is below SMALL_ANGLE."""
    if x > 0.0 and abs(y) < SMALL_ANGLE * x:
        return atan_series(y / x)
    return np.arctan2(y, x)
