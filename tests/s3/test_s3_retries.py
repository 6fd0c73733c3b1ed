"""Transient object-store errors are retried and the cube comes out the same.

An HTTP proxy on 127.0.0.1 sits between every process and the S3 server and fails chosen requests:
``503 SlowDown`` / ``500 InternalError`` (retried by botocore inside s3fs: ``MRSDASK_S3_RETRIES``)
and a non-retryable ``403`` on one chunk write, which fails the slab task; Dask then runs the task
again (``retries=3`` on the builder's futures).
"""

import pytest

from tests.cluster import dask_procs


# A whole cube through a failing proxy (2-3 min); s3 cubes stay in the default run (test_s3_end_to_end).
@pytest.mark.slow
def test_failed_requests_are_retried_and_the_cube_is_identical(sim_1a, s3_server, s3_env, bucket, reference):
    name, fs = bucket
    urls = []
    for path in sim_1a.cal_files:
        key = f"{name}/in/{path.name}"
        fs.put(str(path), key)
        urls.append(f"s3://{key}")
    store = f"s3://{name}/cubes.zarr"
    rules = [
        ("GET", rf"/{name}/in/[^/?]*_d2_cal\.fits", 503, 2),                 # input FITS read
        ("GET", rf"/{name}/cubes\.zarr/_scratch/e0001_ch1/rows/c/0/0$", 503, 1),  # pixel table read by a slab
        ("PUT", rf"/{name}/cubes\.zarr/ch1-short/sci/c/3/0/0$", 500, 2),       # slab write
        ("PUT", rf"/{name}/cubes\.zarr/ch1-short/err/c/5/0/0$", 403, 1),       # not retryable: the task fails
    ]
    proxy = dask_procs.FaultyProxy(s3_server, rules)
    try:
        env = dict(s3_env, AWS_ENDPOINT_URL=proxy.endpoint)
        proc = dask_procs.cli("cube", *urls, "-o", store, *dask_procs.SELECTION, "--slab-planes", "64",
                              "--n-workers", "2", "--memory-limit", "1GB", "--no-progress", env=env)
    finally:
        proxy.close()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    assert proxy.hits == [times for *_, times in rules], (proxy.hits, proxy.requests)
    got = dask_procs.cube_arrays(store, storage_options={"endpoint_url": s3_server, "key": "k", "secret": "s"})
    dask_procs.assert_same_cube(got, reference)
