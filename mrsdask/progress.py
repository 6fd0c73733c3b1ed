"""Progress bars for Dask computations, on a distributed cluster or in this process.

* :class:`ProgressBar` — a rich bar of ``total`` steps (a no-op when disabled).
* :func:`compute_with_progress` — compute one lazy object (e.g. ``to_zarr(compute=False)``)
  with a bar over its tasks, whatever the scheduler.
"""

from __future__ import annotations

import sys
from typing import Any


class ProgressBar:
    """A labelled bar of ``total`` steps on the terminal; does nothing when not ``enabled``."""

    def __init__(self, enabled: bool, label: str, total: int):
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def set_total(self, total: int) -> None:
        """Change the number of steps (known only once a computation starts)."""
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more steps done."""
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        """Stop drawing (the last state stays on the terminal)."""
        if self._bar is not None:
            self._bar.stop()


def scheduler_client():
    """The ``distributed`` client the computation would run on, or None (local scheduler)."""
    if "distributed" not in sys.modules:  # no client can exist: not importing it saves ~0.2 s
        return None
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def compute_with_progress(obj: Any, label: str, progress: bool = True) -> Any:
    """Compute a Dask collection or ``Delayed`` with a progress bar over its tasks.

    Parameters
    ----------
    obj : dask collection or Delayed
        What to compute, e.g. ``ds.to_zarr(store, compute=False)``.
    label : str
        Shown before the bar.
    progress : bool
        Show the bar; without it this is ``dask.compute(obj)[0]``.

    Returns
    -------
    object
        The computed result.
    """
    import dask

    if not progress:
        return dask.compute(obj)[0]
    client = scheduler_client()
    if client is not None:
        from distributed import progress as distributed_progress

        print(label, flush=True)
        future = client.compute(obj)
        # distributed's own bar follows every task the future depends on, as they finish.
        distributed_progress(future, notebook=False)
        print(flush=True)
        return future.result()
    bar = ProgressBar(True, label, 1)
    try:
        from dask.callbacks import Callback

        class _Bar(Callback):
            def _start_state(self, dsk, state):
                bar.set_total(sum(len(state[k]) for k in ("ready", "waiting", "finished")))

            def _posttask(self, key, result, dsk, state, worker_id):
                bar.advance()

        with _Bar():
            return dask.compute(obj)[0]
    finally:
        bar.close()
