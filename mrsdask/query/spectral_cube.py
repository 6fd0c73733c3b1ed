"""The bridge to ``spectral-cube``: band, channel and multi (``WAVE-TAB``) cubes alike.

* :func:`to_spectral_cube` — a cube Dataset (a store's, an s3d's or a cut-out of either) as a
  ``SpectralCube`` (``DaskSpectralCube`` when the Dataset is lazy); behind
  ``cube.mrs.to_spectral_cube()``.
* :func:`read_s3d` — an ``s3d`` file as a ``SpectralCube``; importing this module registers it
  with ``SpectralCube.read`` (:func:`register`): as the format ``"mrsdask-s3d"`` for any s3d,
  and by itself for a multi-channel one::

      import mrsdask.query.spectral_cube  # registers the reader
      from spectral_cube import SpectralCube
      cube = SpectralCube.read("jw01523-o003_t002_miri_ch1-2-3-4-shortmediumlong_s3d.fits")

``SpectralCube.read(path)`` with its default ``fits`` reader opens band and channel s3d files,
but not the multi-channel cube of the official pipeline or of ``mrsdask export``: its
wavelength axis is a lookup table (``CTYPE3 = 'WAVE-TAB'``, the ``WCS-TABLE`` extension) that
``astropy.wcs`` reads only when it is handed the file's HDU list, which that reader does not do.
Here the WCS is always built with its table (:func:`cube_wcs`), so the spectral axis of a multi
cube is its table's wavelengths, exactly, and slicing keeps it. The default reader also keeps
DO_NOT_USE voxels; both paths here mask them (and NaN).

Needs the optional package ``spectral-cube`` (``pip install mrsdask[spectral]``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from mrsdask.datamodel.dq import DO_NOT_USE
from mrsdask.errors import ParameterError

#: The format name registered with ``SpectralCube.read``.
FORMAT = "mrsdask-s3d"
#: The extension and column that a ``WAVE-TAB`` axis points to (``PS3_0``, ``PS3_1``).
TABLE_EXTENSION, TABLE_COLUMN = "WCS-TABLE", "wavelength"


def _spectral_cube_classes():
    try:
        from spectral_cube import DaskSpectralCube, SpectralCube
        from spectral_cube.masks import BooleanArrayMask
    except ImportError as exc:
        raise ImportError("the spectral-cube bridge needs the optional package spectral-cube: "
                          "pip install 'mrsdask[spectral]' (or pip install spectral-cube)") from exc
    return SpectralCube, DaskSpectralCube, BooleanArrayMask


def is_linear(wavelength: np.ndarray, cdelt3: float = 0.0) -> bool:
    """True when the wavelengths are evenly spaced (a ``WAVE`` axis); False for a table."""
    lam = np.asarray(wavelength, dtype=np.float64)
    if lam.size < 2:
        return cdelt3 > 0
    step = lam[1] - lam[0]
    return bool(step > 0 and np.allclose(np.diff(lam), step, rtol=1e-6, atol=0))


def cube_wcs(header, wavelength: np.ndarray, linear: bool):
    """The 3-D ``astropy.wcs.WCS`` of a cube whose planes are at ``wavelength`` (µm).

    Parameters
    ----------
    header : astropy.io.fits.Header
        The cube's celestial WCS keywords (``CRPIX1/2`` already those of the first spaxel kept).
    wavelength : numpy.ndarray
        The wavelength (µm) of each plane, first to last.
    linear : bool
        A ``WAVE`` axis from the first wavelength and the step; else a ``WAVE-TAB`` axis whose
        table (an in-memory ``WCS-TABLE`` extension) holds ``wavelength``.

    Returns
    -------
    astropy.wcs.WCS
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    header = header.copy()
    lam = np.asarray(wavelength, dtype=np.float64)
    header["CUNIT3"] = "um"
    if linear:
        header["CTYPE3"] = "WAVE"
        header["CRVAL3"], header["CRPIX3"] = float(lam[0]), 1.0
        header["CDELT3"] = float(lam[1] - lam[0]) if lam.size > 1 else float(header.get("CDELT3", 1.0))
        for key in ("PS3_0", "PS3_1"):
            header.remove(key, ignore_missing=True)
        return WCS(header)
    header["CTYPE3"] = "WAVE-TAB"
    header["PS3_0"], header["PS3_1"] = TABLE_EXTENSION, TABLE_COLUMN
    header["CRVAL3"] = header["CRPIX3"] = header["CDELT3"] = 1.0
    column = fits.Column(name=TABLE_COLUMN, format=f"{lam.size}D", dim=f"(1,{lam.size})", unit="um",
                         array=lam.reshape(1, lam.size, 1))
    table = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([column], name=TABLE_EXTENSION)])
    return WCS(header, fobj=table)


def to_spectral_cube(ds: xr.Dataset, celestial_wcs=None):
    """A cube Dataset's SCI as a ``spectral_cube`` cube, NaN and DO_NOT_USE voxels masked.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube following :mod:`mrsdask.datamodel.cube` (a store's, :func:`mrsdask.io.s3d.open_s3d`'s,
        or a cut-out of either along any axis).
    celestial_wcs : astropy.wcs.WCS, optional
        The 2-D WCS of the whole cube's grid (default from the ``wcs_header`` attribute).

    Returns
    -------
    spectral_cube.SpectralCube or spectral_cube.DaskSpectralCube
        In MJy/sr; dask-backed when ``ds`` is.
    """
    from astropy.io import fits

    from mrsdask.datamodel import cube as cmodel
    from mrsdask.query import spatial

    SpectralCube, DaskSpectralCube, BooleanArrayMask = _spectral_cube_classes()
    if ds.sizes.get("wavelength", 0) < 1:
        raise ParameterError("to_spectral_cube: the cube has no wavelength plane")
    celestial_wcs = celestial_wcs or cmodel.celestial_wcs(ds.attrs)
    header = fits.Header.fromstring(ds.attrs["wcs_header"], sep="\n")
    ox, oy = spatial.grid_offset(ds, celestial_wcs)
    header["CRPIX1"], header["CRPIX2"] = header["CRPIX1"] - ox, header["CRPIX2"] - oy
    lam = np.asarray(ds["wavelength"].values, dtype=np.float64)
    linear = ds.attrs.get("wavelength_axis", "linear") == "linear" and is_linear(lam, float(ds.attrs.get("cdelt3") or 0))
    wcs = cube_wcs(header, lam, linear)
    sci = ds["sci"]
    good = (np.isfinite(sci) & ((ds["dq"] & DO_NOT_USE) == 0)).data
    meta = {"BUNIT": "MJy / sr"}
    if hasattr(sci.data, "dask"):
        return DaskSpectralCube(data=sci.data, wcs=wcs, mask=BooleanArrayMask(good, wcs), meta=meta)
    return SpectralCube(data=np.asarray(sci.values), wcs=wcs, mask=BooleanArrayMask(good, wcs), meta=meta)


def read_s3d(filename, use_dask: bool = False, target_cls=None, **kwargs):
    """An ``s3d`` file (band, channel or multi) as a ``SpectralCube``: the ``"mrsdask-s3d"`` reader.

    Parameters
    ----------
    filename : str, path-like or file object
        A local ``*_s3d.fits`` written by the official ``CubeBuildStep`` or ``mrsdask export``
        (a file object opened on it: its ``name``).
    use_dask : bool
        A ``DaskSpectralCube`` reading blocks of planes on demand; default a ``SpectralCube``.
    target_cls, **kwargs
        What ``SpectralCube.read`` passes on (e.g. ``hdu``); the SCI extension is always read.

    Returns
    -------
    spectral_cube.SpectralCube or spectral_cube.DaskSpectralCube
    """
    from mrsdask.io.s3d import open_s3d

    path = getattr(filename, "name", filename)  # astropy's registry may hand over the file it opened
    cube = open_s3d(str(path))
    if not use_dask:
        cube = cube.load()
    return to_spectral_cube(cube)


def is_tabular_s3d(path) -> bool:
    """True for a FITS file whose SCI extension is a cube with a ``WAVE-TAB`` axis (a multi s3d)."""
    from astropy.io import fits

    try:
        header = fits.getheader(str(path), "SCI")
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return header.get("NAXIS") == 3 and str(header.get("CTYPE3", "")).startswith("WAVE-TAB")


def register() -> None:
    """Register :func:`read_s3d` with ``SpectralCube.read`` (idempotent).

    As the format ``"mrsdask-s3d"`` for any s3d, and found by itself for a multi (``WAVE-TAB``)
    s3d: ``SpectralCube.read(path)`` then reads it here, and spectral-cube's own ``fits``
    reader, which cannot read such a file, no longer claims it. Nothing else changes.
    """
    from astropy.io import registry

    _spectral_cube_classes()  # a clear message when spectral-cube is missing
    from spectral_cube.io.fits import is_fits
    from spectral_cube.spectral_cube import BaseSpectralCube  # the class SpectralCube.read dispatches on

    if FORMAT in registry.get_formats(BaseSpectralCube, "Read")["Format"]:
        return

    def tabular(origin, filepath, fileobj, *args, **kwargs) -> bool:
        return origin == "read" and filepath is not None and is_fits(origin, filepath, fileobj, *args, **kwargs) \
            and is_tabular_s3d(filepath)

    def fits_but_not_tabular(origin, filepath, fileobj, *args, **kwargs) -> bool:
        return is_fits(origin, filepath, fileobj, *args, **kwargs) and not tabular(origin, filepath, fileobj)

    registry.register_reader(FORMAT, BaseSpectralCube, read_s3d)
    registry.register_identifier(FORMAT, BaseSpectralCube, tabular)
    registry.register_identifier("fits", BaseSpectralCube, fits_but_not_tabular, force=True)


register()
