"""3-D drizzle: weights are the volume overlap of each pixel's (ξ, η, λ) footprint with a voxel.

numba's on-disk cache of :func:`drizzle_accumulate` holds the compiled
:func:`~mrsdask.cube.kernels.polygon.cell_areas` too, and numba keys it on this file alone; the
cache folder is therefore named by a hash of every kernel module's source
(:mod:`mrsdask.kernel_cache`), so that a change to ``polygon.py`` alone compiles this kernel again.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from mrsdask.cube.kernels.polygon import CELL_WORK_VERTICES, cell_areas


@numba.njit(cache=True, nogil=True)
def drizzle_accumulate(
    corner_xi,
    corner_eta,
    wavelength,
    dwavelength,
    flux,
    err,
    xcoord,
    ycoord,
    zcoord,
    zwidth,
    cdelt1,
    cdelt2,
    flux_sum,
    weight_sum,
    var_sum,
    count,
):
    """Add the drizzle contributions of detector pixels to a slab's accumulators.

    For pixel k and voxel (ix, iy, iz) the weight is ``A × ζ``: A is the area (arcsec²) of
    the pixel's projected quadrilateral inside the spaxel square, ζ the length (µm) of the
    overlap of ``[λ - dλ/2, λ + dλ/2]`` with the plane's ``[z - Δ/2, z + Δ/2]``. The weight is
    not normalised by the pixel's own area or dλ: F/W is a volume-weighted surface-brightness
    average (the official ``cube_build`` definition).

    Parameters
    ----------
    corner_xi, corner_eta : ndarray, shape (4, n)
        Tangent-plane coordinates (arcsec) of the pixel corners, in order around the pixel.
    wavelength, dwavelength : ndarray, shape (n,)
        Pixel-centre wavelength and wavelength extent (µm).
    flux, err : ndarray, shape (n,)
        Surface brightness and its uncertainty.
    xcoord, ycoord : ndarray
        Spaxel centres (arcsec), evenly spaced by ``cdelt1``/``cdelt2``.
    zcoord, zwidth : ndarray, shape (nz,)
        Centres and widths (µm) of the slab's planes; ``zcoord`` increasing.
    cdelt1, cdelt2 : float
        Spaxel size (arcsec).
    flux_sum, weight_sum, var_sum, count : ndarray, shape (nz, ny, nx)
        Accumulators, updated in place.
    """
    nx = xcoord.size
    ny = ycoord.size
    nz = zcoord.size
    if nz == 0:
        return
    max_half_width = 0.0
    for iz in range(nz):
        if zwidth[iz] / 2.0 > max_half_width:
            max_half_width = zwidth[iz] / 2.0
    x_first_edge = xcoord[0] - cdelt1 / 2.0
    y_first_edge = ycoord[0] - cdelt2 / 2.0
    qx = np.empty(4)
    qy = np.empty(4)
    work = np.empty((8, CELL_WORK_VERTICES))
    areas = np.empty((ny, nx))
    npix = wavelength.size
    for k in range(npix):
        lam_lo = wavelength[k] - dwavelength[k] / 2.0
        lam_hi = wavelength[k] + dwavelength[k] / 2.0
        # First plane that can overlap: z + Δ/2 > lam_lo  ⇒  z > lam_lo - max Δ/2.
        iz0 = np.searchsorted(zcoord, lam_lo - max_half_width)
        if iz0 >= nz or zcoord[iz0] - max_half_width >= lam_hi:
            continue
        xmin = xmax = corner_xi[0, k]
        ymin = ymax = corner_eta[0, k]
        for c in range(4):
            qx[c] = corner_xi[c, k]
            qy[c] = corner_eta[c, k]
            xmin = min(xmin, qx[c])
            xmax = max(xmax, qx[c])
            ymin = min(ymin, qy[c])
            ymax = max(ymax, qy[c])
        # Spaxels whose square can meet the pixel's bounding box (exact superset).
        ix0 = max(0, int(math.floor((xmin - x_first_edge) / cdelt1)))
        ix1 = min(nx, int(math.floor((xmax - x_first_edge) / cdelt1)) + 1)
        iy0 = max(0, int(math.floor((ymin - y_first_edge) / cdelt2)))
        iy1 = min(ny, int(math.floor((ymax - y_first_edge) / cdelt2)) + 1)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        # Spatial overlaps do not depend on the plane: compute them once per pixel.
        cell_areas(qx, qy, xcoord, ycoord, cdelt1, cdelt2, ix0, ix1, iy0, iy1, areas, work)
        any_area = False
        for iy in range(iy0, iy1):
            for ix in range(ix0, ix1):
                if areas[iy, ix] > 0.0:
                    any_area = True
        if not any_area:
            continue
        f = flux[k]
        e = err[k]
        for iz in range(iz0, nz):
            z_lo = zcoord[iz] - zwidth[iz] / 2.0
            z_hi = zcoord[iz] + zwidth[iz] / 2.0
            if zcoord[iz] - max_half_width >= lam_hi:
                break
            overlap = min(z_hi, lam_hi) - max(z_lo, lam_lo)
            if overlap <= 0.0:
                continue
            for iy in range(iy0, iy1):
                for ix in range(ix0, ix1):
                    w = areas[iy, ix] * overlap
                    if w > 0.0:
                        flux_sum[iz, iy, ix] += f * w
                        weight_sum[iz, iy, ix] += w
                        var_sum[iz, iy, ix] += (e * w) * (e * w)
                        count[iz, iy, ix] += 1.0
