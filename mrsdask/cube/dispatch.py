"""Running the cube builder's tasks: pixel-table tasks, and any list of delayed tasks.

:func:`pixel_table_tasks` groups the exposures that need pixel tables into Dask tasks (one
detector-frame task shared per instrument setting); :func:`run_tasks` computes delayed tasks
on the current scheduler (a ``distributed`` client or a local one) with a progress bar.
"""

from __future__ import annotations

import dask

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
                      scratch: str, n_workers: int) -> list:
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
    """
    groups = pixel_table_groups(missing, rows, n_workers)
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
