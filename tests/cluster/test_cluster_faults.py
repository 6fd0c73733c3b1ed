"""Fault tolerance on real processes: a worker killed mid-build, a whole run killed and restarted.

Both builds use 16-plane slabs (66 slabs for the channel-1 short cube) so that a kill lands while
slabs are being written; both results must equal the undisturbed reference cube bit for bit.
"""

import os
import signal
import time

import numpy as np
import pytest

from tests.cluster import dask_procs

SLAB_PLANES = 16


def _wait_for_slabs(root, proc, at_least, timeout=600):
    """Poll the store's slab markers until ``at_least`` are done; return them (None if the run ended)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = dask_procs.slabs_done(root)
        if done is not None and done.sum() >= at_least:
            return done
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    raise TimeoutError("no slab written in time")


def _chunk_mtimes(root):
    """mtime of every chunk file of the cube's data variables, by (variable, slab)."""
    out = {}
    for var in dask_procs.VARS:
        folder = os.path.join(root, dask_procs.CUBE, var, "c")
        for d, _, files in os.walk(folder):
            for f in files:
                path = os.path.join(d, f)
                slab = int(os.path.relpath(path, folder).split(os.sep)[0])
                out[(var, slab)] = os.stat(path).st_mtime_ns
    return out


def test_killing_a_worker_midway_gives_the_same_cube(sim_1a, separate_cluster, reference, tmp_path):
    root = str(tmp_path / "cubes.zarr")
    env = dask_procs.clean_env(DASK_SCHEDULER_ADDRESS=separate_cluster.address)
    log = tmp_path / "cube.log"
    watcher = separate_cluster.client()
    pids = watcher.run(os.getpid)  # worker address -> pid of the worker process (not its nanny)
    proc = dask_procs.cli_popen("cube", sim_1a.association, "-o", root, *dask_procs.SELECTION,
                                "--slab-planes", SLAB_PLANES, "--no-progress", env=env, log=log)
    try:
        done = _wait_for_slabs(root, proc, at_least=2)
        assert done is not None, "the build ended before any slab was seen:\n" + log.read_text()[-3000:]
        # Kill (SIGKILL) a worker that is running a slab right now.
        busy = [addr for addr, keys in watcher.processing().items() if keys and addr in pids]
        victim = busy[0] if busy else next(iter(pids))
        os.kill(pids[victim], signal.SIGKILL)
        killed_at = dask_procs.slabs_done(root)
        assert killed_at.sum() < killed_at.size, "all slabs were done before the kill"
        assert proc.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        watcher.close()
        if proc.poll() is None:
            dask_procs.kill_group(proc)
    print(f"worker {victim} killed with {killed_at.sum()}/{killed_at.size} slabs done")
    dask_procs.assert_same_cube(dask_procs.cube_arrays(root), reference)
    assert "Dask scheduler" in log.read_text()  # connected through DASK_SCHEDULER_ADDRESS
    # The nanny restarts the worker: the cluster is whole again for whoever comes next.
    separate_cluster.wait_for_workers(2, timeout=120)
    assert pids[victim] not in separate_cluster.worker_pids().values()


# Two cube runs; resuming is also covered in the default run by tests/cube/test_resume.py.
@pytest.mark.slow
def test_killed_run_resumes_without_recomputing_finished_slabs(sim_1a, reference, tmp_path):
    from mrsdask.cube.builder import open_cube
    from mrsdask.errors import IncompleteStoreError

    root = str(tmp_path / "cubes.zarr")
    args = ("cube", sim_1a.association, "-o", root, *dask_procs.SELECTION, "--slab-planes", SLAB_PLANES,
            "--n-workers", "2", "--memory-limit", "1GB", "--no-progress")
    log = tmp_path / "first.log"
    proc = dask_procs.cli_popen(*args, log=log)
    try:
        seen = _wait_for_slabs(root, proc, at_least=3)
        assert seen is not None, "the first run ended before any slab was seen:\n" + log.read_text()[-3000:]
    finally:
        dask_procs.kill_group(proc)  # SIGKILL to the command and its local workers
    assert proc.returncode == -signal.SIGKILL

    # What the killed run left: some slabs, no completion mark.
    done = dask_procs.slabs_done(root)
    assert 0 < done.sum() < done.size, done
    with pytest.raises(IncompleteStoreError):
        open_cube(root, dask_procs.CUBE)
    info = dask_procs.cli("info", root)
    assert "INCOMPLETE" in info.stdout, info.stdout + info.stderr
    before = _chunk_mtimes(root)

    # The same command again resumes.
    second = dask_procs.cli(*args)
    assert second.returncode == 0, second.stderr[-5000:]
    after = _chunk_mtimes(root)
    cube = open_cube(root, dask_procs.CUBE)
    tear_slabs = {int(z) // SLAB_PLANES for z in cube.attrs["spectral_tear_planes"]}
    kept = [key for key in before if done[key[1]] and key[1] not in tear_slabs]
    assert kept, "no finished slab to check"
    rewritten = [key for key in kept if after[key] != before[key]]
    assert not rewritten, f"finished slabs were recomputed: {rewritten[:8]}"
    # Slabs missing at the kill were written by the second run.
    missing = np.nonzero(~done)[0]
    assert all(after.get(("sci", int(s))) != before.get(("sci", int(s))) for s in missing
               if ("sci", int(s)) in after)
    assert cube.attrs["mrsdask_complete"] is True
    print(f"killed with {done.sum()}/{done.size} slabs done; the rerun computed {len(missing)}")
    dask_procs.assert_same_cube(dask_procs.cube_arrays(root), reference)
