"""Which Dask scheduler a job runs on: in this process when it is small, else a cluster.

Where a job runs is one object, :class:`Scheduling` (the scheduler, the workers of a local
cluster, progress bars), taken by every entry point as ``scheduling=``
(:func:`mrsdask.cube.build`, :func:`mrsdask.background.subtract`,
:func:`mrsdask.fringe.correct`, :func:`mrsdask.straylight.correct`, :func:`mrsdask.pipeline.run`)
and made by the ``mrsdask`` commands from their cluster options (declared by its fields).
The commands and the entry points make the same choice, here:

1. a scheduler named by the caller (``scheduler="tcp://…"``, ``"threads"``…) is used;
2. worker processes asked for (``n_workers``), a scheduler address in Dask's configuration
   (``scheduler-address``, ``$DASK_SCHEDULER_ADDRESS``), or a current
   ``distributed.Client`` (a launcher's): that cluster;
3. an in-process scheduler already set in Dask's configuration
   (``dask.config.set(scheduler="threads")``): kept;
4. a small job (:func:`mrsdask.cluster.in_process_is_faster`; smaller for a job that fits
   residual fringes, whose fit partly holds the GIL) runs in this process (``"threads"``),
   anything else on a new local cluster (:func:`mrsdask.cluster.dask_client`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mrsdask.errors import MrsdaskError, ParameterError
from mrsdask.options import Param, declared_options, from_arguments, option

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduling:
    """Where a job's Dask work runs, and whether it shows progress bars.

    One object for every entry point (``scheduling=``) and for :func:`choose_scheduler`; the
    ``cluster`` options of the ``mrsdask`` commands are made from its fields
    (:meth:`from_arguments`), and :meth:`flags` writes them back as a command line. The entry
    points still take the fields as keywords of the same names (``n_workers=2``: the
    keywords of earlier releases, see :meth:`pop_from`).

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) or its scheduler file, or
        ``"threads"``/``"synchronous"`` to run in this process. Default: the choice of
        :func:`choose_scheduler` (a small job in this process, else
        ``$DASK_SCHEDULER_ADDRESS``, the current ``distributed.Client`` or a new local cluster).
    n_workers : int, optional
        Worker processes of a local cluster (default: one per core); in this process, threads.
        Given, a job runs on a cluster whatever its size.
    memory_limit : str, optional
        Memory limit of each local-cluster worker (``"2GB"``, the default; ``"auto"``), or, in
        this process, the memory the tasks are planned for (default none).
    threads_per_worker : int
        Threads of each local-cluster worker.
    progress : bool
        Progress bars (the commands show them unless ``--no-progress``; the Python entry
        points only when asked).

    Raises
    ------
    ParameterError
        For a value of the wrong type (``n_workers="2"``), fewer than one worker or thread, or
        a memory limit that cannot be read or leaves a worker no room for its tasks.

    Examples
    --------
    >>> from mrsdask.scheduling import Scheduling
    >>> cubes = mrsdask.cube.build("obs_asn.json", "cubes.zarr",
    ...                            scheduling=Scheduling(n_workers=4, memory_limit="4GB"))  # doctest: +SKIP
    >>> Scheduling(scheduler="tcp://sched:8786").flags()
    ['--scheduler', 'tcp://sched:8786', '--no-progress']
    """

    scheduler: str | None = option(
        None, "address of a running Dask scheduler or its scheduler file, or 'threads'/'synchronous' to run in "
              "this process (default $DASK_SCHEDULER_ADDRESS, else a local cluster; a small job runs in this "
              "process)", kind="str", metavar="ADDRESS")
    n_workers: int | None = option(None, "local cluster: worker processes; threads: threads (default: cores)",
                                   kind="int", metavar="N")
    memory_limit: str | None = option(
        None, "local cluster: memory limit per worker (default 2GB); in this process: the memory the tasks are "
              "planned for (default none)", kind="str", metavar="SIZE")
    threads_per_worker: int = option(1, "local cluster: threads per worker", kind="int", metavar="N")
    progress: bool = option(False, "progress bars (a command shows them unless --no-progress)", kind="bool")

    #: What the commands take when a flag is not given, where it differs from the field's default.
    COMMAND_DEFAULTS: ClassVar[dict[str, Any]] = {"progress": True}

    def __post_init__(self) -> None:
        from mrsdask.cluster import check_cluster_options

        for opt in declared_options(type(self)):
            Param(opt.name, opt.spec.kind).convert(getattr(self, opt.name), "Scheduling")
        check_cluster_options(self.n_workers, self.threads_per_worker, self.memory_limit)

    @classmethod
    def pop_from(cls, options: dict[str, Any], scheduling: Scheduling | None = None, where: str = "") -> Scheduling:
        """The scheduling of an entry point call; its fields given as keywords are taken out of ``options``.

        Parameters
        ----------
        options : dict
            The call's ``**options``: ``scheduler``, ``n_workers``, ``memory_limit``,
            ``threads_per_worker`` and ``progress`` are removed from it (the rest are the step's
            options).
        scheduling : Scheduling, optional
            Given as ``scheduling=`` (default ``Scheduling()``); the keywords change its fields.
        where : str
            What is being called, for error messages (e.g. ``"mrsdask.cube.build"``).

        Raises
        ------
        ParameterError
            For a ``scheduling`` of another type or a bad value, naming ``where``.
        """
        where = where or cls.__name__
        if scheduling is None:
            scheduling = cls()
        elif not isinstance(scheduling, cls):
            raise ParameterError(f"{where}: scheduling must be a Scheduling, not {type(scheduling).__name__}")
        given = {f.name: options.pop(f.name) for f in dataclasses.fields(cls) if f.name in options}
        try:
            return dataclasses.replace(scheduling, **given) if given else scheduling
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None

    @classmethod
    def from_arguments(cls, namespace: argparse.Namespace) -> Scheduling:
        """From a command's parsed cluster options (:func:`mrsdask.options.add_arguments` of this class)."""
        return from_arguments(cls, namespace, **cls.COMMAND_DEFAULTS)

    def planned_budget(self, chosen: str | None):
        """The task budget that the workers of a job run on ``chosen`` will have, where known before they
        start (:func:`mrsdask.cluster.planned_budget`)."""
        from mrsdask.cluster import planned_budget

        return planned_budget(chosen, self.n_workers, self.memory_limit, self.threads_per_worker)

    def flags(self) -> list[str]:
        """The command-line flags that give this scheduling to a ``mrsdask`` command (defaults left out)."""
        out: list[str] = []
        for opt in declared_options(type(self)):
            value = getattr(self, opt.name)
            if value == self.COMMAND_DEFAULTS.get(opt.name, opt.default):
                continue
            if opt.spec.kind == "bool":
                out.append(opt.flag if value else "--no-" + opt.flag[2:])
            else:
                out += [opt.flag, str(value)]
        return out


def configured_in_process() -> str | None:
    """The name of the in-process scheduler set in Dask's configuration (``"threads"`` or
    ``"synchronous"``, given by name or as its function), or None."""
    import dask

    from mrsdask.cluster import in_process_name

    return in_process_name(dask.config.get("scheduler", None))


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


def choose_scheduler(inputs: Any, scheduling: Scheduling | None = None, *, channels: Sequence[int] | None = None,
                     detector_job: bool = False, fits_fringes: bool = False, cube: bool = False) -> str | None:
    """The scheduler a job runs on (module docstring): a name for :func:`mrsdask.cluster.dask_client`.

    Parameters
    ----------
    inputs
        What the job reads (see :func:`exposure_channels`).
    scheduling : Scheduling, optional
        The caller's: its ``scheduler`` is returned as it is; ``n_workers`` asks for a cluster.
    channels, detector_job
        See :func:`exposure_channels`.
    fits_fringes : bool
        The job fits residual fringes: in this process only up to a smaller size
        (:data:`mrsdask.cluster.IN_PROCESS_MAX_FRINGE_EXPOSURE_CHANNELS`).
    cube : bool
        A cube build alone (:func:`mrsdask.cube.build`): it runs in process up to a larger size
        (:data:`mrsdask.cluster.IN_PROCESS_MAX_CUBE_EXPOSURE_CHANNELS`).

    Returns
    -------
    str or None
        ``"threads"``/``"synchronous"`` (this process), the caller's scheduler, or None: the
        cluster :func:`~mrsdask.cluster.dask_client` finds or starts.
    """
    scheduling = scheduling or Scheduling()
    if scheduling.scheduler:
        return scheduling.scheduler
    from mrsdask.cluster import configured_scheduler_address, current_client, in_process_is_faster

    if scheduling.n_workers is not None or configured_scheduler_address() or current_client() is not None:
        return None
    configured = configured_in_process()
    if configured:
        return configured
    size = exposure_channels(inputs, channels, detector_job)
    return "threads" if size is not None and in_process_is_faster(size, cube=cube, fits_fringes=fits_fringes) else None


@contextlib.contextmanager
def scheduler_block(chosen: str | None, scheduling: Scheduling | None = None, *,
                    announce: Callable[[str], None] | None = None, wait: bool = True) -> Iterator[str | None]:
    """Run the block on ``chosen`` (from :func:`choose_scheduler`) with the workers of ``scheduling``; yields it.

    An in-process scheduler already set in Dask's configuration (the caller's choice, e.g. a
    pipeline step run inside :func:`mrsdask.pipeline.run`) is left as it is. The scheduler and
    dashboard line goes to ``announce`` (default: logged on ``mrsdask.scheduling``).
    """
    if chosen is not None and chosen == configured_in_process():
        yield chosen
        return
    from mrsdask.cluster import dask_client

    s = scheduling or Scheduling()
    with dask_client(chosen, s.n_workers, s.memory_limit, s.threads_per_worker, announce=announce or log.info,
                     wait=wait):
        yield chosen


@contextlib.contextmanager
def job_scheduler(inputs: Any, scheduling: Scheduling | None = None, *, channels: Sequence[int] | None = None,
                  detector_job: bool = False, fits_fringes: bool = False,
                  announce: Callable[[str], None] | None = None, wait: bool = True) -> Iterator[str | None]:
    """:func:`choose_scheduler`, then :func:`scheduler_block` on its choice: the block runs there."""
    chosen = choose_scheduler(inputs, scheduling, channels=channels, detector_job=detector_job,
                              fits_fringes=fits_fringes)
    with scheduler_block(chosen, scheduling, announce=announce, wait=wait):
        yield chosen


def detector_result(inputs: Any, ds: Any, request: Any, output: str | None, *, correct: Callable, run: Callable,
                    overwrite: bool = False, scheduling: Scheduling | None = None, fits_fringes: bool = False):
    """What a detector step's entry point returns (``fringe.correct``, ``straylight.correct``).

    Without ``output``: ``correct(ds, request)``, lazy. With it: ``run(ds, output, request,
    overwrite=, progress=)`` writes the store on the scheduler chosen for ``inputs``
    (:func:`write_detector_output`), which is returned opened lazily.
    """
    if output is None:
        return correct(ds, request)
    progress = (scheduling or Scheduling()).progress
    return write_detector_output(inputs, output,
                                 lambda out: run(ds, out, request, overwrite=overwrite, progress=progress),
                                 overwrite=overwrite, scheduling=scheduling, fits_fringes=fits_fringes)


def write_detector_output(inputs: Any, output: str, write: Callable[[str], Any], *, overwrite: bool = False,
                          scheduling: Scheduling | None = None, fits_fringes: bool = False):
    """The store branch of a detector step's entry point (``background.subtract``, ``fringe.correct``,
    ``straylight.correct`` with ``output=``): check the output before any cluster starts, run
    ``write(output)`` on the scheduler chosen for ``inputs`` (:func:`job_scheduler`, a detector
    job), and return the written store opened lazily.
    """
    from mrsdask.io.detector_store import check_detector_output, open_detector_store

    output = check_detector_output(str(output), overwrite)
    with job_scheduler(inputs, scheduling, detector_job=True, fits_fringes=fits_fringes):
        write(output)
    return open_detector_store(output)
