"""Cube grids: the tangent-plane spatial grid and the wavelength axis.

Conventions follow the official ``cube_build`` so that cubes agree voxel for voxel:

* gnomonic projection about (crval1, crval2); ξ increases towards **west** (−RA), so that
  with PC1_1 = −1 the cube shows north up, east left; a rotation θ (``cube_pa`` or the IFU
  angle) turns (ξ, η) by −θ;
* the spatial grid is symmetric about the tangent point: ``2·na + 1`` by ``2·nb + 1`` spaxels;
* the linear wavelength axis has plane centres ``λmin + Δ/2 + kΔ``; a tabular (multi) axis
  takes the table's wavelengths; the width of plane k is ``z[k+1] - z[k]`` (last repeated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from mrsdask.instrument.small_angles import SMALL_ANGLE, sin_cos_series, sin_cos_sum

ARCSEC_PER_RAD = 180.0 * 3600.0 / math.pi


def sky_to_tangent(ra, dec, crval1: float, crval2: float, rotation: float | None = None,
                   offset: tuple[float, float] = (0.0, 0.0)):
    """Project sky positions (deg) to tangent-plane offsets (ξ, η) in arcsec.

    Parameters
    ----------
    ra, dec : array_like
        Positions in degrees. Two 2-D arrays of the same shape are read in place, whatever
        their strides (e.g. column views of a pixel-table block); anything else is copied.
    crval1, crval2 : float
        Tangent point in degrees.
    rotation : float, optional
        Cube position angle θ in degrees; (ξ, η) are rotated by −θ.
    offset : (float, float)
        Added to RA and Dec (deg) before projecting (a moving target's shift).

    Returns
    -------
    xi, eta : ndarray
        Offsets in arcsec (east negative ξ, as the pipeline's ``radec2std``), C-contiguous.
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    shape = np.broadcast_shapes(ra.shape, dec.shape)
    if not (ra.ndim == 2 and ra.shape == dec.shape):
        ra = np.ascontiguousarray(np.broadcast_to(ra, shape)).reshape(1, -1)
        dec = np.ascontiguousarray(np.broadcast_to(dec, shape)).reshape(1, -1)
    xi = np.empty(ra.shape)
    eta = np.empty(ra.shape)
    theta = math.radians(-rotation) if rotation is not None else 0.0
    _gnomonic(ra, dec, float(offset[0]), float(offset[1]), math.radians(crval1), math.radians(crval2),
              rotation is not None, math.cos(theta), math.sin(theta), xi, eta)
    return xi.reshape(shape), eta.reshape(shape)


@numba.njit(cache=True, nogil=True)
def _gnomonic(ra, dec, dra_deg, ddec_deg, ra0, dec0, rotate, c, s, xi, eta):
    """Gnomonic projection about (ra0, dec0), then an optional rotation (one fused loop, 2-D).

    Point ``[0, i]`` is mapped with the full trigonometry. The other points of column ``i``
    (the other corners of a pixel, a fraction of an arcsecond away) take their sines and
    cosines by angle addition from it, where the angles differ by less than
    :data:`~mrsdask.instrument.small_angles.SMALL_ANGLE`: the same values to rounding, without four libm calls a point.
    """
    sin_dec0 = math.sin(dec0)
    cos_dec0 = math.cos(dec0)
    for i in range(ra.shape[1]):
        dra_first = 0.0
        decr_first = 0.0
        sin_dec_first = cos_dec_first = sin_dra_first = cos_dra_first = 0.0
        for r in range(ra.shape[0]):
            dra = math.radians(ra[r, i] + dra_deg) - ra0
            decr = math.radians(dec[r, i] + ddec_deg)
            if r > 0 and abs(dra - dra_first) < SMALL_ANGLE and abs(decr - decr_first) < SMALL_ANGLE:
                sd, cd = sin_cos_series(decr - decr_first)
                sin_dec, cos_dec = sin_cos_sum(sin_dec_first, cos_dec_first, sd, cd)
                sd, cd = sin_cos_series(dra - dra_first)
                sin_dra, cos_dra = sin_cos_sum(sin_dra_first, cos_dra_first, sd, cd)
            else:
                cos_dec = math.cos(decr)
                sin_dec = math.sin(decr)
                cos_dra = math.cos(dra)
                sin_dra = math.sin(dra)
                if r == 0:
                    dra_first, decr_first = dra, decr
                    sin_dec_first, cos_dec_first, sin_dra_first, cos_dra_first = sin_dec, cos_dec, sin_dra, cos_dra
            denom = sin_dec * sin_dec0 + cos_dec * cos_dec0 * cos_dra
            x = -(cos_dec * sin_dra / denom) * ARCSEC_PER_RAD
            y = ((sin_dec * cos_dec0 - cos_dec * sin_dec0 * cos_dra) / denom) * ARCSEC_PER_RAD
            if rotate:
                xi[r, i] = x * c - y * s
                eta[r, i] = x * s + y * c
            else:
                xi[r, i] = x
                eta[r, i] = y


def wrap_ra(ra: np.ndarray) -> np.ndarray:
    """Put RA values on one side of the 0/360 border (as the pipeline's ``wrap_ra``)."""
    ra = np.asarray(ra, dtype=np.float64).copy()
    good = np.isfinite(ra)
    if not good.any():
        return ra
    median = np.nanmedian(ra[good])
    if np.any(np.abs(ra[good] - median) > 180.0):
        if median > 180.0:
            ra[good & (ra < 180.0)] += 360.0
        else:
            ra[good & (ra > 180.0)] -= 360.0
    return ra


def circular_mean_deg(values) -> float:
    """Circular mean of angles in degrees, in [0, 360)."""
    rad = np.radians(np.asarray(values, dtype=np.float64))
    return float(np.degrees(math.atan2(np.sin(rad).sum(), np.cos(rad).sum())) % 360.0)


@dataclass(frozen=True)
class SpatialGrid:
    """Tangent-plane spaxel grid.

    Attributes
    ----------
    crval1, crval2 : float
        Tangent point (deg).
    cdelt : float
        Spaxel size (arcsec), square spaxels.
    na, nb : int
        Half sizes: the grid is ``2·na + 1`` by ``2·nb + 1`` spaxels.
    rotation : float or None
        Cube position angle (deg); None is north up, east left.
    """

    crval1: float
    crval2: float
    cdelt: float
    na: int
    nb: int
    rotation: float | None = None

    @property
    def nx(self) -> int:
        """Number of spaxels along x (NAXIS1)."""
        return 2 * self.na + 1

    @property
    def ny(self) -> int:
        """Number of spaxels along y (NAXIS2)."""
        return 2 * self.nb + 1

    @property
    def crpix1(self) -> float:
        """Reference pixel along x (1-based)."""
        return float(self.na) + 1.0

    @property
    def crpix2(self) -> float:
        """Reference pixel along y (1-based)."""
        return float(self.nb) + 1.0

    @property
    def xcoord(self) -> np.ndarray:
        """Spaxel centres along x (arcsec)."""
        start = -self.na * self.cdelt - self.cdelt / 2.0 + self.cdelt / 2.0
        return np.arange(start, start + self.nx * self.cdelt, self.cdelt)[: self.nx]

    @property
    def ycoord(self) -> np.ndarray:
        """Spaxel centres along y (arcsec)."""
        start = -self.nb * self.cdelt - self.cdelt / 2.0 + self.cdelt / 2.0
        return np.arange(start, start + self.ny * self.cdelt, self.cdelt)[: self.ny]

    @property
    def pc_matrix(self) -> tuple[float, float, float, float]:
        """PC1_1, PC1_2, PC2_1, PC2_2 of the FITS WCS."""
        theta = math.radians(self.rotation or 0.0)
        return (-math.cos(theta), math.sin(theta), math.sin(theta), math.cos(theta))

    def spaxel_sky_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """RA and Dec (deg) of every spaxel centre, each ``(ny, nx)``, RA in [0, 360): the inverse of
        the cube header's TAN projection (:func:`mrsdask.datamodel.cube.tan_pixel_to_sky`)."""
        from mrsdask.datamodel.cube import tan_pixel_to_sky

        iy, ix = np.mgrid[: self.ny, : self.nx]
        step = self.cdelt / 3600.0
        return tan_pixel_to_sky(ix, iy, (self.crpix1, self.crpix2), (self.crval1, self.crval2), (step, step),
                                self.pc_matrix)


def spatial_grid_from_corners(
    corner_ra: np.ndarray,
    corner_dec: np.ndarray,
    cdelt: float,
    rotation: float | None = None,
    ra_center: float | None = None,
    dec_center: float | None = None,
    nspax_x: int | None = None,
    nspax_y: int | None = None,
) -> SpatialGrid:
    """Smallest symmetric grid about the footprint centre that covers all corners.

    Parameters
    ----------
    corner_ra, corner_dec : array_like
        Footprint corners of every input (deg).
    cdelt : float
        Spaxel size (arcsec).
    rotation : float, optional
        Cube position angle (deg).
    ra_center, dec_center : float, optional
        Override the tangent point.
    nspax_x, nspax_y : int, optional
        Force the number of spaxels (made odd: the grid is ``2·(n//2) + 1`` wide).
    """
    ra = wrap_ra(np.asarray(corner_ra, dtype=np.float64).ravel())
    dec = np.asarray(corner_dec, dtype=np.float64).ravel()
    if ra.size == 0 or not np.isfinite(ra).any():
        raise ValueError("no valid footprint corners: no input pixel maps to the sky")
    crval1 = circular_mean_deg([np.nanmin(ra), np.nanmax(ra)]) if ra_center is None else float(ra_center)
    crval2 = (np.nanmin(dec) + np.nanmax(dec)) / 2.0 if dec_center is None else float(dec_center)
    xi, eta = sky_to_tangent(ra, dec, crval1, crval2, rotation)
    xilimit = max(abs(np.nanmin(xi)), abs(np.nanmax(xi)))
    etalimit = max(abs(np.nanmin(eta)), abs(np.nanmax(eta)))
    na = math.ceil(xilimit / cdelt) + 1
    nb = math.ceil(etalimit / cdelt) + 1
    if nspax_x is not None:
        na = int(nspax_x) // 2
    if nspax_y is not None:
        nb = int(nspax_y) // 2
    return SpatialGrid(float(crval1), float(crval2), float(cdelt), int(na), int(nb), rotation)


@dataclass(frozen=True)
class WavelengthGrid:
    """Wavelength axis of a cube.

    Attributes
    ----------
    zcoord : ndarray
        Plane centres (µm), increasing.
    linear : bool
        True for a linear axis (CTYPE3 = WAVE), False for a tabular one (WAVE-TAB).
    cdelt3 : float
        The step of a linear axis; for a tabular axis the mean plane width.
    """

    zcoord: np.ndarray
    linear: bool
    cdelt3: float
    zwidth: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        z = np.asarray(self.zcoord, dtype=np.float64)
        object.__setattr__(self, "zcoord", z)
        width = np.empty_like(z)
        if z.size > 1:
            width[:-1] = np.diff(z)
            width[-1] = width[-2]
        elif z.size == 1:
            width[0] = self.cdelt3
        object.__setattr__(self, "zwidth", width)

    @property
    def nz(self) -> int:
        """Number of planes."""
        return int(self.zcoord.size)


def linear_wavelength_grid(wavemin: float, wavemax: float, step: float) -> WavelengthGrid:
    """Linear axis from ``wavemin`` to (at least) ``wavemax`` with plane width ``step``."""
    if not (step > 0 and wavemax > wavemin):
        raise ValueError(f"bad wavelength range {wavemin}..{wavemax} µm with step {step}")
    nz = int(math.ceil((wavemax - wavemin) / step))
    top = wavemin + nz * step
    start = wavemin + step / 2.0
    z = np.arange(start, top, step)[:nz]
    return WavelengthGrid(z, True, float(step))


def tabular_wavelength_grid(table) -> WavelengthGrid:
    """Tabular (non-linear) axis with plane centres from ``table``."""
    z = np.asarray(table, dtype=np.float64)
    if z.size < 2 or np.any(np.diff(z) <= 0):
        raise ValueError("a tabular wavelength axis needs at least 2 increasing wavelengths")
    return WavelengthGrid(z, False, float(np.mean(np.diff(z))))
