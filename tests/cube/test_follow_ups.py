"""Work that task results make possible runs as they arrive (mrsdask.cube.dispatch.run_with_follow_ups)."""

import threading

import dask
import pytest

from mrsdask.cube.dispatch import run_with_follow_ups


def _tasks(gate: threading.Event):
    """Task 0 returns at once; task 1 waits (up to 20 s) for ``gate``, which only task 0's follow-up opens."""
    def first():
        return "first"

    def second():
        return "second" if gate.wait(timeout=20) else "second, after waiting in vain"

    return [dask.delayed(first, pure=False)(), dask.delayed(second, pure=False)()]


def test_follow_ups_run_beside_the_tasks_still_running():
    gate = threading.Event()
    calls = []

    def follow_up(i, result):
        calls.append((i, result))
        return [("open", lambda: gate.set() or "opened")] if i == 0 else []

    with dask.config.set(scheduler="threads", num_workers=2):
        results, more = run_with_follow_ups(_tasks(gate), "test", False, follow_up)
    # Task 1 finished only because the follow-up ran while it was waiting.
    assert results == ["first", "second"]
    assert more == {"open": "opened"}
    assert sorted(calls) == [(0, "first"), (1, "second")]


def test_elsewhere_follow_ups_run_after_the_tasks():
    gate = threading.Event()
    gate.set()  # one thread: task 1 must not wait for a follow-up that runs after it

    def follow_up(i, result):
        return [(f"after {i}", lambda: f"{result} done")]

    with dask.config.set(scheduler="synchronous"):
        results, more = run_with_follow_ups(_tasks(gate), "test", False, follow_up)
    assert results == ["first", "second"]
    assert more == {"after 0": "first done", "after 1": "second done"}


def test_a_failing_follow_up_fails_the_run():
    def follow_up(i, result):
        def fail():
            raise ValueError("follow-up failed")

        return [("bad", fail)] if i == 0 else []

    with dask.config.set(scheduler="threads", num_workers=2), pytest.raises(ValueError, match="follow-up failed"):
        gate = threading.Event()
        gate.set()
        run_with_follow_ups(_tasks(gate), "test", False, follow_up)
