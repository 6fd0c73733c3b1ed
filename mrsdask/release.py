"""Give memory back between and during steps: per-process caches, the Python heap, glibc's free pages.

A worker's memory that Dask does not manage ("unmanaged": what its tasks allocated and freed,
and what mrsdask keeps per process) counts against its memory limit like the rest. glibc
keeps freed heap pages for reuse instead of returning them to the system when a live
allocation sits above them (mrsdask's workers serve arrays up to 32 MiB from the heap, see
:data:`mrsdask.cluster.WORKER_MALLOC_ENV`), so after a step of large tasks a worker can stay
well above what it holds: measured on the 24-exposure spec3 run, 0.8-1.2 GB of RSS per worker
between steps, 0.25-0.4 GB of it free heap. A worker above Dask's pause fraction (80 %) with
nothing managed to spill stays paused for good, and the run stalls with it.

Two remedies, both here:

* :func:`release_worker_memory` — after each pipeline step (:mod:`mrsdask.pipeline.runner`),
  every worker drops the per-process caches that only that step needed (gwcs of files,
  detector-frame geometry, open pixel tables) and returns its free heap
  (:func:`release_process_memory`);
* :func:`install_auto_trim` — on each worker (the ``dask_setup`` of this module, a worker
  preload of mrsdask's local clusters, and of :mod:`mrsdask.preload`): a periodic check that
  returns the free heap when the process is above :data:`TRIM_FRACTION` of its memory limit,
  so that a worker that freed its task's memory does not stay paused on pages it no longer uses.

This module imports nothing heavy: it is a worker preload of small workers too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import time

log = logging.getLogger(__name__)

#: Share of a worker's memory limit above which its free heap is returned (checked every
#: :data:`TRIM_INTERVAL_S`); below Dask's pause fraction (0.8) so that a worker gets there first.
TRIM_FRACTION = 0.6
TRIM_INTERVAL_S = 1.0
#: A trim that gave back less than this is not tried again for :data:`TRIM_BACKOFF_S`: the memory
#: is in use, and walking the heap every second would only cost time.
TRIM_MIN_GAIN = 16 * 2**20
TRIM_BACKOFF_S = 10.0


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _libc()


def rss_bytes() -> int:
    """Resident memory of this process (0 if it cannot be read)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or the process table unreadable
        return 0


#: glibc allocator settings of every process that runs mrsdask's tasks: arrays up to 32 MiB
#: come from the heap and up to 128 MiB of free heap is kept, instead of a fresh ``mmap`` (and
#: a page fault per 4 KiB page) for each array above 128 KiB. A pixel-table task allocates
#: and frees ~0.5 GB in arrays of 3-40 MB: on the 24-exposure multi cube in one process this
#: took the page faults from 350,000 to none and the system time from 5.4 to 3.5 CPU-s.
#: Local-cluster workers get them as environment variables (:data:`mrsdask.cluster.WORKER_MALLOC_ENV`).
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 128 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def use_task_allocator_settings() -> bool:
    """Apply :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD` to this process (glibc's
    ``mallopt``): for tasks run in this process. False where there is no glibc, or where the
    environment sets glibc's own variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``):
    those win, as on the workers."""
    mallopt = getattr(_LIBC, "mallopt", None)
    if mallopt is None or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def malloc_trim() -> bool:
    """Return glibc's free heap pages to the system (``malloc_trim(0)``); False where there is no glibc."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is None:
        return False
    return bool(trim(0))


def clear_process_caches() -> list[str]:
    """Empty mrsdask's per-process caches (only of modules already loaded); the names of those emptied.

    The gwcs of recently read files (:func:`mrsdask.io.calfits.load_wcs`,
    ``mrsdask.io.detector_store._wcs_parts``), the detector-frame geometry and slice maps
    (:mod:`mrsdask.instrument.frames`) and the open pixel-table arrays of the cube builder
    (whose scratch store is removed after the build). Each is rebuilt on demand.
    """
    cleared = []
    for module_name, attribute in (("mrsdask.io.calfits", "load_wcs"), ("mrsdask.io.detector_store", "_wcs_parts"),
                                   ("mrsdask.instrument.frames", "FRAME_CACHE"),
                                   ("mrsdask.instrument.frames", "SLICE_MAPS"),
                                   ("mrsdask.cube.pixels", "_OPEN_TABLES")):
        module = sys.modules.get(module_name)
        cache = getattr(module, attribute, None) if module is not None else None
        if cache is None:
            continue
        if hasattr(cache, "cache_clear"):
            cache.cache_clear()
        else:
            cache.clear()
        cleared.append(f"{module_name}.{attribute}")
    return cleared


def release_process_memory(caches: bool = True) -> dict[str, int]:
    """Drop the per-process caches (``caches``), collect garbage and return the free heap.

    Returns
    -------
    dict
        ``rss_before`` and ``rss_after`` (bytes).
    """
    before = rss_bytes()
    if caches:
        clear_process_caches()
    gc.collect()
    malloc_trim()
    return {"rss_before": before, "rss_after": rss_bytes()}


def release_worker_memory(client) -> dict[str, dict[str, int]]:
    """:func:`release_process_memory` on every worker of a ``distributed.Client``; by worker address.

    Tasks running meanwhile are not disturbed (the caches are rebuilt on demand). A worker that
    cannot be reached is left out of the result.
    """
    try:
        return client.run(release_process_memory)
    except Exception as exc:  # a worker gone or the cluster closing: nothing to release there
        log.debug("releasing worker memory failed: %s", exc)
        return {}


def describe_release(results: dict[str, dict[str, int]]) -> str:
    """One line: each worker's RSS before and after a release (MB)."""
    parts = [f"{r['rss_before'] / 1e6:.0f} -> {r['rss_after'] / 1e6:.0f} MB" for r in results.values()]
    return "worker memory released: " + ", ".join(parts)


class AutoTrim:
    """Periodic check of one worker: above :data:`TRIM_FRACTION` of its limit, return the free heap.

    Parameters
    ----------
    limit : int
        The worker's memory limit (bytes); 0 or None: never trims.
    fraction, min_gain, backoff_s
        See the module constants.
    """

    def __init__(self, limit: int | None, fraction: float = TRIM_FRACTION, min_gain: int = TRIM_MIN_GAIN,
                 backoff_s: float = TRIM_BACKOFF_S):
        self.threshold = int((limit or 0) * fraction)
        self.min_gain = min_gain
        self.backoff_s = backoff_s
        self.quiet_until = 0.0
        self.trims = 0
        self.freed = 0

    def __call__(self) -> int:
        """Check once; the bytes given back (0 if none or not tried)."""
        if self.threshold <= 0 or time.monotonic() < self.quiet_until:
            return 0
        before = rss_bytes()
        if before <= self.threshold:
            return 0
        gc.collect()
        malloc_trim()
        gained = max(0, before - rss_bytes())
        self.trims += 1
        self.freed += gained
        if gained < self.min_gain:
            self.quiet_until = time.monotonic() + self.backoff_s
        else:
            log.info("worker memory above %.0f MB: %.0f MB of free heap given back", self.threshold / 1e6, gained / 1e6)
        return gained


def install_auto_trim(worker, interval_s: float = TRIM_INTERVAL_S) -> AutoTrim | None:
    """Run :class:`AutoTrim` every ``interval_s`` on a ``distributed`` worker (once per worker)."""
    if getattr(_LIBC, "malloc_trim", None) is None or "mrsdask-auto-trim" in worker.periodic_callbacks:
        return None
    from tornado.ioloop import PeriodicCallback

    check = AutoTrim(getattr(worker.memory_manager, "memory_limit", None))
    callback = PeriodicCallback(check, interval_s * 1000)
    worker.periodic_callbacks["mrsdask-auto-trim"] = callback  # started with the worker's own callbacks
    from distributed.core import Status

    if worker.status == Status.running:  # installed on a worker already started
        callback.start()
    return check


def dask_setup(worker) -> None:
    """Worker preload protocol: install :func:`install_auto_trim`."""
    install_auto_trim(worker)
