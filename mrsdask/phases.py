"""Wall and CPU time of the phases of a command, for ``mrsdask bench`` and ``--log-level info``.

A phase is a block run under :func:`phase`; it logs one line on ``mrsdask.phases``::

    phase pixel tables: 4.21 s wall, 8.05 CPU-s (191% of one core); machine: 196% busy, 2% stolen, of 200%

The CPU time is this process's (every thread, :func:`time.process_time`): for a job that runs
in process it is the whole job's, on a cluster the client's only. The machine's part (Linux
only, from ``/proc/stat``; phases of :data:`MACHINE_MIN_WALL_S` or more) is every core's time
over the same span, in % of one core: busy (any process, the kernel included) and stolen
(taken by a virtual machine's host, e.g. while it gives the guest memory back), beside the
number of cores. A job that needs both cores cannot use the share the host took: a build at
176 % of one core with 10 % stolen used all but 14 % of what the machine had.
:func:`startup` logs the time from the process's start to the call (interpreter start and
imports). ``mrsdask bench`` reads these lines back from a run's log (:func:`parse_phases`).

Each phase first calls the functions in :data:`at_phase_start`: the ``mrsdask`` command adds
the garbage collector's freeze there (:func:`mrsdask.cli.entry.run`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("mrsdask.phases")

#: Called, without arguments, as each :func:`phase` starts (before its clock starts).
at_phase_start: list[Callable[[], None]] = []

_LINE = re.compile(r"phase (?P<name>[^:]+): (?P<wall>[0-9.]+) s wall, (?P<cpu>[0-9.]+) CPU-s"
                   r"(?: \([0-9]+% of one core\); machine: (?P<busy>[0-9]+)% busy, (?P<stolen>[0-9]+)% stolen)?")


#: Phases shorter than this log no machine figures: ``/proc/stat`` counts in 10 ms ticks.
MACHINE_MIN_WALL_S = 0.5


def machine_cpu_ticks() -> tuple[int, int, int] | None:
    """The machine's CPU time so far, every core, in clock ticks: (all, busy, stolen); None
    where ``/proc/stat`` cannot be read (not Linux).

    Busy is all but idle, I/O wait and stolen time; guest time is already part of user time.
    """
    try:
        with open("/proc/stat") as fobj:
            fields = [int(v) for v in fobj.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    total, idle, stolen = sum(fields), fields[3] + fields[4], fields[7]
    return total, total - idle - stolen, stolen


def _say(name: str, wall: float, cpu: float, machine: tuple[float, float] | None = None) -> None:
    """Log a phase's line; ``machine``: (busy, stolen) CPU-seconds of the whole machine meanwhile."""
    line = "phase %s: %.2f s wall, %.2f CPU-s (%.0f%% of one core)" % (name, wall, cpu, 100 * cpu / max(wall, 1e-9))
    if machine is not None and wall >= MACHINE_MIN_WALL_S:
        busy, stolen = machine
        line += "; machine: %.0f%% busy, %.0f%% stolen, of %d%%" % (
            100 * busy / max(wall, 1e-9), 100 * stolen / max(wall, 1e-9), 100 * (os.cpu_count() or 1))
    log.info("%s", line)


def _machine_seconds(start: tuple[int, int, int] | None, wall: float) -> tuple[float, float] | None:
    """(busy, stolen) CPU-seconds of the machine since ``start`` (:func:`machine_cpu_ticks`)."""
    end = machine_cpu_ticks()
    if start is None or end is None:
        return None
    total = end[0] - start[0]
    if total <= 0:
        return 0.0, 0.0
    # Ticks to seconds through the span's own total (every core's time adds up to cores x wall).
    cores = os.cpu_count() or 1
    return ((end[1] - start[1]) / total * cores * wall, (end[2] - start[2]) / total * cores * wall)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Log the wall and CPU time of the block as phase ``name``."""
    for hook in at_phase_start:
        hook()
    t0, c0, m0 = time.perf_counter(), time.process_time(), machine_cpu_ticks()
    try:
        yield
    finally:
        wall = time.perf_counter() - t0
        _say(name, wall, time.process_time() - c0, _machine_seconds(m0, wall))


def startup() -> None:
    """Log the time from the start of this process to now as phase ``start-up`` (without the
    machine's part: its start is not known here)."""
    _say("start-up", process_age(), time.process_time())


def process_age() -> float:
    """Seconds since this process started.

    On Linux from ``/proc`` (the system's uptime less the process's start tick, one clock, 10 ms
    resolution); ``psutil``'s create time adds the boot time, which Linux gives in whole seconds,
    so an age from it can be off by up to a second.
    """
    try:
        with open("/proc/uptime") as fobj:
            uptime = float(fobj.read().split()[0])
        with open("/proc/self/stat") as fobj:
            fields = fobj.read().rsplit(")", 1)[1].split()
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: starttime
    except (OSError, ValueError, IndexError):
        import psutil

        return time.time() - psutil.Process().create_time()


def parse_phases(text: str) -> dict[str, tuple[float, float, float | None, float | None]]:
    """``{name: (wall s, CPU s, machine busy CPU-s, machine stolen CPU-s)}`` of the phase lines
    in a log (a name seen twice: summed; the machine's figures None where any of its lines has
    none, e.g. a repeat shorter than :data:`MACHINE_MIN_WALL_S`: a sum over part of the wall
    time would read as an idle machine)."""
    out: dict[str, tuple] = {}
    for m in _LINE.finditer(text):
        wall, cpu, busy, stolen = out.get(m["name"], (0.0, 0.0, 0.0, 0.0))
        w = float(m["wall"])
        if m["busy"] is None or busy is None:
            busy = stolen = None
        else:
            busy, stolen = busy + float(m["busy"]) / 100 * w, stolen + float(m["stolen"]) / 100 * w
        out[m["name"]] = (wall + w, cpu + float(m["cpu"]), busy, stolen)
    return out
