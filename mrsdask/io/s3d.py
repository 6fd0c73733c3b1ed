"""Official ``s3d`` cube files (``IFUCubeModel`` FITS) opened as mrsdask cube Datasets.

:func:`open_s3d` gives a cube from the official ``CubeBuildStep`` (or any ``s3d`` file, a
MAST download included) the layout of :mod:`mrsdask.datamodel.cube`, so that extraction and the
``.mrs`` queries work on it as on a cube of a store. The planes are read lazily (one
Dask chunk per block of planes, each read alone from the file); the wavelengths are the file's gwcs evaluated at the
planes, as the official ``extract_1d`` evaluates them.
"""

from __future__ import annotations


import dask.array as da
import numpy as np
import xarray as xr
from astropy.io import fits

from mrsdask.datamodel import cube as cmodel
from mrsdask.errors import InputError
from mrsdask.io import paths
from mrsdask.io.paths import is_s3d_path  # noqa: F401  (its home was here)
from mrsdask.io.zarr_store import COMPLETE_ATTR

#: Planes per Dask chunk of an opened s3d file.
PLANES_PER_CHUNK = 256
#: The WCS keywords of an s3d SCI header that make the cube's ``wcs_header``.
_WCS_KEYS = ("WCSAXES", "CRPIX1", "CRPIX2", "CRPIX3", "CRVAL1", "CRVAL2", "CRVAL3", "CDELT1", "CDELT2", "CDELT3",
             "CTYPE1", "CTYPE2", "CTYPE3", "CUNIT1", "CUNIT2", "CUNIT3", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
             "PC3_3", "RADESYS", "PS3_0", "PS3_1")


def _plane_wavelengths(path: str, sci: fits.Header, nz: int) -> np.ndarray:
    """Wavelengths (µm) of the planes: the file's gwcs at the central spaxel, else its FITS axis."""
    from stdatamodels.jwst.datamodels import IFUCubeModel

    try:
        with IFUCubeModel(path) as model:
            wcs = model.meta.wcs
            if wcs is not None:
                _, _, lam = wcs(np.full(nz, sci["NAXIS1"] // 2), np.full(nz, sci["NAXIS2"] // 2), np.arange(nz))
                lam = np.asarray(lam, dtype=np.float64)
                if np.isfinite(lam).all():
                    return lam
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # no readable gwcs: the FITS spectral axis below
    if str(sci.get("CTYPE3", "")).startswith("WAVE-TAB"):
        with fits.open(path) as hdul:
            return np.asarray(hdul["WCS-TABLE"].data["wavelength"][0], dtype=np.float64)[:nz]
    k = np.arange(nz, dtype=np.float64)
    return float(sci["CRVAL3"]) + (k + 1.0 - float(sci.get("CRPIX3", 1.0))) * float(sci["CDELT3"])


def _lazy(path: str, extname: str, dtype, shape: tuple[int, ...]) -> da.Array:
    def read(block_id=None):  # one block of planes (astropy reads only that section, scaled if BZERO)
        z0 = block_id[0] * PLANES_PER_CHUNK
        with fits.open(path) as hdul:
            return np.asarray(hdul[extname].section[z0:z0 + PLANES_PER_CHUNK], dtype=dtype)

    chunks = ((PLANES_PER_CHUNK,) * (shape[0] // PLANES_PER_CHUNK)
              + ((shape[0] % PLANES_PER_CHUNK,) if shape[0] % PLANES_PER_CHUNK else ()), (shape[1],), (shape[2],))
    return da.map_blocks(read, chunks=chunks, dtype=dtype, name=f"s3d-{extname.lower()}-{paths.stamp(path)}-{path}")


def open_s3d(path: str) -> xr.Dataset:
    """Open an official ``s3d`` cube file as a lazy cube Dataset (:mod:`mrsdask.datamodel.cube`).

    Parameters
    ----------
    path : str
        A local ``*_s3d.fits`` file written by the official ``CubeBuildStep`` (or by
        ``mrsdask export``).

    Returns
    -------
    xarray.Dataset
        ``sci``, ``err``, ``dq``, ``wmap`` (lazy), ``wavelength``, ``ra``, ``dec`` and the
        attributes extraction reads: the WCS, channel, band, source type, target position and
        proper motion, spaxel area; ``inputs`` names the file.

    Raises
    ------
    InputError
        The file is missing, not a cube, or lacks the spatial WCS.
    """
    path = str(path)
    if paths.is_remote(path):
        raise InputError(f"{path}: s3d files are read from a local path; copy it here first")
    try:
        with fits.open(path) as hdul:
            primary = hdul[0].header.copy()
            sci = hdul["SCI"].header.copy()
            names = {h.name for h in hdul}
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, KeyError) as exc:
        raise InputError(f"{path}: not an s3d cube file (no SCI extension or not FITS: {exc})") from exc
    if sci.get("NAXIS") != 3 or not all(k in sci for k in ("CRVAL1", "CRVAL2", "CDELT1", "CDELT2")):
        raise InputError(f"{path}: SCI is not a cube with a celestial WCS (NAXIS = {sci.get('NAXIS')})")
    bunit = str(sci.get("BUNIT", "MJy/sr")).replace(" ", "")
    if bunit != "MJy/sr":
        raise InputError(f"{path}: SCI is in {sci['BUNIT']!r}; extraction reads surface brightness cubes in MJy/sr")
    nx, ny, nz = int(sci["NAXIS1"]), int(sci["NAXIS2"]), int(sci["NAXIS3"])
    header = fits.Header()
    for key in _WCS_KEYS:
        if key in sci:
            header[key] = sci[key]
    header["WCSAXES"] = 3
    pc = [float(sci.get(k, d)) for k, d in (("PC1_1", 1.0), ("PC1_2", 0.0), ("PC2_1", 0.0), ("PC2_2", 1.0))]
    linear = not str(sci.get("CTYPE3", "WAVE")).startswith("WAVE-TAB")
    channel = str(primary.get("CHANNEL", "")).strip()
    band = str(primary.get("BAND", "")).strip().upper()
    letters = {"SHORT": "A", "MEDIUM": "B", "LONG": "C"}
    bands = [f"{c}{letters[band]}" for c in channel] if band in letters and channel.isdigit() else []
    attrs = {
        "convention": cmodel.CONVENTION,
        "wcs_header": header.tostring(sep="\n"),
        "crval1": float(sci["CRVAL1"]), "crval2": float(sci["CRVAL2"]),
        "crpix1": float(sci.get("CRPIX1", 1.0)), "crpix2": float(sci.get("CRPIX2", 1.0)),
        "cdelt1": float(sci["CDELT1"]), "cdelt2": float(sci["CDELT2"]), "pc": pc,
        "wavelength_axis": "linear" if linear else "tabular",
        "cdelt3": float(sci.get("CDELT3", 0.0)) if linear else 0.0,
        "weighting": str(sci.get("WEIGHTNG", "")).lower(),
        "roi_spatial": float(sci.get("ROI_SPAT", 0.0)), "roi_wave": float(sci.get("ROI_WAVE", 0.0)),
        "weight_power": float(sci.get("WTPOWER", 0.0)),
        "channel": channel, "band": band, "bands": bands,
        "source_type": str(primary.get("SRCTYPE", "") or "EXTENDED").strip().upper(),
        "targ_ra": float(primary.get("TARG_RA", np.nan)), "targ_dec": float(primary.get("TARG_DEC", np.nan)),
        "mu_ra": float(primary.get("MU_RA", np.nan)), "mu_dec": float(primary.get("MU_DEC", np.nan)),
        "mu_epoch": str(primary.get("MU_EPOCH", "") or ""), "expmid": float(primary.get("EXPMID", np.nan)),
        "pixelarea_arcsecsq": float(sci.get("PIXAR_A2", (float(sci["CDELT1"]) * 3600) ** 2)),
        "pixelarea_steradians": float(sci.get("PIXAR_SR", (float(sci["CDELT1"]) * 3600) ** 2 * cmodel.ARCSEC2_TO_SR)),
        "inputs": [str(primary.get("FILENAME", "") or path)],
        "units": "MJy / sr",
        "s3d_file": path,
        COMPLETE_ATTR: True,
    }
    shape = (nz, ny, nx)
    data = {"sci": _lazy(path, "SCI", np.float32, shape)}
    data["err"] = _lazy(path, "ERR", np.float32, shape) if "ERR" in names else da.full(shape, np.nan, dtype=np.float32)
    data["dq"] = _lazy(path, "DQ", np.uint32, shape) if "DQ" in names else da.zeros(shape, dtype=np.uint32)
    data["wmap"] = _lazy(path, "WMAP", np.float32, shape) if "WMAP" in names else da.zeros(shape, dtype=np.float32)
    ra, dec = cmodel.spaxel_sky_coords(attrs, ny, nx)
    ds = xr.Dataset(
        {name: (("wavelength", "y", "x"), array) for name, array in data.items()},
        coords={"wavelength": ("wavelength", _plane_wavelengths(path, sci, nz), {"units": "um"}),
                "ra": (("y", "x"), ra, {"units": "deg"}), "dec": (("y", "x"), dec, {"units": "deg"})},
        attrs=attrs,
    )
    for name in ("sci", "err"):
        ds[name].attrs["units"] = "MJy / sr"
    return ds
