"""One wavelength slab of a cube: read the pixel rows that reach it, weight them, finish it.

:func:`compute_slab` is the pure computation (pixel-table rows in, SCI/ERR/DQ/WMAP planes
out), :func:`build_slab` the task that writes its planes to the cube store, and
:func:`finish_cube` the clean-up after the last slab (the MIRI spectral tears), which marks
the cube complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator

import numpy as np

from mrsdask.cube import store as cube_store
from mrsdask.cube import write_behind
from mrsdask.cube.grid import sky_to_tangent
from mrsdask.cube.kernels import drizzle_accumulate, emsm_accumulate, msm_accumulate
from mrsdask.cube.kernels.finish import finish_accumulators
from mrsdask.cube.memory import slab_window
from mrsdask.cube.pixels import PixelTableInfo, finished_reading, read_rows, resolve_tables, row_range
from mrsdask.cube.s3d_sink import S3dSink
from mrsdask.cube.spec import CubeSpec, cube_window
from mrsdask.datamodel.dq import NON_SCIENCE_HOLE


def _nearest_table_index(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the nearest table entry (ties to the lower one, as an argmin would)."""
    idx = np.clip(np.searchsorted(table, values), 1, table.size - 1)
    lower = table[idx - 1]
    upper = table[idx]
    return np.where(np.abs(values - lower) <= np.abs(upper - values), idx - 1, idx)


def compute_slab(spec: CubeSpec, scratch: str, z0: int, z1: int) -> dict[str, np.ndarray]:
    """Accumulate and finish planes ``z0:z1`` of a cube (pure computation, no writes): the planes
    of :func:`finish_planes` and their ``ngood``."""
    pending = [t.key for t in spec.tables if t.is_pending]
    if pending:
        raise RuntimeError(f"cube {spec.name}: pixel tables {pending} are not written yet")
    grid, wave = spec.grid, spec.wave
    zc = wave.zcoord[z0:z1]
    zw = wave.zwidth[z0:z1]
    nz, ny, nx = z1 - z0, grid.ny, grid.nx
    # The four accumulators (flux, weight, variance, count) interleaved in one array: a voxel's
    # four sums share a cache line, so each contribution costs one memory access, not four
    # (drizzle kernel on the 24-exposure multi cube: 13.4 -> 11.8 s CPU); the kernels see four views.
    interleaved = zeroed_accumulators((nz, ny, nx, 4))
    acc = [interleaved[..., i] for i in range(4)]
    drizzle = spec.weighting == "drizzle"
    params = spec.params
    linear = wave.linear
    lam_lo, lam_hi = slab_window(spec, z0, z1)  # the λ of the pixel rows that can reach the slab
    xcoord, ycoord = grid.xcoord, grid.ycoord
    for table in spec.tables:
        start, stop = row_range(table, lam_lo, lam_hi)
        if stop <= start:
            continue
        rows = read_rows(scratch, table.key, start, stop, corners=drizzle, n_rows=table.n)
        # Rows are sorted by λ: the ones inside [lam_lo, lam_hi] are one slice (views, no copies).
        lam_read = rows["wavelength"]
        first = int(np.searchsorted(lam_read, lam_lo, side="left"))
        last = int(np.searchsorted(lam_read, lam_hi, side="right"))
        if last <= first:
            continue
        keep = slice(first, last)
        lam = lam_read[keep]
        flux = rows["flux"][keep]
        err = rows["err"][keep]
        offset = (spec.offsets or {}).get(table.key, (0.0, 0.0))
        if drizzle:
            cxi, ceta = sky_to_tangent(rows["corner_ra"][:, keep], rows["corner_dec"][:, keep],
                                       grid.crval1, grid.crval2, grid.rotation, offset=offset)
            drizzle_accumulate(cxi, ceta, lam, rows["dwavelength"][keep], flux, err, xcoord, ycoord, zc, zw,
                               grid.cdelt, grid.cdelt, *acc)
        else:
            xi, eta = sky_to_tangent(rows["ra"][keep], rows["dec"][keep], grid.crval1,
                                     grid.crval2, grid.rotation, offset=offset)
            lam = np.ascontiguousarray(lam)
            if linear:
                ones = np.ones_like(lam)
                rois = ones * params["rois"]
                roiw = ones * params["roiw"]
                scalerad = ones * (params["scalerad"] if params["scalerad"] is not None else np.nan)
                power = ones * (params["weight_power"] if params["weight_power"] is not None else np.nan)
                softrad = ones * (params["softrad"] if params["softrad"] is not None else np.nan)
            else:
                k = _nearest_table_index(np.asarray(params["wavelength_table"]), lam)
                rois = np.asarray(params["rois_table"])[k]
                roiw = np.asarray(params["roiw_table"])[k]
                scalerad = np.asarray(params["scalerad_table"])[k] if params["scalerad_table"] is not None else rois * np.nan
                power = np.asarray(params["weight_power_table"])[k] if params["weight_power_table"] is not None else rois * np.nan
                softrad = np.asarray(params["softrad_table"])[k] if params["softrad_table"] is not None else rois * np.nan
            if spec.weighting == "emsm":
                emsm_accumulate(xi, eta, lam, flux, err, rois, roiw, scalerad, xcoord, ycoord, zc, zw,
                                grid.cdelt, grid.cdelt, *acc)
            else:
                msm_accumulate(xi, eta, lam, flux, err, rois, roiw, power, softrad, xcoord, ycoord, zc,
                               zw, grid.cdelt, grid.cdelt, *acc)
    return finish_planes(interleaved)


#: Accumulators up to this size are kept by their thread for its next slab (:func:`zeroed_accumulators`).
REUSED_ACCUMULATOR_BYTES = 256 * 2**20
_THREAD = threading.local()
_KEPT: list[list] | None = None  # within accumulators_reused: each thread's box of its buffer
_KEPT_LOCK = threading.Lock()


@contextlib.contextmanager
def accumulators_reused() -> Iterator[None]:
    """Within this block, :func:`zeroed_accumulators` reuses each thread's buffer from slab to
    slab; on leaving, the buffers are let go (a thread that outlives the block, e.g. of Dask's
    shared pool, keeps none)."""
    global _KEPT
    with _KEPT_LOCK:
        _KEPT = boxes = []
    try:
        yield
    finally:
        with _KEPT_LOCK:
            _KEPT = None
            for box in boxes:
                box.clear()


def zeroed_accumulators(shape: tuple[int, ...]) -> np.ndarray:
    """Zeroed float64 accumulators of ``shape``: within :func:`accumulators_reused`, the calling
    thread's buffer of its last slab, cleared (up to :data:`REUSED_ACCUMULATOR_BYTES`).

    A new ``np.zeros`` of a slab's size (45 MB for the 6-exposure multi cube's) is memory the
    operating system maps afresh and clears page by page as the kernel first writes it (``perf``
    on that build: ``clear_page`` under the drizzle kernel's page faults, 7-10 % of its CPU
    samples; <1 % with the buffer reused). The buffer must not outlive the slab: it is
    overwritten by the thread's next one (nothing returned by :func:`compute_slab` views it).
    """
    n = int(np.prod(shape))
    boxes = _KEPT
    if boxes is None or n * 8 > REUSED_ACCUMULATOR_BYTES:
        return np.zeros(shape)
    if getattr(_THREAD, "boxes", None) is not boxes:  # this thread's first slab in the block
        _THREAD.boxes, _THREAD.box = boxes, []
        with _KEPT_LOCK:
            boxes.append(_THREAD.box)
    box = _THREAD.box
    if not box or box[0].size < n:
        box[:] = [np.zeros(n)]
    else:
        box[0][:n] = 0.0
    return box[0][:n].reshape(shape)


def finish_planes(interleaved: np.ndarray) -> dict[str, np.ndarray]:
    """SCI, ERR, DQ and WMAP planes (official definitions) from the interleaved accumulators
    ``(nz, ny, nx, 4)``, and ``ngood``: each plane's voxels with DQ 0 (:mod:`mrsdask.cube.kernels.finish`)."""
    shape = interleaved.shape[:3]
    planes = {"sci": np.empty(shape, np.float32), "err": np.empty(shape, np.float32),
              "dq": np.empty(shape, np.uint32), "wmap": np.empty(shape, np.float32)}
    ngood = np.empty(shape[0], dtype=np.int64)
    finish_accumulators(interleaved, np.uint32(NON_SCIENCE_HOLE), planes["sci"], planes["err"], planes["dq"],
                        planes["wmap"], ngood)
    return {**planes, "ngood": ngood}


def build_slab(spec: CubeSpec, root: str, scratch: str, slab_index: int, s3d: S3dSink | None = None,
               written: tuple[list[PixelTableInfo], ...] = (), reads: tuple[str, ...] = ()) -> np.ndarray:
    """Compute one slab, write it to the cube store (and to the cube's s3d file being written,
    ``s3d``: :mod:`mrsdask.cube.s3d_sink`), return its per-plane good-voxel counts.

    ``written``: results of the pixel-table tasks this slab waited for, when its spec was
    planned before its tables (pending ones, :meth:`PixelTableInfo.pending`), and ``reads``
    the pending tables among them that the slab reads; the builder checks afterwards that no
    other table reaches it.
    """
    if any(t.is_pending for t in spec.tables):
        tables = resolve_tables(spec.tables, list(written), reads)
        # A linear drizzle window pads by its pixels' λ extent: that of the tables this slab reads
        # (never narrower than their rows' reach, so the same planes as with every table's).
        dmax = max((t.dwavelength_max for t in tables), default=0.0)
        spec = dataclasses.replace(spec, tables=tables, window=cube_window(spec.wave, spec.weighting, spec.params, dmax))
    z0, z1 = spec.slab_bounds(slab_index)
    planes = compute_slab(spec, scratch, z0, z1)
    finished_reading(scratch, reads)  # a table held in memory goes once its last reader is done
    ngood = planes.pop("ngood")
    write_behind.submit(store_slab, root, spec.name, z0, z1, slab_index, planes, s3d)
    return ngood


def store_slab(root: str, name: str, z0: int, z1: int, slab_index: int, planes: dict[str, np.ndarray],
               s3d: S3dSink | None = None) -> None:
    """Write a slab's planes to the cube store (its done-marker after them), then to its s3d file."""
    cube_store.write_slab(root, name, z0, z1, slab_index, planes)
    if s3d is not None:
        s3d.write_planes(z0, planes)  # converts the planes in place: last


def good_counts(root: str, spec: CubeSpec, z0: int, z1: int) -> np.ndarray:
    group = cube_store.open_group(cube_store.group_path(root, spec.name), mode="r")
    return (np.asarray(group["dq"][z0:z1]) == 0).sum(axis=(1, 2))


def spectral_tear_planes(ngood: np.ndarray) -> np.ndarray:
    """Planes with suspiciously low coverage: 0 < n < 0.75 × the 3rd percentile of n > 0."""
    good = ngood > 0
    if not good.any():
        return np.zeros(0, dtype=int)
    threshold = 0.75 * np.percentile(ngood[good], 3)
    return np.nonzero(good & (ngood < threshold))[0]


def finish_cube(spec: CubeSpec, root: str, ngood: np.ndarray) -> np.ndarray:
    """Blank the spectral-tear planes and mark the cube complete; return their indices.

    The tear planes' good-voxel counts are kept in the attributes (``spectral_tear_counts``):
    once blanked, a plane's count can no longer be read from its DQ, and a repair that
    recomputes only some slabs needs every plane's count to find the same tears.
    """
    group = cube_store.open_group(cube_store.group_path(root, spec.name), mode="r+")
    tears = spectral_tear_planes(ngood)
    # Rewrite each affected slab once (a plane write alone would re-encode its whole chunk).
    for slab in sorted({int(z) // spec.slab_planes for z in tears}):
        z0, z1 = spec.slab_bounds(slab)
        local = [int(z) - z0 for z in tears if z0 <= z < z1]
        planes = {name: np.asarray(group[name][z0:z1]) for name in ("sci", "err", "wmap", "dq")}
        planes["sci"][local] = np.nan
        planes["err"][local] = np.nan
        planes["wmap"][local] = 0.0
        planes["dq"][local] = NON_SCIENCE_HOLE
        for name, values in planes.items():
            group[name].with_config(cube_store.WRITE_CONFIG)[z0:z1] = values
    group.attrs.update({"spectral_tear_planes": [int(z) for z in tears],
                        "spectral_tear_counts": [int(ngood[z]) for z in tears]})
    cube_store.set_complete(root, spec.name)
    return tears


