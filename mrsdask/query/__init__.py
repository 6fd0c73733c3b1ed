"""The ``.mrs`` xarray accessor: unit-aware, lazy queries on mrsdask cubes.

``import mrsdask`` registers it. Wavelengths are numbers in µm or astropy Quantities of any
spectral unit (length, frequency, wavenumber); radii arcsec or angle Quantities; positions a
``SkyCoord`` (any frame) or ra/dec in degrees or angle Quantities (ICRS)::

    import astropy.units as u, mrsdask, xarray as xr
    from astropy.coordinates import SkyCoord
    cube = xr.open_zarr("cubes.zarr", group="ch1-short")
    star = SkyCoord("5h21m57.6s -69d30m00.4s")
    spec = cube.mrs.spectrum(star, radius=0.5 * u.arcsec)            # Dataset: flux (Jy), err, npixels
    spec = cube.mrs.spectrum(star, radius=0.5 * u.arcsec, unit="mJy")
    plane = cube.mrs.plane(53400 * u.AA)                              # MJy/sr image
    line = cube.mrs.line_map(5.33 * u.um, 5.35 * u.um,                # W/m²/sr, continuum from
                             continuum=[(5.30, 5.32), (5.36, 5.38)])   # side windows (µm)
    vel = cube.mrs.moment(1, 5.33, 5.35, rest_wavelength=5.3403 * u.um)   # km/s

Everything stays lazy (dask) until computed. A wavelength beyond half a plane from the axis
ends, a position off the spaxel grid or an aperture with no spaxel centre inside raises
:class:`mrsdask.errors.OutsideCubeError` (a ``ValueError``); nothing wraps around or snaps to an
end plane. ``cube.mrs.to_spectral_cube()`` hands a cube (linear or tabular axis) to ``spectral-cube``
(optional; :mod:`mrsdask.query.spectral_cube` also reads s3d files for ``SpectralCube.read``).
"""

from mrsdask.query.accessor import MrsCubeAccessor

__all__ = ["MrsCubeAccessor"]
