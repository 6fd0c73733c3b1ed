"""Fixtures of the cluster tests: a separate-process Dask cluster and the reference cube."""

import pytest

from tests.cluster import dask_procs


@pytest.fixture(scope="module")
def separate_cluster(tmp_path_factory):
    """A scheduler and 2 worker processes (1 thread, 1 GB each) on 127.0.0.1."""
    cluster = dask_procs.SeparateCluster(tmp_path_factory.mktemp("cluster"), n_workers=2, memory_limit="1GB")
    yield cluster
    cluster.close()

