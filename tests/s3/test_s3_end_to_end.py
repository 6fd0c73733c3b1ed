"""Cubes from ``s3://`` inputs to an ``s3://`` zarr store on a separate-process Dask cluster.

A real S3-compatible server (moto) listens on 127.0.0.1; every process — the ``mrsdask`` command,
the scheduler, the workers — reaches it over the network, configured only through the standard
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_s3_secret_ACCESS_KEY``).
"""

import os
import time

import pytest

from tests.cluster import dask_procs


def _upload(fs, bucket, sim, prefix="in"):
    urls = []
    for path in sim.cal_files:
        key = f"{bucket}/{prefix}/{os.path.basename(str(path))}"
        fs.put(str(path), key)
        urls.append(f"s3://{key}")
    return urls


def test_cube_from_s3_to_s3_on_a_separate_cluster(sim_1a, s3_server, s3_env, s3_cluster, bucket, reference,
                                                  s3_secret):
    name, fs = bucket
    urls = _upload(fs, name, sim_1a)
    store = f"s3://{name}/cubes/mrs.zarr"
    t0 = time.perf_counter()
    proc = dask_procs.cli("-v", "cube", *urls, "-o", store, *dask_procs.SELECTION,
                          "--scheduler", s3_cluster.address, "--no-progress", env=s3_env)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert f"Dask scheduler {s3_cluster.address}" in proc.stdout
    print(f"s3 -> s3 cube on a 2-worker cluster: {elapsed:.1f} s")

    # Open it from the object store with xarray, as a user would: the same cube as a local build.
    got = dask_procs.cube_arrays(store, storage_options={"endpoint_url": s3_server, "key": "k", "secret": "s"})
    dask_procs.assert_same_cube(got, reference)
    keys = fs.find(f"{name}/cubes/mrs.zarr")
    assert not any("/_scratch/" in k for k in keys), "pixel tables were not cleaned up"
    info = dask_procs.cli("info", store, env=s3_env)
    assert info.returncode == 0 and "ch1-short" in info.stdout and "complete" in info.stdout, info.stderr

    # Credentials never reach outputs or logs: not in any object of the store (metadata included),
    # not in the command's output (verbose logging), not in the scheduler's or workers' logs.
    leaks = [k for k in keys if s3_secret.encode() in fs.cat_file(k)]
    assert not leaks, f"secret written into {leaks}"
    assert s3_secret not in proc.stdout + proc.stderr + info.stdout + info.stderr
    assert s3_secret not in s3_cluster.log_text()

    # A chunk lost from the object store is found by one listing of the cube's keys (no data read).
    fs.rm(f"{name}/cubes/mrs.zarr/ch1-short/sci/c/1/0/0")
    info = dask_procs.cli("info", store, env=s3_env)
    assert info.returncode == 2 and "DAMAGED" in info.stdout and "sci planes" in info.stdout, info.stdout + info.stderr


def test_missing_s3_input_is_a_clear_error(s3_env_here, bucket, capsys):
    """In this process (the command's ``main``; its own process is tested with the s3 outputs)."""
    from tests.conftest import run_cli_here

    name, _ = bucket
    proc = run_cli_here(capsys, "cube", f"s3://{name}/nothing/x_cal.fits", "-o", f"s3://{name}/o.zarr",
                        "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "file not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli_here(capsys, "cube", f"s3://{name}/nothing/*_cal.fits", "-o", f"s3://{name}/o.zarr",
                        "--no-progress")
    assert proc.returncode == 2 and "no file matches" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_detector_store_on_s3_then_cube_from_it(sim_1a, s3_server, s3_env, s3_cluster, bucket, reference):
    """Ingest s3 cal files into an s3 detector store, then build the cube from that store."""
    name, fs = bucket
    urls = _upload(fs, name, sim_1a)
    det = f"s3://{name}/det.zarr"
    proc = dask_procs.cli("ingest", *urls, "-o", det, "--scheduler", s3_cluster.address, "--no-progress",
                          env=s3_env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    store = f"s3://{name}/cubes.zarr"
    proc = dask_procs.cli("cube", det, "-o", store, *dask_procs.SELECTION, "--scheduler", s3_cluster.address,
                          "--no-progress", env=s3_env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    got = dask_procs.cube_arrays(store, storage_options={"endpoint_url": s3_server, "key": "k", "secret": "s"})
    dask_procs.assert_same_cube(got, reference)
