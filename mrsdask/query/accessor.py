"""The ``.mrs`` Dataset accessor (documented in :mod:`mrsdask.query`)."""

from __future__ import annotations

import xarray as xr

from mrsdask.datamodel import cube as cmodel
from mrsdask.query import inputs, spatial, spectral


@xr.register_dataset_accessor("mrs")
class MrsCubeAccessor:
    """Unit-aware, lazy queries on an mrsdask cube Dataset (see :mod:`mrsdask.query`)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ------------------------------------------------------------------ geometry
    @property
    def celestial_wcs(self):
        """``astropy.wcs.WCS`` of the spatial axes of the whole cube (the ``wcs_header`` attribute)."""
        return cmodel.celestial_wcs(self._ds.attrs)

    def world_to_pixel(self, ra, dec=None) -> tuple[float, float]:
        """Zero-based (x, y) of a sky position (``SkyCoord``, or ra/dec in deg or as Quantities).

        The result may lie outside the grid; :meth:`spectrum` and :meth:`aperture_mask` refuse that.
        """
        return spatial.world_to_pixel(self._ds, *inputs.sky_position_deg(ra, dec))

    def aperture_mask(self, ra, dec=None, radius=None) -> xr.DataArray:
        """Boolean ``(y, x)`` map of the spaxels whose centre is within ``radius`` of a position.

        ``radius`` is in arcsec or an angle Quantity. Raises :class:`~mrsdask.errors.OutsideCubeError`
        when no spaxel centre is inside the aperture.
        """
        if radius is None:
            raise TypeError("aperture_mask: give a radius (arcsec or an angle Quantity)")
        ra_deg, dec_deg = inputs.sky_position_deg(ra, dec)
        return spatial.aperture_mask(self._ds, ra_deg, dec_deg, inputs.angle_arcsec(radius))

    # ------------------------------------------------------------------ spectral axis
    def plane(self, wavelength) -> xr.DataArray:
        """The SCI plane (MJy/sr) whose centre is nearest to ``wavelength`` (µm or spectral Quantity).

        Raises :class:`~mrsdask.errors.OutsideCubeError` beyond half a plane from the axis ends.
        """
        return self._ds["sci"].isel(wavelength=spectral.plane_index(self._ds, inputs.wavelength_um(wavelength)))

    def spectral_slab(self, wmin, wmax) -> xr.Dataset:
        """The planes whose centres lie between two wavelengths (either order, µm or Quantities).

        Both ends must be inside the axis (± half a plane), else
        :class:`~mrsdask.errors.OutsideCubeError`.
        """
        planes = spectral.slab_indices(self._ds, inputs.wavelength_um(wmin, "wmin"), inputs.wavelength_um(wmax, "wmax"))
        return self._ds.isel(wavelength=planes)

    # ------------------------------------------------------------------ spectra
    def spectrum(self, ra, dec=None, radius=None, *, unit=None) -> xr.Dataset:
        """Spectrum at a sky position: one spaxel, or a circular aperture.

        Parameters
        ----------
        ra : float, Quantity or SkyCoord
            Right ascension (deg or angle Quantity, ICRS), or a ``SkyCoord`` in any frame (then
            leave ``dec`` out).
        dec : float or Quantity, optional
            Declination (deg or angle Quantity, ICRS).
        radius : float or Quantity, optional
            Aperture radius (arcsec or angle Quantity). Without it, the spaxel containing the
            position is returned.
        unit : str or astropy unit, optional
            Unit of ``flux`` and ``err``: a flux density (aperture, default ``Jy``) or a surface
            brightness (spaxel, default ``MJy / sr``); F_ν, F_λ or photon units, converted per
            plane with ``u.spectral_density``.

        Returns
        -------
        xarray.Dataset
            Lazy, along ``wavelength``: ``flux``, ``err`` (1 σ; for an aperture the quadrature sum
            of the spaxel errors × the spaxel solid angle) and ``npixels`` (spaxels used per
            plane). Voxels that are NaN or have DQ ``DO_NOT_USE`` are left out of the sums; a
            plane with none left is NaN. Attributes: ``kind`` (``aperture``/``spaxel``), ``ra``,
            ``dec`` (ICRS deg), for an aperture ``radius_arcsec``, ``aperture_spaxels`` (spaxel
            centres inside it: planes with ``npixels`` below it miss part of the aperture) and
            ``aperture_truncated`` (1 when the circle reaches beyond the grid), for a spaxel ``x``, ``y``.

        Raises
        ------
        OutsideCubeError
            The position is off the spaxel grid (one spaxel), or no spaxel centre is inside the
            aperture.
        """
        ra_deg, dec_deg = inputs.sky_position_deg(ra, dec)
        if radius is None:
            return spatial.spaxel_spectrum(self._ds, ra_deg, dec_deg, unit)
        return spatial.aperture_spectrum(self._ds, ra_deg, dec_deg, inputs.angle_arcsec(radius), unit)

    # ------------------------------------------------------------------ maps
    def moment(self, order: int, wmin, wmax, rest_wavelength=None, *, continuum=None,
               convention: str = "optical") -> xr.DataArray:
        """Moment map of the planes between ``wmin`` and ``wmax`` (lazy).

        With ``rest_wavelength`` the spectral coordinate is the velocity about it (km/s,
        ``convention`` ``optical``: v = c (λ − λ₀)/λ₀, or ``radio``/``relativistic``): moment 0 is
        ∫ I dv (``MJy km / (s sr)``), moment 1 the intensity-weighted mean velocity (km/s), moment 2
        the intensity-weighted velocity dispersion σ (km/s, the square root of the second central
        moment). Without it the coordinate is the wavelength (µm; moment 0 in ``MJy um / sr``).
        ``continuum`` is subtracted first: an image or cube (MJy/sr) or a list of (wmin, wmax)
        side windows to fit a straight line to per spaxel. A spaxel with any unusable voxel in the
        range is NaN. ``attrs["units"]`` is an astropy unit string.
        """
        planes = spectral.slab_indices(self._ds, inputs.wavelength_um(wmin, "wmin"), inputs.wavelength_um(wmax, "wmax"))
        rest = None if rest_wavelength is None else inputs.wavelength_um(rest_wavelength, "rest_wavelength")
        return spectral.moment(self._ds, order, planes, rest, self._continuum(continuum), convention)

    def line_map(self, wmin, wmax, continuum=None) -> xr.DataArray:
        """Integrated surface brightness between two wavelengths (W m⁻² sr⁻¹, lazy).

        ``continuum`` as for :meth:`moment`. A spaxel with any unusable voxel in the range is NaN.
        """
        planes = spectral.slab_indices(self._ds, inputs.wavelength_um(wmin, "wmin"), inputs.wavelength_um(wmax, "wmax"))
        return spectral.line_map(self._ds, planes, self._continuum(continuum))

    def _continuum(self, continuum):
        if continuum is None or isinstance(continuum, xr.DataArray):
            return continuum
        if not isinstance(continuum, (list, tuple)) or not all(
                isinstance(w, (list, tuple)) and len(w) == 2 for w in continuum):
            raise TypeError("continuum: give an image/cube DataArray (MJy/sr) or a list of (wmin, wmax) "
                            f"windows, got {type(continuum).__name__}")
        return [(inputs.wavelength_um(a, "continuum window"), inputs.wavelength_um(b, "continuum window"))
                for a, b in continuum]

    # ------------------------------------------------------------------ interoperability
    # ------------------------------------------------------------------ quick-looks
    def plot_image(self, path: str, wmin=None, wmax=None, *, continuum=None, aperture=None, title=None) -> str:
        """Write a PNG of the cube's median (or line) image on its sky axes (:func:`mrsdask.query.plot.plot_image`)."""
        from mrsdask.query.plot import plot_image

        return plot_image(self._ds, path, wmin=wmin, wmax=wmax, continuum=continuum, aperture=aperture, title=title)

    def plot_spectrum(self, path: str, ra, dec=None, radius=None, *, title=None) -> str:
        """Write a PNG of the spectrum at a position (:meth:`spectrum`) with the band edges."""
        from mrsdask.query.plot import plot_spectra

        spectrum = self.spectrum(ra, dec, radius)
        spectrum.attrs["cube"] = f"{spectrum.attrs.get('kind', 'spaxel')} at RA {spectrum.attrs['ra']:.5f}, " \
                                 f"Dec {spectrum.attrs['dec']:.5f}"
        return plot_spectra([spectrum], path, title=title)

    def to_spectral_cube(self):
        """The SCI cube as a ``spectral_cube`` cube (dask-backed when the Dataset is).

        Needs the optional package ``spectral-cube``. Voxels that are NaN or DO_NOT_USE are
        masked. A linear axis becomes ``WAVE``; a tabular one (a multi cube) ``WAVE-TAB`` with
        its wavelength table, so the spectral axis is the cube's wavelengths exactly
        (:func:`mrsdask.query.spectral_cube.to_spectral_cube`).
        """
        from mrsdask.query.spectral_cube import to_spectral_cube

        return to_spectral_cube(self._ds, self.celestial_wcs)
