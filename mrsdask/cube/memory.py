"""Memory of cube-building tasks against the workers' memory limits.

A run that cannot fit must fail before it starts, with the numbers, rather than thrash (a Dask
worker pauses at 80 % of its limit and is killed at 95 %, and a killed task is retried on the
next worker, which dies the same way). Two kinds of task matter:

* a **pixel-table task** reads one exposure and evaluates its full per-pixel geometry (λ, dλ,
  sky centre and four footprint corners of ~0.4 M pixels per channel, one channel at a time):
  about :data:`PIXEL_TABLE_TASK_BYTES`, whatever the cube;
* a **slab task** holds four float64 accumulators and four 4-byte output planes per voxel of
  its slab (:data:`BYTES_PER_SLAB_VOXEL`), and the output planes of its thread's previous
  slab while they are written (:data:`BYTES_PER_VOXEL_WRITTEN_BEHIND`), plus the pixel-table
  rows whose λ reaches the slab (:data:`BYTES_PER_ROW_READ` each, with their temporaries),
  plus a small fixed part. The rows are counted exactly from the tables' λ index, so the
  estimate is bounded by the slab.

What a task may use is the smallest worker's limit × the pause fraction, less the worker's
own footprint (:data:`WORKER_BASELINE_BYTES`: Python, numpy, jwst/gwcs, the numba kernels,
the cached detector-frame geometry; or what the worker holds outside Dask's data when that is
more, :func:`held_memory`, e.g. after earlier pipeline steps), shared by the worker's threads. Numbers measured on the simulated 12A exposures (1024 × 1032
detector, 2 × 0.38 M channel-1 pixels): worker after imports 231 MB RSS; pixel-table task
+238 MB peak; 1024-plane slab of a 51 × 39 cube 243 MB traced (93 MB of voxels, 0.75 M rows).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mrsdask.errors import ParameterError

MiB = 2**20
#: 4 float64 accumulators + sci/err/wmap float32 + dq uint32 per voxel of a slab.
BYTES_PER_SLAB_VOXEL = 4 * 8 + 4 * 4
#: The four planes of the previous slab of the task's thread, which may still be written
#: (in process: :mod:`mrsdask.cube.write_behind`; counted everywhere, to be safe).
BYTES_PER_VOXEL_WRITTEN_BEHIND = 4 * 4
#: Per pixel-table row a slab reads: 14 float64 columns, the selected copies and the
#: tangent-plane corners.
BYTES_PER_ROW_READ = 256
SLAB_FIXED_BYTES = 16 * MiB
#: Peak of one exposure's pixel-table task above the worker's baseline.
PIXEL_TABLE_TASK_BYTES = 240 * MiB
#: A worker process with mrsdask, jwst/gwcs and the kernels loaded, plus the detector-frame
#: geometry it keeps for the exposures of a setting (``frames.FRAME_CACHE_BYTES``, 52 MiB).
WORKER_BASELINE_BYTES = (224 + 52) * MiB
#: Dask configuration key holding ``--memory-limit`` (bytes) for a job run in this process
#: (set by :func:`mrsdask.cluster.dask_client`): :func:`task_budget` plans its tasks against it.
IN_PROCESS_LIMIT_KEY = "mrsdask.in-process-memory-limit"


def format_bytes(nbytes: float) -> str:
    """Bytes in the decimal units of ``--memory-limit`` (``"240 MB"``, ``"1.5 GB"``)."""
    value = float(nbytes)
    if abs(value) >= 1e9:
        return f"{value / 1e9:.1f} GB"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.0f} MB"
    return f"{value / 1e3:.0f} kB"


@dataclass(frozen=True)
class TaskBudget:
    """Memory one task may use on the tightest worker.

    Attributes
    ----------
    limit : int
        Smallest worker memory limit (bytes).
    threads : int
        Threads of that worker (tasks running side by side in its memory).
    fraction : float
        Share of the limit usable before the worker pauses (``distributed.worker.memory.pause``).
    """

    limit: int
    threads: int = 1
    fraction: float = 0.8
    #: What the worker holds without any task: :data:`WORKER_BASELINE_BYTES` for a fresh one,
    #: more for a worker that earlier steps have run on (:func:`task_budget` measures it).
    baseline: int = WORKER_BASELINE_BYTES

    @property
    def per_task(self) -> int:
        """Bytes one task may use (can be negative: the worker alone does not fit)."""
        return int((self.limit * self.fraction - self.baseline) / max(1, self.threads))

    def describe(self) -> str:
        """The numbers, in words."""
        left = (f"{format_bytes(self.per_task)} per task" if self.per_task > 0 else "nothing for tasks")
        return (f"the smallest worker memory limit is {format_bytes(self.limit)} ({self.threads} thread{'s' if self.threads > 1 else ''}); Dask pauses "
                f"a worker at {self.fraction:.0%} of it and the worker itself takes ~{format_bytes(self.baseline)}, "
                f"which leaves {left}")


def usable_fraction() -> float:
    """Share of a worker's memory limit its tasks may fill: Dask's pause (else terminate) fraction."""
    import dask

    for key in ("pause", "terminate"):
        value = dask.config.get(f"distributed.worker.memory.{key}", None)
        if value not in (None, False):
            return float(value)
    return 1.0


def task_budget(client) -> TaskBudget | None:
    """Budget of the tightest worker of a ``distributed.Client`` (None: no limit).

    Without a client (tasks run in this process): the memory limit given to
    :func:`mrsdask.cluster.dask_client` for it, shared by the scheduler's threads, if any.
    """
    if client is None:
        import dask

        limit = dask.config.get(IN_PROCESS_LIMIT_KEY, None)
        if not limit:
            return None
        return TaskBudget(int(limit), int(dask.config.get("num_workers", None) or 1), usable_fraction())
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except Exception:
        return None
    tight = None
    fraction = usable_fraction()
    held = held_memory(client)
    for address, w in workers.items():
        limit = int(w.get("memory_limit") or 0)
        if limit <= 0:
            continue
        baseline = max(WORKER_BASELINE_BYTES, held.get(address, 0))
        budget = TaskBudget(limit, int(w.get("nthreads") or 1), fraction, baseline)
        if tight is None or budget.per_task < tight.per_task:
            tight = budget
    return tight


def _held_by_worker(dask_worker=None) -> int:
    """Resident memory of this worker less what Dask manages in it (its data), bytes."""
    from mrsdask.release import rss_bytes

    return max(0, rss_bytes() - int(getattr(getattr(dask_worker, "state", None), "nbytes", 0) or 0))


def held_memory(client) -> dict[str, int]:
    """By worker address: memory each worker holds outside Dask's data (its unmanaged memory), now.

    Measured rather than assumed: earlier steps leave imported modules, compiled kernels and
    caches behind, and a plan that counts only a fresh worker's footprint can fill a worker
    past Dask's pause fraction. Empty if the workers cannot be asked.
    """
    try:
        return {address: int(v) for address, v in client.run(_held_by_worker).items()}
    except Exception:
        return {}


def check_pixel_tables(n_tasks: int, budget: TaskBudget | None) -> None:
    """Fail early if one exposure's pixel-table task cannot fit in a worker."""
    if not n_tasks or budget is None or PIXEL_TABLE_TASK_BYTES <= budget.per_task:
        return
    need = PIXEL_TABLE_TASK_BYTES + budget.baseline
    raise ParameterError(
        f"not enough worker memory: a pixel-table task (one exposure's full per-pixel geometry) needs "
        f"about {format_bytes(PIXEL_TABLE_TASK_BYTES)}, but {budget.describe()}; give each worker at least "
        f"{format_bytes(need * budget.threads / budget.fraction)} (--memory-limit, or fewer --threads-per-worker)"
    )


# --------------------------------------------------------------------------- slabs
def slab_window(spec, z0: int, z1: int) -> tuple[float, float]:
    """λ range of the pixel rows a slab reads (as :func:`mrsdask.cube.slabs.compute_slab`)."""
    wave = spec.wave
    zc = wave.zcoord[z0:z1]
    zw = wave.zwidth[z0:z1]
    if spec.weighting == "drizzle":
        dmax = max((t.dwavelength_max for t in spec.tables), default=0.0)
        lo = float(np.min(zc - zw / 2.0)) - dmax / 2.0
        hi = float(np.max(zc + zw / 2.0)) + dmax / 2.0
    else:
        params = spec.params
        roiw = params["roiw"] if wave.linear else float(np.max(params["roiw_table"]))
        lo, hi = float(zc[0]) - roiw, float(zc[-1]) + roiw
    return max(lo, spec.window[0]), min(hi, spec.window[1])


def max_rows_read(spec, slab_planes: int) -> int:
    """Most pixel-table rows any slab of ``slab_planes`` planes reads."""
    from mrsdask.cube.pixels import row_range

    nz = spec.wave.nz
    most = 0
    for z0 in range(0, nz, slab_planes):
        lo, hi = slab_window(spec, z0, min(nz, z0 + slab_planes))
        rows = 0
        for table in spec.tables:
            start, stop = row_range(table, lo, hi)
            rows += max(0, stop - start)
        most = max(most, rows)
    return most


def slab_task_bytes(spec, slab_planes: int | None = None) -> int:
    """Estimated peak memory of one slab task of a cube spec."""
    planes = int(slab_planes or spec.slab_planes)
    voxels = planes * spec.grid.ny * spec.grid.nx
    return int((BYTES_PER_SLAB_VOXEL + BYTES_PER_VOXEL_WRITTEN_BEHIND) * voxels + BYTES_PER_ROW_READ * max_rows_read(spec, planes) + SLAB_FIXED_BYTES)


def fit_slabs(spec, budget: TaskBudget | None, explicit: bool):
    """The spec with slabs that fit the workers' memory (smaller ones when chosen automatically).

    Raises
    ------
    ParameterError
        If an explicit ``--slab-planes`` does not fit (naming the largest that does), or no slab
        fits at all.
    """
    if budget is None:
        return spec
    need = slab_task_bytes(spec)
    if need <= budget.per_task:
        return spec
    planes = spec.slab_planes
    best = None
    lo, hi = 1, planes - 1          # largest p < planes that fits (estimate grows with p)
    while lo <= hi:
        mid = (lo + hi) // 2
        if slab_task_bytes(spec, mid) <= budget.per_task:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    detail = (f"cube {spec.name}: a slab task of {planes} plane(s) × {spec.grid.ny} × {spec.grid.nx} spaxels "
              f"needs about {format_bytes(need)} ({BYTES_PER_SLAB_VOXEL + BYTES_PER_VOXEL_WRITTEN_BEHIND} B per voxel for accumulators and outputs + "
              f"{max_rows_read(spec, planes):,} pixel rows read × {BYTES_PER_ROW_READ} B), but {budget.describe()}")
    if best is None:
        one = slab_task_bytes(spec, 1)
        raise ParameterError(
            f"not enough worker memory: {detail}; even a 1-plane slab needs {format_bytes(one)}: give each worker "
            f"at least {format_bytes((one * budget.threads + budget.baseline) / budget.fraction)} (--memory-limit)"
        )
    if explicit:
        raise ParameterError(
            f"not enough worker memory: {detail}; pass --slab-planes {best} (or fewer) or a larger "
            f"--memory-limit (at least {format_bytes((need * budget.threads + budget.baseline) / budget.fraction)})"
        )
    import logging

    logging.getLogger(__name__).warning(
        "cube %s: slabs of %d planes would need %s per task; using %d planes (%s) to fit %s",
        spec.name, planes, format_bytes(need), best, format_bytes(slab_task_bytes(spec, best)), format_bytes(budget.per_task))
    return dataclasses.replace(spec, slab_planes=int(best))
