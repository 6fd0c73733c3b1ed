"""``mrsdask outlier`` reads and writes detector stores in an object store (a real S3 server, moto)."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest
import xarray as xr

from tests.cluster import dask_procs

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.slow]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(endpoint, environment of the command, s3fs filesystem, bucket name)."""
    server, endpoint = dask_procs.start_s3_server()
    env = dask_procs.clean_env(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="outlier-test",
                               AWS_SECRET_ACCESS_KEY=f"outlier-{uuid.uuid4().hex}", AWS_DEFAULT_REGION="us-east-1")
    fs = dask_procs.s3_filesystem(endpoint)
    bucket = "outlier-" + uuid.uuid4().hex[:12]
    fs.mkdir(bucket)
    yield endpoint, env, fs, bucket
    server.stop()


def test_s3_files_to_s3_store_to_s3_store(sim_1a, s3, tmp_path):
    from test_outlier_parity import assert_same_planes, run_official, with_hot_pixels

    from mrsdask.outlier import outlier_summary

    endpoint, env, fs, bucket = s3
    files, _ = with_hot_pixels(sim_1a.cal_files, str(tmp_path))
    urls = []
    for path in files:
        fs.put(path, f"{bucket}/in/{os.path.basename(path)}")
        urls.append(f"s3://{bucket}/in/{os.path.basename(path)}")
    passed = f"s3://{bucket}/passed.zarr"
    proc = dask_procs.cli("outlier", *urls, "-o", passed, "--skip", "--scheduler", "threads", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    flagged = f"s3://{bucket}/flagged.zarr"
    proc = dask_procs.cli("outlier", passed, "-o", flagged, "--scheduler", "threads", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    options = {"endpoint_url": endpoint, "key": "k", "secret": "s"}
    ds = xr.open_zarr(flagged, consolidated=False, storage_options=options)
    assert ds.attrs["mrsdask_complete"] is True
    official, _, _ = run_official(files)
    assert_same_planes(official, (ds["sci"].values, ds["err"].values, ds["dq"].values))
    assert outlier_summary(ds).detectors[0].flagged > 0
