"""Slab writes behind their tasks (mrsdask.cube.write_behind)."""

import threading
import time

import pytest

from mrsdask.cube import write_behind


def test_outside_a_block_the_work_runs_at_once_in_the_caller():
    ran = []
    write_behind.submit(lambda: ran.append(threading.current_thread().name))
    assert ran == [threading.current_thread().name]


def test_writes_run_behind_the_caller_and_the_block_waits_for_them():
    gate, done = threading.Event(), []

    def slow_write(i):
        gate.wait(timeout=20)
        done.append(i)

    with write_behind.writes_behind(2):
        write_behind.submit(slow_write, 1)
        assert done == []  # the caller went on before its write ended
        gate.set()
    assert done == [1]  # leaving the block waited for it


def test_a_thread_has_one_pending_write_at_most():
    """A task thread's second write waits for its first: at most one slab's planes in flight per thread."""
    events = []

    def write(i, seconds):
        time.sleep(seconds)
        events.append(("written", i))

    with write_behind.writes_behind(4):
        write_behind.submit(write, 1, 0.3)
        write_behind.submit(write, 2, 0.0)
        events.append(("submitted", 2))
    assert events[:2] == [("written", 1), ("submitted", 2)]


def test_a_failed_write_is_raised_by_the_block_after_every_write_ended():
    done = []

    def failing():
        raise OSError("disk full")

    def slow():
        time.sleep(0.2)
        done.append("slow")

    def other_thread():
        write_behind.submit(slow)

    with pytest.raises(OSError, match="disk full"):
        with write_behind.writes_behind(2):
            write_behind.submit(failing)
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join()
    assert done == ["slow"]


def test_the_next_task_of_a_thread_whose_write_failed_stops():
    def failing():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with write_behind.writes_behind(1):
            write_behind.submit(failing)
            with pytest.raises(OSError, match="disk full"):
                write_behind.submit(lambda: None)
            raise OSError("disk full")  # as the task would, and the build after it


def test_blocks_do_not_nest():
    with write_behind.writes_behind(1):
        with pytest.raises(RuntimeError, match="do not nest"):
            with write_behind.writes_behind(1):
                pass
    write_behind.submit(lambda: None)  # and the outer one is gone


def test_accumulators_are_reused_only_within_the_block_and_let_go_after():
    import numpy as np

    from mrsdask.cube import slabs

    outside = slabs.zeroed_accumulators((2, 3, 4, 4))
    again = slabs.zeroed_accumulators((2, 3, 4, 4))
    assert not np.shares_memory(outside, again)  # outside a block: fresh each time
    with slabs.accumulators_reused():
        first = slabs.zeroed_accumulators((2, 3, 4, 4))
        first += 5.0
        second = slabs.zeroed_accumulators((1, 3, 4, 4))
        assert np.shares_memory(first, second) and not second.any()  # the same buffer, cleared
        box = slabs._THREAD.box
        assert box
    assert box == []  # let go on leaving
    with slabs.accumulators_reused():
        third = slabs.zeroed_accumulators((2, 3, 4, 4))
    assert not np.shares_memory(third, first) and not third.any()
