"""Detector stacks: open level-2 FITS lazily, write and read zarr detector stores, export FITS.

* :func:`open_cal` — a lazy detector Dataset from cal/rate files, globs or associations; pixel
  planes are read and per-pixel geometry computed from each file's own WCS, exposure by exposure,
  only when computed.
* :func:`write_detector_store` — ingest to zarr (local or ``s3://``) in parallel; the store is
  marked complete only when every chunk is written.
* :func:`open_detector_store` — open a store lazily (``xarray.open_zarr``) and validate it.
* :func:`write_cal_fits` — one exposure of a store back to an official ``cal`` FITS file.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import warnings
import zlib

import dask
import dask.array as da
from dask._task_spec import Task, TaskRef  # dask's task spec (its documented way to write graphs)
from dask.base import tokenize
import numpy as np
import xarray as xr

from mrsdask.datamodel import detector as dmodel
from mrsdask.errors import IncompleteStoreError, InputError
from mrsdask.instrument.bands import CHANNEL_INFO
from mrsdask.instrument.frames import channel_frame, channel_mask, slice_map_for
from mrsdask.instrument.geometry import DetectorFrameGeometry, detector_frame_geometry, sky_geometry
from mrsdask.io import calfits, outputs, paths
from mrsdask.io.asdf_tree import wcs_from_asdf_bytes
from mrsdask.io.inputs import inputs_product_name, resolve_inputs
from mrsdask.io.zarr_store import COMPLETE_ATTR, consolidate, open_group, zarr_store
from mrsdask.provenance import provenance

log = logging.getLogger(__name__)

NY, NX = calfits.DETECTOR_SHAPE
DEFAULT_CHUNK_ROWS = 256
PIXELS_TOKEN_ATTR = "mrsdask_pixels_token"
#: Name of the graph layers of :func:`open_cal`'s variables (row chunks of per-exposure tasks).
EXPOSURE_ROWS = "exposure_rows"


# --------------------------------------------------------------------------- geometry blocks
@functools.lru_cache(maxsize=8)
def _wcs_parts(path: str):
    return calfits.read_wcs_parts(path)


def geometry_rows(path: str, y0: int, y1: int) -> dict[str, np.ndarray]:
    """Per-pixel geometry of detector rows ``y0:y1`` of a level-2 file, from its own WCS.

    The detector → α, β, λ part is shared by the exposures of a setting
    (:func:`mrsdask.instrument.frames.channel_frame`, evaluated once per process); only the
    exposure's pointing is evaluated here: the same numbers as evaluating the file's gwcs.

    Returns a dict with the :data:`~mrsdask.datamodel.detector.GEOMETRY_VARS` arrays, of
    shape ``(y1 - y0, 1032)`` (``(4, y1 - y0, 1032)`` for corners); NaN off-slice.
    """
    parts = _wcs_parts(path)
    shape = (y1 - y0, NX)
    out = {name: np.full(shape, np.nan) for name in ("ra", "dec", "wavelength", "dwavelength", "alpha", "beta")}
    out["corner_ra"] = np.full((4,) + shape, np.nan)
    out["corner_dec"] = np.full((4,) + shape, np.nan)
    smap = slice_map_for(parts)
    band = smap[y0:y1]
    for channel, info in CHANNEL_INFO.items():
        if not ((smap >= info.first_slice) & (smap <= info.last_slice)).any():
            continue
        cf = channel_frame(parts, channel)
        rows = (cf.ys >= y0) & (cf.ys < y1)
        frame = DetectorFrameGeometry(**{k: v[rows] for k, v in vars(cf.frame).items()})
        _put(out, cf.ys[rows] - y0, cf.xs[rows], frame, sky_geometry(parts.pointing, frame, cf.dbeta))
        # Slice pixels outside the channel's x range (none in the flight maps) are evaluated directly.
        extra = (band >= info.first_slice) & (band <= info.last_slice) & ~channel_mask(smap, info)[y0:y1]
        if extra.any():
            ey, ex = np.nonzero(extra)
            frame = detector_frame_geometry(parts.detector_to_alpha_beta, ex, ey + y0)
            _put(out, ey, ex, frame, sky_geometry(parts.pointing, frame, cf.dbeta))
    out["slice"] = band.copy()
    return out


def _put(out: dict, ys: np.ndarray, xs: np.ndarray, frame, geom) -> None:
    for name in ("ra", "dec", "wavelength", "dwavelength"):
        out[name][ys, xs] = getattr(geom, name)
    out["alpha"][ys, xs] = frame.alpha
    out["beta"][ys, xs] = frame.beta
    out["corner_ra"][:, ys, xs] = geom.corner_ra
    out["corner_dec"][:, ys, xs] = geom.corner_dec


def _planes(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return calfits.read_planes(path)


# --------------------------------------------------------------------------- open FITS lazily
def open_cal(inputs: list[str], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> xr.Dataset:
    """Open level-2 MRS files as a lazy detector Dataset.

    Parameters
    ----------
    inputs : list of str
        ``cal``/``rate`` FITS paths or URLs, globs, or official association JSON files.
    chunk_rows : int
        Rows per chunk of the variables (the geometry is computed per exposure, then cut).

    Returns
    -------
    xarray.Dataset
        Following :mod:`mrsdask.datamodel.detector`; nothing but headers is read yet.
    """
    members, stores = resolve_inputs(inputs)
    if stores:
        raise InputError(f"{stores[0]}: is a detector store; open it with open_detector_store")
    infos = [calfits.read_exposure_info(m.path, m.exptype) for m in members]
    ds = _dataset_from_infos(infos, chunk_rows)
    ds.attrs[dmodel.PRODUCT_ATTR] = inputs_product_name(inputs, members)
    return ds


def _dataset_from_infos(infos: list[calfits.ExposureInfo], chunk_rows: int) -> xr.Dataset:
    # One task per exposure reads its planes, one computes its geometry (a task per row chunk
    # needed the setting's detector-frame geometry (:func:`channel_frame`) in every chunk, and
    # with the exposures of several settings interleaved on a worker its cache kept missing);
    # the variables' row chunks are slices of their outputs (:func:`_exposure_stack`).
    token = tokenize([info.path for info in infos], chunk_rows)
    planes = [Task(f"planes-{info.path}", _planes, info.path) for info in infos]
    geometry = [Task(f"geometry_rows-{token}-{i}", geometry_rows, info.path, 0, NY) for i, info in enumerate(infos)]
    data_vars = {}
    for field, (name, dtype) in enumerate((("sci", np.float32), ("err", np.float32), ("dq", np.uint32))):
        data_vars[name] = (("exposure", "y", "x"), _exposure_stack(planes, field, dtype, chunk_rows, token))
    for name in dmodel.GEOMETRY_VARS:
        corner = name.startswith("corner_")
        dims = ("exposure", "corner", "y", "x") if corner else ("exposure", "y", "x")
        dtype = np.int16 if name == "slice" else np.float64
        data_vars[name] = (dims, _exposure_stack(geometry, name, dtype, chunk_rows, token, corner))
    coords = {}
    for name in dmodel.EXPOSURE_COORDS + dmodel.OPTIONAL_EXPOSURE_COORDS:
        if name == "setting":
            values = [i.setting for i in infos]
        else:
            values = [getattr(i, name) for i in infos]
        coords[name] = ("exposure", np.asarray(values))
    ds = xr.Dataset(data_vars, coords=coords)
    ds = dmodel.annotate(ds)
    ds.attrs["mrsdask_source"] = "fits"
    ds.attrs[PIXELS_TOKEN_ATTR] = pixels_token(ds)
    return ds


def _exposure_stack(parents: list[Task], field, dtype, chunk_rows: int, token: str, corner: bool = False) -> da.Array:
    """A lazy ``(exposure, [corner,] y, x)`` array: chunk (i, r) is rows r of ``field`` of the
    output of ``parents[i]`` (one task per exposure).

    The graph is written out directly: building it with ``from_delayed``, ``rechunk`` and
    ``concatenate`` per exposure and variable took ~7 ms per exposure (opening 24 files:
    0.36-0.51 s then, 0.20-0.29 s now). Its
    layer (``exposure_rows``) only selects rows (:data:`mrsdask.io.sources.SELECTION_LAYERS`).
    """
    name = f"{EXPOSURE_ROWS}-{tokenize(token, field, corner)}"
    rows = tuple(min(chunk_rows, NY - y0) for y0 in range(0, NY, chunk_rows))
    graph: dict = {task.key: task for task in parents}
    for i, parent in enumerate(parents):
        y0 = 0
        for r, n in enumerate(rows):
            key = (name, i, 0, r, 0) if corner else (name, i, r, 0)
            graph[key] = Task(key, _rows_of, TaskRef(parent.key), field, y0, y0 + n, corner)
            y0 += n
    chunks = ((1,) * len(parents),) + (((4,),) if corner else ()) + (rows, (NX,))
    return da.Array(graph, name, chunks, dtype=dtype)


def _rows_of(value, field, y0: int, y1: int, corner: bool) -> np.ndarray:
    """Rows ``y0:y1`` of ``value[field]`` (a view), with a leading exposure axis."""
    block = value[field]
    return (block[:, y0:y1] if corner else block[y0:y1])[None]


# --------------------------------------------------------------------------- zarr stores
def _wcs_asdf_bytes(path: str) -> bytes:
    """The file's ASDF extension as it is (its gwcs and metadata), zlib-compressed.

    Kept verbatim rather than converted to a gwcs and written again: that took ~8 s per
    exposure (reading ~1,200 models, writing them back), this takes ~0.1 s, and the bytes are
    what the official pipeline wrote. ``zlib`` shrinks the uncompressed blocks 60-fold.
    """
    return zlib.compress(calfits.read_asdf_extension(path), 6)


def wcs_from_bytes(data: bytes | str):
    """Deserialise the gwcs held in a detector store's ``wcs_asdf`` coordinate (bytes or base64 text).

    Two layouts are read: a cal file's zlib-compressed ASDF extension (``meta.wcs``, what
    :func:`write_detector_store` writes) and an ASDF file holding only ``wcs`` (stores written
    before 2026-12).
    """
    import asdf

    if isinstance(data, str):  # stores keep it as base64 text
        data = base64.b64decode(data)
    data = bytes(data)
    if not data.startswith(b"#ASDF"):
        return wcs_from_asdf_bytes("detector store", zlib.decompress(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with asdf.open(io.BytesIO(data), lazy_load=False, memmap=False) as af:
            return af["wcs"]


def write_detector_store(ds: xr.Dataset, store: str, overwrite: bool = False, progress: bool = False) -> str:
    """Write a detector Dataset to a zarr store, computing lazy planes and geometry.

    The per-exposure WCS (ASDF bytes) and FITS headers are embedded, so that the store is
    self-contained. The store's ``mrsdask_complete`` attribute is set only after every chunk
    is written; :func:`open_detector_store` refuses a store without it.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`open_cal`.
    store : str
        Local path or URL of the zarr store.
    overwrite : bool
        Replace an existing complete store. An unfinished detector store (an interrupted
        ingest: ``mrsdask_complete`` false) is written again without it, so that the same
        command resumes after an interruption.
    progress : bool
        Show a progress bar over the tasks (reading, geometry, corrections, writing).

    Raises
    ------
    InputError
        If a complete store (or another zarr store) is there and ``overwrite`` is false.
    mrsdask.errors.OutputError
        If the path cannot be written; the store is then left marked incomplete.
    """

    store = check_detector_output(store, overwrite)
    if not all(name in ds.coords for name in ("wcs_asdf", "primary_header", "sci_header")):
        # From FITS: embed each exposure's gwcs and headers (a store already carries them).
        sources = [str(p) for p in ds["path"].values]
        extras = dask.compute(
            *[dask.delayed(lambda p: (_wcs_asdf_bytes(p),) + calfits.read_headers(p))(p) for p in sources]
        )
        ds = ds.assign_coords(
            wcs_asdf=("exposure", np.asarray([e[0] for e in extras], dtype=object).astype(bytes)),
            primary_header=("exposure", np.asarray([e[1] for e in extras])),
            sci_header=("exposure", np.asarray([e[2] for e in extras])),
        )
    ds = _portable_text(ds.copy())
    for var in ds.variables.values():
        var.encoding = {}  # chunks and codecs of an input store do not carry over
    for key in ("mrsdask_store", "mrsdask_source", PIXELS_TOKEN_ATTR):
        ds.attrs.pop(key, None)
    ds.attrs[COMPLETE_ATTR] = False
    # What wrote this store; a store written from another keeps that one's record as "from".
    earlier = ds.attrs.get("mrsdask_provenance")
    ds.attrs["mrsdask_provenance"] = provenance(**({"from": earlier} if earlier else {}))
    target = zarr_store(store)
    from mrsdask.progress import compute_with_progress

    with outputs.writing(store, "the store is marked incomplete: run the same command again to write it"):
        compute_with_progress(ds.to_zarr(target, mode="w", consolidated=False, compute=False, zarr_format=3),
                              "writing the detector store", progress)
        open_group(store, mode="r+").attrs[COMPLETE_ATTR] = True
        consolidate(store)  # one read for xarray.open_zarr
    return store


def check_detector_output(store: str, overwrite: bool = False) -> str:
    """Check, before any work, that a detector store may be written at ``store``; the path.

    Refused: a path holding a file or a folder that is not a zarr store, a complete store
    without ``overwrite``, and a cube store (``mrsdask cube``) even with it: ``--overwrite``
    replaces a detector store, never a store of another kind. An unfinished detector store
    (an interrupted ingest) is written again (see :func:`write_detector_store`).

    Raises
    ------
    InputError, ParameterError
    """
    store = outputs.check_output_store(store)  # never overwrite a file or a folder that is not a zarr store
    from mrsdask.cube.store import store_kind

    if store_kind(store) == "cubes":
        raise InputError(f"{store}: is a cube store (from 'mrsdask cube'), not a detector store; "
                         "write the detector store to another path (-o)")
    if paths.exists(store.rstrip("/") + "/zarr.json") and not overwrite and not is_unfinished_detector_store(store):
        raise InputError(f"{store}: already exists; pass overwrite=True (--overwrite) to replace it")
    return store


def is_unfinished_detector_store(store: str) -> bool:
    """Whether ``store`` is a detector store whose writing was interrupted (not marked complete)."""
    import json

    try:
        meta = json.loads(paths.filesystem(store).cat_file(paths.fs_path(str(store).rstrip("/")) + "/zarr.json"))
    except (OSError, ValueError):
        return False
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    return attrs.get("convention") == dmodel.CONVENTION and attrs.get(COMPLETE_ATTR) is False


def _portable_text(ds: xr.Dataset) -> xr.Dataset:
    """Text as zarr v3 variable-length strings, the embedded ASDF bytes as base64 text.

    NumPy's fixed-width ``<U``/``S`` arrays would be stored with zarr-python's own
    fixed-length types, which have no zarr v3 specification (other zarr libraries may not
    read them); the ``string`` type has one.
    """
    for name in list(ds.variables):
        if ds[name].dtype.kind not in "USO" or ds[name].chunks is not None:
            continue
        values = ds[name].values
        if name == "wcs_asdf":
            text = [v if isinstance(v, str) else base64.b64encode(bytes(v)).decode("ascii") for v in values.ravel()]
            attrs = {**ds[name].attrs,
                     "encoding": "base64 of the zlib-compressed ASDF extension of the exposure's cal file"}
        elif values.dtype.kind == "U" or (values.dtype.kind == "O" and all(isinstance(v, str) for v in values.ravel())):
            text, attrs = [str(v) for v in values.ravel()], ds[name].attrs
        else:
            continue
        array = np.empty(values.shape, dtype=object)
        array.ravel()[:] = text
        ds[name] = ds[name].copy(data=array)
        ds[name].attrs = attrs
    return ds


def open_detector_inputs(inputs: list[str], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> xr.Dataset:
    """Open what a user passes, level-2 files or one detector store, as a lazy detector Dataset.

    Parameters
    ----------
    inputs : list of str
        ``cal``/``rate`` FITS paths or URLs, globs, association JSON files, or one detector
        store (``*.zarr``).
    chunk_rows : int
        Rows per chunk of FITS inputs.

    Raises
    ------
    InputError
        If files and stores are mixed, or several stores are given.
    """
    members, stores = resolve_inputs(inputs)
    if stores and members:
        raise InputError(f"{stores[0]}: give either FITS inputs or one detector store, not both")
    if len(stores) > 1:
        raise InputError(f"{', '.join(stores)}: give one detector store (ingest all exposures into one store)")
    return open_detector_store(stores[0]) if stores else open_cal(inputs, chunk_rows)


def open_detector_store(store: str) -> xr.Dataset:
    """Open a detector store lazily and check it.

    Raises
    ------
    InputError
        If the store does not exist or does not follow the conventions.
    IncompleteStoreError
        If the store was not finished (an interrupted ingest).
    """
    if not paths.exists(str(store).rstrip("/") + "/zarr.json"):
        raise InputError(f"{store}: no zarr store there; create one with 'mrsdask ingest'")
    try:
        ds = xr.open_zarr(zarr_store(store), consolidated=False, zarr_format=3)
    except (ValueError, KeyError, TypeError):
        # Find the damaged metadata file only when opening fails (tasks open stores too).
        paths.check_store_metadata(store, "create one with 'mrsdask ingest'")
        raise
    dmodel.validate_detector_dataset(ds, str(store))
    if not ds.attrs.get(COMPLETE_ATTR, False):
        raise IncompleteStoreError(
            f"{store}: the store is incomplete (an interrupted ingest); run 'mrsdask ingest' again"
        )
    # Tasks reach the exposures through the store itself (not through the client's arrays).
    ds.attrs["mrsdask_store"] = str(store)
    ds.attrs[PIXELS_TOKEN_ATTR] = pixels_token(ds)
    return ds


def pixels_token(ds: xr.Dataset) -> str:
    """Identity of the Dataset's pixel arrays, planes and geometry (their dask names): changes if they are altered.

    Kept in ``attrs`` when a Dataset is opened; while it still matches, tasks may read the
    exposures from the files or the store (:func:`mrsdask.io.sources.exposure_sources`), else
    they compute them from the Dataset's own arrays.
    """
    return "|".join(str(getattr(ds[name].data, "name", "")) if name in ds.variables else "-"
                    for name in dmodel.PLANES + dmodel.GEOMETRY_VARS)


def write_cal_fits(ds: xr.Dataset, index: int, path: str) -> str:
    """Write exposure ``index`` of a detector store as an official level-2 ``cal`` file.

    The file has the original headers, SCI/ERR/DQ from the store and the original gwcs,
    so that ``stdatamodels`` and the official steps open it as an ``IFUImageModel``.
    """
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import IFUImageModel

    if "wcs_asdf" not in ds.coords:
        raise InputError("dataset has no embedded WCS; only detector stores can be exported")
    primary = fits.Header.fromstring(str(ds["primary_header"].values[index]))
    sci_header = fits.Header.fromstring(str(ds["sci_header"].values[index]))
    exp = ds.isel(exposure=index)
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=primary),
        fits.ImageHDU(np.asarray(exp["sci"].values, dtype=np.float32), header=sci_header, name="SCI"),
        fits.ImageHDU(np.asarray(exp["err"].values, dtype=np.float32), name="ERR"),
        fits.ImageHDU(np.asarray(exp["dq"].values, dtype=np.uint32), name="DQ"),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = IFUImageModel(hdul)
        model.meta.wcs = wcs_from_bytes(ds["wcs_asdf"].values[index])
        model.meta.filename = str(path).rsplit("/", 1)[-1]
        model.save(str(path))
    return str(path)
