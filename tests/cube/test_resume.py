"""Interrupted builds resume: finished slabs are not recomputed; completion is marked last."""

import os

import numpy as np
import pytest

from mrsdask.cube import store as cube_store
from mrsdask.cube.builder import build_cubes, open_cube
from mrsdask.cube.plan import CubeRequest
from mrsdask.errors import IncompleteStoreError
from mrsdask.io.detector_store import open_cal


def _chunk_files(root, name):
    folder = os.path.join(root, name, "sci", "c")
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, fs in os.walk(folder) for f in fs}


def _crash_on_third_slab(monkeypatch) -> list[int]:
    """Make the third slab task to run fail, as a killed process would leave it.

    (The scheduler's order of independent slabs is its own: count calls, not slab numbers.)
    Returns the list of slab indices the tasks were called with.
    """
    import mrsdask.cube.builder as build

    original = build.build_slab
    calls = []

    def failing(spec, root_, scratch, slab_index, **options):
        calls.append(slab_index)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return original(spec, root_, scratch, slab_index, **options)

    monkeypatch.setattr(build, "build_slab", failing)
    return calls


def test_resume_recomputes_only_missing_slabs(sim_1a, tmp_path, monkeypatch):
    import dask

    import mrsdask.cube.builder as build

    root = str(tmp_path / "cubes.zarr")
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    request = CubeRequest(output_type="band", channels=(1,), slab_planes=128)
    with dask.config.set(scheduler="synchronous"):
        # First run: the third slab task to run fails.
        original = build.build_slab
        calls = _crash_on_third_slab(monkeypatch)
        with pytest.raises(RuntimeError, match="simulated crash"):
            build_cubes(ds, root, request, progress=False)
        with pytest.raises(IncompleteStoreError):
            open_cube(root, "ch1-short")
        done = cube_store.slabs_done(root, "ch1-short")
        assert done.sum() == 2 and not done[calls[2]]
        before = _chunk_files(root, "ch1-short")
        # Second run: the same command resumes; count the slabs it computes.
        computed = []

        def counting(spec, root_, scratch, slab_index, **options):
            computed.append(slab_index)
            return original(spec, root_, scratch, slab_index, **options)

        monkeypatch.setattr(build, "build_slab", counting)
        build_cubes(ds, root, request, progress=False)
    assert sorted(computed) == sorted(np.nonzero(~done)[0].tolist())
    after = _chunk_files(root, "ch1-short")
    for path, mtime in before.items():
        slab = int(path.rsplit(os.sep + "c" + os.sep, 1)[1].split(os.sep)[0])
        if done[slab]:
            assert after[path] == mtime, f"finished slab {slab} was rewritten"
    resumed = open_cube(root, "ch1-short").load()
    # Identical to an undisturbed build.
    fresh_root = str(tmp_path / "fresh.zarr")
    with dask.config.set(scheduler="synchronous"):
        monkeypatch.setattr(build, "build_slab", original)
        build_cubes(ds, fresh_root, request, progress=False)
    fresh = open_cube(fresh_root, "ch1-short").load()
    np.testing.assert_array_equal(resumed["sci"].values, fresh["sci"].values)
    np.testing.assert_array_equal(resumed["dq"].values, fresh["dq"].values)
    assert not os.path.exists(os.path.join(root, "_scratch"))
    # The slab markers are the build's own: a plain xarray reader sees the data model only.
    import xarray as xr

    plain = xr.open_zarr(root, group="ch1-short", consolidated=False)
    assert set(plain.variables) == {"sci", "err", "dq", "wmap", "wavelength", "ra", "dec"}


@pytest.mark.parametrize("tables", ["on disk", "in memory"])
def test_a_rewritten_input_is_not_resumed_from_stale_tables(sim_1a, tmp_path, monkeypatch, tables):
    """An interrupted build leaves pixel tables (those written to the store) and slabs; if an
    input file is rewritten before the build is run again, nothing of the old build is reused:
    the result is the new data's."""
    import shutil

    import dask
    from astropy.io import fits

    import mrsdask.cube.builder as build
    from mrsdask.cube import pixels

    if tables == "on disk":  # as a cluster's workers write them
        monkeypatch.setattr(pixels, "MEMORY_TABLES_MAX_BYTES", 0)

    files = []
    for path in sim_1a.cal_files:
        files.append(str(tmp_path / os.path.basename(path)))
        shutil.copy(path, files[-1])
    root = str(tmp_path / "cubes.zarr")
    request = CubeRequest(output_type="band", channels=(1,), slab_planes=128)
    original = build.build_slab
    with dask.config.set(scheduler="synchronous"):
        _crash_on_third_slab(monkeypatch)
        with pytest.raises(RuntimeError, match="simulated crash"):
            build_cubes(open_cal(files), root, request, progress=False)
        written = [f for _, _, fs in os.walk(os.path.join(root, "_scratch")) for f in fs if f == "rows.npy"]
        assert len(written) == (len(files) if tables == "on disk" else 0)  # one channel per file
        assert not pixels._MEMORY_TABLES  # dropped with the failed build
        with fits.open(files[0], mode="update") as hdul:  # the user reprocesses one exposure
            hdul["SCI"].data *= 2.0
        monkeypatch.setattr(build, "build_slab", original)
        build_cubes(open_cal(files), root, request, progress=False)
        fresh_root = str(tmp_path / "fresh.zarr")
        build_cubes(open_cal(files), fresh_root, request, progress=False)
    rebuilt = open_cube(root, "ch1-short").load()
    fresh = open_cube(fresh_root, "ch1-short").load()
    np.testing.assert_array_equal(rebuilt["sci"].values, fresh["sci"].values)
    np.testing.assert_array_equal(rebuilt["dq"].values, fresh["dq"].values)


def test_stores_with_the_old_marker_layout_still_resume_and_open(tmp_path):
    """Cubes written before the slab markers moved to ``<cube>/_build`` kept them beside the data."""
    import xarray as xr

    root = str(tmp_path / "old.zarr")
    old = xr.Dataset({"sci": (("wavelength", "y", "x"), np.zeros((4, 2, 2), np.float32)),
                      "slab_done": (("slab",), np.array([True, False]))},
                     attrs={cube_store.COMPLETE_ATTR: False})
    old.to_zarr(root, group="ch1-short", mode="w", consolidated=False, zarr_format=3)
    np.testing.assert_array_equal(cube_store.slabs_done(root, "ch1-short"), [True, False])
    cube_store.write_slab(root, "ch1-short", 2, 4, 1, {"sci": np.ones((2, 2, 2), np.float32)})
    np.testing.assert_array_equal(cube_store.slabs_done(root, "ch1-short"), [True, True])
    cube_store.set_complete(root, "ch1-short")
    assert set(open_cube(root, "ch1-short").data_vars) == {"sci"}


@pytest.mark.parametrize("budget", ["all tables", "one table"])
def test_tables_kept_in_memory_give_the_same_cube_as_tables_on_disk(sim_1a, tmp_path, monkeypatch, budget):
    """A job run in this process keeps its pixel tables in memory, up to a budget: nothing is
    written for them, they are gone after the build, and the cube is the one built from tables
    in the store."""
    import dask

    from mrsdask.cube import pixels

    if budget == "one table":  # the others are written (a larger job)
        monkeypatch.setattr(pixels, "MEMORY_TABLES_MAX_BYTES", 60 * 2**20)

    ds = open_cal([str(p) for p in sim_1a.cal_files])
    request = CubeRequest(output_type="band", channels=(1,), slab_planes=128)
    kept, in_memory = str(tmp_path / "kept.zarr"), str(tmp_path / "memory.zarr")
    reads = []  # (table, held in memory, written to the store) at each read
    original = pixels.read_rows

    def spying(scratch, key, *args, **kwargs):
        reads.append((key, (scratch, key) in pixels._MEMORY_TABLES,
                      os.path.exists(os.path.join(scratch, key, "rows.npy"))))
        return original(scratch, key, *args, **kwargs)

    with dask.config.set(scheduler="threads"), pytest.MonkeyPatch.context() as mp:
        mp.setattr("mrsdask.cube.slabs.read_rows", spying)
        build_cubes(ds, kept, request, progress=False, keep_scratch=True)  # kept: written to the store
        assert reads and all(on_disk and not held for _, held, on_disk in reads)
        reads.clear()
        build_cubes(ds, in_memory, request, progress=False)
    assert reads and all(held != on_disk for _, held, on_disk in reads)
    held = {key for key, in_memory_, _ in reads if in_memory_}
    assert len(held) == (len(sim_1a.cal_files) if budget == "all tables" else 1)  # ~42 MB each
    assert not pixels._MEMORY_TABLES and not pixels._MEMORY_SCRATCH
    a, b = open_cube(kept, "ch1-short").load(), open_cube(in_memory, "ch1-short").load()
    for name in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_a_slab_write_that_fails_behind_its_task_fails_the_build_and_is_redone(sim_1a, tmp_path, monkeypatch):
    """Slab writes run behind their tasks in process: one that fails (a full disk) fails the build,
    its slab is not marked done, the cube is not complete, and the next run writes that slab."""
    import dask

    root = str(tmp_path / "cubes.zarr")
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    request = CubeRequest(output_type="band", channels=(1,), slab_planes=128)
    original = cube_store.write_slab
    calls = []

    def full_disk(root_, name, z0, z1, slab_index, planes):
        calls.append(slab_index)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(root_, name, z0, z1, slab_index, planes)

    monkeypatch.setattr(cube_store, "write_slab", full_disk)
    with dask.config.set(scheduler="threads", num_workers=2):
        with pytest.raises(OSError, match="No space left"):
            build_cubes(ds, root, request, progress=False)
        with pytest.raises(IncompleteStoreError):
            open_cube(root, "ch1-short")
        done = cube_store.slabs_done(root, "ch1-short")
        assert not done[calls[1]] and done.sum() <= len(calls) - 1
        monkeypatch.setattr(cube_store, "write_slab", original)
        build_cubes(ds, root, request, progress=False)
    assert cube_store.slabs_done(root, "ch1-short").all()
    fresh_root = str(tmp_path / "fresh.zarr")
    with dask.config.set(scheduler="synchronous"):
        build_cubes(ds, fresh_root, request, progress=False)
    np.testing.assert_array_equal(open_cube(root, "ch1-short")["sci"].values,
                                  open_cube(fresh_root, "ch1-short")["sci"].values)
