"""Run a command as its own process tree and measure it: wall, CPU, peak RSS, stolen CPU.

:func:`run_monitored` runs one command once; :func:`median_of` combines repeated runs of one
side of a benchmark (``--repeat N``) into the median wall and CPU time, the largest peak RSS and
the largest share of stolen CPU, keeping every run's figures; :func:`run_alternating` runs the
two sides of a benchmark N times each, in turn, each run on a settled machine
(:func:`wait_for_host_reclaim`); :func:`add_run_arguments` declares the options that every
``mrsdask bench`` command shares.

A virtual machine's host takes back the memory that a guest frees (virtio-balloon free page
reporting): for some seconds after a large process exits, every few seconds the host stalls the
guest's CPUs while it unmaps the pages, and that time shows as stolen. Measured on the 2-core
VM of this project, after a process of 4.9 GB (the official cube build's peak) exited, two
busy cores lost 11 % of their time in the next 10 s, 3 % from 10 to 20 s and < 1 % after,
in bursts at each report (every ~2.3 s), the last ~15 s after the exit. Left alone, that
falls on whichever run comes next: mrsdask's run after the official one.

So before each run, as it syncs the last run's files to disk so that no run waits on
another's write-back, the bench waits until the guest has sent no report for
:data:`HOST_QUIET_S` (at most ``--host-settle-max`` seconds; 0: no wait, as before stop 37).
That takes the stolen time out, but not the whole cost: memory the host has taken back costs
more when a process touches it again (the host maps and clears each page), which shows as the
guest's system time, as on a machine whose memory was freed long before a command runs.
The multi-from-6 benchmark (medians of 3 runs a side): without the wait (stops 36 and 37) 9-13 %
stolen in the runs after the official one and the build at 170-175 % of one core; with it (3
benchmarks at stop 37) none stolen and the build at 182-187 %, but mrsdask's run took 5.7-6.4 s
instead of 5.4 s.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
import subprocess
import threading
import time


class _Monitor(threading.Thread):
    """Samples RSS and CPU of a process tree until it ends."""

    def __init__(self, proc: subprocess.Popen, interval: float = 0.1):
        super().__init__(daemon=True)
        self.proc = proc
        self.interval = interval
        self.peak_total = 0
        self.peak_single = 0
        self._cpu: dict[int, float] = {}

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.proc.pid)
        while self.proc.poll() is None:
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    cpu = p.cpu_times()
                    self._cpu[p.pid] = cpu.user + cpu.system
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak_total = max(self.peak_total, total)
            time.sleep(self.interval)

    @property
    def cpu_seconds(self) -> float:
        return float(sum(self._cpu.values()))

    @property
    def root_cpu_seconds(self) -> float:
        """CPU time of the command's own process (without its workers)."""
        return float(self._cpu.get(self.proc.pid, 0.0))


#: Above this share of stolen CPU time the report says the machine was not quiet.
STEAL_WARNING_FRACTION = 0.05

#: The queue of a virtio balloon on which the guest reports freed memory to its host, as named
#: in ``/proc/interrupts``; each report the host has taken back raises one interrupt.
REPORTING_QUEUE = "reporting_vq"
#: Linux reports freed memory 2 s after it is freed (``PAGE_REPORTING_DELAY``) and again every
#: ~2 s while there is more: this long without a report means the host has taken it all back.
HOST_QUIET_S = 4.0
#: The longest wait for the host before each run (``--host-settle-max``, seconds; 0: none, as
#: the benchmarks before stop 37).
HOST_SETTLE_MAX_S = 60.0


def free_page_reports(path: str = "/proc/interrupts") -> int | None:
    """Free-page reports that the host has acknowledged so far: the interrupts of the virtio
    balloon's reporting queue (:data:`REPORTING_QUEUE`), every CPU; None where no such line is
    seen (not a virtual machine, no balloon, free page reporting off, or the balloon's queues
    sharing one interrupt, so that the reports cannot be told apart): then nothing is waited for."""
    try:
        with open(path) as fobj:
            lines = [line for line in fobj if line.rstrip().endswith(REPORTING_QUEUE)]
    except OSError:
        return None
    if not lines:
        return None
    total = 0
    for line in lines:
        for word in line.split()[1:]:
            if not word.isdigit():
                break
            total += int(word)
    return total


def wait_for_host_reclaim(max_s: float = HOST_SETTLE_MAX_S, quiet_s: float = HOST_QUIET_S, poll_s: float = 0.25,
                          reports: Callable[[], int | None] = free_page_reports,
                          clock: Callable[[], float] = time.perf_counter,
                          sleep: Callable[[float], None] = time.sleep) -> tuple[float, bool | None]:
    """Wait until the virtual machine's host has taken back the memory the guest freed.

    Returns as soon as the guest has sent no free-page report (:func:`free_page_reports`) for
    ``quiet_s``, or after ``max_s``; at once where reports cannot be seen or ``max_s`` is 0.

    Returns
    -------
    seconds : float
        Seconds waited.
    quiet : bool or None
        True if the reports stopped, False if the wait ended at ``max_s`` with the host still
        taking memory back, None if there was nothing to watch (or no wait was asked for).
    """
    t0 = clock()
    last = reports() if max_s > 0 else None
    if last is None:
        return 0.0, None
    quiet_since = t0
    while True:
        now = clock()
        if now - quiet_since >= quiet_s:
            return now - t0, True
        if now - t0 >= max_s:
            return now - t0, False
        sleep(poll_s)
        count = reports()
        if count is None:
            return clock() - t0, None
        if count != last:
            last, quiet_since = count, clock()


def run_monitored(cmd: list[str], log_path: str) -> dict:
    """Run ``cmd`` (output to ``log_path``) and measure its whole process tree.

    Returns
    -------
    dict
        ``returncode``, ``wall_s``, ``cpu_s_sampled`` (user + system of every process, sampled
        every 0.1 s), ``peak_rss_total_gb`` and ``peak_rss_process_gb``, ``machine_steal_fraction``
        (share of the machine's CPU time the VM host took meanwhile), ``log``.
    """
    from mrsdask.phases import machine_cpu_ticks

    start = machine_cpu_ticks()  # (all, busy, stolen) ticks of every core; None off Linux
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        mon = _Monitor(proc)
        mon.start()
        rc = proc.wait()
        mon.join()
    wall = time.perf_counter() - t0
    end = machine_cpu_ticks()
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "returncode": rc, "wall_s": wall, "cpu_s_sampled": mon.cpu_seconds, "cpu_s_root": mon.root_cpu_seconds,
        "peak_rss_total_gb": mon.peak_total / 1e9, "peak_rss_process_gb": mon.peak_single / 1e9,
        "children_cpu_s_cumulative": usage.ru_utime + usage.ru_stime, "log": log_path,
        # Share of the machine's CPU time that a virtual machine's host took during the run:
        # on a busy host a program that needs both cores loses more than a serial one.
        "machine_steal_fraction": (end[2] - start[2]) / max(end[0] - start[0], 1) if start and end else 0.0,
    }




def run_alternating(sides: list[tuple[str, str, list[str]]], repeat: int, log_path: Callable[[str, int], str],
                    before: Callable[[str], None] | None = None,
                    host_settle_max_s: float = HOST_SETTLE_MAX_S) -> dict[str, list[dict]]:
    """Run every side's command ``repeat`` times, alternating sides, so that a slow spell of the
    host hits both; the monitored runs (:func:`run_monitored`) of each side.

    Before each run the files written so far reach the disk and the host takes back the memory
    that the last run freed (:func:`wait_for_host_reclaim`, at most ``host_settle_max_s``); each
    run's figures hold the seconds waited as ``host_settle_s`` and whether the host was done as
    ``host_quiet`` (None: nothing to watch).

    Parameters
    ----------
    sides : list of (name, words, command)
        ``name`` keys the result; ``words`` says what runs, in the progress line and the error.
    repeat : int
        Runs per side.
    log_path : callable
        ``(name, attempt)`` → the log file of that run (attempts count from 1).
    before : callable, optional
        Called with the side's name before each of its runs (e.g. to remove its output).
    host_settle_max_s : float
        The longest wait for the host before a run; 0 does not wait.

    Raises
    ------
    RuntimeError
        When a run fails (the end of its log is printed first).
    """
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in sides}
    for attempt in range(1, repeat + 1):
        for name, words, cmd in sides:
            print(f"running {words} ({attempt}/{repeat}) …")
            if before is not None:
                before(name)
            # The inputs and the last run's outputs reach the disk before the clock starts: a run
            # must not wait on another's write-back (seen in the fringe bench: +6 s on 15 s).
            os.sync()
            waited, quiet = wait_for_host_reclaim(host_settle_max_s)
            r = run_monitored(cmd, log_path(name, attempt))
            r["host_settle_s"], r["host_quiet"] = waited, quiet
            if r["returncode"] != 0:
                print(open(r["log"]).read()[-3000:])
                raise RuntimeError(f"{words} failed")
            runs[name].append(r)
    return runs


def median_of(runs: list[dict]) -> dict:
    """One side's figures over repeated runs.

    Median wall and CPU time, the largest peak RSS and stolen share, the first non-zero
    return code (else 0), and ``runs``: every run's own figures.
    """
    if not runs:
        raise ValueError("no run to combine")
    out = dict(runs[-1])
    for key in ("host_settle_s", "host_quiet"):  # one run's: kept per run only
        out.pop(key, None)
    out["returncode"] = next((r["returncode"] for r in runs if r["returncode"] != 0), 0)
    for key in ("wall_s", "cpu_s_sampled"):
        out[key] = float(statistics.median(r[key] for r in runs))
    for key in ("peak_rss_total_gb", "peak_rss_process_gb", "machine_steal_fraction"):
        out[key] = float(max(r[key] for r in runs))
    out["runs"] = [{k: r[k] for k in ("wall_s", "cpu_s_sampled", "peak_rss_total_gb", "machine_steal_fraction",
                                      "host_settle_s", "host_quiet") if k in r}
                   for r in runs]
    return out


def print_sides(r: dict) -> None:
    """The table of a benchmark's sides (``r["official"]``, ``r["mrsdask"]``: :func:`median_of`):
    wall and CPU time, peak memory, CPU time the host took; the spread of repeated runs, and a
    warning when the host took more than :data:`STEAL_WARNING_FRACTION` of the CPU time."""
    print(f"{'':10s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS total GB':>18s} {'peak RSS/process GB':>20s} "
          f"{'CPU stolen':>10s}")
    sides = [side for side in ("official", "mrsdask") if side in r]
    for side in sides:
        s = r[side]
        walls = [x["wall_s"] for x in s.get("runs", [])]
        print(f"{side:10s} {s['wall_s']:8.1f} {s['cpu_s_sampled']:8.1f} {s['peak_rss_total_gb']:18.2f} "
              f"{s['peak_rss_process_gb']:20.2f} {100 * s.get('machine_steal_fraction', 0.0):9.0f}%"
              + (f"   wall {min(walls):.1f}-{max(walls):.1f} s" if len(walls) > 1 else ""))
    print_host_settle(*(r[side] for side in sides))
    stolen = max((r[side].get("machine_steal_fraction", 0.0) for side in sides), default=0.0)
    if stolen > STEAL_WARNING_FRACTION:
        print(f"warning: the virtual machine's host took up to {100 * stolen:.0f}% of the CPU time during this run; "
              "wall times and their ratio are not those of a quiet machine (run again when it is)")


def print_host_settle(*sides: dict, indent: str = "") -> None:
    """Say how long the bench waited for the host before the runs of ``sides`` (:func:`median_of`
    results; :func:`wait_for_host_reclaim`), when it waited at all, and warn of runs that
    started while the host was still taking memory back."""
    runs = [x for side in sides for x in side.get("runs", []) if "host_settle_s" in x]
    if not any(x["host_settle_s"] for x in runs):
        return
    waits = [x["host_settle_s"] for x in runs]
    unsettled = sum(x.get("host_quiet") is False for x in runs)
    print(f"{indent}before each run the bench waited {min(waits):.1f}-{max(waits):.1f} s for the host to take back "
          f"the memory the last run freed (--host-settle-max)")
    if unsettled:
        print(f"{indent}warning: {unsettled} of {len(runs)} runs started before the host was done "
              "(the wait reached --host-settle-max): their CPU may have been stalled")


def print_phases(side: dict) -> None:
    """The phases a run logged (``side["phases"]``, :func:`mrsdask.phases.parse_phases`): wall and
    CPU time of each and its CPU use in % of one core; where the phase's line has them (Linux,
    phases of :data:`mrsdask.phases.MACHINE_MIN_WALL_S` or more) the whole machine's busy and
    stolen time meanwhile, in % of one core (a build that wants both cores cannot use what the
    host took); then the rest of the command's own process (interpreter exit, what no phase
    covers) and the CPU time of its child processes (a local cluster's workers, the writer
    process of :mod:`mrsdask.io.writer_process`), from the last run."""
    phases = side.get("phases") or {}
    if not phases:
        return
    width = max(28, *(len(name) for name in phases))
    cores = os.cpu_count() or 1
    print(f"  {'phase (last run)':{width}s} {'wall s':>8s} {'CPU s':>8s} {'CPU %':>6s}   "
          f"machine, % of one core ({cores} cores): busy, stolen")
    for name, (wall, cpu, busy, stolen) in phases.items():
        line = f"  {name:{width}s} {wall:8.2f} {cpu:8.2f} {100 * cpu / max(wall, 1e-9):6.0f}"
        if busy is not None:
            line += f"   {100 * busy / wall:4.0f} {100 * stolen / wall:7.0f}"
        print(line)
    last = side["runs"][-1] if side.get("runs") else side
    wall = last["wall_s"]
    root = side.get("cpu_s_root")
    rest_cpu = f"{root - sum(p[1] for p in phases.values()):8.2f}" if root is not None else f"{'?':>8s}"
    print(f"  {'rest of the process':{width}s} {wall - sum(p[0] for p in phases.values()):8.2f} {rest_cpu}")
    if root is not None:
        print(f"  {'child processes':{width}s} {'':8s} {last['cpu_s_sampled'] - root:8.2f}  (workers, writer)")


def add_run_arguments(parser) -> None:
    """Declare the options every ``mrsdask bench`` command has: ``--repeat``,
    ``--host-settle-max`` and ``--json`` (checked by :func:`check_run_arguments`)."""
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each side N times, alternating, and report the medians (default 1)")
    parser.add_argument("--host-settle-max", type=float, default=HOST_SETTLE_MAX_S, metavar="S",
                        help="before each run, wait up to S seconds for a virtual machine's host to take back the "
                             "memory the last run freed, so that it does not stall the next run "
                             f"(default {HOST_SETTLE_MAX_S:g}; 0: do not wait)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")


def check_run_arguments(args) -> None:
    """Refuse a ``--repeat`` below 1, or a ``--host-settle-max`` other than 0 or a finite time of
    at least :data:`HOST_QUIET_S`, before any work starts."""
    from mrsdask.errors import ParameterError

    if args.repeat < 1:
        raise ParameterError(f"--repeat {args.repeat}: give 1 or more runs")
    settle = args.host_settle_max
    if not (settle == 0 or HOST_QUIET_S <= settle < float("inf")):
        raise ParameterError(f"--host-settle-max {settle}: give 0 (do not wait) or {HOST_QUIET_S:g} seconds or more "
                             f"(the host is done after {HOST_QUIET_S:g} s without a report)")
