"""Pixel tables: the cube-independent, wavelength-sorted point cloud of one exposure-channel.

A pixel table holds, for every usable pixel of one channel of one exposure, its flux, error,
centre λ and λ extent, and its sky centre and footprint corners, **sorted by λ**. It does not
depend on any cube: band, channel and multi cubes, and every wavelength slab of them, read
the rows they need by binary search on the sorted λ. Tables live in a zarr group (local or
object store) so that workers on other machines can read them.

On a local (or shared) file system a table's rows are a plain ``.npy`` file in its group's
folder, read by a single positioned read per slab (:func:`read_rows`); in an object store they
are a zarr array. A zarr read costs ~0.7 ms of fixed overhead (event loop, codec pipeline), and
a multi cube makes thousands of them (3,264 for 24 exposures), while the bytes are the same.

A job whose tasks all run in this process (Dask's threaded or synchronous scheduler) and
whose scratch is not kept keeps its tables in memory instead, up to a budget
(:func:`tables_in_memory`, :func:`table_memory`): writing a table to the page cache and
reading it back costs ~0.1 CPU-s (of ~0.5) per exposure-channel on this project's machines.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from mrsdask.errors import InputError
from mrsdask.instrument.bands import CHANNEL_INFO
from mrsdask.instrument.frames import ChannelFrame, cache_frame, channel_frame, channel_mask
from mrsdask.instrument.geometry import sky_geometry
from mrsdask.datamodel.dq import DO_NOT_USE, NON_SCIENCE
from mrsdask.io import paths
from mrsdask.io.sources import ExposureData, ExposureSource
from mrsdask.io.zarr_store import open_group, zarr_store

#: Every how many sorted rows the λ index keeps a sample.
INDEX_STRIDE = 1024
#: Rows per zarr chunk of a pixel table (a slab reads a few chunks of each table it needs).
TABLE_CHUNK = 16384
COLUMNS_F8 = ("wavelength", "dwavelength", "ra", "dec", "flux", "err")
#: Column layout of a table's single 2-D ``rows`` array: one read per slab and table.
ROW_COLUMNS = COLUMNS_F8 + tuple(f"corner_ra{i}" for i in range(4)) + tuple(f"corner_dec{i}" for i in range(4))
#: Most pixel-table bytes a job keeps in memory (:func:`table_memory`): the 12 tables (0.5 GB)
#: of a multi cube from one dither of the 6 settings; of 24 exposures' 48 tables (1.8 GB), 15.
MEMORY_TABLES_MAX_BYTES = 640 * 2**20

#: Scratch groups whose new tables are kept in this process's memory, with the bytes each may
#: still take, and those tables: ``{(scratch, key): (info, source identity, rows)}``
#: (see :func:`tables_in_memory`).
_MEMORY_SCRATCH: dict[str, int] = {}
_MEMORY_LOCK = threading.Lock()
_MEMORY_TABLES: dict[tuple[str, str], tuple[PixelTableInfo, dict, np.ndarray]] = {}
#: Slab tasks still to read a table held in memory before it is dropped (:func:`expect_readers`),
#: and the tables dropped so (:func:`released_tables`).
_MEMORY_READERS: dict[tuple[str, str], int] = {}
_MEMORY_RELEASED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class PixelTableInfo:
    """Summary of one written pixel table, small enough to gather on the client.

    Attributes
    ----------
    key : str
        Name of the table's zarr group.
    exposure, channel : int
        Which exposure and channel.
    n : int
        Number of rows.
    lambda_index : ndarray
        The sorted λ of every ``INDEX_STRIDE``-th row (for coarse row ranges).
    dwavelength_max : float
        Largest λ extent of the channel's mapped pixels (the official window uses it).
    footprint : ndarray, shape (2, 4)
        RA/Dec (deg) of the four extreme pixel centres (min RA, max RA, min Dec, max Dec)
        of all the channel's pixels, as the official ``find_corners_miri``.
    wave_range : tuple of float
        Min and max λ of all the channel's pixels.
    """

    key: str
    exposure: int
    channel: int
    n: int
    lambda_index: np.ndarray
    dwavelength_max: float
    footprint: np.ndarray
    wave_range: tuple[float, float]

    @classmethod
    def pending(cls, key: str, exposure: int, channel: int) -> PixelTableInfo:
        """A table not written yet: its name only (``n = -1``), until a slab task is handed the
        summaries its table tasks return (:func:`resolve_tables`)."""
        return cls(key, exposure, channel, -1, np.empty(0), np.nan, np.full((2, 4), np.nan), (np.nan, np.nan))

    @property
    def is_pending(self) -> bool:
        """Whether this is a :meth:`pending` placeholder."""
        return self.n < 0

    def reaches(self, lam_lo: float, lam_hi: float) -> bool:
        """Whether the table may hold rows with λ in ``[lam_lo, lam_hi]`` (from its λ range)."""
        return self.n > 0 and not (self.wave_range[1] < lam_lo or self.wave_range[0] > lam_hi)


def resolve_tables(tables: tuple[PixelTableInfo, ...], written: list[list[PixelTableInfo]],
                   keys) -> tuple[PixelTableInfo, ...]:
    """``tables`` with each pending one of ``keys`` replaced by its summary from ``written`` (the
    results of table tasks); the other pending ones are left out."""
    keys = set(keys)
    found = {info.key: info for infos in written for info in infos if info.key in keys}
    return tuple(found[t.key] if t.is_pending else t for t in tables if not t.is_pending or t.key in found)


@dataclass(frozen=True)
class SettingFrames:
    """Detector-frame geometry of the channels of one instrument model, to share between tasks.

    Computed once per setting by :func:`setting_frames` and handed by Dask to every pixel-table
    task of that setting (:func:`build_pixel_table_group`), so that the detector → α, β, λ step
    is converted and evaluated once per cluster instead of once per worker.

    Attributes
    ----------
    instrument_key : str or None
        Content key of the detector step (:attr:`mrsdask.io.mrs_wcs.MrsWcsParts.instrument_key`);
        an exposure uses these frames only if its own key is the same.
    frames : dict
        ``{channel: ChannelFrame}``.
    """

    instrument_key: str | None
    frames: dict[int, ChannelFrame]


def setting_frames(source: ExposureSource, channels: list[int]) -> SettingFrames | None:
    """The detector-frame geometry of ``channels`` from one exposure of a setting.

    Parameters
    ----------
    source : ExposureSource
        The exposure (no plane is read: give it :meth:`~ExposureSource.without_planes`).
        None is returned when its geometry is stored (a detector store) or its gwcs has no
        content key (nothing computed from it may be shared).
    channels : list of int
        Channels to evaluate.
    """
    parts = source.wcs_parts()
    if parts is None or parts.instrument_key is None:
        return None
    return SettingFrames(parts.instrument_key, {c: channel_frame(parts, c) for c in channels})


def remember_frames(shared: SettingFrames | None) -> None:
    """Put frames computed by another task into this process's cache (see :func:`channel_frame`)."""
    if shared is None or shared.instrument_key is None:
        return
    for channel, entry in shared.frames.items():
        cache_frame((shared.instrument_key, channel), entry)


def channel_pixels(data: ExposureData, channel: int, frame: ChannelFrame | None = None) -> dict[str, np.ndarray]:
    """Flux, error, DQ and per-pixel geometry of one channel's pixels: the one geometry adapter.

    The geometry is computed from the exposure's split gwcs (``data.parts``: FITS files and
    in-memory exposures; the detector frame is ``frame`` when given — that of the exposure's
    instrument model — else from :func:`channel_frame`'s cache when the model is known) or
    read from the stored geometry (``data.stored``: a detector store's). The two give the same
    numbers for the same gwcs.
    """
    if data.stored is None:
        cf = frame if frame is not None else channel_frame(data.parts, channel)
        geom = sky_geometry(data.parts.pointing, cf.frame, cf.dbeta)
        ys, xs = cf.ys, cf.xs
        out = {"ra": geom.ra, "dec": geom.dec, "wavelength": geom.wavelength, "dwavelength": geom.dwavelength,
               "corner_ra": geom.corner_ra, "corner_dec": geom.corner_dec}
    else:
        stored = data.stored
        ys, xs = np.nonzero(channel_mask(np.asarray(stored["slice"]), CHANNEL_INFO[channel]))
        out = {name: np.asarray(stored[name])[ys, xs] for name in ("ra", "dec", "wavelength", "dwavelength")}
        out.update({name: np.asarray(stored[name])[:, ys, xs] for name in ("corner_ra", "corner_dec")})
    out.update(flux=data.sci[ys, xs], err=data.err[ys, xs], dq=data.dq[ys, xs])
    return out


def footprint_extremes(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """The four extreme points (min RA, max RA, min Dec, max Dec) of a set of positions.

    RA is wrapped to one side of 0/360 before the extremes are taken.
    """
    from mrsdask.cube.grid import wrap_ra

    good = np.isfinite(ra) & np.isfinite(dec)
    ra = wrap_ra(ra[good])
    dec = dec[good]
    if ra.size == 0:
        return np.full((2, 4), np.nan)
    idx = [int(np.argmin(ra)), int(np.argmax(ra)), int(np.argmin(dec)), int(np.argmax(dec))]
    return np.array([[ra[i] % 360.0 for i in idx], [dec[i] for i in idx]])


def table_key(exposure: int, channel: int) -> str:
    """Name of the pixel table of an exposure-channel."""
    return f"e{exposure:04d}_ch{channel}"


def build_pixel_tables(source: ExposureSource, exposure: int, channels: list[int], scratch: str,
                       shared: SettingFrames | None = None, data: ExposureData | None = None) -> list[PixelTableInfo]:
    """Pixel tables of several channels of one exposure (reads its planes and WCS once).

    ``shared``: detector frames from :func:`setting_frames`, used when the exposure has their
    instrument model. ``data``: what ``source.read()`` gave, when already read.
    """
    data = source.read() if data is None else data
    frames = {}
    if shared is not None and data.parts is not None and data.parts.instrument_key == shared.instrument_key:
        frames = shared.frames
    return [build_pixel_table(source, exposure, channel, scratch, table_key(exposure, channel), data,
                              frames.get(channel))
            for channel in channels]


def build_pixel_table_group(jobs: list[tuple[ExposureSource, int, list[int]]], scratch: str,
                            shared: SettingFrames | None = None) -> list[PixelTableInfo]:
    """Pixel tables of several exposures in one task, one exposure after the other.

    Exposures of one instrument setting grouped in a task share the detector-frame geometry
    (see :func:`channel_frame`): ``shared``, from :func:`setting_frames` when the setting's
    exposures are spread over several tasks, else the frames of the task's first exposure of
    each instrument model (from this process's cache, the machine's frame files or computed).
    They are handed to every exposure, not only left in the process's cache: tasks of other
    settings running beside this one in other threads would push them out of that cache (it
    holds one setting), and each exposure would look them up again (24 exposures in process,
    before the frame files: +9 CPU-s).
    """
    remember_frames(shared)
    infos = []
    for source, exposure, channels in jobs:
        data = source.read()
        key = None if data.parts is None else data.parts.instrument_key
        if key is not None and (shared is None or shared.instrument_key != key
                                or not set(channels) <= set(shared.frames)):
            shared = SettingFrames(key, {c: channel_frame(data.parts, c) for c in channels})
        infos.extend(build_pixel_tables(source, exposure, channels, scratch, shared, data))
    return infos


def build_pixel_table(source: ExposureSource, exposure: int, channel: int, scratch: str, key: str,
                      data: ExposureData | None = None, frame: ChannelFrame | None = None) -> PixelTableInfo:
    """Select, sort by λ and write one exposure-channel's pixel table.

    Parameters
    ----------
    source : ExposureSource
        The exposure (:mod:`mrsdask.io.sources`); its identity is kept with the table.
    exposure : int
        Exposure index in the detector Dataset.
    channel : int
        1 to 4.
    scratch : str
        Path or URL of the zarr group that holds pixel tables.
    key : str
        Name of this table's sub-group.
    data : ExposureData, optional
        What ``source.read()`` gave, when already read (else it is read here).
    frame : ChannelFrame, optional
        The channel's detector frame for the exposure's instrument model (see :func:`channel_pixels`).

    Returns
    -------
    PixelTableInfo
    """

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows, px = _build_rows(source.read() if data is None else data, channel, frame)
        mapped = np.isfinite(px["ra"])
        footprint = footprint_extremes(px["ra"][mapped], px["dec"][mapped])
        lam_all = px["wavelength"][mapped]
        wave_range = (float(np.nanmin(lam_all)), float(np.nanmax(lam_all))) if lam_all.size else (np.nan, np.nan)
        dlam_all = px["dwavelength"][mapped]
        dmax_all = float(np.nanmax(dlam_all)) if dlam_all.size else 0.0
    group = open_group(scratch, mode="a")
    if key in group:
        del group[key]
    n = int(rows.shape[0])
    lambda_index = rows[::INDEX_STRIDE, COLUMNS_F8.index("wavelength")].copy()
    info = PixelTableInfo(
        key=key,
        exposure=exposure,
        channel=channel,
        n=n,
        lambda_index=lambda_index,
        dwavelength_max=dmax_all,
        footprint=footprint,
        wave_range=wave_range,
    )
    if _take_memory(scratch, rows.nbytes):
        _MEMORY_TABLES[(scratch, key)] = (info, source.identity(), rows)
        return info
    local = _local_rows_file(scratch, key)
    if local is not None:
        # The rows first, then the group's metadata, written once with the attributes that mark
        # the table complete (a group created first and its attributes updated after cost 8.7
        # ms per table, against 2.1): complete or absent.
        os.makedirs(os.path.dirname(local), exist_ok=True)
        partial = local + ".partial"
        np.save(partial, rows)
        os.replace(partial + ".npy", local)
        group.create_group(key, attributes=_info_to_attrs(info, source))
        return info
    table = group.create_group(key)
    arr = table.create_array("rows", shape=rows.shape, chunks=(max(1, min(TABLE_CHUNK, n)), rows.shape[1]),
                             dtype="f8", compressors=None)
    if n:
        arr[:] = rows
    del rows
    table.attrs.update(_info_to_attrs(info, source))
    return info


def _usable(px: dict[str, np.ndarray]) -> np.ndarray:
    """Pixels whose flux, error, λ and λ extent are finite and whose DQ lets them into a cube
    (all the conditions of a table row but a defined sky footprint)."""
    return (
        np.isfinite(px["flux"])
        & np.isfinite(px["err"])
        & ((px["dq"] & (DO_NOT_USE | NON_SCIENCE)) == 0)  # the jwst DQ bits that exclude a pixel from cubes
        & np.isfinite(px["wavelength"])
        & np.isfinite(px["dwavelength"])
    )


def _build_rows(data: ExposureData, channel: int, frame: ChannelFrame | None) -> tuple[np.ndarray, dict]:
    """A table's rows: the pixels with a defined footprint (centre and corners) that
    :func:`_usable` accepts, in stable λ order (ties in detector order); and the centre RA/Dec,
    λ and λ extent of all the channel's pixels (the table's summary needs them).

    With a compiled pointing the rows are written by the footprint kernel itself, in λ order
    (:meth:`~mrsdask.instrument.pointing.CompiledPointing.footprint_rows`), and the order is
    the frame's (:attr:`~mrsdask.instrument.frames.ChannelFrame.wavelength_order`) restricted to
    the rows: no per-pixel corner arrays, gather or sort per table (with the vectorised corners,
    the pixel-table phase of the 24-exposure multi cube: 10.8 -> 7.7 CPU-s, medians of 5-6 runs).
    Otherwise (stored geometry, an uncompiled pointing) from :func:`channel_pixels`.
    """
    pointing = data.parts.pointing if data.stored is None else None
    if not hasattr(pointing, "footprint_rows"):
        return _gathered_rows(channel_pixels(data, channel, frame))
    cf = frame if frame is not None else channel_frame(data.parts, channel)
    f = cf.frame
    px = {"wavelength": f.wavelength, "dwavelength": f.dwavelength,
          "flux": data.sci[cf.ys, cf.xs], "err": data.err[cf.ys, cf.xs], "dq": data.dq[cf.ys, cf.xs]}
    index = pointing.label_index(f.alpha, f.beta, f.wavelength)
    # A pixel without a label has no sky position; one whose position is not finite all the
    # same (none in practice) is dropped after the kernel, which reports it.
    candidate = (index >= 0) & _usable(px)
    target = np.empty(candidate.size, dtype=np.int64)
    n = _sorted_targets(cf.wavelength_order, candidate, target)
    rows = np.empty((n, len(ROW_COLUMNS)), dtype=np.float64)
    copied = ("wavelength", "dwavelength", "flux", "err")
    px["ra"], px["dec"], finite = pointing.footprint_rows(
        f.alpha, f.alpha_lo, f.alpha_hi, f.beta, cf.dbeta / 2.0, index, target, rows, _SKY_AT,
        tuple(_read_only(px[name]) for name in copied), tuple(ROW_COLUMNS.index(name) for name in copied))
    if not finite.all():
        rows = rows[finite]  # what is left keeps its stable λ order
    return rows, px


#: Columns of a table row that the footprint kernel writes: centre RA, Dec, first corner RA, Dec.
_SKY_AT = (ROW_COLUMNS.index("ra"), ROW_COLUMNS.index("dec"), ROW_COLUMNS.index("corner_ra0"),
           ROW_COLUMNS.index("corner_dec0"))


def _gathered_rows(px: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """:func:`_build_rows` from full per-pixel arrays (:func:`channel_pixels`): sorted and gathered."""
    good = np.isfinite(px["ra"]) & _usable(px) & np.all(np.isfinite(px["corner_ra"]), axis=0)
    index = np.flatnonzero(good)
    index = index[np.argsort(px["wavelength"][index], kind="stable")]
    # The columns as they are (no stacked copy: a table is ~40 MB), cast only where not float64.
    columns = tuple(_read_only(px[name]) for name in COLUMNS_F8)
    corners = tuple(_read_only(px[name][i]) for name in ("corner_ra", "corner_dec") for i in range(4))
    rows = np.empty((index.size, len(ROW_COLUMNS)), dtype=np.float64)
    _gather_rows(index, columns, corners, rows)
    return rows, px


@numba.njit(cache=True, nogil=True)
def _sorted_targets(order, keep, target):  # pragma: no cover - compiled
    """``target[p]``: the rank of pixel ``p`` among the kept pixels taken in ``order`` (-1 if not
    kept), for ``order`` a permutation of the pixels; returns how many are kept."""
    n = 0
    for i in range(order.size):
        p = order[i]
        if keep[p]:
            target[p] = n
            n += 1
        else:
            target[p] = -1
    return n


def _read_only(values: np.ndarray) -> np.ndarray:
    """A C-contiguous float64 read-only view (a copy only where a cast or a gather is needed):
    one type for every array handed to :func:`_gather_rows` (a numba tuple must be uniform)."""
    view = np.ascontiguousarray(values, dtype=np.float64).view()
    view.flags.writeable = False
    return view


@numba.njit(cache=True, nogil=True)
def _gather_rows(index, columns, corners, rows):  # pragma: no cover - compiled
    """``rows[k] = (columns[j][index[k]] ..., corners[j][index[k]] ...)``, written row by row
    (``columns`` and ``corners``: tuples of 1-D arrays)."""
    n_columns = len(columns)
    n_corners = len(corners)
    for k in range(index.size):
        i = index[k]
        for j in range(n_columns):
            rows[k, j] = columns[j][i]
        for j in range(n_corners):
            rows[k, n_columns + j] = corners[j][i]


def _info_to_attrs(info: PixelTableInfo, source: ExposureSource) -> dict:
    return {
        "complete": True,
        "source": source.identity(),
        "exposure": info.exposure,
        "channel": info.channel,
        "n": info.n,
        "lambda_index": [float(v) for v in info.lambda_index],
        "dwavelength_max": info.dwavelength_max,
        "footprint": np.asarray(info.footprint).tolist(),
        "wave_range": list(info.wave_range),
    }


def load_table_info(scratch: str, key: str, source: ExposureSource) -> PixelTableInfo | None:
    """Summary of an already written table of the same data (same source identity and stamp), or None."""
    held = _MEMORY_TABLES.get((scratch, key))
    if held is not None:
        return held[0] if held[1] == source.identity() else None
    try:
        attrs = dict(open_group(scratch, mode="r")[key].attrs)
    except Exception:
        return None
    if not attrs.get("complete") or attrs.get("source") != source.identity():
        return None
    local = _local_rows_file(scratch, key)
    if local is not None and not os.path.exists(local):
        return None  # rows lost (or from a version that kept them in zarr): build the table again
    return PixelTableInfo(
        key=key,
        exposure=int(attrs["exposure"]),
        channel=int(attrs["channel"]),
        n=int(attrs["n"]),
        lambda_index=np.asarray(attrs["lambda_index"], dtype=np.float64),
        dwavelength_max=float(attrs["dwavelength_max"]),
        footprint=np.asarray(attrs["footprint"], dtype=np.float64),
        wave_range=tuple(attrs["wave_range"]),
    )


def table_memory(memory_limit: int | None = None) -> int:
    """Bytes of pixel tables a job may keep in memory: :data:`MEMORY_TABLES_MAX_BYTES`, and at
    most a quarter of the job's ``memory_limit`` when it has one."""
    return MEMORY_TABLES_MAX_BYTES if memory_limit is None else min(MEMORY_TABLES_MAX_BYTES, memory_limit // 4)


@contextlib.contextmanager
def tables_in_memory(scratch: str, max_bytes: int) -> Iterator[None]:
    """Within the block, pixel tables built in this process for ``scratch`` stay in its memory,
    up to ``max_bytes`` in all (the others are written as usual; 0: none is kept).

    For jobs whose tasks all run in this process (a threaded or synchronous Dask scheduler):
    such tables are neither written to ``scratch`` nor read back from it; a table already
    there from an earlier, interrupted build is still reused. They are dropped when the block
    ends, however it ends (nothing of them is left for a later build to resume from).
    """
    if max_bytes <= 0:
        yield
        return
    with _MEMORY_LOCK:
        _MEMORY_SCRATCH[scratch] = int(max_bytes)
    try:
        yield
    finally:
        with _MEMORY_LOCK:
            _MEMORY_SCRATCH.pop(scratch, None)
            for held in [k for k in _MEMORY_TABLES if k[0] == scratch]:
                del _MEMORY_TABLES[held]
            for table in [k for k in _MEMORY_READERS if k[0] == scratch]:
                del _MEMORY_READERS[table]
            _MEMORY_RELEASED.difference_update([k for k in _MEMORY_RELEASED if k[0] == scratch])


def expect_readers(scratch: str, readers: dict[str, int]) -> None:
    """Drop each of these tables from memory once that many slab tasks have read it.

    Within :func:`tables_in_memory`: a table held in memory whose readers are all done gives its
    bytes back to the block's budget, so that tables written later stay in memory too instead
    of being written to ``scratch`` (24 exposures: 33 of 48 tables were). Each reader reports
    with :func:`finished_reading`; a table not held in memory is unaffected.
    """
    with _MEMORY_LOCK:
        if scratch not in _MEMORY_SCRATCH:
            return
        for key, n in readers.items():
            if n > 0:
                _MEMORY_READERS[(scratch, key)] = int(n)


def finished_reading(scratch: str, keys) -> None:
    """A slab task is done with these tables (see :func:`expect_readers`)."""
    with _MEMORY_LOCK:
        for key in keys:
            table = (scratch, key)
            if table not in _MEMORY_READERS:
                continue
            _MEMORY_READERS[table] -= 1
            if _MEMORY_READERS[table] > 0:
                continue
            del _MEMORY_READERS[table]
            held = _MEMORY_TABLES.pop(table, None)
            if held is not None and scratch in _MEMORY_SCRATCH:
                _MEMORY_SCRATCH[scratch] += held[2].nbytes
                _MEMORY_RELEASED.add(table)


def released_tables(scratch: str) -> set[str]:
    """Keys of the tables of ``scratch`` dropped from memory after their readers (to build again
    if a slab turns out to need one more)."""
    with _MEMORY_LOCK:
        return {key for s, key in _MEMORY_RELEASED if s == scratch}


def _take_memory(scratch: str, nbytes: int) -> bool:
    """Whether a table of ``nbytes`` for ``scratch`` is kept in memory (its bytes are then taken)."""
    with _MEMORY_LOCK:
        left = _MEMORY_SCRATCH.get(scratch)
        if left is None or nbytes > left:
            return False
        _MEMORY_SCRATCH[scratch] = left - nbytes
        return True


def row_range(info: PixelTableInfo, lam_lo: float, lam_hi: float) -> tuple[int, int]:
    """Rows of a table that may hold λ in ``[lam_lo, lam_hi]`` (a superset, from the index)."""
    if info.n == 0:
        return 0, 0
    idx = info.lambda_index
    i0 = int(np.searchsorted(idx, lam_lo, side="left")) - 1
    i1 = int(np.searchsorted(idx, lam_hi, side="right"))
    start = max(0, i0 * INDEX_STRIDE)
    stop = min(info.n, i1 * INDEX_STRIDE + 1) if i1 < idx.size else info.n
    return start, max(start, stop)


def read_rows(scratch: str, key: str, start: int, stop: int, corners: bool,
              n_rows: int | None = None) -> dict[str, np.ndarray]:
    """Read rows ``start:stop`` of a pixel table.

    Columns are returned as views of one block read (strided, not copied); ``corner_ra`` and
    ``corner_dec`` are ``(4, n)`` views. ``n_rows``, the table's length when known, lets the
    opened array be reused across calls in this process (it is reopened if the stored shape
    differs, e.g. after the table was rewritten).
    """
    held = _MEMORY_TABLES.get((scratch, key))
    local = _local_rows_file(scratch, key)
    if held is not None:
        block = held[2][start:stop]
    elif local is not None:
        block = _read_npy_rows(local, start, stop)
    else:  # an object store
        block = np.asarray(_table_rows(scratch, key, n_rows)[start:stop])
    out = {name: block[:, j] for j, name in enumerate(COLUMNS_F8)}
    if corners:
        k = len(COLUMNS_F8)
        out["corner_ra"] = block[:, k:k + 4].T
        out["corner_dec"] = block[:, k + 4:k + 8].T
    return out


#: Pixel-table arrays opened in this process (opening reads metadata: ~0.3 ms per call, and a
#: cube reads each table once per slab).
_OPEN_TABLES: OrderedDict[tuple[str, str], object] = OrderedDict()
_OPEN_TABLES_MAX = 512


def _table_rows(scratch: str, key: str, n_rows: int | None):
    import zarr

    cache_key = (scratch, key)
    array = _OPEN_TABLES.get(cache_key)
    if array is None or n_rows is None or array.shape != (n_rows, len(ROW_COLUMNS)):
        array = zarr.open_array(zarr_store(scratch), path=f"{key}/rows", mode="r", zarr_format=3)
        if n_rows is None:
            return array
        _OPEN_TABLES[cache_key] = array
        while len(_OPEN_TABLES) > _OPEN_TABLES_MAX:
            _OPEN_TABLES.popitem(last=False)
    return array


def _local_rows_file(scratch: str, key: str) -> str | None:
    """Path of a table's ``rows.npy`` when the scratch group is on a file system, else None."""
    if paths.is_remote(scratch):
        return None
    root = str(scratch)[len("file://"):] if str(scratch).startswith("file://") else str(scratch)
    return os.path.join(root, key, "rows.npy")


def _read_npy_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a 2-D float64 ``.npy`` file, read with one positioned read."""
    with open(path, "rb") as fobj:
        version = np.lib.format.read_magic(fobj)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fobj)
        if len(shape) != 2 or fortran or dtype != np.dtype("<f8"):
            raise InputError(f"{path}: not a pixel table; delete the store's _scratch group and build again")
        stop = min(stop, shape[0])
        start = min(start, stop)
        width = shape[1]
        fobj.seek(fobj.tell() + start * width * 8)
        block = np.fromfile(fobj, dtype="<f8", count=(stop - start) * width)
    if block.size != (stop - start) * width:
        raise InputError(f"{path}: pixel table is truncated (rows {start}-{stop} of {shape[0]} not all there); "
                         "delete the store's _scratch group and build again")
    return block.reshape(stop - start, width)
