"""The astronomical scene: spectra, PSF and surface brightness on the sky (pure numpy).

Nothing here knows about files, detectors or the pipeline: a :class:`Scene` maps sky
positions and wavelengths to surface brightness in MJy sr⁻¹. The detector renderer
(:mod:`mrsdask.sim.detector`) samples it; the tests use it (and :func:`truth_spectrum`) to
predict what a cube or an aperture should contain.

Units: wavelengths in µm; point-source spectra are flux densities in Jy; extended sources and
the sky are surface brightnesses in MJy sr⁻¹ (see :mod:`mrsdask.sim.config`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from mrsdask.sim.config import EmissionLine, ExtendedSource, PointSource, SimulationConfig, Source

#: Speed of light, m/s.
C_LIGHT = 299_792_458.0
#: Solid angle of one square arcsecond, sr.
ARCSEC2_SR = (np.pi / 180.0 / 3600.0) ** 2
#: FWHM → Gaussian sigma.
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: Converts W m⁻² µm⁻¹ times λ² (µm²) into Jy: F_ν = F_λ λ² / c.
_WM2UM_TO_JY = 1e-6 / C_LIGHT * 1e26

_H = 6.62607015e-34
_K = 1.380649e-23


def psf_fwhm(wavelength_um: np.ndarray | float) -> np.ndarray:
    """MRS PSF FWHM in arcsec: ``0.033 * λ/µm + 0.106`` (Law et al. 2023)."""
    return 0.033 * np.asarray(wavelength_um, dtype=float) + 0.106


def _line_profile(line: EmissionLine, wavelength: np.ndarray, bin_width: np.ndarray | None) -> np.ndarray:
    """Normalised Gaussian (µm⁻¹) at ``wavelength``, averaged over ``bin_width`` when given."""
    sigma = line.fwhm * FWHM_TO_SIGMA
    if bin_width is None:
        u = (wavelength - line.wavelength) / sigma
        return np.exp(-0.5 * u * u) / (sigma * np.sqrt(2 * np.pi))
    half = 0.5 * np.abs(bin_width)
    lo = (wavelength - half - line.wavelength) / (sigma * np.sqrt(2.0))
    hi = (wavelength + half - line.wavelength) / (sigma * np.sqrt(2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = 0.5 * (erf(hi) - erf(lo)) / (2.0 * half)
    # A zero-width bin is the profile itself.
    point = np.exp(-0.5 * ((wavelength - line.wavelength) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    return np.where(half > 0, avg, point)


def line_flux_density(line: EmissionLine, wavelength_um, bin_width_um=None) -> np.ndarray:
    """Flux density of a line in Jy (or MJy sr⁻¹ ×1e6 for a surface brightness).

    ``line.flux`` (W m⁻², or W m⁻² sr⁻¹) spread as a Gaussian in λ, converted to ``F_ν``:
    ``F_ν [Jy] = flux · φ(λ) [µm⁻¹] · λ² [µm²] · 1e20 / c``.
    """
    lam = np.asarray(wavelength_um, dtype=float)
    bw = None if bin_width_um is None else np.broadcast_to(np.asarray(bin_width_um, float), lam.shape)
    return line.flux * _line_profile(line, lam, bw) * lam * lam * _WM2UM_TO_JY


def truth_spectrum(source: Source, wavelength_um, bin_width_um=None) -> np.ndarray:
    """Intrinsic spectrum of a source.

    Parameters
    ----------
    source : PointSource or ExtendedSource
        The source.
    wavelength_um : array_like
        Wavelengths, µm.
    bin_width_um : array_like, optional
        Width of each wavelength bin, µm: the emission lines are then averaged over
        ``[λ - w/2, λ + w/2]`` (exactly for the Gaussian in ``F_λ``; the ``λ²`` of the
        conversion to ``F_ν`` and the continuum are taken at λ, a < 1e-4 relative effect).
        This is how the simulator fills a detector pixel.

    Returns
    -------
    numpy.ndarray
        Point source: total flux density ``F_ν`` in **Jy**. Extended source: surface
        brightness at its centre in **MJy sr⁻¹**, before any PSF convolution.
    """
    lam = np.asarray(wavelength_um, dtype=float)
    if isinstance(source, PointSource):
        cont = source.continuum_mjy * 1e-3 * (lam / 10.0) ** source.slope
        scale = 1.0  # W m^-2 -> Jy
    elif isinstance(source, ExtendedSource):
        cont = source.continuum_mjysr * (lam / 10.0) ** source.slope
        scale = 1e-6  # W m^-2 sr^-1 -> Jy/sr -> MJy/sr
    else:  # pragma: no cover - guarded by the config
        raise TypeError(f"not a source: {source!r}")
    out = np.array(cont, dtype=float, copy=True)
    for line in source.lines:
        out = out + scale * line_flux_density(line, lam, bin_width_um)
    return out


def sky_spectrum(wavelength_um, scale: float = 1.0) -> np.ndarray:
    """Built-in sky + telescope background, MJy sr⁻¹, times ``scale``.

    A zodiacal-like grey body (``1e-7 · B_ν(265 K)``) plus telescope thermal emission
    (``0.02 · B_ν(45 K)``): about 0.6 MJy/sr at 5 µm, 17.5 at 10 µm, 47 at 20 µm, 175 at
    25 µm and 430 at 28 µm for ``scale=1``. Smooth and rising to long wavelengths, as the
    MRS background is; not a calibrated background model.
    """
    lam = np.asarray(wavelength_um, dtype=float)
    if scale == 0:
        return np.zeros_like(lam)
    return scale * (1e-7 * _planck_mjysr(lam, 265.0) + 0.02 * _planck_mjysr(lam, 45.0))


def _planck_mjysr(wavelength_um: np.ndarray, temperature: float) -> np.ndarray:
    nu = C_LIGHT / (wavelength_um * 1e-6)
    x = _H * nu / (_K * temperature)
    with np.errstate(over="ignore"):
        b = 2 * _H * nu**3 / C_LIGHT**2 / np.expm1(x)  # W m^-2 Hz^-1 sr^-1
    return b * 1e26 / 1e6


# ---------------------------------------------------------------------------- geometry
def radec_to_offsets(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (tangent-plane) offsets in arcsec of (ra, dec) from (ra0, dec0), all degrees.

    Returns ``(east, north)``.
    """
    ra = np.deg2rad(np.asarray(ra, dtype=float))
    dec = np.deg2rad(np.asarray(dec, dtype=float))
    a0, d0 = np.deg2rad(ra0), np.deg2rad(dec0)
    cosd = np.cos(dec)
    dra = ra - a0
    cosc = np.sin(d0) * np.sin(dec) + np.cos(d0) * cosd * np.cos(dra)
    xi = cosd * np.sin(dra) / cosc
    eta = (np.cos(d0) * np.sin(dec) - np.sin(d0) * cosd * np.cos(dra)) / cosc
    k = np.rad2deg(1.0) * 3600.0
    return xi * k, eta * k


def offsets_to_radec(east, north, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`radec_to_offsets`: tangent-plane offsets (arcsec) to (ra, dec) degrees."""
    k = np.deg2rad(1.0 / 3600.0)
    xi = np.asarray(east, dtype=float) * k
    eta = np.asarray(north, dtype=float) * k
    a0, d0 = np.deg2rad(ra0), np.deg2rad(dec0)
    denom = np.cos(d0) - eta * np.sin(d0)
    ra = a0 + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, denom))
    return np.rad2deg(ra) % 360.0, np.rad2deg(dec)


def _rotate(dx: np.ndarray, dy: np.ndarray, pa_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (major, minor) axes for a position angle east of north."""
    pa = np.deg2rad(pa_deg)
    major = dx * np.sin(pa) + dy * np.cos(pa)
    minor = dx * np.cos(pa) - dy * np.sin(pa)
    return major, minor


def spatial_profile(source: Source, east, north, wavelength_um) -> np.ndarray:
    """Spatial part of a source at tangent-plane offsets from the *target* (arcsec).

    Point source: the PSF normalised to unit integral, arcsec⁻² (FWHM from :func:`psf_fwhm`).
    Extended source: dimensionless, 1 at the centre of an unconvolved source; a Gaussian
    with ``psf_convolved`` is broadened by the PSF with its total flux kept.
    """
    dx = np.asarray(east, dtype=float) - source.ra_offset
    dy = np.asarray(north, dtype=float) - source.dec_offset
    lam = np.asarray(wavelength_um, dtype=float)
    if isinstance(source, PointSource):
        sig = psf_fwhm(lam) * FWHM_TO_SIGMA
        r2 = dx * dx + dy * dy
        return np.exp(-0.5 * r2 / (sig * sig)) / (2.0 * np.pi * sig * sig)
    major, minor = _rotate(dx, dy, source.position_angle)
    if source.profile == "disc":
        a = source.size
        b = source.size * source.axis_ratio
        return ((major / a) ** 2 + (minor / b) ** 2 <= 1.0).astype(float)
    sa = source.size * FWHM_TO_SIGMA
    sb = sa * source.axis_ratio
    if source.psf_convolved:
        sp2 = (psf_fwhm(lam) * FWHM_TO_SIGMA) ** 2
        sa2, sb2 = sa * sa + sp2, sb * sb + sp2
        amp = sa * sb / np.sqrt(sa2 * sb2)
    else:
        sa2, sb2 = sa * sa, sb * sb
        amp = 1.0
    return amp * np.exp(-0.5 * (major * major / sa2 + minor * minor / sb2))


@dataclass
class Scene:
    """Sources and sky around a target; surface brightness at any (ra, dec, λ).

    Parameters
    ----------
    target_ra, target_dec : float
        Tangent point: the target, degrees. Source offsets are relative to it.
    sources : list of PointSource or ExtendedSource
        The sources.
    sky_scale : float
        Scale of :func:`sky_spectrum` (0: no sky).
    """

    target_ra: float
    target_dec: float
    sources: list[Source]
    sky_scale: float = 0.0

    @classmethod
    def from_config(cls, config: SimulationConfig) -> Scene:
        """The scene of a simulation configuration."""
        return cls(config.target_ra, config.target_dec, list(config.sources), config.sky_background)

    def source_position(self, source: Source) -> tuple[float, float]:
        """(ra, dec) of a source centre, degrees."""
        ra, dec = offsets_to_radec(source.ra_offset, source.dec_offset, self.target_ra, self.target_dec)
        return float(ra), float(dec)

    def offsets(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        """Tangent-plane offsets (east, north), arcsec, of sky positions from the target."""
        return radec_to_offsets(ra, dec, self.target_ra, self.target_dec)

    def source_surface_brightness(
        self, source: Source, east, north, wavelength_um, bin_width_um=None, spectrum=None
    ) -> np.ndarray:
        """Surface brightness (MJy sr⁻¹) of one source at target offsets (arcsec) and λ.

        ``spectrum`` may pass a precomputed :func:`truth_spectrum` (broadcastable to the result).
        """
        if spectrum is None:
            spectrum = truth_spectrum(source, wavelength_um, bin_width_um)
        prof = spatial_profile(source, east, north, wavelength_um)
        if isinstance(source, PointSource):
            # Jy * arcsec^-2 -> Jy/sr -> MJy/sr
            return spectrum * prof / ARCSEC2_SR * 1e-6
        return spectrum * prof

    def surface_brightness(
        self,
        ra,
        dec,
        wavelength_um,
        bin_width_um=None,
        *,
        include_sources: bool = True,
        include_sky: bool = True,
    ) -> np.ndarray:
        """Surface brightness of the scene, MJy sr⁻¹, at sky positions (deg) and wavelengths (µm).

        Point sources are seen through the PSF; this is what a perfectly sampled, noiseless,
        fringe-free cube would hold (before averaging over pixels).
        """
        east, north = self.offsets(ra, dec)
        return self.surface_brightness_offsets(
            east, north, wavelength_um, bin_width_um, include_sources=include_sources, include_sky=include_sky
        )

    def surface_brightness_offsets(
        self,
        east,
        north,
        wavelength_um,
        bin_width_um=None,
        *,
        include_sources: bool = True,
        include_sky: bool = True,
    ) -> np.ndarray:
        """As :meth:`surface_brightness` with positions as target offsets in arcsec."""
        east = np.asarray(east, dtype=float)
        north = np.asarray(north, dtype=float)
        lam = np.asarray(wavelength_um, dtype=float)
        out = np.zeros(np.broadcast_shapes(east.shape, north.shape, lam.shape))
        if include_sky and self.sky_scale:
            out = out + sky_spectrum(lam, self.sky_scale)
        if include_sources:
            for src in self.sources:
                out = out + self.source_surface_brightness(src, east, north, lam, bin_width_um)
        return out

    def pixel_average(
        self,
        east: np.ndarray,
        north: np.ndarray,
        wavelength_um: np.ndarray,
        bin_width_um: np.ndarray | None = None,
        *,
        include_sources: bool = True,
        include_sky: bool = True,
    ) -> np.ndarray:
        """Mean surface brightness over sub-pixel samples.

        Parameters
        ----------
        east, north : numpy.ndarray, shape (S, N)
            Target offsets (arcsec) of S samples in each of N pixels.
        wavelength_um, bin_width_um : numpy.ndarray, shape (N,)
            Centre wavelength and wavelength extent of each pixel.

        Returns
        -------
        numpy.ndarray, shape (N,)
            MJy sr⁻¹: the spectra are evaluated once per pixel (lines averaged over the
            pixel's λ extent), the spatial profiles at every sample, then averaged.
        """
        lam = np.asarray(wavelength_um, dtype=float)
        out = np.zeros(lam.shape)
        if include_sky and self.sky_scale:
            out += sky_spectrum(lam, self.sky_scale)
        if not include_sources:
            return out
        for src in self.sources:
            # Only pixels where the profile is not negligible (beyond 8 sigma: < 1e-14).
            near = np.hypot(east[0] - src.ra_offset, north[0] - src.dec_offset) <= _reach(src, lam)
            idx = np.flatnonzero(near)
            if idx.size == 0:
                continue
            bw = None if bin_width_um is None else np.asarray(bin_width_um)[idx]
            spec = truth_spectrum(src, lam[idx], bw)
            if not np.any(spec):
                continue
            acc = np.zeros(idx.size)
            for s in range(east.shape[0]):
                acc += spatial_profile(src, east[s, idx], north[s, idx], lam[idx])
            acc /= east.shape[0]
            if isinstance(src, PointSource):
                out[idx] += spec * acc / ARCSEC2_SR * 1e-6
            else:
                out[idx] += spec * acc
        return out


def _reach(source: Source, wavelength_um: np.ndarray) -> np.ndarray:
    """Distance (arcsec) from a source centre beyond which its profile is negligible.

    8 sigma of the (PSF-broadened) Gaussian plus 1 arcsec for the sub-pixel samples; a disc
    reaches its radius plus 1 arcsec.
    """
    psf_sigma = psf_fwhm(wavelength_um) * FWHM_TO_SIGMA
    if isinstance(source, PointSource):
        return 8.0 * psf_sigma + 1.0
    if source.profile == "disc":
        return np.full(np.shape(psf_sigma), source.size + 1.0)
    sigma = np.full(np.shape(psf_sigma), source.size * FWHM_TO_SIGMA)
    if source.psf_convolved:
        sigma = np.sqrt(sigma**2 + psf_sigma**2)
    return 8.0 * sigma + 1.0
