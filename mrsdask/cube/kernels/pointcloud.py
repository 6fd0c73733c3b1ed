"""Point-cloud weightings: EMSM (exponential) and MSM (modified Shepard).

Each detector pixel is a point at its centre (ξ, η, λ); it contributes to every voxel
inside its region of interest: ``|z - λ| ≤ roiw``, and spatially ``√(dx² + dy²) ≤ rois``.
Distances are normalised by the spaxel size and the plane width:
``d² = (dx/cdelt1)² + (dy/cdelt2)² + ((λ - z)/Δ)²``.

* EMSM: ``w = exp(-d² / (scalerad / cdelt1))`` (the official definition: the scale radius
  measured in spaxels, not squared).
* MSM: ``w = 1 / max(d^p, softrad)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

EMSM = 0
MSM = 1


@numba.njit(cache=True, nogil=True)
def _pointcloud_accumulate(
    mode,
    xi,
    eta,
    wavelength,
    flux,
    err,
    rois,
    roiw,
    scalerad,
    power,
    softrad,
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
    nx = xcoord.size
    ny = ycoord.size
    nz = zcoord.size
    if nz == 0:
        return
    x0 = xcoord[0]
    y0 = ycoord[0]
    for k in range(wavelength.size):
        lam = wavelength[k]
        rw = roiw[k]
        rs = rois[k]
        iz0 = np.searchsorted(zcoord, lam - rw)
        # Spatial candidate window from the evenly spaced grid, then the exact tests.
        ix0 = max(0, int(math.floor((xi[k] - rs - x0) / cdelt1)))
        ix1 = min(nx, int(math.floor((xi[k] + rs - x0) / cdelt1)) + 2)
        iy0 = max(0, int(math.floor((eta[k] - rs - y0) / cdelt2)))
        iy1 = min(ny, int(math.floor((eta[k] + rs - y0) / cdelt2)) + 2)
        f = flux[k]
        e = err[k]
        for iz in range(iz0, nz):
            dz = lam - zcoord[iz]
            if abs(dz) > rw:
                if zcoord[iz] > lam:
                    break
                continue
            d3 = dz / zwidth[iz]
            for iy in range(iy0, iy1):
                ydist = abs(ycoord[iy] - eta[k])
                if ydist > rs:
                    continue
                for ix in range(ix0, ix1):
                    xdist = abs(xcoord[ix] - xi[k])
                    if xdist > rs:
                        continue
                    if math.sqrt(xdist * xdist + ydist * ydist) > rs:
                        continue
                    d1 = xdist / cdelt1
                    d2 = ydist / cdelt2
                    dist2 = d1 * d1 + d2 * d2 + d3 * d3
                    if mode == EMSM:
                        w = math.exp(-dist2 / (scalerad[k] / cdelt1))
                    else:
                        wn = math.sqrt(dist2) ** power[k]
                        if wn < softrad[k]:
                            wn = softrad[k]
                        w = 1.0 / wn
                    flux_sum[iz, iy, ix] += f * w
                    weight_sum[iz, iy, ix] += w
                    var_sum[iz, iy, ix] += (e * w) * (e * w)
                    count[iz, iy, ix] += 1.0


def emsm_accumulate(xi, eta, wavelength, flux, err, rois, roiw, scalerad, xcoord, ycoord,
                    zcoord, zwidth, cdelt1, cdelt2, flux_sum, weight_sum, var_sum, count):
    """Add EMSM contributions of pixels (centres ξ, η in arcsec; λ in µm) to a slab.

    ``rois``, ``roiw`` and ``scalerad`` are per pixel (arcsec, µm, arcsec). Accumulators
    are ``(nz, ny, nx)`` float64 arrays updated in place.
    """
    _pointcloud_accumulate(EMSM, xi, eta, wavelength, flux, err, rois, roiw, scalerad,
                           np.zeros_like(rois), np.zeros_like(rois), xcoord, ycoord, zcoord,
                           zwidth, cdelt1, cdelt2, flux_sum, weight_sum, var_sum, count)


def msm_accumulate(xi, eta, wavelength, flux, err, rois, roiw, power, softrad, xcoord, ycoord,
                   zcoord, zwidth, cdelt1, cdelt2, flux_sum, weight_sum, var_sum, count):
    """Add MSM contributions of pixels to a slab (``power`` and ``softrad`` per pixel)."""
    _pointcloud_accumulate(MSM, xi, eta, wavelength, flux, err, rois, roiw,
                           np.zeros_like(rois), power, softrad, xcoord, ycoord, zcoord,
                           zwidth, cdelt1, cdelt2, flux_sum, weight_sum, var_sum, count)
