"""Fixtures of the object-store tests: a real S3 server on loopback and a cluster that uses it."""

import uuid

import pytest

from tests.cluster import dask_procs

#: Credentials of the tests: dummy, but the secret is unique so that leaks can be grepped for.
SECRET = f"mrsdask-secret-{uuid.uuid4().hex}"
KEY_ID = "mrsdask-test-key"


@pytest.fixture(scope="session")
def s3_secret():
    """The unique secret access key every S3 client of the tests is given through the environment."""
    return SECRET


@pytest.fixture(scope="module")
def s3_server():
    """Endpoint URL of a moto S3 server on 127.0.0.1 (a random port), for this module."""
    server, endpoint = dask_procs.start_s3_server()
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def s3_env(s3_server):
    """Environment of processes that use the server: endpoint and credentials, as a user sets them."""
    return dask_procs.clean_env(AWS_ENDPOINT_URL=s3_server, AWS_ACCESS_KEY_ID=KEY_ID,
                                AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")


@pytest.fixture
def s3_env_here(s3_env, monkeypatch):
    """This process's environment set to reach the server (for commands run in this process)."""
    for variable in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(variable, s3_env[variable])
    return s3_env


@pytest.fixture(scope="module")
def s3_cluster(s3_env, tmp_path_factory):
    """A separate-process cluster (scheduler + 2 workers) whose workers reach the S3 server."""
    cluster = dask_procs.SeparateCluster(tmp_path_factory.mktemp("s3cluster"), n_workers=2,
                                         memory_limit="1GB", env=s3_env)
    yield cluster
    cluster.close()


@pytest.fixture
def bucket(s3_server, request):
    """A new bucket for one test; returns (name, s3fs filesystem)."""
    fs = dask_procs.s3_filesystem(s3_server)
    name = "mrsdask-" + uuid.uuid4().hex[:12]
    fs.mkdir(name)
    return name, fs

