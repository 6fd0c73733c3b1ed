"""The cube builder: wavelength-slab dispatcher over Dask.

Flow for a request (see :func:`build_cubes`):

1. **Pixel tables** — one Dask task per (exposure, channel) selects the usable pixels, takes
   their geometry (computed once from the exposure's own WCS), sorts them by λ and writes them
   to the store's scratch group (:mod:`mrsdask.cube.pixels`); a job whose tasks run in this
   process keeps them in memory instead, up to a budget. They do not depend on the cube.
2. **Grid** — on the client, from footprints and cube parameters, exactly as the official step.
   A cube whose grid needs only the exposures' headers (sky-aligned ``multi`` cubes, cubes of
   channels 2 and 4 only: :func:`~mrsdask.cube.spec.needs_table_summaries`)
   is planned before its tables, and each of its slab tasks waits only for the table tasks of
   the bands its planes fall in (:func:`~mrsdask.cube.dispatch.tables_for_slabs`): slabs run
   beside the remaining table tasks, keeping both cores busy. Once the tables exist, a slab
   that one of them reached unexpectedly is computed again with it (none in practice). Any
   other cube is planned as soon as its own tables are written, and its slabs start then
   (:func:`~mrsdask.cube.dispatch.run_with_follow_ups`). Where slabs are fitted to a worker
   memory budget (from the rows the tables hold), every cube waits for every table.
3. **Slabs** — one task per wavelength slab of each cube reads only the table rows whose λ can
   reach the slab (binary search on the sorted λ), projects them onto the cube's tangent plane,
   runs the weighting kernel (:mod:`mrsdask.cube.kernels`) into slab-sized accumulators and
   writes the finished planes to the zarr cube (and to its s3d file when asked:
   :mod:`mrsdask.cube.s3d_sink`). Memory per task is set by the slab, not by the cube or the
   number of inputs.
4. **Finish** — the MIRI spectral-tear clean-up (needs per-plane counts from every slab),
   then the cube is marked complete and the scratch tables are removed.

An interrupted build run again with the same arguments reuses finished pixel tables and slabs.

The parts live in their own modules: :mod:`~mrsdask.cube.spec` (grid, parameters and slabs of
a cube), :mod:`~mrsdask.cube.dispatch` (tasks and their running), :mod:`~mrsdask.cube.slabs`
(the slab task and the finish), :mod:`~mrsdask.cube.headers` (attributes and WCS header),
:mod:`~mrsdask.cube.resume` (what an earlier build left) and :mod:`~mrsdask.cube.reader`
(:func:`open_cube`). This module runs them in order: :func:`build_cubes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging

import dask
import numpy as np
import xarray as xr

from mrsdask.cluster import wait_until_ready
from mrsdask.cube import memory
from mrsdask.cube import store as cube_store
from mrsdask.cube.cubepars import CubePars, default_cubepars
from mrsdask.cube.dispatch import (Work, missed_tables, pixel_table_groups, pixel_table_tasks, run_tasks,
                                   run_with_follow_ups, tables_for_slabs)
from mrsdask.cube.export import check_s3d_outputs, write_s3d
from mrsdask.cube.headers import cube_attrs, empty_cube_dataset
from mrsdask.cube.pixels import (PixelTableInfo, expect_readers, load_table_info, released_tables, row_range,
                                 table_key, table_memory, tables_in_memory)
from mrsdask.cube.plan import CubeRequest, plan_cubes
from mrsdask.cube.reader import check_cube_whole, open_cube
from mrsdask.cube.resume import check_output, prepare_cube, remove_group, restore_tear_counts
from mrsdask.cube.s3d_sink import s3d_sinks
from mrsdask.cube.slabs import accumulators_reused, build_slab, compute_slab, finish_cube, good_counts
from mrsdask.cube.spec import (CubeSpec, cube_window, linear_axis, moving_target_offsets, needs_table_summaries,
                               plan_cube_spec)
from mrsdask.cube.write_behind import writes_behind
from mrsdask.datamodel import detector as dmodel
from mrsdask.datamodel.detector import exposure_table
from mrsdask.dispatch import scheduler_threads, tasks_run_here
from mrsdask.io import outputs
from mrsdask.io.inputs import product_name
from mrsdask.io.sources import exposure_sources
from mrsdask.io.zarr_store import consolidate, consolidated_on_leaving
from mrsdask.phases import phase
from mrsdask.progress import scheduler_client

__all__ = [
    # This module's own functions.
    "build_cubes",
    "check_build",
    # Re-exported from the modules that define them, for code that imports them from here.
    "CubeSpec",
    "check_cube_whole",
    "check_output",
    "compute_slab",
    "linear_axis",
    "open_cube",
    "pixel_table_groups",
    "pixel_table_tasks",
    "row_range",
]

log = logging.getLogger(__name__)


def check_build(ds: xr.Dataset, root: str, request: CubeRequest, cubepars: CubePars | None = None,
                overwrite: bool = False, budget: memory.TaskBudget | None = None):
    """Every check of a build that needs no cluster and no pixel: run it before starting one.

    The inputs are usable as they are, the request fits the data (:mod:`mrsdask.cube.validate`),
    the output is a cube store that holds nothing the build would replace without ``overwrite``
    (:func:`check_output`) and, given the memory ``budget`` the tasks will have, an exposure's
    pixel-table task fits in it. :func:`build_cubes` runs it first.

    Returns
    -------
    root, rows, sources, plans
        The checked output path, the exposure table, the task sources and the cube plans.

    Raises
    ------
    MrsdaskError
        With what is wrong and the fix.
    """
    from mrsdask.cube.validate import check_request

    root = outputs.check_output_store(root)
    rows = exposure_table(ds)
    plans = plan_cubes(rows, request)
    check_request(rows, plans, request, cubepars or default_cubepars())
    sources = exposure_sources(ds)  # the files, the store, or the Dataset's own (in-memory) arrays
    check_output(root, plans, rows, request, sources, overwrite)
    memory.check_pixel_tables(1, budget)
    return root, rows, sources, plans


class SlabTasks:
    """The slab tasks of the cubes of :func:`build_cubes`, and where their planes go.

    ``attrs``: each cube's attributes (for its s3d file, started with its first slab).
    """

    def __init__(self, root: str, scratch: str, sinks, s3d_files: dict[str, str]):
        self.root, self.scratch, self.sinks, self.s3d_files = root, scratch, sinks, s3d_files
        self.attrs: dict[str, dict] = {}
        self.tasks: list = []
        self.keys: list[tuple[str, int]] = []

    def _slabs(self, spec: CubeSpec, done: np.ndarray):
        """Each slab not ``done`` and its cube's s3d sink, if it has one (started with the first)."""
        sink = self.sinks.sinks.get(spec.name)
        if sink is None and spec.name in self.s3d_files and not done.any() and tasks_run_here():
            sink = self.sinks.start(spec.name, empty_cube_dataset(spec, self.attrs[spec.name]),
                                    self.s3d_files[spec.name])
        for s in np.nonzero(~done)[0]:
            yield int(s), sink

    def add(self, spec: CubeSpec, done: np.ndarray | None) -> None:
        """Delayed tasks for a cube's slabs not ``done``, to compute with :meth:`run`."""
        if done is None:
            return
        spec_d = dask.delayed(spec, traverse=False)
        for s, sink in self._slabs(spec, done):
            self.tasks.append(dask.delayed(build_slab, pure=False)(spec_d, self.root, self.scratch, s, s3d=sink))
            self.keys.append((spec.name, s))

    def work(self, spec: CubeSpec, done: np.ndarray | None, waits: list | None = None) -> list[Work]:
        """A cube's slabs not ``done`` as :class:`~mrsdask.cube.dispatch.Work` keyed ``(cube, slab)``.

        ``waits``: for a cube planned before its tables, per slab, the pending tables it reads
        and the indices of the table tasks that write them (the slab comes after those);
        without it, every table of the cube is written.
        """
        if done is None:
            return []
        work = []
        for s, sink in self._slabs(spec, done):
            if waits is None:
                work.append(Work((spec.name, s), functools.partial(build_slab, spec, self.root, self.scratch, s, s3d=sink)))
            else:
                reads, after = waits[s]
                work.append(Work((spec.name, s), functools.partial(_build_slab_after, spec, self.root, self.scratch, s,
                                                                   sink, tuple(reads)), tuple(after)))
        return work

    def run(self, label: str, progress: bool) -> dict:
        """Compute the tasks added so far (then cleared); their results by ``(cube, slab)``."""
        tasks, keys = self.tasks, self.keys
        self.tasks, self.keys = [], []
        return dict(zip(keys, run_tasks(tasks, label, progress)))


@contextlib.contextmanager
def _slabs_here():
    """Where the slab tasks run in this process: their writes behind them
    (:mod:`mrsdask.cube.write_behind`) and each thread's accumulators reused from slab to slab."""
    if not tasks_run_here():
        yield
        return
    with accumulators_reused(), writes_behind(scheduler_threads()):
        yield


def _build_slab_after(spec: CubeSpec, root: str, scratch: str, slab_index: int, s3d, reads: tuple[str, ...],
                      *written) -> np.ndarray:
    """:func:`build_slab` of a slab planned before its tables, given the results of the table
    tasks it came after (``written``) and the keys of the pending tables it reads."""
    return build_slab(spec, root, scratch, slab_index, s3d=s3d, written=written, reads=reads)


def _with_tables(spec: CubeSpec, tables: dict) -> CubeSpec:
    """A spec planned before its tables, with their summaries: what :func:`plan_cube_spec` gives
    with every table (its tables, and the window that a linear drizzle axis pads by their dλ)."""
    used = tuple(tables[(t.exposure, t.channel)] for t in spec.tables)
    dmax = max((t.dwavelength_max for t in used), default=0.0)
    return dataclasses.replace(spec, tables=used, window=cube_window(spec.wave, spec.weighting, spec.params, dmax))


def _recompute_missed_slabs(specs: list, given: dict, slabs: SlabTasks, tables: dict, released: set[str],
                            table_tasks, progress: bool) -> None:
    """Add to ``slabs`` the early slabs that a table reached without being given to them.

    ``given``: the tables each ``(cube, slab)`` task read; ``released``: tables that left memory
    after their readers, built again here (``table_tasks(missing)``) if such a slab needs one.
    """
    lost = set()
    for spec, done in specs:
        if done is None:
            continue
        keep = done.copy()  # the slabs not to compute again
        for s in np.nonzero(~done)[0]:
            missed = missed_tables(spec, int(s), given[(spec.name, int(s))])
            if missed:
                log.warning("cube %s: slab %d is recomputed with the tables %s", spec.name, s, missed)
                lost.update(key for key in missed if key in released)
            keep[s] = not missed
        if not keep.all():
            slabs.add(spec, keep)
    if lost:  # dropped from memory after their readers: written again for those slabs
        log.info("pixel tables %s are built again for those slabs", sorted(lost))
        again: dict[int, list[int]] = {}
        for info in tables.values():
            if info.key in lost:
                again.setdefault(info.exposure, []).append(info.channel)
        for infos in run_tasks(table_tasks(again), "pixel tables again", progress):
            for info in infos:
                tables[(info.exposure, info.channel)] = info


def build_cubes(
    ds: xr.Dataset,
    root: str,
    request: CubeRequest,
    cubepars: CubePars | None = None,
    progress: bool = True,
    overwrite: bool = False,
    keep_scratch: bool = False,
    moving_target: bool = True,
    s3d: str | None = None,
    s3d_prefix: str | None = None,
) -> list[str]:
    """Build the cubes a request asks for into the zarr store ``root``.

    Parameters
    ----------
    ds : xarray.Dataset
        Detector stack (:func:`mrsdask.io.detector_store.open_cal` or
        :func:`~mrsdask.io.detector_store.open_detector_store`), or one changed in memory
        (e.g. by a detector step without ``output``): its exposures are then computed from its
        own arrays by the pixel-table tasks (:func:`mrsdask.io.sources.exposure_sources`).
    root : str
        Path or URL of the output zarr store; one group per cube.
    request : CubeRequest
        Output type, weighting, selections and overrides.
    cubepars : CubePars, optional
        Cube parameters; default the shipped FLT-9 set (:func:`default_cubepars`).
    progress : bool
        Show progress bars.
    overwrite : bool
        Rebuild the cubes even if complete in the store; needed to replace a complete cube built
        with other parameters or inputs. Without it, a complete cube of the same build is kept
        (and repaired if its store lost chunks), an unfinished one resumed.
    keep_scratch : bool
        Keep the pixel tables after the build.
    moving_target : bool
        Build the cubes of a MOVING target in the target's frame (the official
        ``assign_mtwcs``; :func:`~mrsdask.cube.spec.moving_target_offsets`). False: in the
        exposures' own WCS, as the official pipeline with ``assign_mtwcs`` skipped.
    s3d : str, optional
        Folder (or ``s3://`` prefix) to write every cube into as an ``s3d`` FITS file too,
        ``{s3d_prefix}_{name}_s3d.fits`` (:func:`mrsdask.cube.export.s3d_path`; ``overwrite``
        as :func:`~mrsdask.cube.export.check_s3d_outputs`, checked before any pixel is read).
        A cube built from scratch with tasks in this process gets its file as its slabs are
        written (:mod:`mrsdask.cube.s3d_sink`); any other one is exported from the store after.
    s3d_prefix : str, optional
        Start of the s3d file names (default the cubes' product name).

    Returns
    -------
    list of str
        Names of the cube groups written (open with ``xarray.open_zarr(root, group=name)``).

    Raises
    ------
    MrsdaskError
        Before any work, for whatever :func:`check_build` refuses.
    """
    pars = cubepars or default_cubepars()
    root, rows, sources, plans = check_build(ds, root, request, pars, overwrite)
    product = ds.attrs.get(dmodel.PRODUCT_ATTR) or product_name(
        r["filename"] for r in rows if r.get("exptype") != "background")
    s3d_files = {}
    if s3d:
        files = check_s3d_outputs(s3d, s3d_prefix or product, [plan.name for plan in plans], overwrite)
        s3d_files = dict(zip([plan.name for plan in plans], files))
        outputs.make_folder(s3d)
    scratch = cube_store.group_path(root, cube_store.SCRATCH)
    cube_store.open_group(root, mode="a").attrs["convention"] = cube_store.STORE_CONVENTION
    cube_store.open_group(scratch, mode="a")
    with phase("workers ready"):
        wait_until_ready(scheduler_client())  # a local cluster may still be starting its workers
    n_workers = scheduler_threads()
    budget = memory.task_budget(scheduler_client())  # fail early, with numbers, if tasks cannot fit

    # 1. pixel tables (cube independent; reused when present and for the same source).
    needed = sorted({(i, b.channel) for plan in plans for i, b in plan.inputs})
    # Where the tasks run in this process, tables stay in its memory (not written), up to a budget.
    memory_for_tables = (table_memory(budget.limit if budget is not None else None)
                         if tasks_run_here() and not keep_scratch else 0)
    # The store's consolidated metadata is written once, at the end (or on an error), not at
    # each cube's creation and completion.
    with tables_in_memory(scratch, memory_for_tables), consolidated_on_leaving(root):
        tables: dict[tuple[int, int], PixelTableInfo] = {}
        missing: dict[int, list[int]] = {}
        for index, channel in needed:
            info = load_table_info(scratch, table_key(index, channel), sources[index])
            if info is not None:
                tables[(index, channel)] = info
            else:
                missing.setdefault(index, []).append(channel)
        # Each file and WCS is read once for all its channels; a task takes a few exposures of one
        # setting, which share the detector-frame geometry.
        memory.check_pixel_tables(len(missing), budget)
        groups = pixel_table_groups(missing, rows, n_workers)
        todo = pixel_table_tasks(missing, rows, sources, scratch, n_workers, groups=groups)
        task_of = {(i, c): k for k, group in enumerate(groups) for i, channels in group for c in channels}
        offsets = moving_target_offsets(rows) if moving_target else {}
        if offsets:
            log.info("moving target: cubes are built in the target frame (%d exposures shifted)", len(offsets))

        def plan_and_prepare(plan, known):
            spec = plan_cube_spec(plan, request, rows, known, sources, pars, n_workers, offsets)
            spec = memory.fit_slabs(spec, budget, explicit=request.slab_planes is not None)
            attrs = {**cube_attrs(spec, rows, request, sources), dmodel.PRODUCT_ATTR: product}
            spec, done = prepare_cube(root, spec, attrs, overwrite)
            return spec, done, attrs

        # A cube whose grid needs no table footprint (headers only) is planned now and its slabs run
        # beside the table tasks, each as soon as the tables it reads are written; the others are
        # planned as soon as all their own tables are written. Slab sizes are fitted to a memory
        # budget from the tables' rows: with one, every cube waits for every table.
        follow = bool(todo) and budget is None
        early = [plan for plan in plans if follow and not needs_table_summaries(plan, request, rows)]
        with s3d_sinks() as sinks:
            specs, given = [], {}
            slabs = SlabTasks(root, scratch, sinks, s3d_files)
            late = [plan for plan in plans if plan not in early]
            late_keys = {table_key(i, b.channel) for plan in late for i, b in plan.inputs}
            # The other cubes, planned beside the tasks as soon as their own tables are written
            # (on this process's threads; elsewhere after every table), and their slabs run then.
            waiting = [plan for plan in late if follow]

            def plan_early_cubes() -> list[Work]:
                """The cubes planned from headers, while the table tasks run; each of their slabs
                comes after the table tasks that write the tables it reads."""
                work, readers = [], {}
                for plan in early:
                    pending = {ic: PixelTableInfo.pending(table_key(*ic), *ic)
                               for ic in {(i, b.channel) for i, b in plan.inputs} if ic not in tables}
                    spec, done, slabs.attrs[plan.name] = plan_and_prepare(plan, {**tables, **pending})
                    specs.append((spec, done))
                    bands = {table_key(i, b.channel): b.name for i, b in plan.inputs if (i, b.channel) in pending}
                    task_of_key = {table_key(*ic): task_of[ic] for ic in pending}
                    needs = tables_for_slabs(spec, pars, bands)
                    known = {t.key for t in spec.tables if not t.is_pending}
                    for s, keys_s in enumerate(needs):
                        given[(spec.name, s)] = known | set(keys_s)
                    work.extend(slabs.work(spec, done, [(keys_s, sorted({task_of_key[key] for key in keys_s}))
                                                        for keys_s in needs]))
                    for s in np.nonzero(~done)[0] if done is not None else ():
                        for key in needs[s]:
                            readers[key] = readers.get(key, 0) + 1
                # A table that only these slabs read leaves memory after the last of them.
                expect_readers(scratch, {key: n for key, n in readers.items() if key not in late_keys})
                return work

            def plan_ready_cubes(infos: list) -> list[Work]:
                log.debug("pixel tables %s written", ", ".join(info.key for info in infos))
                for info in infos:
                    tables[(info.exposure, info.channel)] = info
                work = []
                for plan in [p for p in waiting if all((i, b.channel) in tables for i, b in p.inputs)]:
                    waiting.remove(plan)
                    log.debug("cube %s: its tables are written; planned beside the other tasks", plan.name)
                    spec, done, slabs.attrs[plan.name] = plan_and_prepare(plan, tables)
                    specs.append((spec, done))
                    work.extend(slabs.work(spec, done))
                return work

            written, results = [], {}
            if todo:
                with (phase(f"pixel tables ({len(todo)} tasks)" + (", grids and slabs" if early or waiting else "")),
                      _slabs_here()):
                    written, results = run_with_follow_ups(
                        todo, "pixel tables" + (" and cube slabs" if early or waiting else ""), progress,
                        lambda k, infos: plan_ready_cubes(infos), start=plan_early_cubes)
            n_early = len(early)
            for infos in written:
                for info in infos:
                    tables[(info.exposure, info.channel)] = info
            if budget is not None and memory_for_tables:  # the slabs plan with what the tables leave
                budget = dataclasses.replace(budget, baseline=budget.baseline + memory_for_tables)
            for (index, channel), info in tables.items():
                if info.n == 0:
                    log.warning("exposure %s channel %d: no usable pixel", rows[index]["filename"], channel)

            # 2. the early cubes' specs with their tables, and the grids of the cubes not planned
            # yet. A table that reached an early slab it was not given to (outside its band's
            # range) has that slab recomputed with every table.
            with phase("grids"):
                for k, (spec, done) in enumerate(specs[:n_early]):
                    specs[k] = (_with_tables(spec, tables), done)
                _recompute_missed_slabs(specs[:n_early], given, slabs, tables, released_tables(scratch),
                                        lambda again: pixel_table_tasks(again, rows, sources, scratch, n_workers),
                                        progress)
                planned = {spec.name for spec, _ in specs}
                for plan in plans:
                    if plan.name not in planned:
                        spec, done, slabs.attrs[plan.name] = plan_and_prepare(plan, tables)
                        specs.append((spec, done))
                        slabs.add(spec, done)

            # 3. slabs of the other cubes, together.
            if slabs.tasks:
                with phase(f"slabs ({len(slabs.tasks)} tasks)"), _slabs_here():
                    results.update(slabs.run("cube slabs", progress))

            # 4. finish.
            with phase("finish"):
                names = []
                for spec, done in sorted(specs, key=lambda item: plans.index(item[0].plan)):
                    names.append(spec.name)
                    if done is None:
                        continue
                    ngood = np.zeros(spec.wave.nz, dtype=np.int64)
                    for s in range(spec.n_slabs):
                        z0, z1 = spec.slab_bounds(s)
                        counts = results.get((spec.name, s))
                        ngood[z0:z1] = counts if counts is not None else good_counts(root, spec, z0, z1)
                    restore_tear_counts(root, spec, ngood, {s for (n, s) in results if n == spec.name})
                    tears = finish_cube(spec, root, ngood)
                    if spec.name in sinks.sinks:
                        sinks.finish(spec.name, tears)
                    log.info("cube %s: %s voxels, %d spectral-tear planes blanked",
                             spec.name, f"{spec.wave.nz * spec.grid.ny * spec.grid.nx:,}", tears.size)
                if not keep_scratch:
                    remove_group(root, cube_store.SCRATCH)
                consolidate(root)  # one read for xarray.open_zarr (the scratch tables are gone from the copy)
    # The s3d files of cubes kept or resumed, from the store.
    rest = [name for name in names if name in s3d_files and name not in sinks.sinks]
    if rest:
        with phase("s3d export"):
            for name in rest:
                write_s3d(open_cube(root, name, dask=False), s3d_files[name])  # block by block: no Dask needed
    return names


