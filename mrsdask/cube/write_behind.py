"""Slab writes that run behind the slab tasks of a build in this process.

A slab task's planes are compressed and stored by zarr's I/O threads (and copied into the
cube's s3d file) while the task would wait: about a quarter of a slab task's time on the
6-exposure multi cube, with its thread idle. Within :func:`writes_behind`, :func:`submit`
hands that work to writer threads and the task returns, so that its thread computes the next
slab meanwhile. Each task thread has at most one write of its own pending (it waits for its
previous one first): one slab's planes more in memory per thread, counted in
:data:`mrsdask.cube.memory.BYTES_PER_VOXEL_WRITTEN_BEHIND`. Leaving the block waits for every write and
raises the first failure; a slab's done-marker is written after its data by the same write,
so an interrupted build never takes a slab whose data are not stored for done.

Outside the block (a cluster, whose workers are other processes, or any single call),
:func:`submit` runs the work at once, in the caller.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

_CURRENT: _WritesBehind | None = None
_LOCK = threading.Lock()


class _WritesBehind:
    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="mrsdask-slab-writes")
        self.futures: list[Future] = []
        self.last = threading.local()  # each task thread's pending write

    def submit(self, function: Callable, *args) -> None:
        previous = getattr(self.last, "future", None)
        if previous is not None:
            previous.result()  # at most one pending write per task thread; a failure stops the next task
        self.last.future = self.pool.submit(function, *args)
        self.futures.append(self.last.future)

    def finish(self) -> None:
        """Wait for every write; raise the first failure once all have ended."""
        self.pool.shutdown(wait=True)
        wait(self.futures)
        for future in self.futures:
            if future.exception() is not None:
                raise future.exception()


@contextlib.contextmanager
def writes_behind(threads: int) -> Iterator[None]:
    """Within this block, :func:`submit` runs its work on ``threads`` writer threads, behind the
    caller; on leaving, every write has ended (the first failure is raised, unless the block
    itself raised)."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is not None:
            raise RuntimeError("writes_behind blocks do not nest")
        _CURRENT = current = _WritesBehind(threads)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            current.finish()  # nothing may still write once the build's error is handled
        raise
    else:
        current.finish()
    finally:
        with _LOCK:
            _CURRENT = None


def submit(function: Callable, *args) -> None:
    """``function(*args)``: behind the caller within :func:`writes_behind`, else now."""
    current = _CURRENT
    if current is None:
        function(*args)
    else:
        current.submit(function, *args)
