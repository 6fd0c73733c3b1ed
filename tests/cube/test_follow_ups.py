"""Work that task results make possible runs as they arrive (mrsdask.cube.dispatch.run_with_follow_ups)."""

import threading

import dask
import pytest

from mrsdask.cube.dispatch import Work, run_with_follow_ups


def _tasks(gate: threading.Event):
    """Task 0 returns at once; task 1 waits (up to 20 s) for ``gate``."""
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
        return [Work("open", lambda: gate.set() or "opened")] if i == 0 else []

    with dask.config.set(scheduler="threads", num_workers=2):
        results, done = run_with_follow_ups(_tasks(gate), "test", False, follow_up)
    # Task 1 finished only because task 0's follow-up ran while it was waiting.
    assert results == ["first", "second"]
    assert done == {"open": "opened"}
    assert sorted(calls) == [(0, "first"), (1, "second")]


def test_work_given_at_the_start_runs_after_the_tasks_it_needs():
    gate = threading.Event()
    planned_while_running = []

    def start():
        # Planned in the caller's thread while the tasks run: task 1 is still waiting for the gate.
        planned_while_running.append(not gate.is_set())
        return [Work("open", lambda: gate.set() or "opened"),
                Work("both", lambda a, b: f"{a} and {b}", after=(0, 1)),
                Work("first", lambda a: f"after {a}", after=(0,))]

    with dask.config.set(scheduler="threads", num_workers=2):
        results, done = run_with_follow_ups(_tasks(gate), "test", False, lambda i, r: [], start=start)
    assert results == ["first", "second"] and planned_while_running == [True]
    assert done == {"open": "opened", "both": "first and second", "first": "after first"}


def test_elsewhere_the_work_runs_after_the_tasks():
    gate = threading.Event()
    gate.set()  # one thread: task 1 must not wait for work that runs after it

    def follow_up(i, result):
        return [Work(f"after {i}", lambda: f"{result} done")]

    with dask.config.set(scheduler="synchronous"):
        results, done = run_with_follow_ups(_tasks(gate), "test", False, follow_up,
                                            start=lambda: [Work("both", lambda a, b: a + b, after=(0, 1))])
    assert results == ["first", "second"]
    assert done == {"after 0": "first done", "after 1": "second done", "both": "firstsecond"}


@pytest.mark.parametrize("where", ["task", "follow-up", "start"])
def test_a_failure_anywhere_fails_the_run(where):
    def fail():
        raise ValueError(f"{where} failed")

    gate = threading.Event()
    gate.set()
    tasks = _tasks(gate) + ([dask.delayed(fail, pure=False)()] if where == "task" else [])
    with dask.config.set(scheduler="threads", num_workers=2), pytest.raises(ValueError, match=f"{where} failed"):
        run_with_follow_ups(tasks, "test", False,
                            lambda i, r: [Work("bad", fail)] if where == "follow-up" and i == 0 else [],
                            start=fail if where == "start" else None)


def test_work_after_a_task_that_is_not_there_is_an_error_not_dropped():
    gate = threading.Event()
    gate.set()
    with dask.config.set(scheduler="threads", num_workers=2), pytest.raises(ValueError, match="tasks not given"):
        run_with_follow_ups(_tasks(gate), "test", False, lambda i, r: [],
                            start=lambda: [Work("lost", lambda a: a, after=(5,))])
