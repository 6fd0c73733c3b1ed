"""Worker memory limits: a build that cannot fit fails at once with the numbers; slabs shrink to fit."""

import time
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from mrsdask.cube import memory
from mrsdask.cube.builder import CubeSpec
from mrsdask.cube.pixels import INDEX_STRIDE, PixelTableInfo
from mrsdask.errors import ParameterError
from tests.cluster import dask_procs


def _spec(slab_planes=500, nz=1000, nx=50, ny=40, rows=1_000_000):
    """A cube spec with a uniform λ distribution of pixel rows (no data needed)."""
    zc = np.linspace(5.0, 6.0, nz)
    lam = np.linspace(5.0, 6.0, rows)
    table = PixelTableInfo(key="e0000_ch1", exposure=0, channel=1, n=rows, lambda_index=lam[::INDEX_STRIDE],
                           dwavelength_max=5e-4, footprint=np.zeros((2, 4)), wave_range=(5.0, 6.0))
    return CubeSpec(name="ch1-short", plan=None, grid=SimpleNamespace(nx=nx, ny=ny),
                    wave=SimpleNamespace(zcoord=zc, zwidth=np.full(nz, 1e-3), nz=nz, linear=True),
                    weighting="drizzle", params={}, window=(4.9, 6.1), slab_planes=slab_planes, tables=(table,))


def test_slab_estimate_counts_voxels_and_rows_read():
    spec = _spec()
    one = memory.slab_task_bytes(spec, 100)
    two = memory.slab_task_bytes(spec, 200)
    voxels = 100 * 40 * 50
    rows = memory.max_rows_read(spec, 100)
    assert 100_000 <= rows <= 100_000 + 4 * INDEX_STRIDE + 2000  # 1/10 of the rows, plus the λ padding
    per_voxel = memory.BYTES_PER_SLAB_VOXEL + memory.BYTES_PER_VOXEL_WRITTEN_BEHIND
    assert one == per_voxel * voxels + memory.BYTES_PER_ROW_READ * rows + memory.SLAB_FIXED_BYTES
    assert two > one


def test_automatic_slabs_shrink_to_fit_and_explicit_ones_fail_with_the_numbers():
    spec = _spec(slab_planes=500)
    budget = memory.TaskBudget(limit=400_000_000, threads=1)
    assert memory.slab_task_bytes(spec) > budget.per_task > 0
    fitted = memory.fit_slabs(spec, budget, explicit=False)
    assert fitted.slab_planes < 500
    assert memory.slab_task_bytes(fitted) <= budget.per_task < memory.slab_task_bytes(spec, fitted.slab_planes + 1)
    with pytest.raises(ParameterError) as err:
        memory.fit_slabs(spec, budget, explicit=True)
    text = str(err.value)
    assert f"--slab-planes {fitted.slab_planes}" in text and "--memory-limit" in text
    assert "400 MB" in text and "500 plane(s) × 40 × 50" in text
    # Nothing fits: even one plane needs more than the worker has.
    with pytest.raises(ParameterError, match="even a 1-plane slab"):
        memory.fit_slabs(spec, memory.TaskBudget(limit=310_000_000, threads=1), explicit=False)
    # More threads share the same memory.
    assert memory.TaskBudget(2_000_000_000, threads=4).per_task < memory.TaskBudget(2_000_000_000, 1).per_task
    assert memory.fit_slabs(spec, None, explicit=True) is spec


def test_tiny_worker_memory_fails_early_with_exit_status_2(sim_1a, tmp_path):
    root = tmp_path / "cubes.zarr"
    t0 = time.perf_counter()
    proc = dask_procs.cli("cube", sim_1a.association, "-o", root, *dask_procs.SELECTION,
                          "--n-workers", "1", "--memory-limit", "100MB", "--no-progress", timeout=300)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr
    assert "not enough worker memory" in err and "pixel-table task" in err, err
    assert "100 MB" in err and "--memory-limit" in err and "Traceback" not in err
    assert not (root / dask_procs.CUBE).exists()
    print(f"failed after {elapsed:.1f} s: {err.strip()}")
    assert elapsed < 120


def test_scheduler_file_and_worker_limits_of_a_separate_cluster(separate_cluster):
    from mrsdask.cluster import dask_client, worker_memory_limit

    lines = []
    with dask_client(separate_cluster.scheduler_file, announce=lines.append) as client:
        client.wait_for_workers(2, timeout=120)
        assert worker_memory_limit(client) == 1_000_000_000
        budget = memory.task_budget(client)
    assert budget.limit == 1_000_000_000 and budget.threads == 1
    assert budget.per_task > memory.PIXEL_TABLE_TASK_BYTES
    assert separate_cluster.address in lines[0]


def test_slabs_shrink_on_small_workers_and_the_cube_is_unchanged(sim_1a, tmp_path, monkeypatch, reference):
    """A budget that the automatic slab does not fit: smaller slabs, same cube; the estimate bounds
    what a slab task really allocates."""
    import dask

    from mrsdask.cube import builder
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal

    budget = memory.TaskBudget(limit=int((25e6 + memory.WORKER_BASELINE_BYTES) / 0.8), threads=1)
    monkeypatch.setattr(memory, "task_budget", lambda client: budget)
    monkeypatch.setattr(memory, "check_pixel_tables", lambda n, budget_: None)  # slabs only, here
    fitted = []
    original = memory.fit_slabs

    def recording(spec, budget_, explicit):
        out = original(spec, budget_, explicit)
        fitted.append((spec, out))
        return out

    monkeypatch.setattr(memory, "fit_slabs", recording)
    root = str(tmp_path / "cubes.zarr")
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    with dask.config.set(scheduler="synchronous"):
        builder.build_cubes(ds, root, CubeRequest(output_type="band", channels=(1,), subbands=("A",),
                                                      wavemin=dask_procs.WAVEMIN, wavemax=dask_procs.WAVEMAX),
                          progress=False, keep_scratch=True)
    (auto, spec), = fitted
    assert spec.slab_planes < auto.slab_planes, (auto.slab_planes, spec.slab_planes)
    assert memory.slab_task_bytes(spec) <= budget.per_task
    got = dask_procs.cube_arrays(root)
    dask_procs.assert_same_cube(got, reference)
    import xarray as xr

    assert xr.open_zarr(root, group=dask_procs.CUBE, consolidated=False)["sci"].encoding["chunks"][0] == spec.slab_planes
    # Measured peak of the heaviest slab task (numpy allocations) stays below the estimate.
    scratch = root + "/_scratch"
    heaviest = max(range(spec.n_slabs), key=lambda s: sum(
        max(0, np.subtract(*reversed(builder.row_range(t, *memory.slab_window(spec, *spec.slab_bounds(s))))))
        for t in spec.tables))
    builder.compute_slab(spec, scratch, *spec.slab_bounds(heaviest))  # compile / warm caches first
    tracemalloc.start()
    builder.compute_slab(spec, scratch, *spec.slab_bounds(heaviest))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"slab of {spec.slab_planes} planes: estimate {memory.slab_task_bytes(spec) / 1e6:.1f} MB, "
          f"measured peak {peak / 1e6:.1f} MB (automatic slab {auto.slab_planes} planes: "
          f"{memory.slab_task_bytes(auto) / 1e6:.1f} MB)")
    assert peak <= memory.slab_task_bytes(spec)


def test_local_workers_keep_glibc_mmap_threshold_high():
    """Local workers get WORKER_MALLOC_ENV, not distributed's 64 KiB trim threshold alone."""
    import os

    from mrsdask.cluster import WORKER_MALLOC_ENV, dask_client

    with dask_client(n_workers=1, memory_limit="1GB", announce=lambda line: None) as client:
        env = next(iter(client.run(lambda: {k: os.environ.get(k) for k in WORKER_MALLOC_ENV}).values()))
    for name, value in WORKER_MALLOC_ENV.items():
        assert env[name] == os.environ.get(name, str(value))


def test_local_workers_preload_the_task_modules():
    """Local workers import the task modules at start (mrsdask.preload), not in a task."""
    import sys

    from mrsdask.cluster import dask_client

    with dask_client(n_workers=1, memory_limit="1GB", announce=lambda _: None) as client:
        loaded = next(iter(client.run(lambda: [m in sys.modules for m in (
            "mrsdask.preload", "mrsdask.cube.builder", "mrsdask.cube.pixels", "mrsdask.io.mrs_wcs")]).values()))
    assert loaded == [True, True, True, True]


def test_a_local_cluster_whose_workers_cannot_start_fails_fast_with_a_clear_error(monkeypatch):
    """Workers start in the background; if they fail, waiting for them says so (no hang)."""
    import time

    from mrsdask import cluster
    from mrsdask.errors import ParameterError

    monkeypatch.setattr(cluster, "WORKER_PRELOAD", "mrsdask_no_such_preload_module")
    start = time.monotonic()
    with pytest.raises(ParameterError, match="failed to start"):
        with cluster.dask_client(n_workers=1, memory_limit="1GB", announce=lambda _: None):
            pass
    assert time.monotonic() - start < 60


def test_clusters_not_started_by_mrsdask_are_not_waited_for():
    """A launcher's cluster (e.g. a batch queue still granting jobs) has the workers it has."""
    import logging
    import time

    from distributed import Client, LocalCluster

    from mrsdask.cluster import wait_until_ready

    # Its one worker can never start: waiting for it would fail (or hang), not return.
    with LocalCluster(n_workers=0, processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL,
                      preload=["mrsdask_no_such_preload_module"]) as cluster, Client(cluster) as client:
        cluster.scale(1)
        start = time.monotonic()
        wait_until_ready(client, timeout=30.0)
        assert time.monotonic() - start < 5
        assert not client.scheduler_info()["workers"]


def test_the_threads_scheduler_runs_tasks_in_this_process():
    import threading

    import dask

    from mrsdask.cluster import dask_client

    lines = []
    with dask_client("threads", n_workers=2, announce=lines.append) as client:
        assert client is None
        names = dask.compute(*[dask.delayed(lambda i: threading.current_thread().name)(i) for i in range(8)])
    assert lines == ["in-process Dask scheduler: threads (2 threads)"]
    assert all(name != "MainThread" for name in names)
    with dask_client("synchronous", announce=lines.append):
        assert dask.compute(dask.delayed(lambda: threading.current_thread().name)())[0] == "MainThread"


def test_workers_do_not_inherit_the_clients_scheduler_setting():
    """A task that computes a dask array (a detector-store read) must not look for a client.

    The client sets ``scheduler: dask.distributed`` in its process; a worker spawned with that
    setting and no client of its own fails such a task ("no Client active").
    """
    import dask

    from mrsdask.cluster import dask_client, wait_until_ready

    for _ in range(3):  # it used to depend on which came first: the client or the worker spawn
        with dask_client(n_workers=1, memory_limit="1GB", announce=lambda _: None, wait=False) as client:
            wait_until_ready(client)
            settings = client.run(lambda: dask.config.get("scheduler", None))
            assert list(settings.values()) == [None]
            arr = client.submit(lambda: float(__import__("dask.array").array.ones(10, chunks=5).sum().compute()))
            assert arr.result() == 10.0
