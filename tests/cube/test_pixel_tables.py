"""Pixel tables: the per-setting detector frame is computed once and shared between tasks."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import zarr

from mrsdask.cube import pixels
from mrsdask.instrument import frames
from mrsdask.cube.builder import pixel_table_groups, pixel_table_tasks
from mrsdask.errors import InputError
from mrsdask.io import mrs_wcs, paths
from mrsdask.io.sources import FitsExposure, StoreExposure


def _sources(sim):
    return [FitsExposure(str(p), paths.stamp(str(p))) for p in sim.cal_files]


def test_a_table_task_given_the_setting_frames_does_not_convert_the_detector_step(sim_1a, tmp_path, monkeypatch):
    sources = _sources(sim_1a)
    plain = str(tmp_path / "plain.zarr")
    shared_store = str(tmp_path / "shared.zarr")
    for store in (plain, shared_store):
        zarr.open_group(store, mode="a")
    frames.FRAME_CACHE.clear()
    expected = pixels.build_pixel_table_group([(sources[1], 1, [1])], plain)
    shared = pixels.setting_frames(sources[0], [1])
    assert shared is not None and set(shared.frames) == {1}
    frames.FRAME_CACHE.clear()  # as on another worker

    def no_conversion(self):
        raise AssertionError("the detector step was converted although its frame was given")

    monkeypatch.setattr(mrs_wcs.MrsWcsParts, "detector_to_alpha_beta", property(no_conversion))
    got = pixels.build_pixel_table_group([(sources[1], 1, [1])], shared_store, shared)
    assert got[0].n == expected[0].n > 0
    a = pixels.read_rows(plain, expected[0].key, 0, expected[0].n, corners=True)
    b = pixels.read_rows(shared_store, got[0].key, 0, got[0].n, corners=True)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    frames.FRAME_CACHE.clear()


def test_frames_of_another_instrument_model_are_not_used(sim_1a, tmp_path):
    sources = _sources(sim_1a)
    shared = pixels.setting_frames(sources[0], [1])
    alien = pixels.SettingFrames("another-model", shared.frames)
    frames.FRAME_CACHE.clear()
    store = str(tmp_path / "t.zarr")
    zarr.open_group(store, mode="a")
    pixels.build_pixel_table_group([(sources[1], 1, [1])], store, alien)
    keys = {k for k, _ in frames.FRAME_CACHE}
    assert keys == {"another-model", shared.instrument_key}  # its own frame was computed
    frames.FRAME_CACHE.clear()


def test_one_frame_task_per_setting_feeds_all_its_table_tasks():
    rows = [{"setting": s} for s in ("12A",) * 5 + ("34A",) * 2 + ("34B",) * 3]
    sources = [FitsExposure(f"f{i}", "") for i in range(10)]
    missing = {0: [1, 2], 1: [1], 2: [2], 3: [1], 4: [2], 5: [3], 6: [3, 4], 7: [4], 8: [3], 9: [4]}
    groups = pixel_table_groups(missing, rows, n_workers=4)  # tasks of up to 3 exposures
    assert [len(g) for g in groups] == [3, 2, 2, 3]
    tasks = pixel_table_tasks(missing, rows, sources, "scratch", n_workers=4)
    assert len(tasks) == len(groups)
    graph = dict(dask.delayed(tasks).__dask_graph__())
    frame_tasks = [v for k, v in graph.items() if str(k).startswith("setting_frames")]
    # 12A is spread over two table tasks: one frame task feeds both. 34A and 34B are each held by
    # one task, which takes its frames from its first exposure.
    assert len(frame_tasks) == 1
    assert frame_tasks[0].args[0].path == "f0" and tuple(frame_tasks[0].args[1]) == (1, 2)


def test_a_group_reads_the_frames_once_and_hands_them_to_every_exposure(sim_1a, tmp_path, monkeypatch):
    sources = _sources(sim_1a)
    store = str(tmp_path / "t.zarr")
    zarr.open_group(store, mode="a")
    calls = []
    real = pixels.channel_frame
    monkeypatch.setattr(pixels, "channel_frame", lambda parts, channel: calls.append(channel) or real(parts, channel))
    infos = pixels.build_pixel_table_group([(sources[0], 0, [1]), (sources[1], 1, [1])], store)
    assert calls == [1] and [i.n > 0 for i in infos] == [True, True]


def test_detector_store_sources_need_no_frames():
    assert pixels.setting_frames(StoreExposure("x", 0, ""), [1]) is None


def test_local_tables_are_npy_files_read_by_range_and_one_without_it_is_built_again(sim_1a, tmp_path):
    source = _sources(sim_1a)[0]
    store = str(tmp_path / "t.zarr")
    zarr.open_group(store, mode="a")
    info = pixels.build_pixel_tables(source, 0, [1], store)[0]
    path = tmp_path / "t.zarr" / info.key / "rows.npy"
    assert path.exists() and "rows" not in zarr.open_group(store)[info.key]
    rows = np.load(path)
    assert rows.shape == (info.n, len(pixels.ROW_COLUMNS))
    assert np.all(np.diff(rows[:, 0]) >= 0)  # sorted by λ
    start, stop = 1234, 5678
    got = pixels.read_rows(store, info.key, start, stop, corners=True, n_rows=info.n)
    for j, name in enumerate(pixels.COLUMNS_F8):
        np.testing.assert_array_equal(got[name], rows[start:stop, j])
    np.testing.assert_array_equal(got["corner_dec"][3], rows[start:stop, -1])
    tail = pixels.read_rows(store, info.key, info.n - 3, info.n + 10, corners=False)
    assert tail["wavelength"].shape == (3,)
    # The summary of the finished table is reused; a local table whose rows.npy is gone (lost, or
    # a scratch group of a version that kept local rows in zarr) is not: it is built again.
    assert pixels.load_table_info(store, info.key, source).n == info.n
    zarr.open_group(store)[info.key].create_array("rows", data=rows, chunks=(4096, rows.shape[1]))
    path.unlink()
    assert pixels.load_table_info(store, info.key, source) is None


def test_a_truncated_local_table_is_reported_not_misread(sim_1a, tmp_path):
    store = str(tmp_path / "t.zarr")
    zarr.open_group(store, mode="a")
    info = pixels.build_pixel_tables(_sources(sim_1a)[0], 0, [1], store)[0]
    path = tmp_path / "t.zarr" / info.key / "rows.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        pixels.read_rows(store, info.key, 0, info.n, corners=True, n_rows=info.n)


def test_the_frame_order_restricted_to_a_subset_is_the_subset_stable_sort():
    rng = np.random.default_rng(3)
    lam = np.round(rng.uniform(5.0, 5.1, 5000), 3)  # many ties
    lam[rng.choice(lam.size, 40, replace=False)] = np.nan
    cf = frames.ChannelFrame(np.zeros(lam.size, np.int64), np.zeros(lam.size, np.int64),
                             frames.DetectorFrameGeometry(*(lam,) * 6), 0.1)
    keep = rng.random(lam.size) < 0.7
    keep[np.isnan(lam)] = False
    target = np.empty(lam.size, np.int64)
    n = pixels._sorted_targets(cf.wavelength_order, keep, target)
    index = np.flatnonzero(keep)
    expected = index[np.argsort(lam[index], kind="stable")]
    assert n == expected.size and np.all(target[~keep] == -1)
    rows_of = np.full(n, -1)
    rows_of[target[keep]] = index
    np.testing.assert_array_equal(rows_of, expected)
    assert not cf.wavelength_order.flags.writeable


def test_rows_written_by_the_footprint_kernel_are_the_gathered_rows(sim_1a):
    """The fused path (compiled pointing) gives the rows of full per-pixel arrays, sorted and
    gathered, bit for bit: with λ ties, unusable pixels and pixels whose corners are undefined."""
    import dataclasses

    from mrsdask.datamodel.dq import DO_NOT_USE

    data = _sources(sim_1a)[0].read()
    assert hasattr(data.parts.pointing, "footprint_rows")
    cf = frames.channel_frame(data.parts, 1)
    f = cf.frame
    rng = np.random.default_rng(5)
    some = rng.choice(f.alpha.size, 50, replace=False)
    alpha_lo = f.alpha_lo.copy()
    alpha_lo[some[:10]] = np.nan  # centre defined, two corners not
    lam = np.round(f.wavelength, 4)  # ties, kept in detector order
    lam[some[10:15]] = 100.0  # in no λ range of the pointing: no sky position
    frame = frames.ChannelFrame(cf.ys, cf.xs, dataclasses.replace(f, alpha_lo=alpha_lo, wavelength=lam), cf.dbeta)
    sci, dq = data.sci.copy(), data.dq.copy()
    sci[cf.ys[some[15:25]], cf.xs[some[15:25]]] = np.nan
    dq[cf.ys[some[25:35]], cf.xs[some[25:35]]] |= DO_NOT_USE
    data = dataclasses.replace(data, sci=sci, dq=dq)
    rows, px = pixels._build_rows(data, 1, frame)
    expected, full = pixels._gathered_rows(pixels.channel_pixels(data, 1, frame))
    assert rows.shape == expected.shape and rows.shape[0] == f.alpha.size - 35
    np.testing.assert_array_equal(rows, expected)
    for name in ("ra", "dec", "wavelength", "dwavelength"):
        np.testing.assert_array_equal(px[name], full[name])


def test_a_local_table_is_complete_only_once_its_group_metadata_follows_its_rows(sim_1a, tmp_path):
    source = _sources(sim_1a)[0]
    store = str(tmp_path / "t.zarr")
    zarr.open_group(store, mode="a")
    info = pixels.build_pixel_tables(source, 0, [1], store)[0]
    assert pixels.load_table_info(store, info.key, source).n == info.n
    (tmp_path / "t.zarr" / info.key / "zarr.json").unlink()  # interrupted between the rows and the metadata
    assert pixels.load_table_info(store, info.key, source) is None
    again = pixels.build_pixel_tables(source, 0, [1], store)[0]
    assert again.n == info.n and pixels.load_table_info(store, info.key, source).n == info.n
