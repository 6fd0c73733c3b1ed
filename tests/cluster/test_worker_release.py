"""Workers give back memory they no longer use: between pipeline steps and when near their limit.

A worker whose freed memory stays resident (glibc keeps free heap pages under a live block)
counts it against its limit; above Dask's pause fraction it stops taking tasks and, with
nothing managed to spill, never resumes: the run stalls (seen in the 24-exposure spec3 run).
"""

from __future__ import annotations

import os

import pytest

from tests.cluster.dask_procs import fragment_heap


def _one_worker(client) -> str:
    (address,) = client.scheduler_info()["workers"]
    return address


def test_a_worker_paused_on_freed_memory_gives_it_back_and_takes_the_next_task():
    from mrsdask.cluster import dask_client
    from mrsdask.release import rss_bytes

    limit = 500_000_000
    with dask_client(n_workers=1, memory_limit=str(limit), announce=lambda _: None) as client:
        address = _one_worker(client)
        base = client.run(rss_bytes)[address]
        # Past the pause fraction (80 %), short of the nanny's kill (95 %).
        held = client.submit(fragment_heap, int(0.87 * limit) - base, pure=False).result(timeout=60)
        assert held > 0.8 * limit
        # Paused for good without the trim; with it, the worker resumes within seconds.
        assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
        # The next task may have been taken before the pause took effect (a race the test
        # cannot order): what must hold is that the freed heap goes back within a few checks.
        import time

        deadline = time.monotonic() + 15
        while (rss := client.run(rss_bytes)[address]) >= 0.8 * limit and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rss < 0.8 * limit, (rss, held)


def test_releasing_worker_memory_returns_the_free_heap_and_empties_the_caches():
    from mrsdask.cluster import dask_client
    from mrsdask.release import release_worker_memory

    def fill_caches():
        import numpy as np

        from mrsdask.instrument import frames

        frames.SLICE_MAPS["test"] = np.zeros((1024, 1032), dtype=np.int16)
        return len(frames.SLICE_MAPS)

    def cached():
        from mrsdask.instrument import frames

        return len(frames.SLICE_MAPS)

    with dask_client(n_workers=1, memory_limit="2GB", announce=lambda _: None) as client:
        address = _one_worker(client)
        assert client.submit(fill_caches, pure=False).result(timeout=60) == 1
        # Below the automatic trim (60 % of 2 GB): only the release gives it back.
        client.submit(fragment_heap, 300_000_000, pure=False).result(timeout=60)
        done = release_worker_memory(client)[address]
        assert done["rss_before"] - done["rss_after"] > 200_000_000
        assert client.submit(cached, pure=False).result(timeout=30) == 0


def test_a_pipeline_step_in_this_process_is_followed_by_a_release_that_keeps_the_geometry(monkeypatch):
    """In process, the heap is released after a step but the bounded geometry caches are kept:
    the next step of the same exposures needs them again, and no Dask pause threshold counts them."""
    from mrsdask.instrument import frames
    from mrsdask.pipeline import runner
    from mrsdask import release

    calls, real_trim = [], release.malloc_trim
    monkeypatch.setattr(release, "malloc_trim", lambda: calls.append("trim") or real_trim())
    monkeypatch.setitem(frames.SLICE_MAPS, "test", object())
    runner.release_step_memory()
    assert "test" in frames.SLICE_MAPS
    assert calls == ["trim"]


@pytest.mark.parametrize("fraction", [0.6])
def test_the_automatic_trim_leaves_a_worker_below_its_threshold_alone(fraction):
    from mrsdask.release import AutoTrim, rss_bytes

    check = AutoTrim(limit=int(rss_bytes() / fraction * 2), fraction=fraction)
    assert check() == 0 and check.trims == 0


_FAULTS_SCRIPT = """
import resource, sys
import numpy as np
from mrsdask.release import use_task_allocator_settings
applied = use_task_allocator_settings()
np.ones(2 << 20)  # first use of the heap at this size
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    np.ones(2 << 20)  # 16 MiB, allocated and freed
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.parametrize("environ", [{}, {"MALLOC_TRIM_THRESHOLD_": "65536"}])
def test_tasks_in_this_process_reuse_the_heap_unless_the_environment_says_otherwise(environ):
    """In-process tasks get the workers' allocator settings: a freed 16 MiB array's pages are reused
    (no page faults), except where glibc's own variables are set, as distributed's workers have."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environ
    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    # A fresh 16 MiB mapping faults at least once per 2 MiB huge page, ~500 times with 4 KiB pages.
    if environ:
        assert applied == "False" and int(faults) >= 20 * 8
    else:
        assert applied == "True" and int(faults) < 8
