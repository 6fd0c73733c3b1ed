"""Wall and CPU time of the phases of a command, for ``mrsdask bench`` and ``--log-level info``.

A phase is a block run under :func:`phase`; it logs one line on ``mrsdask.phases``::

    phase pixel tables: 4.21 s wall, 8.05 CPU-s (191% of one core)

The CPU time is this process's (every thread, :func:`time.process_time`): for a job that runs
in process it is the whole job's, on a cluster the client's only. :func:`startup` logs the
time from the process's start to the call (interpreter start and imports). ``mrsdask bench``
reads these lines back from a run's log (:func:`parse_phases`).

Each phase first calls the functions in :data:`at_phase_start`: the ``mrsdask`` command adds
the garbage collector's freeze there (:func:`mrsdask.cli.entry.run`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("mrsdask.phases")

#: Called, without arguments, as each :func:`phase` starts (before its clock starts).
at_phase_start: list[Callable[[], None]] = []

_LINE = re.compile(r"phase (?P<name>[^:]+): (?P<wall>[0-9.]+) s wall, (?P<cpu>[0-9.]+) CPU-s")


def _say(name: str, wall: float, cpu: float) -> None:
    log.info("phase %s: %.2f s wall, %.2f CPU-s (%.0f%% of one core)", name, wall, cpu, 100 * cpu / max(wall, 1e-9))


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Log the wall and CPU time of the block as phase ``name``."""
    for hook in at_phase_start:
        hook()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        _say(name, time.perf_counter() - t0, time.process_time() - c0)


def startup() -> None:
    """Log the time from the start of this process to now as phase ``start-up``."""
    _say("start-up", process_age(), time.process_time())


def process_age() -> float:
    """Seconds since this process started.

    On Linux from ``/proc`` (the system's uptime less the process's start tick, one clock, 10 ms
    resolution); ``psutil``'s create time adds the boot time, which Linux gives in whole seconds,
    so an age from it can be off by up to a second.
    """
    import os

    try:
        with open("/proc/uptime") as fobj:
            uptime = float(fobj.read().split()[0])
        with open("/proc/self/stat") as fobj:
            fields = fobj.read().rsplit(")", 1)[1].split()
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: starttime
    except (OSError, ValueError, IndexError):
        import psutil

        return time.time() - psutil.Process().create_time()


def parse_phases(text: str) -> dict[str, tuple[float, float]]:
    """``{name: (wall s, CPU s)}`` of the phase lines in a log (a name seen twice: summed)."""
    out: dict[str, tuple[float, float]] = {}
    for m in _LINE.finditer(text):
        wall, cpu = out.get(m["name"], (0.0, 0.0))
        out[m["name"]] = (wall + float(m["wall"]), cpu + float(m["cpu"]))
    return out
