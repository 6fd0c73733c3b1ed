"""Connect to, or start, the Dask cluster that runs mrsdask's tasks.

Order of precedence: ``--scheduler ADDRESS`` (or a scheduler file), then
``DASK_SCHEDULER_ADDRESS``, else a ``LocalCluster`` of separate worker processes (one thread
each, so numba kernels and GIL-holding WCS evaluations run truly in parallel) with a per-worker
memory limit. Before a build, :mod:`mrsdask.cube.memory` checks its tasks against the smallest
worker limit (:func:`worker_memory_limit`), so a run that cannot fit fails at once.

``--scheduler threads`` (or ``synchronous``) runs the tasks in this process instead, on Dask's
local scheduler: no worker processes to start, which is what a small job wants
(:func:`in_process_is_faster`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import weakref
from collections.abc import Iterator

from mrsdask.errors import ParameterError
from mrsdask.release import MMAP_THRESHOLD, TRIM_THRESHOLD, use_task_allocator_settings

log = logging.getLogger(__name__)

#: glibc malloc settings for worker processes. ``distributed`` starts workers with
#: ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's mmap threshold at 128 KiB: every
#: numpy temporary above that size is then mmapped and unmapped, and page faults dominate
#: (measured: 24-exposure pixel tables 73 s with 104 s system CPU in total). Serving arrays up to
#: 32 MiB from the heap and trimming above 128 MiB of free heap removes that cost (a 4-exposure
#: pixel-table run: 17.2 s → 5.4 s, system CPU 11.1 s → 0.1 s) and still returns big blocks.
#: Values already in the environment win (the nanny's rule), so a site can override them.
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD, "MALLOC_TRIM_THRESHOLD_": TRIM_THRESHOLD}
#: Worker preload module of local clusters (:mod:`mrsdask.preload`): the task modules imported at
#: worker start rather than in the first task.
WORKER_PRELOAD = "mrsdask.preload"
#: Worker preload of every local cluster (:mod:`mrsdask.release`): returns a worker's free heap
#: when it nears its memory limit, so that a worker does not stay paused on memory it freed.
WORKER_TRIM_PRELOAD = "mrsdask.release"
#: Smallest worker memory limit that gets the preload (~230 MB of modules): below it a worker
#: cannot hold a pixel-table task next to them either (see mrsdask.cube.memory).
PRELOAD_MIN_MEMORY = 600 * 2**20
#: Clients of the local clusters started by :func:`dask_client`, and their clusters (only those
#: are waited for by :func:`wait_until_ready`: a launcher's cluster, e.g. a batch queue, has the
#: workers it has).
_STARTED_HERE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: ``--scheduler`` values that run the tasks in this process (Dask's local schedulers).
IN_PROCESS_SCHEDULERS = ("threads", "synchronous")
#: Largest job, in exposure-channels (pixel tables), that runs faster in this process than on a
#: new local cluster. Starting one costs ~2-3 s on 2 cores (worker processes spawn and import
#: while the client reads its inputs, then close); the threaded scheduler shares one GIL, so
#: bigger jobs gain more from separate processes than the start costs. Measured on 2 cores
#: (wall, whole command, in process vs 2 workers): band 1A from 4 exposures 3.0 vs 5.6 s;
#: multi from 6 exposures (12 exposure-channels) 8.5 vs 9.7 s; from 12 (24) 13.8-15.0 vs
#: 14.0 s; from 24 (48) 24.5 vs 22.5 s; channel cubes from 24 exposures 20.0 vs 17.5 s.
IN_PROCESS_MAX_EXPOSURE_CHANNELS = 16
#: The same limit for cube jobs. Their in-process pixel tables hand every exposure its setting's
#: detector frames (:func:`mrsdask.cube.pixels.build_pixel_table_group`); before, tasks of two
#: settings in two threads evicted each other's frames and recomputed them, which the figures
#: above include. Measured since (CPU time of the whole command, 2 cores under load 6-8, so
#: wall times are not a quiet machine's): multi cube from 24 exposures (48) in process 36.9
#: CPU-s, 59.6 s wall, vs 2 workers 49.7 CPU-s, 71.9 s; 4 channel cubes from 24 exposures 35.0
#: CPU-s, 81.4 s vs 45.8 CPU-s, 85.7 s. The workers' start (imports) and the pickled task
#: traffic cost more than the GIL, which the compiled kernels release, takes back.
IN_PROCESS_MAX_CUBE_EXPOSURE_CHANNELS = 48
#: The same limit for jobs that fit residual fringes (a detector job counts 2 per exposure). The
#: fit holds the GIL for about 45 % of its time (numpy and Python between the compiled cores),
#: which favours processes as jobs grow; but worker start-up and moving the frames and their
#: geometry between processes cost more on small jobs. Measured (whole ``mrsdask fringe
#: --residual`` command, 2 cores, load 1.2-2.6 from other work, 34A whole-exposure bench
#: input): 1 exposure in process 20.3 s wall / 25.2 CPU-s vs 2 workers 28.2 s / 35.6 CPU-s;
#: 2 exposures 45.0 s / 48.5 CPU-s vs 66.3 s / 75.3 CPU-s. The limit is one exposure until
#: larger jobs are measured on a quiet machine.
IN_PROCESS_MAX_FRINGE_EXPOSURE_CHANNELS = 2


def in_process_is_faster(n_exposure_channels: int, cube: bool = False, fits_fringes: bool = False) -> bool:
    """Whether a job of ``n_exposure_channels`` pixel tables (a cube job's if ``cube``, one that
    fits residual fringes if ``fits_fringes``) should skip the local cluster."""
    most = (IN_PROCESS_MAX_FRINGE_EXPOSURE_CHANNELS if fits_fringes else
            IN_PROCESS_MAX_CUBE_EXPOSURE_CHANNELS if cube else IN_PROCESS_MAX_EXPOSURE_CHANNELS)
    return 0 < n_exposure_channels <= most


#: Memory limit of each local worker when none is given.
DEFAULT_WORKER_MEMORY = "2GB"


def check_cluster_options(n_workers: int | None = None, threads_per_worker: int = 1,
                          memory_limit: str | None = None) -> int | None:
    """Check the cluster options before anything starts; return the memory limit in bytes.

    Raises
    ------
    ParameterError
        For fewer than one worker or thread, an unreadable memory limit, or a limit that leaves
        a worker nothing for its tasks (it would not even start: the nanny kills it at 95 %).
    """
    if n_workers is not None and int(n_workers) < 1:
        raise ParameterError(f"--n-workers {n_workers}: give at least 1 (or leave it out: one per core)")
    if threads_per_worker is not None and int(threads_per_worker) < 1:
        raise ParameterError(f"--threads-per-worker {threads_per_worker}: give at least 1")
    limit = parse_memory(memory_limit)
    if limit is not None:
        from mrsdask.cube.memory import (PIXEL_TABLE_TASK_BYTES, WORKER_BASELINE_BYTES, TaskBudget, format_bytes,
                                         usable_fraction)

        budget = TaskBudget(limit, max(1, int(threads_per_worker or 1)), usable_fraction())
        if budget.per_task <= 0:
            need = (WORKER_BASELINE_BYTES + PIXEL_TABLE_TASK_BYTES * budget.threads) / budget.fraction
            raise ParameterError(
                f"not enough worker memory: --memory-limit {memory_limit}: {budget.describe()}; a pixel-table "
                f"task (one exposure's full per-pixel geometry) needs about {format_bytes(PIXEL_TABLE_TASK_BYTES)}: give "
                f"each worker at least {format_bytes(need)}")
    return limit


def configured_scheduler_address() -> str | None:
    """The scheduler address in Dask's configuration (``scheduler-address``), else None.

    Dask reads it from ``$DASK_SCHEDULER_ADDRESS`` when it is imported and from its YAML files
    (``~/.config/dask/*.yaml``: ``scheduler-address: tcp://…``); the environment variable is
    read again here, so that one set after Dask was imported counts too.
    """
    import dask

    return os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None) or None


def planned_budget(scheduler: str | None, n_workers: int | None = None, memory_limit: str | None = None,
                   threads_per_worker: int = 1):
    """The task budget (:class:`mrsdask.cube.memory.TaskBudget`) that :func:`dask_client` will give.

    Known before anything starts for a local cluster and for this process (with a limit);
    None for a cluster named by address, a launcher's client, or no limit.
    """
    from mrsdask.cube.memory import TaskBudget, usable_fraction

    if scheduler in IN_PROCESS_SCHEDULERS:
        threads = 1 if scheduler == "synchronous" else (n_workers or max(1, os.cpu_count() or 1))
        limit = check_cluster_options(n_workers, threads, memory_limit)
        return TaskBudget(limit, threads, usable_fraction()) if limit else None
    if scheduler or configured_scheduler_address() or current_client() is not None:
        return None
    limit = check_cluster_options(n_workers, threads_per_worker, memory_limit or DEFAULT_WORKER_MEMORY)
    return TaskBudget(limit, threads_per_worker, usable_fraction()) if limit else None


def parse_memory(text: str | None) -> int | None:
    """``"2GB"``, ``"1.5 GiB"``, ``"512MB"`` → bytes; None/``auto`` → None."""
    if text is None or str(text).lower() in ("auto", ""):
        return None
    from dask.utils import parse_bytes

    try:
        return int(parse_bytes(str(text)))
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"memory limit {text!r}: use a size such as 2GB or 1500MiB") from exc


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    memory_limit: str | None = None,
    threads_per_worker: int = 1,
    announce=print,
    wait: bool = True,
) -> Iterator[object]:
    """A ``distributed.Client`` for the duration of a block.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) or its scheduler file (``*.json``,
        as written by ``dask scheduler --scheduler-file``, e.g. on a shared file system); default
        ``$DASK_SCHEDULER_ADDRESS``; if neither, the process's current client (one opened by a
        launcher, e.g. for dask-gateway) or else a new local cluster. ``"threads"`` or
        ``"synchronous"``: no cluster, the tasks run in this process on Dask's local scheduler
        (``n_workers`` threads) and the block gets None.
    n_workers : int, optional
        Worker processes of a local cluster (default: the number of cores).
    memory_limit : str, optional
        Memory limit per local worker (default :data:`DEFAULT_WORKER_MEMORY`; ``"auto"`` shares
        the machine's memory). In this process (``"threads"``/``"synchronous"``): the memory
        the job's tasks are planned against (:data:`mrsdask.cube.memory.IN_PROCESS_LIMIT_KEY`; default none).
        Checked, with the counts, before anything starts (:func:`check_cluster_options`).
    threads_per_worker : int
        Threads per local worker.
    announce : callable
        Called with one line giving the scheduler and dashboard addresses.
    wait : bool
        Local cluster: wait for its workers before returning the client. With ``False`` the
        workers start in the background (they import for ~1 s, see :mod:`mrsdask.preload`)
        while the caller goes on, e.g. reading its inputs; call :func:`wait_until_ready`
        before planning by worker count (:func:`mrsdask.cube.builder.build_cubes` does).
    """
    import dask

    from mrsdask.cube.memory import IN_PROCESS_LIMIT_KEY

    if scheduler in IN_PROCESS_SCHEDULERS:
        threads = 1 if scheduler == "synchronous" else (n_workers or max(1, os.cpu_count() or 1))
        limit = check_cluster_options(n_workers, threads, memory_limit)
        note = f", tasks planned for {memory_limit}" if limit is not None else ""
        announce(f"in-process Dask scheduler: {scheduler} ({threads} thread{'s' if threads > 1 else ''}{note})")
        use_task_allocator_settings()  # as the workers of a local cluster
        # The scheduler function, not its name: given a name, dask.compute imports distributed
        # (~0.2 s) to look for a client that a job in this process cannot have.
        with dask.config.set({"scheduler": in_process_get(scheduler), "num_workers": threads,
                              IN_PROCESS_LIMIT_KEY: limit}):
            yield None
        return
    address = scheduler or configured_scheduler_address()
    if not address and current_client() is None:
        memory_limit = memory_limit or DEFAULT_WORKER_MEMORY
        check_cluster_options(n_workers, threads_per_worker, memory_limit)
    from distributed import Client, LocalCluster

    if address:
        target = {"scheduler_file": address} if is_scheduler_file(address) else {"address": address}
        try:
            client = Client(**target, timeout="20s")
        except (OSError, ValueError) as exc:
            raise ParameterError(
                f"cannot reach the Dask scheduler at {address} ({exc}); check the address or "
                "start one with 'dask scheduler'"
            ) from exc
        where = client.scheduler.address if "scheduler_file" in target else address
        announce(f"Dask scheduler {where} — dashboard {client.dashboard_link}")
        try:
            yield client
        finally:
            client.close()
        return
    current = current_client()
    if current is not None:  # e.g. a dask-gateway or jobqueue client opened by a launcher
        announce(f"current Dask client: scheduler {current.scheduler.address} — dashboard {current.dashboard_link}")
        yield current
        return
    workers = n_workers or max(1, os.cpu_count() or 1)
    limit = parse_memory(memory_limit)
    environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC_ENV.items()}
    # Small workers skip the preload: they could not run a pixel-table task anyway, and the
    # preloaded modules would get them killed before the build's memory check can say so.
    preload = [WORKER_TRIM_PRELOAD] + ([WORKER_PRELOAD] if limit is None or limit >= PRELOAD_MIN_MEMORY else [])
    # The nannies are created in the background by scale(): the environment settings must stay
    # in the configuration for as long as the cluster may start (or restart) workers.
    with dask.config.set(environ):
        with _sigint_held_from_new_threads():
            cluster = LocalCluster(
                n_workers=0,  # workers are added by scale() below, in the background
                threads_per_worker=threads_per_worker,
                processes=True,
                memory_limit=limit if limit is not None else "auto",
                dashboard_address=":0",
                silence_logs=logging.ERROR,
                preload=preload,
            )
            # Connected by address: Client(cluster) would wait for the workers to start (~1.3 s on
            # 2 cores), the very wait that wait=False is for. The client exists (as the default
            # client) before any worker process is spawned: distributed then leaves the client's
            # "scheduler: dask.distributed" setting out of the workers' configuration, without which
            # a task computing a dask array (e.g. one read from a detector store) finds no client.
            client = Client(cluster.scheduler_address)
            _STARTED_HERE[client] = cluster
            cluster.scale(workers)
        try:
            if wait:
                wait_until_ready(client)
            announce(
                f"local Dask cluster: {workers} worker process(es) × {threads_per_worker} thread(s), "
                f"memory limit {memory_limit or 'auto'} each — dashboard {client.dashboard_link}"
            )
            yield client
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                # The interrupted gather's pending futures fail when the client closes, and
                # asyncio logs each of them ("Task exception was never retrieved"): expected now.
                logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            # Never close a cluster whose workers are still starting (distributed then logs
            # tracebacks over the caller's error message): let them come up first.
            with contextlib.suppress(Exception):
                wait_until_ready(client, timeout=30.0)
            raise
        finally:
            client.close()
            cluster.close()


@contextlib.contextmanager
def _sigint_held_from_new_threads() -> Iterator[None]:
    """Block SIGINT in this thread for the block: threads started in it inherit the block.

    A local cluster's event-loop thread, started here, starts the worker processes, which
    inherit its signal mask: the terminal's Ctrl-C (sent to the whole process group) then
    reaches only this process, which stops the cluster, instead of every worker printing its
    own traceback. A Ctrl-C during the block is delivered when it ends.
    """
    import signal
    from multiprocessing import resource_tracker

    # Started later from a cluster thread, multiprocessing's resource tracker would unblock
    # SIGINT in that thread (it blocks and then unblocks SIGINT around its own start). It is
    # started without its shutdown notice: workers stopped mid-task (after a Ctrl-C) leave
    # semaphores that the tracker removes, and the notice would follow the command's last line.
    import sys

    quiet = "ignore:resource_tracker:UserWarning"
    sys.warnoptions.append(quiet)  # what the tracker's command line is made from
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(quiet)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def wait_until_ready(client, timeout: float = 120.0) -> None:
    """Wait until a local cluster started by :func:`dask_client` has all its workers.

    Does nothing for a client of a cluster that mrsdask did not start (a scheduler address,
    a launcher's client): those have the workers they have.
    """
    cluster = _STARTED_HERE.get(client) if client is not None else None
    if cluster is None:
        return
    expected = len(getattr(cluster, "worker_spec", None) or {})
    if not expected:
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.wait_for_workers(expected, timeout=0.5)
            return
        except TimeoutError:
            failed = [name for name, w in getattr(cluster, "workers", {}).items()
                      if getattr(getattr(w, "status", None), "name", "") == "failed"]
            if failed or time.monotonic() > deadline:
                why = (f"{len(failed)} of them failed to start" if failed
                       else f"they did not register in {timeout:.0f} s")
                raise ParameterError(
                    f"the local Dask cluster could not start its {expected} worker(s): {why}; see the "
                    "worker errors above (broken environment? memory limit too small?)"
                ) from None


def in_process_get(name: str):
    """Dask's scheduler function of an in-process scheduler name (:data:`IN_PROCESS_SCHEDULERS`)."""
    import dask.local
    import dask.threaded

    return dask.local.get_sync if name == "synchronous" else dask.threaded.get


def in_process_name(value) -> str | None:
    """The :data:`IN_PROCESS_SCHEDULERS` name of a ``scheduler`` configuration value, or None."""
    if value in IN_PROCESS_SCHEDULERS:
        return value
    if callable(value):
        return next((name for name in IN_PROCESS_SCHEDULERS if in_process_get(name) is value), None)
    return None


def current_client():
    """The process's default ``distributed.Client`` if one is open, else None."""
    if "distributed" not in sys.modules:  # none can be open (and importing it costs ~0.2 s)
        return None
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    return client if client.status == "running" else None


def is_scheduler_file(text: str) -> bool:
    """True if ``--scheduler`` names a scheduler file (``dask scheduler --scheduler-file F``)."""
    return "://" not in str(text) and str(text).endswith(".json") and os.path.isfile(str(text))


def worker_memory_limit(client) -> int | None:
    """Smallest memory limit of the client's workers in bytes (None if unlimited)."""
    try:
        limits = [w.get("memory_limit") for w in client.scheduler_info()["workers"].values()]
    except Exception:
        return None
    limits = [int(v) for v in limits if v]
    return min(limits) if limits else None
