"""The ``.mrs`` xarray accessor: queries on (lazy) mrsdask cubes.

::

    import xarray as xr, mrsdask.query  # noqa: F401  (registers .mrs)
    cube = xr.open_zarr("cubes.zarr", group="ch1-short")
    spec = cube.mrs.spectrum(ra=80.4901, dec=-69.5001, radius=0.5)   # Jy per plane, lazy
    plane = cube.mrs.plane(5.3)                                        # MJy/sr image
    line = cube.mrs.line_map(5.33, 5.35)                               # integrated line, W/m²/sr

Everything stays lazy (dask) until computed.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from mrsdask.datamodel import cube as cmodel

C_UM_PER_S = 2.99792458e14
MJY_TO_SI = 1e-20  # 1 MJy = 1e6 Jy = 1e-20 W m⁻² Hz⁻¹


@xr.register_dataset_accessor("mrs")
class MrsCubeAccessor:
    """Cube queries; see the module docstring."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def celestial_wcs(self):
        """``astropy.wcs.WCS`` of the spatial axes."""
        return cmodel.celestial_wcs(self._ds.attrs)

    def world_to_pixel(self, ra: float, dec: float) -> tuple[float, float]:
        """Zero-based (x, y) of a sky position."""
        x, y = self.celestial_wcs.wcs_world2pix([ra], [dec], 0)
        return float(x[0]), float(y[0])

    def plane(self, wavelength: float) -> xr.DataArray:
        """The SCI plane nearest to ``wavelength`` (µm)."""
        return self._ds["sci"].sel(wavelength=wavelength, method="nearest")

    def aperture_mask(self, ra: float, dec: float, radius: float) -> xr.DataArray:
        """Spaxels whose centre is within ``radius`` arcsec of (ra, dec)."""
        dx = (self._ds["ra"] - ra) * np.cos(np.radians(dec)) * 3600.0
        dy = (self._ds["dec"] - dec) * 3600.0
        return np.hypot(dx, dy) <= radius

    def spectrum(self, ra: float, dec: float, radius: float | None = None) -> xr.DataArray:
        """Flux density (Jy) in a circular aperture, or the surface brightness of one spaxel.

        With ``radius`` (arcsec) the SCI values inside the aperture are summed and multiplied
        by the spaxel solid angle; a plane with a missing spaxel in the aperture gives NaN.
        Without it, the spaxel containing (ra, dec) is returned in MJy/sr.
        """
        sci = self._ds["sci"]
        if radius is None:
            x, y = self.world_to_pixel(ra, dec)
            return sci.isel(x=int(round(x)), y=int(round(y)))
        mask = self.aperture_mask(ra, dec, radius)
        inside = sci.where(mask)
        total = inside.sum(dim=("y", "x"), skipna=True)
        missing = (inside.isnull() & mask).any(dim=("y", "x"))
        flux = total.where(~missing) * self._ds.attrs["pixelarea_steradians"] * 1e6
        flux.attrs["units"] = "Jy"
        return flux.rename("flux")

    def line_map(self, wavemin: float, wavemax: float, continuum: xr.DataArray | None = None) -> xr.DataArray:
        """Integrated surface brightness between two wavelengths (W m⁻² sr⁻¹).

        ``continuum`` (MJy/sr, an image or a cube) is subtracted first when given.
        """
        sl = self._ds["sci"].sel(wavelength=slice(wavemin, wavemax))
        if continuum is not None:
            sl = sl - continuum
        lam = sl["wavelength"]
        # F_λ = F_ν c / λ² ; integrate over λ (µm) with plane widths.
        width = xr.DataArray(np.gradient(lam.values), dims="wavelength", coords={"wavelength": lam})
        flam = sl * MJY_TO_SI * C_UM_PER_S / lam**2
        out = (flam * width).sum("wavelength", skipna=False)
        out.attrs["units"] = "W / (m2 sr)"
        return out.rename("line")
