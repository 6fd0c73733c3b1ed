"""The one place where mrsdask turns pure kernels into Dask graphs.

Kernels (``kernels.py`` of each stage) are numpy/numba functions of plain arrays and plain
parameters; they know nothing of Dask. This module maps them, in the two ways the project
needs:

* :func:`map_exposures` — detector steps: one task per block of one exposure (or of a group of
  exposures stacked together, e.g. the background exposures of a setting, or every exposure of
  a detector), blocks being bands of rows, bands of columns or whole frames;
* :func:`map_slabs` — cube products: one task per slab of planes along the first axis (the
  wavelength slabs of a cube, for extraction).

Each task calls the kernel once and the kernel returns all its outputs (a dict by name, a
tuple in the order of ``outputs``, or one array); each output becomes a lazy Dask array whose
blocks are picked from the tasks' results, so one kernel call feeds every output (compute them
together — ``dask.compute``, ``to_zarr`` — or the kernel runs once per output). An exception
raised by a kernel keeps its type and gets a note (:pep:`678`) naming the step, the
exposure(s) (index and file) and the rows or columns of the block, or the planes of the slab.

The detector-step inputs are variables ``(exposure, y, x)`` of a detector Dataset
(:mod:`mrsdask.datamodel.detector`); ``(y, x)`` outputs come back chunked like the inputs, so
a store written from them keeps the layout of the store it was read from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.errors import ParameterError

#: Rows per block of a Dataset held in memory (Dask-backed variables keep their own row chunks).
DEFAULT_ROWS = 256
#: Columns per block when ``blocks="columns"`` and no ``block_size`` is given.
DEFAULT_COLUMNS = 64
#: The ways a detector frame can be cut into blocks.
BLOCKS = ("rows", "columns", "exposure")
PIXEL_DIMS = ("y", "x")


@dataclass(frozen=True)
class Output:
    """One output of a kernel: its dtype and the dims of one unit's array.

    Attributes
    ----------
    dtype : numpy dtype
    dims : tuple of str
        Dims of the array for one exposure (or group, or cube): ``("y", "x")`` for a detector
        plane; any dims that hold the blocked axis (``y`` or ``x`` for :func:`map_exposures`,
        the first input dim for :func:`map_slabs`) and others whose ``sizes`` are given.
    sizes : dict
        Length of every dim that is not cut into blocks.
    """

    dtype: Any
    dims: tuple[str, ...] = PIXEL_DIMS
    sizes: Mapping[str, int] = field(default_factory=dict)


def _outputs(outputs: Mapping[str, Any], default_dims: tuple[str, ...]) -> dict[str, Output]:
    if not outputs:
        raise ParameterError("a kernel needs at least one output")
    out = {}
    for name, spec in outputs.items():
        out[name] = spec if isinstance(spec, Output) else Output(np.dtype(spec), default_dims)
    return out


def _lazy(data, chunks) -> da.Array:
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data), chunks=chunks)


def lazy_variable(ds: xr.Dataset, name: str) -> da.Array:
    """An ``(exposure, y, x)`` variable as a Dask array: its own chunks, or one exposure by
    :data:`DEFAULT_ROWS` rows (whole rows) if it is held in memory."""
    if name not in ds:
        raise ParameterError(f"dataset has no {name!r} variable")
    if ds[name].dims != ("exposure", "y", "x"):
        raise ParameterError(f"variable {name!r} has dims {ds[name].dims}, expected (exposure, y, x)")
    return _lazy(ds[name].data, (1, DEFAULT_ROWS, -1))


def _named(result, outputs: dict[str, Output]) -> dict[str, Any]:
    """The kernel's result as a dict of outputs (dict by name, tuple in order, or one array)."""
    if isinstance(result, Mapping):
        missing = [name for name in outputs if name not in result]
        if missing:
            raise ValueError(f"the kernel returned no {', '.join(missing)} (it returned {', '.join(result)})")
        return {name: result[name] for name in outputs}
    if isinstance(result, tuple):
        if len(result) != len(outputs):
            raise ValueError(f"the kernel returned {len(result)} arrays for {len(outputs)} outputs "
                             f"({', '.join(outputs)})")
        return dict(zip(outputs, result))
    if len(outputs) == 1:
        return {next(iter(outputs)): result}
    raise ValueError(f"the kernel returned one array for {len(outputs)} outputs ({', '.join(outputs)})")


def _run(kernel, arrays, kwargs, outputs: dict[str, Output], shapes: dict[str, tuple], where: str) -> np.ndarray:
    """Call the kernel on one block; its outputs checked and cast, in a 1-element object array."""
    try:
        result = _named(kernel(*arrays, **kwargs), outputs)
        for name, spec in outputs.items():
            value = np.asarray(result[name]).astype(spec.dtype, copy=False)
            if value.shape != shapes[name]:
                raise ValueError(f"output {name!r} has shape {value.shape}, expected {shapes[name]}")
            result[name] = value
    except Exception as exc:
        exc.add_note(f"in {where}")
        raise
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = result
    return cell


def _pick(cell: np.ndarray, name: str) -> np.ndarray:
    return cell[0, 0][name][None]


def _fan_out(tasks: da.Array, outputs: dict[str, Output], axis_dim: str, axis_chunks: tuple[int, ...],
             sizes: Mapping[str, int]) -> dict[str, da.Array]:
    """One lazy ``(1, *dims)`` array per output, from the ``(1, n_blocks)`` object array of kernel results."""
    arrays = {}
    for name, spec in outputs.items():
        chunks: list[tuple[int, ...]] = [(1,)]
        for dim in spec.dims:
            chunks.append(axis_chunks if dim == axis_dim else (int({**sizes, **spec.sizes}[dim]),))
        # The tasks' axes (unit, block) land at 0 and ``position``; the output's other dims are new.
        # (One block only: an output without the blocked axis takes it on its first dim.)
        position = 1 + spec.dims.index(axis_dim) if axis_dim in spec.dims else 1
        arrays[name] = da.map_blocks(
            _pick, tasks, name, dtype=spec.dtype, chunks=tuple(chunks),
            new_axis=[i for i in range(1, len(chunks)) if i != position] or None,
            meta=np.empty((0,) * len(chunks), dtype=spec.dtype),
        )
    return arrays


def _check_outputs(outputs: dict[str, Output], axis_dim: str, sizes: Mapping[str, int], n_blocks: int) -> None:
    for name, spec in outputs.items():
        if not spec.dims:
            raise ParameterError(f"output {name!r} has no dims")
        if axis_dim not in spec.dims and n_blocks > 1:
            raise ParameterError(f"output {name!r} has dims {spec.dims}: one of them must be {axis_dim!r}, "
                                 "the axis the blocks are cut along")
        unknown = [d for d in spec.dims if d != axis_dim and d not in {**sizes, **spec.sizes}]
        if unknown:
            raise ParameterError(f"output {name!r}: give the size of dim(s) {', '.join(unknown)} (Output.sizes)")


def _split(n: int, size: int) -> tuple[int, ...]:
    if size < 1:
        raise ParameterError(f"block size must be >= 1, got {size}")
    return tuple(min(size, n - start) for start in range(0, n, size))


def _bounds(chunks: tuple[int, ...]) -> list[tuple[int, int]]:
    ends = np.cumsum((0,) + tuple(chunks))
    return [(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]


def _block_shapes(outputs: dict[str, Output], axis_dim: str, bounds, sizes: Mapping[str, int]) -> list[dict]:
    return [{name: tuple(b - a if d == axis_dim else int({**sizes, **spec.sizes}[d]) for d in spec.dims)
             for name, spec in outputs.items()} for a, b in bounds]


def scheduler_threads() -> int:
    """Threads the current scheduler runs tasks on (a guess of 2 when a cluster does not say)."""
    from mrsdask.progress import scheduler_client

    client = scheduler_client()
    if client is not None:
        try:
            return max(1, sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()))
        except Exception:
            return 2
    return max(1, dask.config.get("num_workers", None) or dask.system.CPU_COUNT or 1)


def tasks_run_here() -> bool:
    """Whether the current scheduler runs tasks in this process (Dask's threaded or synchronous one)."""
    from dask.base import get_scheduler

    from mrsdask.progress import scheduler_client

    if scheduler_client() is not None:
        return False
    import dask.local
    import dask.threaded

    scheduler = get_scheduler()  # None: none configured, a delayed task then runs on threads
    return scheduler is None or scheduler in (dask.threaded.get, dask.local.get_sync)


def merge_exposures(original: da.Array, indices: Sequence[int], new: da.Array | Sequence[da.Array],
                    keep: Sequence[int] | None = None) -> da.Array:
    """``original`` ``(exposure, ...)`` with exposures ``indices`` replaced by the rows of ``new`` (lazy).

    What a step that changes some exposures returns: ``new`` is :func:`map_exposures`' output
    for ``exposures=indices`` (or a list of one array per index); ``keep`` selects and orders
    the exposures of the result (default all).
    """
    row = {int(i): k for k, i in enumerate(indices)}
    keep = range(original.shape[0]) if keep is None else keep
    return da.stack([new[row[int(i)]] if int(i) in row else original[int(i)] for i in keep])


# --------------------------------------------------------------------------- detector steps
def _exposure_task(shared: dict, *arrays, kernel, n_inputs: int, plane_names: list[str], stacked: bool,
                   kwargs: dict, outputs: dict[str, Output], shapes: list[dict], where: list[str],
                   block_id=None) -> np.ndarray:
    j = block_id[1]
    inputs = [a if stacked else a[0] for a in arrays[:n_inputs]]
    planes = {name: a[0] for name, a in zip(plane_names, arrays[n_inputs:])}
    return _run(kernel, inputs, {**shared, **kwargs, **planes}, outputs, shapes[j], where[j])


def _shared(shared: Mapping[str, Any] | None):
    """The values every call gets, as one graph key (a reference table is sent once, not per task)."""
    return dask.delayed(dict(shared or {}), traverse=False)


def _who(filenames: list[str] | None, members: list[int]) -> str:
    text = ("exposure " if len(members) == 1 else "exposures ") + ", ".join(map(str, members))
    return text + (f" ({', '.join(filenames[i] for i in members)})" if filenames else "")


def map_exposures(
    kernel: Callable[..., Any],
    ds: xr.Dataset,
    outputs: Mapping[str, Any],
    *,
    inputs: Sequence[str] = ("sci", "err", "dq"),
    exposures: Sequence[int] | None = None,
    groups: Sequence[Sequence[int]] | None = None,
    blocks: str = "rows",
    block_size: int | None = None,
    planes: Mapping[str, Sequence[Any]] | None = None,
    per_exposure: Mapping[str, Sequence[Any]] | None = None,
    shared: Mapping[str, Any] | None = None,
    label: str = "kernel",
) -> dict[str, da.Array]:
    """Map a kernel over blocks of exposures of a detector Dataset: one task per block (lazy).

    Parameters
    ----------
    kernel : callable
        ``kernel(*inputs, **planes, **per_exposure, **shared)`` on numpy blocks: each input a
        ``(rows, columns)`` plane of one exposure, or with ``groups`` a ``(n, rows, columns)``
        stack of the group's exposures. Returns its outputs: a dict by name, a tuple in the
        order of ``outputs``, or one array.
    ds : xarray.Dataset
        Detector Dataset; its ``inputs`` are ``(exposure, y, x)`` variables (Dask or numpy).
    outputs : dict
        Output name → dtype (a ``(y, x)`` plane) or :class:`Output` (other dims, e.g. per
        column ``("rf_slice", "x")``; they must hold the blocked axis).
    inputs : sequence of str
        Variables of ``ds`` handed to the kernel, in order.
    exposures : sequence of int, optional
        The exposures to map over, one output row each (default all). Not with ``groups``.
    groups : sequence of sequence of int, optional
        Map over groups of exposures instead, stacked in one task per block (e.g. all the
        exposures of a detector); one output row per group.
    blocks : {"rows", "columns", "exposure"}
        ``rows``: bands of whole rows, the row chunks of the first input (or ``block_size``
        rows); ``columns``: bands of ``block_size`` whole columns (default
        :data:`DEFAULT_COLUMNS`); ``exposure``: whole frames.
    block_size : int, optional
        Rows or columns per block.
    planes : dict, optional
        Name → one ``(y, x)`` array (numpy or Dask) or None per exposure, cut into the same
        blocks and passed by keyword (e.g. the background to subtract). One array object given
        for several exposures is put in the graph once. Not with ``groups``.
    per_exposure : dict, optional
        Name → one plain value per exposure (or group), passed by keyword.
    shared : dict, optional
        Plain values passed by keyword to every call.
    label : str
        The step, for the note added to a kernel's exception.

    Returns
    -------
    dict of str to dask.array.Array
        Per output, ``(n, *dims)`` with ``n`` the exposures or groups in order. ``(y, x)``
        outputs are chunked like the first input (blocks of ``columns`` are rechunked to it).

    Raises
    ------
    ParameterError
        For a bad block layout, an unknown input, output dims without a size, or lists that
        do not match the exposures.
    """
    if blocks not in BLOCKS:
        raise ParameterError(f"blocks {blocks!r}: choose one of {', '.join(BLOCKS)}")
    if exposures is not None and groups is not None:
        raise ParameterError("give exposures or groups, not both")
    if groups is not None and planes:
        raise ParameterError("planes go with one exposure per block, not with groups")
    n_exp = ds.sizes["exposure"]
    stacked = groups is not None
    units = [[int(i) for i in g] for g in groups] if stacked else \
        [[int(i)] for i in (range(n_exp) if exposures is None else exposures)]
    for members in units:
        if not members or not all(0 <= i < n_exp for i in members):
            raise ParameterError(f"exposure indices {members} are not within the {n_exp} exposures")
    planes, per_exposure = dict(planes or {}), dict(per_exposure or {})
    for kind, values in (("planes", planes), ("per_exposure", per_exposure)):
        for name, seq in values.items():
            if len(seq) != len(units):
                raise ParameterError(f"{kind}[{name!r}] has {len(seq)} values for {len(units)} exposures or groups")
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    variables = {name: lazy_variable(ds, name) for name in inputs}
    in_chunks = variables[inputs[0]].chunks[1:]
    if blocks == "columns":
        axis_dim, axis_chunks = "x", _split(nx, block_size or DEFAULT_COLUMNS)
        layout = ((ny,), axis_chunks)
    else:
        axis_dim = "y"
        axis_chunks = (ny,) if blocks == "exposure" else \
            (_split(ny, block_size) if block_size else in_chunks[0])
        layout = (axis_chunks, (nx,))
    sizes = {"y": ny, "x": nx}
    specs = _outputs(outputs, PIXEL_DIMS)
    _check_outputs(specs, axis_dim, sizes, len(axis_chunks))
    bounds = _bounds(axis_chunks)
    shapes = _block_shapes(specs, axis_dim, bounds, sizes)
    if not units:  # nothing to map: empty arrays of the outputs' dims
        whole = _block_shapes(specs, axis_dim, [(0, sizes[axis_dim])], sizes)[0]
        return {name: da.zeros((0,) + whole[name], dtype=spec.dtype) for name, spec in specs.items()}
    kind = "rows" if axis_dim == "y" else "columns"
    filenames = [str(v) for v in ds["filename"].values] if "filename" in ds.coords else None
    cache: dict[int, tuple[Any, da.Array]] = {}
    shared_key = _shared(shared)
    pieces: dict[str, list[da.Array]] = {name: [] for name in specs}
    for u, members in enumerate(units):
        arrays = [variables[name][members].rechunk(((len(members),),) + layout) for name in inputs]
        kwargs = {name: values[u] for name, values in per_exposure.items()}
        plane_names = []
        for name, values in planes.items():
            value = values[u]
            if value is None:
                kwargs[name] = None
                continue
            if id(value) not in cache:  # keep the object too: its id stays unique while cached
                cache[id(value)] = (value, _lazy(value, layout).rechunk(layout)[None])
            arrays.append(cache[id(value)][1])
            plane_names.append(name)
        who = _who(filenames, members)
        tasks = da.map_blocks(
            _exposure_task, shared_key, *arrays, kernel=kernel, n_inputs=len(inputs), plane_names=plane_names,
            stacked=stacked, kwargs=kwargs, outputs=specs, shapes=shapes,
            where=[f"{label}: {who}, {kind} {a}:{b}" for a, b in bounds],
            drop_axis=[2 if axis_dim == "y" else 1], chunks=((1,), (1,) * len(bounds)),
            dtype=object, meta=np.empty((0, 0), dtype=object),
        )
        for name, arr in _fan_out(tasks, specs, axis_dim, axis_chunks, sizes).items():
            pieces[name].append(arr)
    out = {}
    for name, spec in specs.items():
        arr = da.concatenate(pieces[name], axis=0)
        out[name] = arr.rechunk((1,) + in_chunks) if spec.dims == PIXEL_DIMS else arr
    return out


# --------------------------------------------------------------------------- cube slabs
#: Planes per slab of an array held in memory (Dask arrays keep their own chunks).
DEFAULT_SLAB_PLANES = 64


def _slab_task(shared: dict, *arrays, kernel, per_plane: dict, bounds, outputs: dict[str, Output],
               shapes: list[dict], where: list[str], block_id=None) -> np.ndarray:
    j = block_id[1]
    z0, z1 = bounds[j]
    sliced = {name: None if values is None else values[z0:z1] for name, values in per_plane.items()}
    return _run(kernel, arrays, {**shared, **sliced}, outputs, shapes[j], where[j])


def map_slabs(
    kernel: Callable[..., Any],
    arrays: Sequence[Any],
    outputs: Mapping[str, Any],
    *,
    slab_planes: int | None = None,
    per_plane: Mapping[str, np.ndarray | None] | None = None,
    shared: Mapping[str, Any] | None = None,
    dim: str = "wavelength",
    label: str = "kernel",
) -> dict[str, da.Array]:
    """Map a kernel over slabs of planes (the first axis) of cube-shaped arrays: one task per slab (lazy).

    Parameters
    ----------
    kernel : callable
        ``kernel(*arrays, **per_plane, **shared)`` on numpy slabs ``(planes, ...)``, whole
        along the other axes. Returns its outputs (a dict by name, a tuple in the order of
        ``outputs``, or one array).
    arrays : sequence of array-like
        Numpy or Dask arrays with the same first axis (e.g. a cube's SCI, ERR, WMAP).
    outputs : dict
        Output name → dtype (one value per plane: dims ``(dim,)``) or :class:`Output` whose
        dims hold ``dim``.
    slab_planes : int, optional
        Planes per slab; default the first array's chunks along the first axis (Dask), or
        :data:`DEFAULT_SLAB_PLANES`.
    per_plane : dict, optional
        Name → one value per plane (1-D array, or None), sliced to the slab, by keyword.
    shared : dict, optional
        Plain values passed by keyword to every call.
    dim : str
        Name of the first axis in the outputs' dims.
    label : str
        The step, for the note added to a kernel's exception.

    Returns
    -------
    dict of str to dask.array.Array
        Per output, an array of its dims, chunked by slab along ``dim``.
    """
    if not arrays:
        raise ParameterError("map_slabs needs at least one array")
    first = arrays[0]
    nz = int(np.shape(first)[0])
    if slab_planes is not None:
        axis_chunks = _split(nz, slab_planes)
    elif isinstance(first, da.Array):
        axis_chunks = first.chunks[0]
    else:
        axis_chunks = _split(nz, DEFAULT_SLAB_PLANES)
    lazy = []
    for arr in arrays:
        if int(np.shape(arr)[0]) != nz:
            raise ParameterError(f"arrays of {np.shape(arr)[0]} and {nz} planes: map_slabs needs the same first axis")
        arr = _lazy(arr, (axis_chunks,) + tuple(-1 for _ in np.shape(arr)[1:]))
        lazy.append(arr.rechunk((axis_chunks,) + tuple((n,) for n in arr.shape[1:])))
    per_plane = dict(per_plane or {})
    for name, values in per_plane.items():
        if values is not None and len(values) != nz:
            raise ParameterError(f"per_plane[{name!r}] has {len(values)} values for {nz} planes")
    specs = _outputs(outputs, (dim,))
    _check_outputs(specs, dim, {}, len(axis_chunks))
    bounds = _bounds(axis_chunks)
    tasks = da.map_blocks(
        _slab_task, _shared(shared), *lazy, kernel=kernel, per_plane=per_plane, bounds=bounds,
        outputs=specs, shapes=_block_shapes(specs, dim, bounds, {}),
        where=[f"{label}: planes {a}:{b}" for a, b in bounds],
        drop_axis=list(range(1, lazy[0].ndim)), new_axis=[0], chunks=((1,), (1,) * len(bounds)),
        dtype=object, meta=np.empty((0, 0), dtype=object),
    )
    return {name: arr[0] for name, arr in _fan_out(tasks, specs, dim, axis_chunks, {}).items()}
