"""Turn what a user passes to a cube query into plain numbers in the cube's own units.

Wavelengths become µm, radii arcsec, sky positions ICRS degrees; flux-density units become a
conversion factor per plane. Plain numbers keep their documented meaning (µm, arcsec, deg);
astropy ``Quantity`` may carry any unit of the right kind (a wavelength may be a frequency or a
wavenumber: ``u.spectral()``). Anything else raises ``TypeError`` (astropy's
``UnitTypeError`` for a Quantity of the wrong kind) saying what is expected.
"""

from __future__ import annotations

import math
import numbers

import astropy.units as u
import numpy as np

from mrsdask.errors import ParameterError


def _is_plain_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.ndim(value) == 0


def _scalar_quantity(value, what: str) -> u.Quantity:
    if not value.isscalar:
        raise TypeError(f"{what}: expected one value, got a Quantity of shape {value.shape}")
    return value


def _finite(number: float, what: str) -> float:
    if not math.isfinite(number):
        raise ParameterError(f"{what}: {number} is not a finite number")
    return number


def wavelength_um(value, what: str = "wavelength") -> float:
    """A wavelength in µm from a number (µm) or a spectral Quantity (length, frequency, wavenumber…)."""
    if isinstance(value, u.Quantity):
        value = _scalar_quantity(value, what)
        try:
            number = float(value.to_value(u.um, equivalencies=u.spectral()))
        except u.UnitConversionError:
            raise u.UnitTypeError(
                f"{what}: {value} is not a spectral quantity; give a length, frequency or wavenumber "
                "(e.g. 5.3 * u.um, 56.6 * u.THz) or a number in µm") from None
        return _finite(number, what)
    if _is_plain_number(value):
        return _finite(float(value), what)
    raise TypeError(f"{what}: expected a number (µm) or an astropy Quantity, got {type(value).__name__}")


def angle_arcsec(value, what: str = "radius") -> float:
    """An angle in arcsec from a number (arcsec) or an angular Quantity."""
    if isinstance(value, u.Quantity):
        value = _scalar_quantity(value, what)
        try:
            number = float(value.to_value(u.arcsec))
        except u.UnitConversionError:
            raise u.UnitTypeError(f"{what}: {value} is not an angle; give e.g. 0.5 * u.arcsec "
                                  "or a number in arcsec") from None
        return _finite(number, what)
    if _is_plain_number(value):
        return _finite(float(value), what)
    raise TypeError(f"{what}: expected a number (arcsec) or an astropy angle Quantity, got {type(value).__name__}")


def _degrees(value, what: str) -> float:
    if isinstance(value, u.Quantity):
        value = _scalar_quantity(value, what)
        try:
            return _finite(float(value.to_value(u.deg)), what)
        except u.UnitConversionError:
            raise u.UnitTypeError(f"{what}: {value} is not an angle; give e.g. 80.49 * u.deg "
                                  "or a number in degrees") from None
    if _is_plain_number(value):
        return _finite(float(value), what)
    raise TypeError(f"{what}: expected a number (deg), an astropy angle Quantity or (for the position) "
                    f"a SkyCoord, got {type(value).__name__}")


def sky_position_deg(ra, dec=None) -> tuple[float, float]:
    """ICRS (ra, dec) in degrees from a ``SkyCoord`` (any frame) or two angles.

    ``ra`` may be a ``SkyCoord`` (then ``dec`` must be None); otherwise ``ra`` and ``dec`` are
    numbers in degrees or angular Quantities, taken as ICRS.
    """
    from astropy.coordinates import SkyCoord  # imported here: keeps ``import mrsdask`` light

    if isinstance(ra, SkyCoord):
        if dec is not None:
            raise TypeError("position: give either a SkyCoord or ra and dec, not both")
        if not ra.isscalar:
            raise TypeError(f"position: expected one sky position, got a SkyCoord of shape {ra.shape}")
        icrs = ra.icrs
        return _finite(float(icrs.ra.deg), "ra"), _finite(float(icrs.dec.deg), "dec")
    if dec is None:
        raise TypeError("position: give a SkyCoord, or both ra and dec (deg or angle Quantities)")
    ra_deg, dec_deg = _degrees(ra, "ra"), _degrees(dec, "dec")
    if abs(dec_deg) > 90.0:
        raise ParameterError(f"dec: {dec_deg} deg is outside [-90, 90]")
    return ra_deg % 360.0, dec_deg


def flux_unit_factors(unit, from_unit: u.UnitBase, wavelength_um_: np.ndarray) -> tuple[u.UnitBase, np.ndarray]:
    """Per-plane factors that turn values in ``from_unit`` into ``unit`` at each wavelength.

    ``unit`` is any unit astropy's ``u.spectral_density`` reaches from ``from_unit`` (F_ν, F_λ,
    photon flux; per steradian or not, as ``from_unit`` is). Returns the parsed unit and the
    factors (one per wavelength).
    """
    try:
        target = u.Unit(unit)
    except (TypeError, ValueError):
        raise TypeError(f"unit: {unit!r} is not an astropy unit") from None
    try:
        factors = (1.0 * from_unit).to_value(target, equivalencies=u.spectral_density(wavelength_um_ * u.um))
    except u.UnitConversionError:
        raise u.UnitTypeError(f"unit: cannot express {from_unit} as {target}; give a unit of the same kind "
                              f"(spectral flux density{' per solid angle' if 'sr' in str(from_unit) else ''}, "
                              "e.g. mJy or erg / (s cm2 Angstrom))") from None
    return target, np.broadcast_to(np.asarray(factors, dtype=np.float64), wavelength_um_.shape)
