"""Phase timings: the line a phase logs is the one ``mrsdask bench`` reads back."""

import logging
import os

import pytest

from mrsdask.phases import parse_phases, phase


def test_a_logged_phase_is_parsed_back(caplog):
    with caplog.at_level(logging.INFO, logger="mrsdask.phases"):
        with phase("slabs (3 tasks)"):
            sum(i * i for i in range(200_000))
        with phase("s3d export"):
            pass
        with phase("s3d export"):
            pass
    found = parse_phases(caplog.text + "\nINFO other: phase-like text without numbers\n")
    assert list(found) == ["slabs (3 tasks)", "s3d export"]
    wall, cpu, busy, stolen = found["slabs (3 tasks)"]
    assert wall > 0 and cpu > 0
    assert busy is None and stolen is None  # a phase under 0.5 s logs no machine figures
    assert found["s3d export"][0] >= 0  # a name seen twice is summed


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the machine's part comes from Linux's /proc/stat")
def test_the_machine_part_is_every_core_over_the_phase_and_optional_when_parsed(caplog):
    """A phase that keeps one core busy shows the machine at least ~one core busy; a line
    without the machine's part (another platform, an older log) parses with None."""
    import time

    with caplog.at_level(logging.INFO, logger="mrsdask.phases"):
        with phase("spin"):
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 0.6:
                pass
    wall, cpu, busy, stolen = parse_phases(caplog.text)["spin"]
    assert "machine: " in caplog.text and "% stolen, of " in caplog.text
    # This process's CPU time is part of the machine's busy time (10 ms ticks; a host may steal).
    assert busy + stolen >= 0.8 * cpu and cpu >= 0.5
    old = "INFO mrsdask.phases: phase slabs (3 tasks): 4.00 s wall, 7.00 CPU-s (175% of one core)\n"
    assert parse_phases(old + old) == {"slabs (3 tasks)": (8.0, 14.0, None, None)}
    new = old.replace("\n", "; machine: 190% busy, 10% stolen, of 200%\n")
    assert parse_phases(new) == {"slabs (3 tasks)": (4.0, 7.0, 7.6, 0.4)}


def test_the_start_up_phase_is_the_process_age_to_a_tenth_of_a_second():
    """The start-up phase is measured from the process's start; an age from psutil's create time
    can be a second off (Linux gives the boot time in whole seconds), which made the bench's
    "rest of the process" negative."""
    import subprocess
    import sys
    import time

    script = "import time; t = time.perf_counter(); from mrsdask.phases import process_age; print(process_age())"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - t0
    age = float(out.stdout)
    assert 0.0 < age <= elapsed + 0.02  # the age at the call, within the run seen from outside


def test_the_command_freezes_what_lives_as_each_phase_starts_and_a_library_caller_does_not():
    """``mrsdask``'s console entry point collects and freezes the collector's objects at each
    phase's start (:func:`mrsdask.cli.entry.freeze_at_phases`); a phase in a library caller's
    process leaves them to the collector. Run in a fresh process: a freeze cannot be undone."""
    import subprocess
    import sys

    script = (
        "import gc\n"
        "from mrsdask.phases import phase\n"
        "with phase('library'):\n"
        "    pass\n"
        "print(gc.get_freeze_count())\n"
        "from mrsdask.cli.entry import freeze_at_phases\n"
        "freeze_at_phases(); freeze_at_phases()\n"
        "from mrsdask import phases\n"
        "from mrsdask.cli.entry import collect_and_freeze\n"
        "print(phases.at_phase_start.count(collect_and_freeze))\n"
        "import weakref\n"
        "class Cycle: pass\n"
        "gc.disable()  # only the phase's start may collect the garbage cycle below\n"
        "garbage = Cycle(); garbage.me = garbage; alive = weakref.ref(garbage); del garbage\n"
        "with phase('command'):\n"
        "    print(gc.get_freeze_count() > 10_000, alive() is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "1", "True", "True"]  # frozen, but the garbage collected first
