"""Export zarr cubes as official ``s3d`` FITS files, plane by plane.

The file has the layout of the pipeline's ``IFUCubeModel`` product: a primary header with the
instrument and target keywords, ``SCI``, ``ERR``, ``DQ`` and ``WMAP`` image extensions carrying
the 3-D WCS (CTYPE3 = WAVE with CRVAL3/CDELT3/CRPIX3 for a linear axis, WAVE-TAB with a
``WCS-TABLE`` extension for a tabular one), and the ``WCS-TABLE`` binary table that the
pipeline always writes, and the ``ASDF`` extension holding the cube's gwcs (``meta.wcs``),
made as the official ``cube_build`` makes it, so that ``IFUCubeModel(path).meta.wcs`` and the
pipeline steps that use it (``extract_1d``…) work on these files. Each image is streamed to
disk one wavelength plane at a time, so a cube larger than memory exports in bounded memory.
The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator

import numpy as np
import xarray as xr
from astropy.io import fits

# cube_asdf_bytes: its home was here (now beside the gwcs that the writer process makes).
from mrsdask.cube.gwcs_document import cube_asdf_bytes, gwcs_from_header  # noqa: F401
from mrsdask.cube.reader import output_prefix  # noqa: F401  (its home was here)
from mrsdask.datamodel import cube as cmodel
from mrsdask.io import outputs
from mrsdask.io.fits_data import fits_image_data
from mrsdask.provenance import fits_cards


def _primary_header(ds: xr.Dataset) -> fits.Header:
    a = ds.attrs
    h = fits.Header()
    h["DATAMODL"] = "IFUCubeModel"
    h["TELESCOP"] = "JWST"
    h["INSTRUME"] = "MIRI"
    h["EXP_TYPE"] = "MIR_MRS"
    h["DETECTOR"] = "MULTIPLE" if any(c in a["channel"] for c in "12") and any(c in a["channel"] for c in "34") else (
        "MIRIFUSHORT" if a["channel"][0] in "12" else "MIRIFULONG")
    h["CHANNEL"] = a["channel"]
    h["BAND"] = a["band"]
    h["SRCTYPE"] = a.get("source_type", "EXTENDED")
    if np.isfinite(a.get("targ_ra", np.nan)):
        h["TARG_RA"] = a["targ_ra"]
        h["TARG_DEC"] = a["targ_dec"]
    for key in ("mu_ra", "mu_dec", "expmid"):  # the target's proper motion and the exposures' mid-time
        if np.isfinite(float(a.get(key, np.nan))):
            h[key.upper()] = float(a[key])
    if a.get("mu_epoch"):
        h["MU_EPOCH"] = str(a["mu_epoch"])
    h["FILENAME"] = ""
    h["S_IFUCUB"] = "COMPLETE"
    h["ORIGIN"] = "mrsdask"
    for key, value, comment in fits_cards():  # CAL_VER, DATE: this file, now
        if key == "HISTORY":
            h.add_history(value)
        else:
            h[key] = (value, comment)
    built = a.get("mrsdask_provenance") or {}
    if built:  # the cube's own computation, which may be older than this file
        versions = built.get("software", {})
        h.add_history(f"cube built {built.get('date', '')} by mrsdask {versions.get('mrsdask', '')}"
                      f" (jwst {versions.get('jwst', '')}, dask {versions.get('dask', '')})")
    if a.get("mrsdask_request"):
        h.add_history(f"cube parameters: {a['mrsdask_request']}")
    return h


def image_header(ds: xr.Dataset, name: str, bunit: str | None) -> fits.Header:
    """The cards of cube ``ds``'s s3d image extension ``name`` (its WCS, units, weighting, S_REGION)."""
    h = fits.Header.fromstring(ds.attrs["wcs_header"], sep="\n")
    h["EXTNAME"] = name
    if bunit:
        h["BUNIT"] = bunit
    if name == "SCI":
        h["DISPAXIS"] = 2  # MRS dispersion runs along detector rows; cubes inherit it (extract_1d reads it)
        h["PIXAR_A2"] = ds.attrs["pixelarea_arcsecsq"]
        h["PIXAR_SR"] = ds.attrs["pixelarea_steradians"]
        h["WEIGHTNG"] = ds.attrs["weighting"]
        h["ROI_SPAT"] = ds.attrs.get("roi_spatial", 0.0)
        h["ROI_WAVE"] = ds.attrs.get("roi_wave", 0.0)
        h["WTPOWER"] = ds.attrs.get("weight_power", 0.0)
        h["S_REGION"] = _s_region(ds)
    return h


def _s_region(ds: xr.Dataset) -> str:
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    ra, dec = cmodel.pixel_to_sky(ds.attrs, [-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
    return "POLYGON ICRS " + " ".join(f"{r:.9f} {d:.9f}" for r, d in zip(ra, dec))


#: Bytes of a FITS block: headers and data parts are whole blocks.
FITS_BLOCK = 2880
IMAGES = (("SCI", "sci", "MJy/sr", np.float32), ("ERR", "err", "MJy/sr", np.float32),
          ("DQ", "dq", None, np.uint32), ("WMAP", "wmap", None, np.float32))
"""The s3d image extensions in file order: (EXTNAME, cube variable, BUNIT, dtype of the values)."""


def image_extension_header(header: fits.Header, shape: tuple[int, int, int], dtype) -> fits.Header:
    """The full header of an s3d image extension of ``shape`` (nz, ny, nx) holding ``dtype`` values:
    the structural keywords (uint32 as int32 with BZERO = 2**31), then ``header``'s cards."""
    nz, ny, nx = shape
    full = fits.Header()
    full["XTENSION"] = "IMAGE"
    full["BITPIX"] = {np.dtype(np.float32): -32, np.dtype(np.uint32): 32}[np.dtype(dtype)]
    full["NAXIS"] = 3
    full["NAXIS1"], full["NAXIS2"], full["NAXIS3"] = nx, ny, nz
    full["PCOUNT"] = 0
    full["GCOUNT"] = 1
    if np.dtype(dtype) == np.uint32:
        full["BSCALE"] = 1
        full["BZERO"] = 2**31
    full.extend(header, unique=True)
    return full


def _stream_image(path: str, header: fits.Header, data: xr.DataArray, dtype) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stream = fits.StreamingHDU(path, image_extension_header(header, data.shape, dtype))
    stored = data.encoding.get("chunks")  # the store's chunks, when opened without Dask
    step = max(1, int(data.chunks[0][0]) if data.chunks else int(stored[0]) if stored else 64)
    for block in _fits_blocks(data, dtype, step):
        stream.write(block)
    stream.close()


def _fits_blocks(data: xr.DataArray, dtype, step: int) -> Iterator[np.ndarray]:
    """The planes of ``data`` in blocks of ``step``, as big-endian FITS data, in order.

    The next block is read (decompressed) and converted in another thread while the caller
    writes this one: both mostly run outside the GIL. At most two blocks are in memory.
    """
    from concurrent.futures import ThreadPoolExecutor

    def load(z0: int) -> np.ndarray:
        return fits_image_data(np.asarray(data[z0:z0 + step].values), dtype, inplace=True)

    nz = data.shape[0]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(load, 0)
        for z0 in range(step, nz + step, step):
            block = pending.result()
            if z0 < nz:
                pending = pool.submit(load, z0)
            yield block


def cube_gwcs(ds: xr.Dataset, wavelength: np.ndarray | None = None):
    """The cube's gwcs, made the way the official ``cube_build`` makes it.

    ``jwst.assign_wcs.pointing.create_fitswcs`` on the cube's FITS WCS keywords (and its
    wavelength table for a WAVE-TAB axis), with the bounding box of the cube's voxels: the
    pipeline's ``IFUCubeData.setup_final_ifucube_model``. Only metadata is read.

    ``create_fitswcs`` takes a data model; an empty ``IFUCubeModel`` costs ~5 CPU-s the first
    time in a process (its schemas are loaded), so its body runs here on the keyword dict that
    ``wcsinfo_from_model`` would read from such a model
    (:func:`mrsdask.cube.gwcs_document._model_wcsinfo`), with the
    same jwst functions: the gwcs is the same.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube following :mod:`mrsdask.datamodel.cube`.
    wavelength : numpy.ndarray, optional
        The wavelength coordinate (µm), if already loaded.

    Returns
    -------
    gwcs.WCS
        From voxel indices (x, y, z; 0-based) to (RA, Dec) in degrees and wavelength in µm.
    """
    wave = ds["wavelength"].values if wavelength is None else wavelength
    return gwcs_from_header(ds.attrs["wcs_header"], (ds.sizes["wavelength"], ds.sizes["y"], ds.sizes["x"]), wave)


def write_primary(tmp: str, ds: xr.Dataset, path: str) -> None:
    """Start the s3d file ``tmp`` (to become ``path``) with the primary HDU of cube ``ds``."""
    primary = _primary_header(ds)
    primary["FILENAME"] = os.path.basename(str(path))
    fits.PrimaryHDU(header=primary).writeto(tmp)


def append_tables(tmp: str, wavelength: np.ndarray, document: bytes) -> None:
    """End an s3d file after its images: the ``WCS-TABLE`` of ``wavelength`` (float32, µm) and
    the ``ASDF`` extension holding ``document`` (:func:`cube_asdf_bytes`).

    Both are one-row tables of one column, written as astropy's ``BinTableHDU`` writes them
    (the same bytes) without building one: that imports ``astropy.table`` (0.18 s of a build
    that needs it nowhere else).
    """
    wave = np.ascontiguousarray(wavelength, dtype=">f4")
    with open(tmp, "ab") as fobj:
        if fobj.tell() % FITS_BLOCK:
            raise ValueError(f"{tmp}: {fobj.tell()} bytes, not whole FITS blocks: cannot append HDUs")
        fobj.write(_one_cell_table("WCS-TABLE", "wavelength", f"{wave.size}E", wave.tobytes(),
                                   tdim=f"(1,{wave.size})"))  # no TUNIT1, as the pipeline's
        fobj.write(_one_cell_table("ASDF", "ASDF_METADATA", f"{len(document)}B", bytes(document)))


def _one_cell_table(extname: str, ttype: str, tform: str, data: bytes, tdim: str | None = None) -> bytes:
    """A binary-table HDU of one row and one column holding ``data`` (big-endian bytes already)."""
    header = fits.Header()
    header["XTENSION"] = ("BINTABLE", "binary table extension")
    header["BITPIX"] = (8, "array data type")
    header["NAXIS"] = (2, "number of array dimensions")
    header["NAXIS1"] = (len(data), "length of dimension 1")
    header["NAXIS2"] = (1, "length of dimension 2")
    header["PCOUNT"] = (0, "number of group parameters")
    header["GCOUNT"] = (1, "number of groups")
    header["TFIELDS"] = (1, "number of table fields")
    header["TTYPE1"] = ttype
    header["TFORM1"] = tform
    if tdim is not None:
        header["TDIM1"] = tdim
    header["EXTNAME"] = (extname, "extension name")
    padding = b"\0" * (-len(data) % FITS_BLOCK)
    return header.tostring(padding=True).encode("ascii") + data + padding


def write_s3d(ds: xr.Dataset, path: str) -> str:
    """Write a cube Dataset (from :func:`mrsdask.cube.builder.open_cube`) as an ``s3d`` FITS file.

    Parameters
    ----------
    ds : xarray.Dataset
        A complete cube following :mod:`mrsdask.datamodel.cube` (lazy is fine).
    path : str
        Output path or ``s3://`` URL (``*_s3d.fits``); written under a temporary name and moved
        into place when complete (:func:`mrsdask.io.outputs.staged_file`).

    Returns
    -------
    str
        The path written.
    """
    from concurrent.futures import ThreadPoolExecutor

    with outputs.staged_file(path) as tmp, ThreadPoolExecutor(1) as pool:
        # The image streaming below mostly runs outside the GIL (decompression, byte swapping,
        # writes): the ASDF document is made beside it.
        document, wave = submit_asdf_document(pool, ds)
        write_primary(tmp, ds, path)
        for extname, variable, bunit, dtype in IMAGES:
            _stream_image(tmp, image_header(ds, extname, bunit), ds[variable], dtype)
        append_tables(tmp, wave, document.result())
    return path


def submit_asdf_document(pool, ds: xr.Dataset):
    """Start making cube ``ds``'s ASDF document (:func:`cube_asdf_bytes`) in ``pool``: in the
    command's writer process when it has one (:mod:`mrsdask.io.writer_process`), as its gwcs and
    ASDF form are Python work (~2.5 CPU-s of imports and asdf extensions the first time in a
    process). Returns the future and the cube's wavelengths as the WCS-TABLE holds them (float32)."""
    from mrsdask.io import writer_process

    wave = np.asarray(ds["wavelength"].values, dtype=np.float32)
    shape = (ds.sizes["wavelength"], ds.sizes["y"], ds.sizes["x"])
    return pool.submit(writer_process.run, "cube_asdf_bytes", ds.attrs["wcs_header"], shape, wave), wave


def s3d_path(folder: str, prefix: str, name: str) -> str:
    """Official-style file name of cube ``name``: ``{prefix}_{name}_s3d.fits`` in ``folder``."""
    return outputs.join(folder, f"{prefix}_{name}_s3d.fits")


def check_s3d_outputs(folder: str, prefix: str, names: list[str], overwrite: bool = False) -> list[str]:
    """Check, before any work, that the ``s3d`` files of ``names`` may be written into ``folder``.

    The folder must be writable and not a file; an existing file of one of the names is
    replaced only if mrsdask wrote it (``ORIGIN = 'mrsdask'``) or with ``overwrite``.

    Returns
    -------
    list of str
        The output paths.

    Raises
    ------
    mrsdask.errors.OutputError
    """
    outputs.check_output_folder(folder, "s3d folder")
    files = [s3d_path(folder, prefix, name) for name in names]
    outputs.check_output_files(files, overwrite, own=outputs.is_mrsdask_fits)
    return files


def export_s3d(store: str, names: list[str], folder: str, prefix: str | None = None, announce=print,
               overwrite: bool = False) -> list[str]:
    """Write cubes of a store as ``s3d`` FITS files, one per cube.

    Parameters
    ----------
    store : str
        Cube store (path or URL).
    names : list of str
        Cube groups to export; each must be complete.
    folder : str
        Output folder (created if needed) or ``s3://`` prefix.
    prefix : str, optional
        Product name that starts each file name (default the cubes' own: :func:`output_prefix`).
    announce : callable
        Called with one line per file written.
    overwrite : bool
        Replace existing files that mrsdask did not write (see :func:`check_s3d_outputs`).

    Returns
    -------
    list of str
        The files written.
    """
    from mrsdask.cube.reader import open_cube

    files = check_s3d_outputs(folder, output_prefix(store, names, prefix), names, overwrite)
    outputs.make_folder(folder)
    written = []
    for name, path in zip(names, files):
        write_s3d(open_cube(store, name, dask=False), path)  # streamed block by block: no Dask needed
        announce(f"  wrote {path}")
        written.append(path)
    return written
