"""Which Dask scheduler a job runs on: in this process when it is small, else a cluster.

The ``mrsdask`` commands and the Python entry points (:func:`mrsdask.cube.build`,
:func:`mrsdask.background.subtract`, :func:`mrsdask.fringe.correct`,
:func:`mrsdask.pipeline.run`) make the same choice, here:

1. a scheduler named by the caller (``scheduler="tcp://…"``, ``"threads"``…) is used;
2. a job that fits residual fringes gets worker processes (the fit is long and partly holds
   the GIL), whatever its size;
3. worker processes asked for (``n_workers``), a scheduler address in Dask's configuration
   (``scheduler-address``, ``$DASK_SCHEDULER_ADDRESS``), or a current
   ``distributed.Client`` (a launcher's): that cluster;
4. an in-process scheduler already set in Dask's configuration
   (``dask.config.set(scheduler="threads")``): kept;
5. a small job (:func:`mrsdask.cluster.in_process_is_faster`) runs in this process
   (``"threads"``), anything else on a new local cluster (:func:`mrsdask.cluster.dask_client`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mrsdask.errors import MrsdaskError

log = logging.getLogger(__name__)


def _configured_in_process() -> str | None:
    """The in-process scheduler set in Dask's configuration, if any."""
    import dask

    from mrsdask.cluster import IN_PROCESS_SCHEDULERS

    value = dask.config.get("scheduler", None)
    return value if value in IN_PROCESS_SCHEDULERS else None


def exposure_channels(inputs: Any, channels: Sequence[int] | None = None, detector_job: bool = False) -> int | None:
    """Upper bound of a job's size in exposure-channels (pixel tables), or None if unknown.

    Parameters
    ----------
    inputs : list of str, str or xarray.Dataset
        File names, globs or association JSON (no FITS file is opened: a local cluster would
        start while they are read), one detector store (its exposure table is read: a few
        small arrays), or a detector Dataset (its exposures are counted).
    channels : sequence of int, optional
        Channels a cube job builds (default all: each exposure may contribute 2).
    detector_job : bool
        A detector job (ingest, background, fringe): every exposure counts, with both of its
        channels (its per-pixel geometry is the same work as a cube's pixel tables). A cube
        job counts science exposures only.
    """
    import xarray as xr

    per_exposure = 2 if detector_job else min(2, len(channels or (1, 2, 3, 4)))
    if isinstance(inputs, xr.Dataset):
        if "exposure" not in inputs.sizes:
            return None
        exptype = inputs["exptype"].values if "exptype" in inputs.coords else None
        n = inputs.sizes["exposure"] if detector_job or exptype is None else int((exptype != "background").sum())
        return n * per_exposure
    from mrsdask.io.inputs import resolve_inputs

    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    try:
        members, stores = resolve_inputs([str(i) for i in items])
    except (MrsdaskError, ValueError, OSError):
        return None  # the error is reported where the inputs are read
    if stores:
        if members or len(stores) > 1:
            return None  # refused where the inputs are read
        from mrsdask.io.detector_store import open_detector_store

        try:
            return exposure_channels(open_detector_store(stores[0]), channels, detector_job)
        except (MrsdaskError, ValueError, OSError, KeyError):
            return None
    if detector_job:
        return 2 * len(members)
    science = sum(1 for m in members if m.exptype != "background")  # unread headers count as science
    return science * per_exposure


def choose_scheduler(inputs: Any, *, scheduler: str | None = None, n_workers: int | None = None,
                     channels: Sequence[int] | None = None, detector_job: bool = False,
                     fits_fringes: bool = False) -> str | None:
    """The scheduler a job runs on (module docstring): a name for :func:`mrsdask.cluster.dask_client`.

    Parameters
    ----------
    inputs
        What the job reads (see :func:`exposure_channels`).
    scheduler : str, optional
        Named by the caller: returned as it is.
    n_workers : int, optional
        Worker processes asked for: a cluster.
    channels, detector_job
        See :func:`exposure_channels`.
    fits_fringes : bool
        The job fits residual fringes: worker processes whatever its size.

    Returns
    -------
    str or None
        ``"threads"``/``"synchronous"`` (this process), the caller's scheduler, or None: the
        cluster :func:`~mrsdask.cluster.dask_client` finds or starts.
    """
    if scheduler:
        return scheduler
    from mrsdask.cluster import configured_scheduler_address, current_client, in_process_is_faster

    if fits_fringes:
        return None
    if n_workers is not None or configured_scheduler_address() or current_client() is not None:
        return None
    configured = _configured_in_process()
    if configured:
        return configured
    size = exposure_channels(inputs, channels, detector_job)
    return "threads" if size is not None and in_process_is_faster(size) else None


@contextlib.contextmanager
def scheduler_block(chosen: str | None, *, n_workers: int | None = None, memory_limit: str | None = None,
                    threads_per_worker: int = 1, announce: Callable[[str], None] | None = None,
                    wait: bool = True) -> Iterator[str | None]:
    """Run the block on ``chosen`` (from :func:`choose_scheduler`); yields it.

    An in-process scheduler already set in Dask's configuration (the caller's choice, e.g. a
    pipeline step run inside :func:`mrsdask.pipeline.run`) is left as it is. The scheduler and
    dashboard line goes to ``announce`` (default: logged on ``mrsdask.scheduling``).
    """
    if chosen is not None and chosen == _configured_in_process():
        yield chosen
        return
    from mrsdask.cluster import dask_client

    with dask_client(chosen, n_workers, memory_limit, threads_per_worker, announce=announce or log.info, wait=wait):
        yield chosen


@contextlib.contextmanager
def job_scheduler(inputs: Any, *, scheduler: str | None = None, n_workers: int | None = None,
                  memory_limit: str | None = None, threads_per_worker: int = 1,
                  channels: Sequence[int] | None = None, detector_job: bool = False,
                  fits_fringes: bool = False, announce: Callable[[str], None] | None = None,
                  wait: bool = True) -> Iterator[str | None]:
    """:func:`choose_scheduler`, then :func:`scheduler_block` on its choice: the block runs there."""
    chosen = choose_scheduler(inputs, scheduler=scheduler, n_workers=n_workers, channels=channels,
                              detector_job=detector_job, fits_fringes=fits_fringes)
    with scheduler_block(chosen, n_workers=n_workers, memory_limit=memory_limit,
                         threads_per_worker=threads_per_worker, announce=announce, wait=wait):
        yield chosen


def write_detector_output(inputs: Any, output: str, write: Callable[[str], Any], *, overwrite: bool = False,
                          scheduler: str | None = None, n_workers: int | None = None,
                          memory_limit: str | None = None, threads_per_worker: int = 1,
                          fits_fringes: bool = False):
    """The store branch of a detector step's entry point (``background.subtract``, ``fringe.correct``,
    ``straylight.correct`` with ``output=``): check the output before any cluster starts, run
    ``write(output)`` on the scheduler chosen for ``inputs`` (:func:`job_scheduler`, a detector
    job), and return the written store opened lazily.
    """
    from mrsdask.io.detector_store import check_detector_output, open_detector_store

    output = check_detector_output(str(output), overwrite)
    with job_scheduler(inputs, scheduler=scheduler, n_workers=n_workers, memory_limit=memory_limit,
                       threads_per_worker=threads_per_worker, detector_job=True, fits_fringes=fits_fringes):
        write(output)
    return open_detector_store(output)
