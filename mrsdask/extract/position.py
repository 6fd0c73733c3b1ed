"""Where the aperture of a point source goes: auto-centring and the target's proper motion.

* :func:`autocentre` — the official ``ifu_autocen`` method: median image of the cube planes
  below 26 µm (NaN ignored), ``sigma_clipped_stats`` of it, photutils' ``DAOStarFinder``
  (``fwhm=3``, ``threshold=3·rms``) on the image minus its clipped median, and the
  centroid of the brightest source found.
* :func:`target_at_observation` — the target moved by its proper motion (``MU_RA`` =
  μα·cos δ and ``MU_DEC`` in arcsec/yr, from the catalogue epoch ``MU_EPOCH``) to the mean
  mid-time of the exposures (``EXPMID``, MJD), with astropy's ``SkyCoord.apply_space_motion``.
  The official pipeline places the aperture at ``TARG_RA``/``TARG_DEC`` as given, the
  catalogue-epoch position: for a fast-moving star the aperture misses it.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

log = logging.getLogger(__name__)
#: Planes at and beyond this wavelength (µm) are left out of the auto-centring image (low throughput).
AUTOCEN_MAX_WAVELENGTH = 26.0


def autocentre(planes: np.ndarray) -> tuple[float, float] | None:
    """Centroid (x, y; 0-based spaxels) of the brightest source in the median of ``planes``, or None.

    Parameters
    ----------
    planes : numpy.ndarray
        (n, ny, nx) SCI planes below :data:`AUTOCEN_MAX_WAVELENGTH`, as stored (float32).

    Returns
    -------
    tuple of float or None
        None when DAOStarFinder finds nothing (the official step then uses the target position).
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.detection import DAOStarFinder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN spaxels, photutils' "no sources" warning
        collapse = np.ma.median(np.ma.masked_invalid(planes), axis=0)
        _, median, rms = sigma_clipped_stats(collapse)
        sources = DAOStarFinder(fwhm=3.0, threshold=3 * rms)(collapse - median)
    if sources is None or len(sources) == 0:
        return None
    brightest = sources[int(np.argmax(sources["flux"].value))]
    xname = "x_centroid" if "x_centroid" in sources.colnames else "xcentroid"
    yname = "y_centroid" if "y_centroid" in sources.colnames else "ycentroid"
    return float(brightest[xname]), float(brightest[yname])


def has_proper_motion(attrs: dict) -> bool:
    """The cube carries a usable proper motion: MU_RA, MU_DEC, MU_EPOCH and EXPMID, not both motions 0."""
    mu = [attrs.get("mu_ra", np.nan), attrs.get("mu_dec", np.nan)]
    try:
        mu = [float(m) for m in mu]
        mid = float(attrs.get("expmid", np.nan))
    except (TypeError, ValueError):
        return False
    return (all(math.isfinite(m) for m in mu) and any(m != 0 for m in mu) and math.isfinite(mid)
            and bool(str(attrs.get("mu_epoch", "") or "").strip()))


def _epoch(text: str):
    """MU_EPOCH as an astropy Time: an ISO date/time (UT), or a Julian year such as ``2000`` / ``J2000.0``."""
    from astropy.time import Time

    text = str(text).strip()
    try:
        return Time(float(text.lstrip("J")), format="jyear", scale="utc")
    except ValueError:
        return Time(text, scale="utc")


def target_at_observation(ra: float, dec: float, attrs: dict) -> tuple[float, float, str]:
    """The target (RA, Dec; deg) moved from MU_EPOCH to the exposures' mean mid-time, and a description.

    Raises
    ------
    ValueError
        If MU_EPOCH cannot be read as a date or a Julian year.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    epoch = _epoch(attrs["mu_epoch"])
    mid = Time(float(attrs["expmid"]), format="mjd", scale="utc")
    coord = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, pm_ra_cosdec=float(attrs["mu_ra"]) * u.arcsec / u.yr,
                     pm_dec=float(attrs["mu_dec"]) * u.arcsec / u.yr, obstime=epoch, frame="icrs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA "dubious year" for future dates
        moved = coord.apply_space_motion(new_obstime=mid)
    years = (mid - epoch).to_value(u.yr)
    shift = coord.separation(moved).to_value(u.arcsec)
    text = (f"moved {shift:.3f} arcsec by MU_RA={float(attrs['mu_ra']):g}, MU_DEC={float(attrs['mu_dec']):g} "
            f"arcsec/yr over {years:.2f} yr (MU_EPOCH {attrs['mu_epoch']} to EXPMID {float(attrs['expmid']):.5f})")
    return float(moved.ra.deg), float(moved.dec.deg), text
