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
    from astropy.wcs import WCS

    return WCS(_celestial_header(attrs))


def _celestial_header(attrs: dict):
    from astropy.io import fits

    header = fits.Header.fromstring(attrs["wcs_header"], sep="\n")
    celestial = fits.Header()
    for key in header:
        # Drop the spectral axis: a WAVE-TAB axis cannot be built without its table.
        if "3" in key[-2:] or key.startswith("PS3") or key == "WCSAXES":
            continue
        celestial[key] = header[key]
    celestial["WCSAXES"] = 2
    return celestial


#: Celestial keywords of a plain TAN header, all that :func:`tan_pixel_to_sky` needs; a header
#: with any other WCS keyword (distortion, CD matrix, LONPOLE, ...) goes through astropy's WCS.
_PLAIN_TAN = {"WCSAXES", "CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2",
              "CUNIT1", "CUNIT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RADESYS", "EQUINOX"}


def pixel_to_sky(attrs: dict, x, y) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of 0-based spatial pixel positions of a cube, from its ``wcs_header``.

    A plain RA---TAN/DEC--TAN header (every cube mrsdask builds) is inverted in closed form
    (:func:`tan_pixel_to_sky`); any other goes through ``astropy.wcs``.
    """
    header = _celestial_header(attrs)
    plain = (set(header) <= _PLAIN_TAN and header.get("CTYPE1") == "RA---TAN" and header.get("CTYPE2") == "DEC--TAN"
             and all(str(header.get(k, "deg")).strip().lower() == "deg" for k in ("CUNIT1", "CUNIT2")))
    if not plain:
        from astropy.wcs import WCS

        return WCS(header).wcs_pix2world(x, y, 0)
    pc = tuple(float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)) for i, j in ((1, 1), (1, 2), (2, 1), (2, 2)))
    return tan_pixel_to_sky(x, y, (header["CRPIX1"], header["CRPIX2"]), (header["CRVAL1"], header["CRVAL2"]),
                            (header.get("CDELT1", 1.0), header.get("CDELT2", 1.0)), pc)


def tan_pixel_to_sky(x, y, crpix, crval, cdelt, pc) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg, RA in [0, 360)) of 0-based pixel positions under a FITS gnomonic (TAN) projection.

    Parameters
    ----------
    x, y : array_like
        0-based pixel positions (FITS pixel ``x + 1``).
    crpix, crval, cdelt : (float, float)
        CRPIX1/2 (1-based), CRVAL1/2 (deg), CDELT1/2 (deg).
    pc : (float, float, float, float)
        PC1_1, PC1_2, PC2_1, PC2_2.

    Notes
    -----
    The closed-form inverse for the default LONPOLE of 180°: the same positions as wcslib's
    ``wcs_pix2world`` to ~1e-9 arcsec, without importing astropy's WCS and coordinates.
    """
    dx = np.asarray(x, dtype=np.float64) + 1.0 - float(crpix[0])
    dy = np.asarray(y, dtype=np.float64) + 1.0 - float(crpix[1])
    xi = np.radians(float(cdelt[0]) * (pc[0] * dx + pc[1] * dy))  # on the tangent plane, east positive
    eta = np.radians(float(cdelt[1]) * (pc[2] * dx + pc[3] * dy))
    dec0 = np.radians(float(crval[1]))
    across = np.cos(dec0) - eta * np.sin(dec0)
    ra = np.mod(float(crval[0]) + np.degrees(np.arctan2(xi, across)), 360.0)
    dec = np.degrees(np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, across)))
    return np.where(ra >= 360.0, 0.0, ra), dec


def spaxel_sky_coords(attrs: dict, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (deg) of every spaxel centre."""
    yy, xx = np.mgrid[:ny, :nx]
    return pixel_to_sky(attrs, xx, yy)
