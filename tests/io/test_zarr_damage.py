"""A cube chunk that is on disk but does not decode is named, with the repair, wherever zarr reads it."""

import os
import shutil

import numpy as np
import pytest

from mrsdask.errors import DamagedStoreError

REPAIR = r"remove that file and run the same 'mrsdask cube' command again"


@pytest.fixture
def damaged_cube(sim_1a_cube, tmp_path):
    """A copy of the 1A cube store whose sci chunk 0 is truncated and chunk 1 is a whole zstd
    frame of one plane fewer than a chunk: ``(store, name, first, second, planes per chunk)``."""
    import zarr
    from numcodecs import Zstd

    store, name = sim_1a_cube
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(store, copy)
    sci = zarr.open_group(os.path.join(copy, name), mode="r")["sci"]
    step = sci.chunks[0]
    first, second = (os.path.join(copy, name, "sci", "c", str(i), "0", "0") for i in (0, 1))
    with open(first, "r+b") as fobj:
        fobj.truncate(100)
    with open(second, "wb") as fobj:
        fobj.write(Zstd().encode(np.zeros((step - 1,) + sci.shape[1:], dtype=sci.dtype).tobytes()))
    return copy, name, first, second, step


def test_lazy_and_streamed_reads_name_the_chunk_that_does_not_decode(damaged_cube):
    from mrsdask.cube.reader import open_cube

    store, name, first, second, step = damaged_cube
    for dask in (True, False):  # Dask arrays (queries, lazy spectra), xarray's lazy arrays (s3d export)
        cube = open_cube(store, name, dask=dask)
        with pytest.raises(DamagedStoreError, match=rf"^{first}: chunk cannot be decoded \(.*\); the store is "
                                                    rf"damaged: {REPAIR}") as info:
            cube["sci"].isel(wavelength=slice(0, step)).values
        assert info.value.__cause__ is not None  # the codec's own error, kept as the cause
        with pytest.raises(DamagedStoreError, match=rf"^{second}: chunk cannot be decoded \(.*shape"):
            cube["sci"].isel(wavelength=slice(step, 2 * step)).values
        intact = cube["sci"].isel(wavelength=slice(2 * step, 3 * step)).values  # the others read as before
        assert intact.shape[0] == step and np.isfinite(intact).any()
        assert cube["err"].isel(wavelength=slice(0, step)).values.shape[0] == step  # err's chunk 0 is whole


def test_the_extract_command_on_a_cluster_names_the_damaged_chunk(damaged_cube, tmp_path):
    """The lazy spectra on a Dask cluster of separate processes: the worker's error names the file;
    the command says it in one line and exits 2, leaving no x1d file."""
    from tests.cluster import dask_procs

    store, name, first, second, _ = damaged_cube
    cluster = dask_procs.SeparateCluster(tmp_path / "cluster", n_workers=1, memory_limit="1GB")
    try:
        out = dask_procs.cli("extract", store, "--x1d", str(tmp_path / "x1d"),
                             env=dask_procs.clean_env(DASK_SCHEDULER_ADDRESS=cluster.address), timeout=300)
    finally:
        cluster.close()
    assert out.returncode == 2, out.stderr[-3000:]
    named = [path for path in (first, second) if f"mrsdask: error: {path}: chunk cannot be decoded" in out.stderr]
    assert len(named) == 1, out.stderr  # the slab task that failed first
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "x1d").exists() or not any((tmp_path / "x1d").iterdir())
