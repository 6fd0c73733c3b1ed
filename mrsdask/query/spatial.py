"""Spatial queries on a cube Dataset: sky position → spaxel, apertures, spectra.

Positions are ICRS degrees and radii arcsec here (:mod:`mrsdask.query.inputs` converts). The
celestial WCS comes from the cube's ``wcs_header`` attribute; a Dataset cut out of a cube
(``isel`` on ``x``/``y``) is placed on that grid by its own first spaxel's ``ra``/``dec``.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

from mrsdask.datamodel import cube as cmodel
from mrsdask.datamodel.dq import DO_NOT_USE
from mrsdask.errors import OutsideCubeError, ParameterError
from mrsdask.query.inputs import flux_unit_factors
from mrsdask.query.spectral import SB_UNIT

JY_PER_MJY = 1e6


def grid_offset(ds: xr.Dataset, wcs) -> tuple[int, int]:
    """(x, y) in the header's grid of the Dataset's spaxel (0, 0)."""
    ra0, dec0 = float(ds["ra"].values[0, 0]), float(ds["dec"].values[0, 0])
    x, y = wcs.wcs_world2pix([ra0], [dec0], 0)
    return int(np.rint(x[0])), int(np.rint(y[0]))


def world_to_pixel(ds: xr.Dataset, ra: float, dec: float) -> tuple[float, float]:
    """Zero-based (x, y) of a sky position on the Dataset's spaxel grid (may be outside it)."""
    wcs = cmodel.celestial_wcs(ds.attrs)
    x, y = wcs.wcs_world2pix([ra], [dec], 0)
    ox, oy = grid_offset(ds, wcs)
    return float(x[0]) - ox, float(y[0]) - oy


def spaxel_of(ds: xr.Dataset, ra: float, dec: float) -> tuple[int, int]:
    """(x, y) index of the spaxel containing a sky position; raises when it is off the grid."""
    x, y = world_to_pixel(ds, ra, dec)
    nx, ny = ds.sizes["x"], ds.sizes["y"]
    if not (np.isfinite(x) and np.isfinite(y) and -0.5 <= x <= nx - 0.5 and -0.5 <= y <= ny - 0.5):
        raise OutsideCubeError(f"position ra={ra:.7g} dec={dec:.7g} deg is outside the cube's {nx}x{ny} "
                               f"spaxel grid (pixel x={x:.1f}, y={y:.1f}); give a position inside the field")
    return min(int(np.floor(x + 0.5)), nx - 1), min(int(np.floor(y + 0.5)), ny - 1)


def separation_arcsec(ds: xr.Dataset, ra: float, dec: float) -> np.ndarray:
    """Great-circle distance (arcsec) of every spaxel centre from (ra, dec) (haversine)."""
    ra1, dec1 = np.radians(np.asarray(ds["ra"].values)), np.radians(np.asarray(ds["dec"].values))
    ra0, dec0 = np.radians(ra), np.radians(dec)
    h = np.sin((dec1 - dec0) / 2) ** 2 + np.cos(dec1) * np.cos(dec0) * np.sin((ra1 - ra0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0


def aperture_mask(ds: xr.Dataset, ra: float, dec: float, radius: float) -> xr.DataArray:
    """Spaxels whose centre is within ``radius`` arcsec of (ra, dec); raises when none is."""
    if radius <= 0:
        raise ParameterError(f"radius {radius} arcsec: give a positive radius")
    mask = separation_arcsec(ds, ra, dec) <= radius
    if not mask.any():
        raise OutsideCubeError(
            f"no spaxel centre lies within {radius:.4g} arcsec of ra={ra:.7g} dec={dec:.7g} deg: the aperture "
            f"is outside the cube (or smaller than a {ds.attrs['cdelt1'] * 3600:.3g} arcsec spaxel); "
            "give a position inside the field or a larger radius")
    return xr.DataArray(mask, dims=("y", "x"), name="aperture")


def _aperture_truncated(ds: xr.Dataset, ra: float, dec: float, radius: float) -> bool:
    x, y = world_to_pixel(ds, ra, dec)
    r = radius / (ds.attrs["cdelt1"] * 3600.0)
    return bool(x - r < -0.5 or y - r < -0.5 or x + r > ds.sizes["x"] - 0.5 or y + r > ds.sizes["y"] - 0.5)


def _usable(ds: xr.Dataset) -> xr.DataArray:
    return np.isfinite(ds["sci"]) & ((ds["dq"] & DO_NOT_USE) == 0)


def _in_unit(flux: xr.DataArray, err: xr.DataArray, from_unit, unit, ds: xr.Dataset):
    if unit is None:
        return flux, err, from_unit
    target, factors = flux_unit_factors(unit, from_unit, np.asarray(ds["wavelength"].values, dtype=np.float64))
    f = xr.DataArray(factors, dims="wavelength", coords={"wavelength": ds["wavelength"]})
    return flux * f, err * f, target


def _spectrum_dataset(flux, err, npixels, unit, attrs: dict) -> xr.Dataset:
    text = unit.to_string()
    flux.attrs = {"units": text, "long_name": attrs["long_name"]}
    err.attrs = {"units": text, "long_name": "1-sigma uncertainty"}
    npixels.attrs = {"long_name": "number of spaxels used in each plane (usable: finite, no DO_NOT_USE)"}
    return xr.Dataset({"flux": flux, "err": err, "npixels": npixels}, attrs=attrs)


def spaxel_spectrum(ds: xr.Dataset, ra: float, dec: float, unit=None) -> xr.Dataset:
    """Surface brightness (MJy/sr, or ``unit``) of the spaxel containing (ra, dec)."""
    x, y = spaxel_of(ds, ra, dec)
    one = ds[["sci", "err", "dq"]].isel(x=x, y=y)
    good = _usable(one)
    flux = one["sci"].astype(np.float64).where(good)
    err = one["err"].astype(np.float64).where(good)
    flux, err, unit = _in_unit(flux, err, SB_UNIT, unit, ds)
    attrs = {"long_name": "surface brightness", "kind": "spaxel", "ra": ra, "dec": dec, "x": x, "y": y}
    return _spectrum_dataset(flux, err, good.astype(np.int32), unit, attrs)


def aperture_spectrum(ds: xr.Dataset, ra: float, dec: float, radius: float, unit=None) -> xr.Dataset:
    """Flux density (Jy, or ``unit``) in a circular aperture; see :meth:`MrsCubeAccessor.spectrum`."""
    mask = aperture_mask(ds, ra, dec, radius)
    ys, xs = np.nonzero(mask.values)
    box = {"y": slice(ys.min(), ys.max() + 1), "x": slice(xs.min(), xs.max() + 1)}
    sub = ds[["sci", "err", "dq"]].isel(box)
    good = _usable(sub) & mask.isel(box)
    omega_jy = ds.attrs["pixelarea_steradians"] * JY_PER_MJY  # MJy/sr × sr → Jy
    npixels = good.sum(("y", "x")).astype(np.int32)
    some = npixels > 0
    flux = (sub["sci"].astype(np.float64).where(good).sum(("y", "x")) * omega_jy).where(some)
    err = (np.sqrt((sub["err"].astype(np.float64).where(good) ** 2).sum(("y", "x"))) * omega_jy).where(some)
    flux, err, unit = _in_unit(flux, err, u.Jy, unit, ds)
    attrs = {"long_name": "flux density", "kind": "aperture", "ra": ra, "dec": dec, "radius_arcsec": radius,
             "aperture_spaxels": int(mask.values.sum()),
             "aperture_truncated": int(_aperture_truncated(ds, ra, dec, radius))}
    return _spectrum_dataset(flux, err, npixels, unit, attrs)
