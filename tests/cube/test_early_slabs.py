"""Cubes planned from headers run their slabs beside the pixel-table tasks (mrsdask.cube.builder)."""

import logging

import numpy as np
import pytest

from mrsdask.cube.plan import CubeRequest

#: A channel-2 cube (its grid comes from the exposures' S_REGION, as officially): planned
#: before its tables.
REQUEST = CubeRequest(output_type="band", channels=(2,), subbands=("A",), weighting="emsm",
                      wavemin=7.6, wavemax=7.8, slab_planes=40)


def _build(ds, root, caplog, request=REQUEST, **options):
    import dask

    from mrsdask.cube.builder import build_cubes, open_cube

    caplog.clear()
    with dask.config.set(scheduler="threads"), caplog.at_level(logging.INFO, logger="mrsdask"):
        names = build_cubes(ds, root, request, progress=False, **options)
    assert names == ["ch2-short"]
    cube = open_cube(root, "ch2-short", dask=False)
    return {name: cube[name].values for name in ("sci", "err", "dq", "wmap")}


@pytest.fixture(scope="module")
def sim_1a_dataset(sim_1a):
    from mrsdask.io.detector_store import open_cal

    return open_cal([str(p) for p in sim_1a.cal_files])


@pytest.mark.parametrize("weighting", ["emsm", "drizzle"])  # drizzle: a linear axis padded by the pixels' dλ
def test_slabs_beside_the_tables_equal_the_build_after_them(sim_1a_dataset, tmp_path, caplog, monkeypatch, weighting):
    import dataclasses

    import mrsdask.cube.builder as builder

    finished = []  # the specs the two builds end with: the same grid, window and tables
    real_finish = builder.finish_cube
    monkeypatch.setattr(builder, "finish_cube", lambda spec, *a: finished.append(spec) or real_finish(spec, *a))
    root = str(tmp_path / "cubes.zarr")
    request = dataclasses.replace(REQUEST, weighting=weighting)
    early = _build(sim_1a_dataset, root, caplog, request, keep_scratch=True)
    assert "phase pixel tables (2 tasks), grids and slabs:" in caplog.text
    assert "recomputed" not in caplog.text
    # The tables are kept: the same build again waits for none and plans after them.
    after = _build(sim_1a_dataset, root, caplog, request, overwrite=True)
    assert "grids and slabs" not in caplog.text and "phase slabs (" in caplog.text
    for name in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(early[name], after[name])
    assert np.isfinite(after["sci"]).any()
    assert finished[0].window == finished[1].window and finished[0].grid == finished[1].grid
    assert [t.key for t in finished[0].tables] == [t.key for t in finished[1].tables]


def test_a_slab_that_missed_a_table_is_recomputed(sim_1a_dataset, tmp_path, caplog, monkeypatch):
    from mrsdask.cube import dispatch

    reference = _build(sim_1a_dataset, str(tmp_path / "reference.zarr"), caplog)
    # Band ranges taken far too narrow: no slab waits for the table, each is found to have
    # missed it once the table exists, and is computed again with it.
    monkeypatch.setattr(dispatch, "BAND_RANGE_MARGIN", -0.5)
    missed = _build(sim_1a_dataset, str(tmp_path / "missed.zarr"), caplog)
    assert "slab 0 is recomputed with the tables ['e0000_ch2', 'e0001_ch2']" in caplog.text
    for name in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(missed[name], reference[name])


def test_which_cubes_need_their_tables_before_their_grid():
    from mrsdask.cube.plan import CubePlan
    from mrsdask.instrument.bands import Band
    from mrsdask.cube.spec import needs_table_summaries

    region = "POLYGON ICRS 10.0 1.0 10.001 1.0 10.001 1.001 10.0 1.001"
    rows = [{"s_region": region, "target_type": "FIXED"}]

    def needs(channel, weighting="drizzle", rows=rows, **request):
        band = Band(f"{channel}A", channel, "A")
        plan = CubePlan("c", (band,), ((0, band),))
        return needs_table_summaries(plan, CubeRequest(channels=(channel,), weighting=weighting, **request), rows)

    assert not needs(2) and not needs(4)
    assert needs(1) and needs(3)  # the official step takes their footprint from the pixels
    assert not needs(2, "emsm") and not needs(4, "msm")
    assert needs(2, rows=[{"s_region": "", "target_type": "FIXED"}])
    assert needs(2, rows=[{"s_region": region, "target_type": "MOVING"}])
    assert needs(2, cube_pa=30.0)


def test_a_table_dropped_after_its_readers_is_built_again_for_a_slab_that_missed_it(sim_1a_dataset, tmp_path,
                                                                                    caplog, monkeypatch):
    from mrsdask.cube import dispatch
    from mrsdask.cube.cubepars import default_cubepars

    reference = _build(sim_1a_dataset, str(tmp_path / "reference.zarr"), caplog)
    # Band 2A taken to start at 7.7 µm: the slabs above wait for the tables, which leave memory
    # once those slabs have read them; the slabs below turn out to need them too.
    monkeypatch.setattr(dispatch, "BAND_RANGE_MARGIN", 1 - 7.7 / default_cubepars().bands["2A"].wavemin)
    again = _build(sim_1a_dataset, str(tmp_path / "again.zarr"), caplog)
    assert "slab 0 is recomputed" in caplog.text and "slab 3 is recomputed" not in caplog.text
    assert "pixel tables ['e0000_ch2', 'e0001_ch2'] are built again" in caplog.text
    for name in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(again[name], reference[name])


def test_tables_leave_memory_after_their_last_reader(tmp_path):
    from mrsdask.cube import pixels

    scratch = str(tmp_path / "scratch")
    with pixels.tables_in_memory(scratch, 1000):
        assert pixels._take_memory(scratch, 800)
        pixels._MEMORY_TABLES[(scratch, "a")] = (None, {}, np.zeros(100))  # 800 bytes
        pixels.expect_readers(scratch, {"a": 2, "b": 1})
        pixels.finished_reading(scratch, ["a", "b", "c"])
        assert (scratch, "a") in pixels._MEMORY_TABLES and not pixels._take_memory(scratch, 800)
        pixels.finished_reading(scratch, ["a"])
        assert (scratch, "a") not in pixels._MEMORY_TABLES
        assert pixels.released_tables(scratch) == {"a"}  # "b" was never held in memory
        assert pixels._take_memory(scratch, 800)  # its bytes are back in the budget
    assert pixels.released_tables(scratch) == set()


def test_a_cube_that_needs_its_tables_is_planned_as_they_arrive(sim_1a_dataset, tmp_path, caplog):
    """A channel-1 cube (footprint from its pixels) beside a channel-2 one (from headers): planned
    in the table tasks' compute once its own tables are written, the same cube as planned after."""
    import dataclasses

    import dask

    from mrsdask.cube.builder import build_cubes, open_cube

    request = dataclasses.replace(REQUEST, channels=(1, 2, 3, 4), subbands=("A", "B", "C"), wavemin=None,
                                  wavemax=None, slab_planes=200)  # every band present: 1A and 2A
    root = str(tmp_path / "cubes.zarr")
    cubes = []
    for overwrite in (False, True):  # the second build finds the tables kept by the first
        caplog.clear()
        with dask.config.set(scheduler="threads"), caplog.at_level(logging.DEBUG, logger="mrsdask"):
            names = build_cubes(sim_1a_dataset, root, request, progress=False, keep_scratch=True, overwrite=overwrite)
        assert names == ["ch1-short", "ch2-short"]
        planned_beside = "cube ch1-short: its tables are written; planned beside the other tasks" in caplog.text
        assert planned_beside is not overwrite
        cubes.append({name: open_cube(root, "ch1-short", dask=False)[name].values for name in ("sci", "err", "dq", "wmap")})
    for name in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(cubes[0][name], cubes[1][name])
    assert np.isfinite(cubes[0]["sci"]).any()
