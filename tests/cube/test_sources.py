"""Cubes from any detector Dataset: opened from files, from a store, or changed in memory.

Tasks reach each exposure through a typed source (:mod:`mrsdask.io.sources`): the FITS file
or detector store while the Dataset's arrays are those opened from them, else the Dataset's
own arrays (computed by Dask as the tasks' inputs). Whatever the route, the same data give the
same cube, bit for bit, and other data never reuse an earlier build's pixel tables.
"""

from __future__ import annotations

import dask
import numpy as np
import pytest

from mrsdask.cube import store as cube_store
from mrsdask.cube.builder import build_cubes, pixel_table_tasks
from mrsdask.cube.pixels import load_table_info, table_key
from mrsdask.cube.plan import CubeRequest
from mrsdask.errors import InputError, ParameterError
from mrsdask.io.detector_store import open_cal, open_detector_store, write_detector_store
from mrsdask.io.sources import FitsExposure, MemoryExposure, StoreExposure, exposure_sources
from tests.cluster import dask_procs

#: The session's ``reference`` cube: channel 1 short over WAVEMIN-WAVEMAX.
REQUEST = CubeRequest(output_type="band", channels=(1,), subbands=("A",),
                      wavemin=dask_procs.WAVEMIN, wavemax=dask_procs.WAVEMAX)
VARS = ("sci", "err", "dq", "wmap")


def _build(ds, root, **kwargs) -> dict[str, np.ndarray]:
    with dask.config.set(scheduler="threads"):
        assert build_cubes(ds, str(root), REQUEST, progress=False, **kwargs) == [dask_procs.CUBE]
    return dask_procs.cube_arrays(str(root))


def _same(got: dict, expected: dict, scale_sci: float = 1.0) -> None:
    for name in VARS:
        want = expected[name] * scale_sci if name == "sci" else expected[name]
        np.testing.assert_array_equal(got[name], want, err_msg=name)


@pytest.fixture(scope="module")
def one_exposure_store(sim_1a, tmp_path_factory):
    """A detector store of the first ``sim_1a`` exposure (~10 s: its geometry is computed)."""
    path = str(tmp_path_factory.mktemp("sources") / "det.zarr")
    with dask.config.set(scheduler="threads"):
        write_detector_store(open_cal([str(sim_1a.cal_files[0])]), path)
    return path


def test_files_a_store_and_the_store_changed_in_memory_give_the_same_cube(sim_1a, one_exposure_store, tmp_path):
    from_fits = open_cal([str(sim_1a.cal_files[0])])
    from_store = open_detector_store(one_exposure_store)
    # A selection (here of every exposure) leaves the Dataset's arrays other than the store's:
    # its exposures are computed from its own arrays (planes and geometry).
    in_memory = from_store.isel(exposure=[0])
    assert [type(s) for s in exposure_sources(from_fits)] == [FitsExposure]
    assert [type(s) for s in exposure_sources(from_store)] == [StoreExposure]
    (memory,) = exposure_sources(in_memory)
    assert type(memory) is MemoryExposure and memory.wcs_asdf is not None and memory.geometry is not None
    expected = _build(from_fits, tmp_path / "fits.zarr")
    assert np.isfinite(expected["sci"]).sum() > 1000
    _same(_build(from_store, tmp_path / "store.zarr"), expected)
    _same(_build(in_memory, tmp_path / "memory.zarr"), expected)


def test_geometry_changed_in_memory_is_used_as_it_is(sim_1a, one_exposure_store, tmp_path):
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    # Still the files' lazy geometry (exposures selected, planes changed): computed from the
    # files' gwcs. Changed in any way: the Dataset's own arrays.
    assert all(s.geometry is None for s in exposure_sources(ds.isel(exposure=[1, 0]).assign(sci=ds["sci"] * 2)))
    assert all(s.geometry is not None for s in exposure_sources(ds.assign(ra=ds["ra"] + 0)))
    swapped = ds.assign(wavelength=ds["wavelength"][::-1]).assign(sci=ds["sci"] * 2)  # another file's geometry
    assert all(s.geometry is not None for s in exposure_sources(swapped))
    # A store's geometry moved in memory gives the cube of a store holding the moved geometry.
    store = open_detector_store(one_exposure_store)
    moved = store.assign(ra=store["ra"] + 2e-4, corner_ra=store["corner_ra"] + 2e-4)
    with dask.config.set(scheduler="threads"):
        write_detector_store(moved, str(tmp_path / "moved.zarr"))
    expected = _build(open_detector_store(str(tmp_path / "moved.zarr")), tmp_path / "store.zarr")
    got = _build(moved, tmp_path / "memory.zarr")
    _same(got, expected)
    unmoved = _build(store, tmp_path / "unmoved.zarr")
    assert not np.array_equal(got["sci"], unmoved["sci"], equal_nan=True)


def test_a_dataset_changed_in_memory_is_built_from_its_own_arrays(sim_1a, reference, tmp_path):
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    doubled = ds.assign(sci=ds["sci"] * 2)
    sources = exposure_sources(doubled)
    assert all(type(s) is MemoryExposure and s.wcs_path == str(p) and s.geometry is None
               for s, p in zip(sources, sim_1a.cal_files))
    # The table task of an in-memory exposure depends on its planes; the frame task of its
    # setting (spread over two tasks, one per worker) on its gwcs alone (no plane is computed for it).
    graph = dict(dask.delayed(pixel_table_tasks({0: [1], 1: [1]}, [{"setting": "12A"}] * 2, sources, "s", 2))
                 .__dask_graph__())
    frames = [k for k in graph if str(k).startswith("setting_frames")]
    assert len(frames) == 1 and not any("planes" in str(d) for d in _dependencies(graph, frames[0]))
    assert any("planes-" in str(d) for d in graph)
    # Doubling SCI doubles the cube's SCI exactly (the weights do not depend on the flux).
    _same(_build(doubled, tmp_path / "c.zarr"), reference, scale_sci=2.0)


def _dependencies(graph: dict, key) -> set:
    """Every key ``key`` depends on, transitively."""
    from dask.core import get_dependencies

    seen, todo = set(), [key]
    while todo:
        for dep in get_dependencies(graph, todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_a_resumed_build_whose_in_memory_data_changed_recomputes_its_pixel_tables(sim_1a, reference, tmp_path):
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    first = ds.assign(sci=ds["sci"] + 0)
    # The stamp of in-memory data is its Dask token: the same graph again has the same stamp,
    # other data another one.
    stamps = [s.stamp for s in exposure_sources(first)]
    assert stamps == [s.stamp for s in exposure_sources(ds.assign(sci=ds["sci"] + 0))]
    second = ds.assign(sci=ds["sci"] * 2)
    assert not set(stamps) & {s.stamp for s in exposure_sources(second)}

    root = str(tmp_path / "c.zarr")
    _same(_build(first, root, keep_scratch=True), reference)
    scratch = cube_store.group_path(root, cube_store.SCRATCH)
    key = table_key(0, 1)
    assert load_table_info(scratch, key, exposure_sources(first)[0]) is not None
    assert load_table_info(scratch, key, exposure_sources(second)[0]) is None  # not these data's
    # A complete cube of other data is not replaced silently.
    with pytest.raises(ParameterError, match="built differently"):
        _build(second, root)
    # As if the build had been interrupted: the cube is unfinished, the tables are there. Run
    # with the changed data, nothing of the first data is reused.
    cube_store.set_complete(root, dask_procs.CUBE, False)
    _same(_build(second, root, keep_scratch=True), reference, scale_sci=2.0)
    assert load_table_info(scratch, key, exposure_sources(second)[0]) is not None


def test_in_memory_exposures_without_a_reachable_gwcs_or_whole_detectors_are_refused_before_any_work(sim_1a, tmp_path):
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    moved = ds.assign(sci=ds["sci"] * 2).assign_coords(path=("exposure", [str(tmp_path / "gone_cal.fits")] * 2))
    with pytest.raises(InputError, match="gone_cal.fits not there"):
        build_cubes(moved, str(tmp_path / "c.zarr"), REQUEST, progress=False)
    with pytest.raises(InputError, match="1024 x 40 pixels of each exposure; cubes need whole detectors"):
        build_cubes(ds.isel(x=slice(160, 200)), str(tmp_path / "c.zarr"), REQUEST, progress=False)
    assert not (tmp_path / "c.zarr").exists()
