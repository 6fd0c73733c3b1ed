"""Chunked background subtraction of a store larger than the workers' memory (< 60 s).

A synthetic detector store of 7 exposures (~0.93 GB in memory, with all the per-pixel
geometry) is background-subtracted by a ``LocalCluster`` of 2 worker processes limited to
400 MB each, with both methods, store to store. A task that materialises the store on one
worker (what an implementation holding all exposures would do) is killed by the nanny.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from bkg_helpers import synthetic_detector_dataset

pytestmark = pytest.mark.filterwarnings("ignore")

MEMORY_LIMIT = 400e6


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    import dask

    from mrsdask.background import write_background_store

    ds = synthetic_detector_dataset(n_science=2, n_background=5, setting="12A", seed=5)
    path = str(tmp_path_factory.mktemp("big") / "det.zarr")
    with dask.config.set(scheduler="threads"):
        write_background_store(ds, path)
    return path, int(ds.nbytes)


def test_larger_than_worker_memory(big_store, tmp_path):
    import dask
    from distributed import Client, KilledWorker, LocalCluster

    from mrsdask.background import run_background
    from mrsdask.io.detector_store import open_detector_store
    from mrsdask.sim.scene import sky_spectrum

    store, nbytes = big_store
    assert nbytes > 2 * MEMORY_LIMIT  # larger than the whole cluster's memory
    lam = np.linspace(4.5, 8.0, 3000)
    user = tmp_path / "sky.txt"
    np.savetxt(user, np.column_stack([lam, sky_spectrum(lam)]))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=MEMORY_LIMIT, processes=True,
                         dashboard_address=":0") as cluster, Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        pixel = run_background(store, str(tmp_path / "pixel.zarr"), method="pixel")
        master = run_background(store, str(tmp_path / "master.zarr"), method="master",
                                user_background=str(user), save_2d=True)
        # No worker died or restarted on the way (allowed-failures = 0 would have raised).
        assert set(client.scheduler_info()["workers"]) == workers

        def materialise(path):
            return xr.open_zarr(path, consolidated=False).load(scheduler="sync").nbytes

        with pytest.raises(KilledWorker):
            client.submit(materialise, store, pure=False).result()

    assert len(pixel.science) == 2 and len(pixel.background) == 5
    assert master.method == "master" and master.spectrum_points == 3000
    # The outputs are right, checked on a few rows against plain numpy.
    src = open_detector_store(store)
    rows = slice(300, 340)
    sci = src["sci"][:, rows].values.astype(np.float64)
    wave = src["wavelength"][0, rows].values
    out_pix = open_detector_store(str(tmp_path / "pixel.zarr"))
    assert out_pix.sizes["exposure"] == 2
    expected = (sci[:2] - sci[2:].mean(axis=0)).astype(np.float32)
    np.testing.assert_allclose(out_pix["sci"][:, rows].values, expected, rtol=0, atol=2e-5)
    out_mas = open_detector_store(str(tmp_path / "master.zarr"))
    bkg = np.interp(np.nan_to_num(wave, nan=-1.0), lam, sky_spectrum(lam), left=0.0, right=0.0)
    np.testing.assert_allclose(out_mas["background"][1, rows].values, bkg.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(out_mas["sci"][:, rows].values, (sci[:2] - bkg.astype(np.float32)).astype(np.float32),
                               rtol=1e-6, atol=1e-5)
    # Science pixels were 5 MJy/sr of "source" over the sky: that is what remains.
    on = np.isfinite(out_mas["sci"][0, rows].values)
    assert abs(np.mean(out_mas["sci"][0, rows].values[on]) - 5.0) < 0.01
