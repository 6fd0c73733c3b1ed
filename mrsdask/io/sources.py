"""Where the tasks of a cube build find each exposure: a typed, picklable source per exposure.

A detector Dataset (:mod:`mrsdask.datamodel.detector`) is opened from FITS files, from a
detector store, or is the lazy result of a detector step (background, fringe, outlier) whose
arrays exist only in memory. :func:`exposure_sources` gives one source per exposure, of one
of three kinds sharing the :class:`ExposureSource` protocol:

* :class:`FitsExposure` — the Dataset's arrays are still those of its ``cal`` files: a task
  reads the file (planes and the gwcs split into instrument model and pointing);
* :class:`StoreExposure` — still those of a detector store: a task reads the planes and the
  per-pixel geometry stored there;
* :class:`MemoryExposure` — anything else (arrays changed, selected or computed in memory):
  the exposure's ``sci``/``err``/``dq`` Dask arrays are fields of the source, so a task given
  the source through ``dask.delayed`` gets them computed (Dask traverses dataclasses). Its
  geometry is the Dataset's own geometry variables (fields too, computed the same way), except
  when they are still exactly :func:`~mrsdask.io.detector_store.open_cal`'s lazy geometry of
  the exposure's file, only selected since (:func:`opened_geometry`): then it is computed from
  that file's gwcs as for a :class:`FitsExposure` (the same numbers, faster).

Every source has a ``stamp``: what tells the data that pixel tables and cubes left by an
earlier build were made from (file size and time, the store's, or for in-memory data the Dask
token of its arrays with the stamps of the files they came from). A source's
:meth:`~ExposureSource.read` gives an :class:`ExposureData`: the planes and *either* the WCS
parts *or* stored geometry; :func:`mrsdask.cube.pixels.channel_pixels` is the one adapter
that turns either into per-pixel geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import xarray as xr

from mrsdask.errors import InputError
from mrsdask.io import calfits, paths
from mrsdask.io.mrs_wcs import MrsWcsParts

#: The per-pixel geometry variables a pixel table takes from stored geometry.
STORED_GEOMETRY = ("slice", "ra", "dec", "wavelength", "dwavelength", "corner_ra", "corner_dec")

@dataclass(frozen=True)
class ExposureData:
    """What a task reads of one exposure: its planes and where its per-pixel geometry comes from.

    Attributes
    ----------
    sci, err, dq : ndarray
        The ``(1024, 1032)`` planes (float32, float32, uint32).
    parts : MrsWcsParts or None
        The gwcs split into instrument model and pointing: geometry is computed from it.
    stored : mapping or None
        The exposure's stored geometry (:data:`STORED_GEOMETRY` arrays, or an xarray Dataset
        holding them, read when indexed), when ``parts`` is None.
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    parts: MrsWcsParts | None = None
    stored: Any = None


class ExposureSource(Protocol):
    """How a task reaches one exposure of a detector Dataset (picklable: Dask ships it)."""

    #: Identity of the data, for resuming: changes when the data change.
    stamp: str

    @property
    def label(self) -> str:
        """The exposure, in messages."""

    def identity(self) -> dict:
        """Plain ``str``/``int`` values naming the data (kept in pixel-table attributes)."""

    def read(self) -> ExposureData:
        """Read the planes and the WCS parts or stored geometry (in a task)."""

    def wcs_parts(self) -> MrsWcsParts | None:
        """The split gwcs, or None when the geometry is stored (no plane is read)."""

    def load_wcs(self):
        """The exposure's gwcs."""

    def without_planes(self) -> ExposureSource:
        """The same source holding no in-memory planes (for tasks that need only the WCS)."""


@dataclass(frozen=True)
class FitsExposure:
    """An exposure read from its level-2 FITS file (local or remote)."""

    path: str
    stamp: str

    @property
    def label(self) -> str:
        return self.path

    def identity(self) -> dict:
        return {"kind": "fits", "path": self.path, "stamp": self.stamp}

    def read(self) -> ExposureData:
        (sci, err, dq), parts = calfits.read_planes_and_wcs_parts(self.path)  # one read of the file
        return ExposureData(sci, err, dq, parts=parts)

    def wcs_parts(self) -> MrsWcsParts:
        return calfits.read_wcs_parts(self.path)

    def load_wcs(self):
        return calfits.load_wcs(self.path)

    def without_planes(self) -> FitsExposure:
        return self


@dataclass(frozen=True)
class StoreExposure:
    """Exposure ``index`` of a detector store, with the per-pixel geometry stored there."""

    store: str
    index: int
    stamp: str

    @property
    def label(self) -> str:
        return f"{self.store} exposure {self.index}"

    def identity(self) -> dict:
        return {"kind": "store", "store": self.store, "index": int(self.index), "stamp": self.stamp}

    def _exposure(self) -> xr.Dataset:
        from mrsdask.io.detector_store import open_detector_store

        return open_detector_store(self.store).isel(exposure=self.index)

    def read(self) -> ExposureData:
        exp = self._exposure()
        sci, err, dq = (np.asarray(exp[name].values) for name in ("sci", "err", "dq"))
        return ExposureData(sci, err, dq, stored=exp)

    def wcs_parts(self) -> None:
        return None  # the store holds the geometry

    def load_wcs(self):
        from mrsdask.io.detector_store import wcs_from_bytes

        return wcs_from_bytes(self._exposure()["wcs_asdf"].values)

    def without_planes(self) -> StoreExposure:
        return self


@dataclass(frozen=True)
class MemoryExposure:
    """An exposure whose planes exist in memory (a Dask graph or arrays), with its geometry or gwcs.

    Attributes
    ----------
    index : int
        Position in the Dataset.
    name : str
        The exposure's file name (messages).
    stamp : str
        Dask token of the planes and the stamps of the files they came from.
    wcs_path : str
        The exposure's FITS file: its gwcs gives the geometry when ``stored_geometry`` is false,
        and :meth:`load_wcs` when ``wcs_asdf`` is None.
    stored_geometry : bool
        Whether the geometry is the Dataset's own (``geometry``).
    wcs_asdf : bytes or str or None
        The embedded gwcs of a detector store (``wcs_asdf`` coordinate).
    planes : tuple of array or None
        ``(sci, err, dq)``: Dask arrays on the client; computed arrays in a task (``dask.delayed``
        computes the Dask collections held in a dataclass's fields).
    geometry : dict or None
        The Dataset's :data:`STORED_GEOMETRY` arrays (as ``planes``), or None when the
        geometry is computed from ``wcs_path``'s gwcs.
    """

    index: int
    name: str
    stamp: str
    wcs_path: str = ""
    stored_geometry: bool = False
    wcs_asdf: bytes | str | None = field(default=None, repr=False)
    planes: tuple | None = field(default=None, repr=False, compare=False)
    geometry: dict | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name} (in memory)"

    def identity(self) -> dict:
        return {"kind": "memory", "index": int(self.index), "stamp": self.stamp}

    def read(self) -> ExposureData:
        if self.planes is None:
            raise InputError(f"{self.label}: this source holds no planes (a WCS-only copy)")
        sci, err, dq = (np.asarray(p) for p in self.planes)
        sci, err = sci.astype(np.float32, copy=False), err.astype(np.float32, copy=False)
        dq = dq.astype(np.uint32, copy=False)
        if self.geometry is not None:
            return ExposureData(sci, err, dq, stored=self.geometry)
        if not self.wcs_path:
            raise InputError(f"{self.label}: neither its geometry nor a FITS file with its gwcs was given")
        return ExposureData(sci, err, dq, parts=calfits.read_wcs_parts(self.wcs_path))

    def wcs_parts(self) -> MrsWcsParts | None:
        # None when the geometry is the Dataset's (only its planes and geometry are dropped by
        # without_planes: a WCS-only copy still knows which).
        return calfits.read_wcs_parts(self.wcs_path) if self.wcs_path and not self.stored_geometry else None

    def load_wcs(self):
        if self.wcs_asdf is None:
            return calfits.load_wcs(self.wcs_path)
        from mrsdask.io.detector_store import wcs_from_bytes

        return wcs_from_bytes(self.wcs_asdf)

    def without_planes(self) -> MemoryExposure:
        return replace(self, planes=None, geometry=None)


def exposure_sources(ds: xr.Dataset) -> list[ExposureSource]:
    """One source per exposure of a detector Dataset: its files, its store, or its arrays.

    The files or the store are read by the tasks only while the Dataset's planes and geometry
    are still the arrays opened from them (:func:`mrsdask.io.detector_store.pixels_token`);
    otherwise (changed, selected or computed in memory) each exposure is a
    :class:`MemoryExposure` over the Dataset's own arrays: planes, and geometry unless it is
    still its file's lazy geometry (:func:`opened_geometry`).

    Raises
    ------
    InputError
        For an in-memory exposure whose gwcs cannot be reached (no ``wcs_asdf`` coordinate and
        its FITS file is not there), naming it.
    """
    from mrsdask.io.detector_store import PIXELS_TOKEN_ATTR, pixels_token

    unchanged = ds.attrs.get(PIXELS_TOKEN_ATTR) == pixels_token(ds)
    store = ds.attrs.get("mrsdask_store")
    # A stamp (size and modification time) tells a rewritten input from the one that pixel
    # tables and cubes left by an interrupted build were made from.
    if unchanged and store:
        store_stamp = paths.stamp(str(store).rstrip("/") + "/zarr.json")
        return [StoreExposure(str(store), i, store_stamp) for i in range(ds.sizes["exposure"])]
    if unchanged and ds.attrs.get("mrsdask_source") == "fits":
        return [FitsExposure(str(p), paths.stamp(str(p))) for p in ds["path"].values]
    shape = (ds.sizes.get("y"), ds.sizes.get("x"))
    if shape != calfits.DETECTOR_SHAPE:
        raise InputError(f"this detector Dataset holds {shape[0]} x {shape[1]} pixels of each exposure; cubes need "
                         f"whole detectors ({calfits.DETECTOR_SHAPE[0]} x {calfits.DETECTOR_SHAPE[1]}): build "
                         "them before selecting rows or columns")
    return [memory_exposure(ds, i) for i in range(ds.sizes["exposure"])]


def memory_exposure(ds: xr.Dataset, index: int) -> MemoryExposure:
    """Exposure ``index`` of a Dataset as a :class:`MemoryExposure` over its own arrays."""
    import dask.base

    path = str(ds["path"].values[index]) if "path" in ds.coords else ""
    name = str(ds["filename"].values[index]) if "filename" in ds.coords else f"exposure {index}"
    wcs_asdf = ds["wcs_asdf"].values[index] if "wcs_asdf" in ds.coords else None
    reachable = bool(path) and paths.exists(path)
    if wcs_asdf is None and not reachable:
        raise InputError(f"{name}: exposure {index} of the Dataset was changed in memory and its gwcs cannot be "
                         f"reached (no wcs_asdf coordinate, file {path or '(no path)'} not there); open the "
                         "inputs from their cal files or a detector store")
    geometry = None
    if not (reachable and opened_geometry(ds, index, path)):
        missing = [var for var in STORED_GEOMETRY if var not in ds.variables]
        if missing:
            raise InputError(f"{name}: exposure {index} of the Dataset has no {', '.join(missing)}; keep the "
                             "geometry variables of the detector Dataset")
        geometry = {var: ds[var].data[index] for var in STORED_GEOMETRY}
    planes = tuple(ds[var].data[index] for var in ("sci", "err", "dq"))
    # The arrays' Dask token names their graph (or, for NumPy data, their content); the stamps
    # of the files behind them tell a rewritten input whose graph has the same names.
    origins = [paths.stamp(path) if path else ""]
    if ds.attrs.get("mrsdask_store"):
        origins.append(paths.stamp(str(ds.attrs["mrsdask_store"]).rstrip("/") + "/zarr.json"))
    stamp = "memory:" + dask.base.tokenize(*planes, *(geometry or {}).values(), *origins)
    return MemoryExposure(index, name, stamp, path if reachable else "", geometry is not None, wcs_asdf,
                          planes, geometry)


#: Dask layers that only select, reorder or assemble chunks (and open_cal's own wrapping).
SELECTION_LAYERS = frozenset({"getitem", "concatenate", "from-value", "shuffle-taker", "rechunk-merge",
                              "rechunk-split", "rechunk-p2p", "exposure_rows"})


def opened_geometry(ds: xr.Dataset, index: int, path: str) -> bool:
    """Whether exposure ``index``'s geometry variables are still ``path``'s lazy geometry.

    True when every one of them is computed by
    :func:`~mrsdask.io.detector_store.geometry_rows` of that file alone, then only selected or
    assembled (:data:`SELECTION_LAYERS`): what :func:`~mrsdask.io.detector_store.open_cal`
    made, perhaps with exposures selected since. Then the gwcs of the file gives the same
    numbers faster; anything else (a store's arrays, a value changed in memory, geometry of
    another file) is read as it is.
    """
    from dask.base import is_dask_collection
    from dask.core import flatten
    from dask.optimization import cull
    from dask.utils import key_split

    from mrsdask.io.detector_store import geometry_rows

    if not path or any(var not in ds.variables for var in STORED_GEOMETRY):
        return False
    for var in STORED_GEOMETRY:
        array = ds[var].data[index]
        if not is_dask_collection(array):
            return False
        graph, _ = cull(dict(array.__dask_graph__()), list(flatten(array.__dask_keys__())))
        for key, task in graph.items():
            layer = key_split(key)
            if layer == "geometry_rows":
                if getattr(task, "func", None) is not geometry_rows or task.args[0] != path:
                    return False
            elif layer not in SELECTION_LAYERS:
                return False
    return True
