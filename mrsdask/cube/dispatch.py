"""Running the cube builder's tasks: pixel-table tasks, and any list of delayed tasks.

:func:`pixel_table_tasks` groups the exposures that need pixel tables into Dask tasks (one
detector-frame task shared per instrument setting); :func:`run_tasks` computes delayed tasks
on the current scheduler (a ``distributed`` client or a local one) with a progress bar, and
:func:`run_with_follow_ups` also runs the work that their results make possible as they arrive.
:func:`tables_for_slabs` chooses the table tasks each slab of a cube planned before its tables
waits for, and :func:`missed_tables` checks that choice once the tables exist.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from mrsdask.cube.pixels import build_pixel_table_group, setting_frames
from mrsdask.io.sources import ExposureSource
from mrsdask.progress import ProgressBar, scheduler_client


def pixel_table_groups(missing: dict[int, list[int]], rows: list[dict], n_workers: int,
                       most: int = 8) -> list[list[tuple[int, list[int]]]]:
    """Split the exposures that need pixel tables into tasks of one instrument setting each.

    A task handles up to ``ceil(n / n_workers)`` exposures (at most ``most``), so that every
    worker gets work while the exposures of a setting mostly stay together.
    """
    size = max(1, min(most, -(-len(missing) // max(1, n_workers))))
    by_setting: dict[str, list[tuple[int, list[int]]]] = {}
    for index, channels in sorted(missing.items()):
        by_setting.setdefault(str(rows[index]["setting"]), []).append((index, channels))
    groups = []
    for members in by_setting.values():
        groups.extend(members[k:k + size] for k in range(0, len(members), size))
    return groups


def pixel_table_tasks(missing: dict[int, list[int]], rows: list[dict], sources: list[ExposureSource],
                      scratch: str, n_workers: int, groups: list | None = None) -> list:
    """Delayed pixel-table tasks; the exposures of a setting share its detector frames.

    The detector → α, β, λ step is the costly part of an exposure's geometry (reading it and
    evaluating it five times on ~0.75 M pixels) and is the same for every exposure of a
    setting. A setting whose exposures are spread over several table tasks gets one task that
    computes it from its first exposure, and Dask hands the result to that setting's table
    tasks, so it is done once per cluster, not once per worker; a setting held by one table
    task needs no such task (it would read the first exposure's gwcs twice): that task uses
    its first exposure's frames for all of them (:func:`build_pixel_table_group`). A table
    task whose exposure has another instrument model (another key) computes its own.

    An in-memory exposure (:class:`mrsdask.io.sources.MemoryExposure`) holds its planes as Dask
    arrays: its table task depends on them (Dask computes them first, on the workers), its
    setting's frame task only on its gwcs.

    ``groups``: :func:`pixel_table_groups`'s result when the caller has it (task ``k`` writes
    the tables of ``groups[k]``).
    """
    groups = pixel_table_groups(missing, rows, n_workers) if groups is None else groups
    setting_of = [str(rows[group[0][0]]["setting"]) for group in groups]
    shared_of: dict[str, object] = {}
    for group, setting in zip(groups, setting_of):
        if setting not in shared_of and setting_of.count(setting) > 1:
            channels = sorted({c for g, s in zip(groups, setting_of) if s == setting for _, chans in g for c in chans})
            shared_of[setting] = dask.delayed(setting_frames, pure=False)(
                sources[group[0][0]].without_planes(), channels)
    return [dask.delayed(build_pixel_table_group, pure=False)(
        [(sources[i], i, chans) for i, chans in group], scratch, shared_of.get(setting))
        for group, setting in zip(groups, setting_of)]


# --------------------------------------------------------------------------- running tasks
def run_tasks(tasks: list, label: str, progress: bool = True) -> list:
    """Compute delayed tasks on the current scheduler, with a progress bar; keep order."""
    if not tasks:
        return []
    client = scheduler_client()
    bar = ProgressBar(progress, label, len(tasks))
    try:
        if client is not None:
            from distributed import as_completed

            futures = client.compute(tasks, retries=3)
            for _ in as_completed(futures):
                bar.advance()
            return client.gather(futures)
        # Local schedulers (threads, synchronous): one compute, so that the tasks run side by
        # side; the bar follows the tasks as they finish.
        from dask.callbacks import Callback

        keys = {task.key for task in tasks}

        def finished(key, result, dsk, state, worker_id):
            if key in keys:
                bar.advance()

        with Callback(posttask=finished):
            return list(dask.compute(*tasks))
    finally:
        bar.close()


@dataclass(frozen=True)
class Work:
    """A function to run once the tasks ``after`` (their indices) have finished: it is called
    with their results, in that order (:func:`run_with_follow_ups`)."""

    key: Hashable
    function: Callable[..., Any]
    after: tuple[int, ...] = ()


def run_with_follow_ups(tasks: list, label: str, progress: bool, follow_up: Callable[[int, Any], list[Work]],
                        start: Callable[[], list[Work]] | None = None) -> tuple[list, dict]:
    """Compute delayed ``tasks`` and the work that their results make possible, as they arrive.

    Parameters
    ----------
    tasks : list of Delayed
        The tasks, computed together.
    label : str
        Shown before the progress bar.
    progress : bool
        Show a progress bar.
    follow_up : callable
        ``follow_up(i, result)``, called in this thread as task ``i`` finishes: more work.
    start : callable, optional
        Called in this thread once the tasks have started: more work (e.g. planned meanwhile).

    Returns
    -------
    results : list
        The tasks' results, in order.
    done : dict
        The result of each :class:`Work` by its key.

    Notes
    -----
    On this process's threads (Dask's threaded scheduler, 2 threads or more) the tasks are
    computed by a thread of their own while this one plans, and each piece of work runs on the
    tasks' threads as soon as the tasks it comes after have finished, beside those still to
    run. On any other scheduler (a cluster, the synchronous one) the work runs after every task,
    as a second compute.
    """
    import dask.threaded
    from dask.base import get_scheduler

    from mrsdask.dispatch import scheduler_threads

    threads = scheduler_threads()
    if scheduler_client() is not None or get_scheduler() not in (None, dask.threaded.get) or threads < 2:
        results = run_tasks(tasks, label, progress)
        work = (start() if start else []) + [w for i, result in enumerate(results) for w in follow_up(i, result)]
        done = run_tasks([dask.delayed(w.function, pure=False)(*(results[k] for k in w.after)) for w in work],
                         label, progress)
        return results, {w.key: value for w, value in zip(work, done)}
    from dask.callbacks import Callback

    index = {task.key: i for i, task in enumerate(tasks)}
    events: queue.SimpleQueue = queue.SimpleQueue()  # (index, result) of each finished task; None: all done
    outcome: dict = {}
    bar = ProgressBar(progress, label, len(tasks))
    # Dask's own executor where it has one: it hands the submitting thread's context to the tasks.
    executor = getattr(dask.threaded, "ContextAwareThreadPoolExecutor", ThreadPoolExecutor)
    with executor(threads) as pool:

        def finished(key, result, dsk, state, worker_id):
            if key in index:
                events.put((index[key], result))

        def compute():
            try:
                outcome["results"] = list(dask.compute(*tasks, scheduler=dask.threaded.get, num_workers=threads,
                                                       pool=pool, callbacks=[Callback(posttask=finished)._callback]))
            except BaseException as exc:  # raised in the caller's thread below
                outcome["error"] = exc
            finally:
                events.put(None)

        scheduler = threading.Thread(target=compute, name="mrsdask-tasks", daemon=True)
        scheduler.start()
        results: dict[int, Any] = {}
        waiting: list[Work] = []
        futures: dict = {}

        def submit(work: list[Work]) -> None:
            waiting.extend(work)
            ready = [w for w in waiting if all(k in results for k in w.after)]
            for w in ready:
                waiting.remove(w)
                futures[w.key] = pool.submit(w.function, *(results[k] for k in w.after))
                futures[w.key].add_done_callback(lambda _: bar.advance())
            bar.set_total(len(tasks) + len(futures) + len(waiting))

        try:
            try:
                submit(start() if start else [])
                while (event := events.get()) is not None:
                    results[event[0]] = event[1]
                    bar.advance()
                    submit(follow_up(*event))
            finally:
                scheduler.join()  # a failure here waits for the tasks under way, then is raised
            if "error" in outcome:
                raise outcome["error"]
            if waiting:  # after tasks that are not among them: a caller's bug, never silently dropped
                raise ValueError(f"work {[w.key for w in waiting]} comes after tasks not given ({len(tasks)} tasks)")
            return outcome["results"], {key: future.result() for key, future in futures.items()}
        except BaseException:
            for future in futures.values():  # not started: dropped (the running ones are waited for)
                future.cancel()
            raise
        finally:
            bar.close()


# --------------------------------------------------------------------------- slabs beside tables
#: Relative margin around a band's CUBEPAR wavelength range within which its pixels' λ are
#: taken to lie when a slab's tables are chosen before they exist (the detector covers a little
#: more than the cube's range; a table found to reach further is caught afterwards).
BAND_RANGE_MARGIN = 0.02


def tables_for_slabs(spec, pars, pending: dict[str, str]) -> list[list[str]]:
    """For each slab of a cube planned before its pixel tables: the pending tables it waits for.

    Parameters
    ----------
    spec : CubeSpec
        A cube whose grid did not need the tables (:func:`mrsdask.cube.spec.needs_table_summaries`).
    pars : CubePars
        The cube parameters (each band's wavelength range).
    pending : dict of str to str
        Key of each table not written yet → the band of its pixels (``"1A"``…).

    Returns
    -------
    list of list of str
        Per slab, the keys of the pending tables whose band range (widened by
        :data:`BAND_RANGE_MARGIN`) meets the slab's planes (widened by the spectral region of
        interest for EMSM/MSM). :func:`missed_tables` checks the guess once the tables exist.
    """
    wave, params = spec.wave, spec.params
    reach = 0.0
    if spec.weighting != "drizzle":
        reach = params["roiw"] if wave.linear else float(np.max(params["roiw_table"]))
    ranges = {key: (pars.bands[band].wavemin * (1 - BAND_RANGE_MARGIN), pars.bands[band].wavemax * (1 + BAND_RANGE_MARGIN))
              for key, band in pending.items()}
    needs = []
    for s in range(spec.n_slabs):
        z0, z1 = spec.slab_bounds(s)
        lo = float(wave.zcoord[z0] - wave.zwidth[z0] / 2.0) - reach
        hi = float(wave.zcoord[z1 - 1] + wave.zwidth[z1 - 1] / 2.0) + reach
        needs.append([key for key, (a, b) in ranges.items() if a <= hi and b >= lo])
    return needs


def missed_tables(spec, slab_index: int, given: set[str]) -> list[str]:
    """Tables of a resolved spec that reach a slab's λ window but were not given to its task."""
    from mrsdask.cube.memory import slab_window

    lo, hi = slab_window(spec, *spec.slab_bounds(slab_index))
    return [t.key for t in spec.tables if t.key not in given and t.reaches(lo, hi)]
