"""Workers give back memory they no longer use: between pipeline steps and when near their limit.

A worker whose freed memory stays resident (glibc keeps free heap pages under a live block)
counts it against its limit; above Dask's pause fraction it stops taking tasks and, with
nothing managed to spill, never resumes: the run stalls (seen in the 24-exposure spec3 run).
"""

from __future__ import annotations

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
