"""The cube data model: a 3-D MRS cube as an xarray Dataset (and its zarr group).

Layout (``CONVENTION = "mrsdask-cube/1"``)::

    dims    wavelength, y, x
    data    sci  (wavelength, y, x) float32  surface brightness, units "MJy / sr"; NaN without data
            err  (wavelength, y, x) float32  1-σ uncertainty, "MJy / sr"
            dq   (wavelength, y, x) uint32   0 where data; 513 (NON_SCIENCE_HOLE of :mod:`mrsdask.datamodel.dq`) elsewhere
            wmap (wavelength, y, x) float32  number of detector pixels that contributed
    coords  wavelength (wavelength) float64  plane centres, "um"
            ra, dec (y, x)          float64  spaxel centres, "deg"
    attrs   convention, wcs_header (FITS header text of the celestial + spectral WCS:
            CTYPE3 = WAVE with CRVAL3/CDELT3/CRPIX3 for a linear axis, WAVE-TAB for a tabular
            one), crval1, crval2, cdelt1/cdelt2 (deg), crpix1, crpix2, pc (4 values),
            wavelength_axis ("linear"/"tabular"), weighting, roi_spatial, roi_wave,
            weight_power, channel, band, bands, source_type, targ_ra, targ_dec,
            pixelarea_arcsecsq, pixelarea_steradians, inputs (file names), mrsdask_complete.

The celestial WCS is also kept as a FITS header string so that ``astropy.wcs.WCS`` can be
built from it on any worker (no WCS object is pickled).
"""

from __future__ import annotations

import numpy as np

CONVENTION = "mrsdask-cube/1"
ARCSEC2_TO_SR = 2.3504e-11


def celestial_wcs(attrs: dict):
    """``astropy.wcs.WCS`` (celestial part) of a cube from its attributes."""
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header.fromstring(attrs["wcs_header"], sep="\n")
    celestial = fits.Header()
    for key in header:
        # Drop the spectral axis: a WAVE-TAB axis cannot be built without its table.
        if "3" in key[-2:] or key.startswith("PS3") or key == "WCSAXES":
            continue
        celestial[key] = header[key]
    celestial["WCSAXES"] = 2
    return WCS(celestial)


def spaxel_sky_coords(attrs: dict, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (deg) of every spaxel centre."""
    wcs = celestial_wcs(attrs)
    yy, xx = np.mgrid[:ny, :nx]
    ra, dec = wcs.wcs_pix2world(xx, yy, 0)
    return ra, dec
