"""Cube stores are trustworthy: a lost chunk is found and repaired, nothing is replaced silently.

Builds are small (2 dithers of 1A, a 0.15 um slice of the band, 16-plane slabs) and run in
this process (``--scheduler threads``).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from mrsdask.cli import main
from tests.conftest import run_cli_here

CUBE = "ch1-short"
SMALL = ["--channel", "1", "--wavemin", "4.95", "--wavemax", "5.10", "--slab-planes", "16",
         "--scheduler", "threads", "--no-progress"]


def _cli(capsys, *args) -> tuple[int, str, str]:
    proc = run_cli_here(capsys, *args)
    return proc.returncode, proc.stdout, proc.stderr


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("mrsdask") and ": error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _arrays(root: str, name: str = CUBE) -> dict[str, np.ndarray]:
    import xarray as xr

    ds = xr.open_zarr(root, group=name, consolidated=False)
    return {k: ds[k].values for k in ("sci", "err", "dq", "wmap", "wavelength", "ra", "dec")}


def _chunk(root: str, array: str, slab: int) -> str:
    return os.path.join(root, CUBE, array, "c", str(slab), "0", "0")


@pytest.fixture(scope="module")
def built(sim_1a, tmp_path_factory):
    """A small complete cube (built once); tests work on copies of it."""
    import io
    from contextlib import redirect_stdout

    root = str(tmp_path_factory.mktemp("built") / "cubes.zarr")
    with redirect_stdout(io.StringIO()):
        assert main(["cube", str(sim_1a.association), "-o", root, *SMALL]) == 0
    return root


@pytest.fixture
def store(built, tmp_path):
    root = str(tmp_path / "cubes.zarr")
    shutil.copytree(built, root)
    return root


def test_every_chunk_is_written_and_recorded_even_all_fill_value(built):
    from mrsdask.cube import store as cube_store

    group = cube_store.open_group(cube_store.group_path(built, CUBE))
    manifest = dict(group.attrs[cube_store.CHUNKS_ATTR])
    n_slabs = -(-group["sci"].shape[0] // 16)
    assert manifest["sci"] == manifest["dq"] == n_slabs and manifest["ra"] == 1
    # The first planes lie below the data (4.95 um < band 1A's 4.9-5.74 um edge region): slabs of
    # NaN only are still there as chunks, so a missing chunk always means a lost one.
    for slab in range(n_slabs):
        assert os.path.isfile(_chunk(built, "sci", slab)), slab
    assert cube_store.missing_chunks(built, CUBE) == {}


def test_a_lost_chunk_is_reported_by_every_reader_and_a_rebuild_repairs_it(sim_1a, built, store, capsys):
    from mrsdask.cube.builder import open_cube
    from mrsdask.errors import DamagedStoreError

    os.remove(_chunk(store, "sci", 3))
    os.remove(_chunk(store, "wmap", 5))
    with pytest.raises(DamagedStoreError, match=r"ch1-short: cube is damaged.*sci planes 48-63.*wmap planes 80-95"):
        open_cube(store, CUBE)
    code, out, err = _cli(capsys, "info", store)
    assert code == 2 and "DAMAGED" in out and CUBE in _error_line(err)
    for args in (("export", store, "--s3d", os.path.dirname(store) + "/s3d"),
                 ("extract", store, "--x1d", os.path.dirname(store) + "/x1d", "--scheduler", "threads")):
        code, out, err = _cli(capsys, *args)
        line = _error_line(err)
        assert code == 2 and f"{CUBE}: cube is damaged" in line and "run the same 'mrsdask cube' command" in line
    assert not os.path.exists(os.path.dirname(store) + "/s3d") or not os.listdir(os.path.dirname(store) + "/s3d")
    # The same command repairs it: only the damaged slabs are recomputed.
    kept = os.stat(_chunk(store, "sci", 0)).st_mtime_ns
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", store, *SMALL)
    assert code == 0, err
    assert os.stat(_chunk(store, "sci", 0)).st_mtime_ns == kept
    open_cube(store, CUBE)
    want, got = _arrays(built), _arrays(store)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_the_pipeline_does_not_call_a_damaged_cube_up_to_date(sim_1a, built, tmp_path):
    import dask

    from mrsdask.cube.builder import open_cube
    from mrsdask.pipeline import load_pipeline, run_pipeline

    definition = tmp_path / "small.yaml"
    definition.write_text("name: small\nsteps:\n  - step: cube\n    channels: [1]\n    wavemin: 4.95\n"
                          "    wavemax: 5.10\n    slab_planes: 16\n")
    folder = str(tmp_path / "run")

    def run():
        with dask.config.set(scheduler="threads", num_workers=2):
            return [o.state for o in run_pipeline(load_pipeline(str(definition)), [str(sim_1a.association)],
                                                  folder, progress=False, announce=lambda line: None)]

    assert run() == ["ran"]
    assert run() == ["up to date"]
    store = f"{folder}/cubes.zarr"
    os.remove(_chunk(store, "err", 2))
    assert run() == ["resumed"]
    open_cube(store, CUBE)
    np.testing.assert_array_equal(_arrays(store)["err"], _arrays(built)["err"])


def test_other_parameters_never_replace_a_complete_cube_silently(sim_1a, built, store, capsys):
    before = _arrays(store)
    for extra, option in ((["--scalexy", "0.3"], "--scalexy 0.3"), (["--weighting", "emsm"], "--weighting 'emsm'")):
        code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", store, *SMALL, *extra)
        line = _error_line(err)
        assert code == 2
        assert f"{store}/{CUBE}" in line and option in line and "--overwrite" in line and "-o" in line, line
        for name, values in _arrays(store).items():
            np.testing.assert_array_equal(values, before[name])
    # The same parameters: already complete, nothing rewritten; --overwrite replaces it.
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", store, *SMALL)
    assert code == 0, err
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", store, *SMALL, "--scalexy", "0.3", "--overwrite")
    assert code == 0, err
    assert _arrays(store)["sci"].shape != before["sci"].shape


def test_an_unfinished_cube_with_the_same_parameters_still_resumes(sim_1a, built, store, capsys):
    from mrsdask.cube import store as cube_store

    cube_store.set_complete(store, CUBE, False)
    cube_store.mark_slabs(store, CUBE, [2], False)
    kept = os.stat(_chunk(store, "sci", 0)).st_mtime_ns
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", store, *SMALL)
    assert code == 0, err
    assert os.stat(_chunk(store, "sci", 0)).st_mtime_ns == kept
    np.testing.assert_array_equal(_arrays(store)["sci"], _arrays(built)["sci"])


def test_a_store_of_the_other_kind_is_refused(sim_1a, built, store, tmp_path, capsys):
    det = str(tmp_path / "det.zarr")
    code, out, err = _cli(capsys, "ingest", *sim_1a.cal_files, "-o", det, "--scheduler", "threads")
    assert code == 0, err
    listing = sorted(os.listdir(det))
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", det, *SMALL)
    line = _error_line(err)
    assert code == 2 and det in line and "detector store" in line and sorted(os.listdir(det)) == listing
    for command in ("ingest", "fringe"):
        extra = ["--residual"] if command == "fringe" else []
        code, out, err = _cli(capsys, command, *sim_1a.cal_files, "-o", store, "--overwrite", *extra,
                              "--scheduler", "threads")
        line = _error_line(err)
        assert code == 2 and store in line and "cube store" in line
    assert _arrays(store)["sci"].shape == _arrays(built)["sci"].shape


@pytest.mark.parametrize("extra, words", [
    (["--wavemin", "20", "--wavemax", "25"], ["20-25 um", "misses the data", "1A cover 4.9"]),
    (["--ra-center", "400"], ["ra_center 400", "0-360"]),
    (["--dec-center", "100"], ["dec_center 100", "-90 to 90"]),
    (["--ra-center", "10", "--dec-center", "-30"], ["from every input footprint", "arcmin"]),
    (["--nspax-x", "100001", "--nspax-y", "100001"], ["larger than mrsdask builds", "--nspax-x"]),
    (["--channel", "7"], ["channel '7'", "choose from 1 2 3 4"]),
    (["--channel", "3"], ["no science exposure holds"]),
    (["--n-workers", "0"], ["--n-workers 0", "at least 1"]),
    (["--n-workers", "-2"], ["--n-workers -2"]),
    (["--memory-limit", "lots"], ["memory limit 'lots'"]),
    (["--memory-limit", "60MB", "--n-workers", "2"], ["not enough worker memory", "60 MB", "--memory-limit"]),
])
def test_bad_parameters_are_refused_before_any_cluster_or_work(sim_1a, tmp_path, capsys, monkeypatch, extra, words):
    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr("distributed.LocalCluster", no_cluster)
    root = tmp_path / "cubes.zarr"
    args = [a for a in SMALL if a not in ("--scheduler", "threads")]
    # Options given twice: argparse keeps the last one, so the test's own win over SMALL's.
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", root, *args, *extra)
    line = _error_line(err)
    assert code == 2, err
    for word in words:
        assert word in line, line
    assert not root.exists()


def test_inputs_are_checked_before_any_cluster(sim_1a, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("distributed.LocalCluster", lambda *a, **k: (_ for _ in ()).throw(AssertionError("cluster")))
    root = tmp_path / "cubes.zarr"
    code, out, err = _cli(capsys, "cube", str(tmp_path / "nothing_*_cal.fits"), "-o", root, "--n-workers", "2")
    assert code == 2 and "no file matches" in _error_line(err)
    first = sim_1a.cal_files[0]
    code, out, err = _cli(capsys, "cube", first, first, "-o", root, "--n-workers", "2")
    line = _error_line(err)
    assert code == 2 and f"{first}: given twice" in line
    folder = os.path.dirname(str(first))
    code, out, err = _cli(capsys, "cube", first, os.path.join(folder, "*_cal.fits"), "-o", root, "--n-workers", "2")
    line = _error_line(err)
    assert code == 2 and "given by" in line and "*_cal.fits" in line
    assert not root.exists()


def test_a_memory_limit_is_honoured_in_process(sim_1a, tmp_path, capsys):
    root = tmp_path / "cubes.zarr"
    # 400 MB leaves ~50 MB per task: a pixel-table task (~240 MB) cannot run; refused with numbers.
    code, out, err = _cli(capsys, "cube", sim_1a.association, "-o", root, *SMALL, "--memory-limit", "400MB")
    line = _error_line(err)
    assert code == 2 and "pixel-table task" in line and "400 MB" in line and "--memory-limit" in line
    assert not root.exists()


@pytest.mark.parametrize("extra, words", [
    (["--ifu-set-srctype", "POINT", "--center-xy", "500", "500"], ["outside the cube"]),
    (["--ifu-set-srctype", "POINT", "--ifu-rscale", "0"], ["ifu_rscale 0.0", "0.5-3"]),
    (["--ifu-set-srctype", "EXTENDED", "--center-xy", "5", "5"], ["center_xy", "extended source", "leave them out"]),
    (["--ifu-set-srctype", "EXTENDED", "--ifu-rscale", "1"], ["ifu_rscale", "extended source"]),
    # The flags of earlier releases still work (hidden from --help) and get the same refusals.
    (["--source-type", "extended", "--rscale", "1"], ["ifu_rscale", "extended source"]),
])
def test_extraction_options_that_cannot_apply_are_refused(built, tmp_path, capsys, extra, words):
    out_dir = tmp_path / "x1d"
    code, out, err = _cli(capsys, "extract", built, "--x1d", out_dir, *extra, "--n-workers", "2")
    line = _error_line(err)
    assert code == 2 and (CUBE in line or "ifu_rscale 0.0" in line)
    for word in words:
        assert word in line, line
    assert not out_dir.exists()


def test_a_repair_keeps_the_counts_of_planes_blanked_as_spectral_tears(store):
    """Blanked tear planes read back as empty: their counts come from the attributes instead."""
    from types import SimpleNamespace

    from mrsdask.cube import store as cube_store
    from mrsdask.cube.resume import restore_tear_counts

    group = cube_store.open_group(cube_store.group_path(store, CUBE), mode="r+")
    group.attrs.update({"spectral_tear_planes": [5, 40], "spectral_tear_counts": [3, 7]})
    ngood = np.zeros(64, dtype=np.int64)
    ngood[5] = 11  # slab 0 was recomputed now: its fresh count stands
    restore_tear_counts(store, SimpleNamespace(name=CUBE, slab_planes=16), ngood, recomputed={0})
    assert ngood[5] == 11 and ngood[40] == 7 and ngood.sum() == 18


def test_consolidated_metadata_opens_in_one_read_and_follows_the_markers(sim_1a, built, store, capsys):
    """xarray.open_zarr reads the consolidated copy (no warning); it is written again whenever a
    cube is created or marked complete or incomplete, and mrsdask itself never reads it."""
    import warnings

    import xarray as xr
    import zarr

    from mrsdask.cube import store as cube_store
    from mrsdask.io.zarr_store import open_group

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Failed to open Zarr store with consolidated metadata"
        ds = xr.open_zarr(built, group=CUBE)
    assert ds.attrs["mrsdask_complete"] is True and "slab_done" not in ds
    copy = zarr.open_group(built, mode="r", zarr_format=3).metadata.consolidated_metadata
    assert CUBE in copy.metadata and not any(k.startswith(cube_store.SCRATCH) for k in copy.flattened_metadata)
    cube_store.set_complete(store, CUBE, False)  # as a rebuild starts
    assert xr.open_zarr(store, group=CUBE).attrs["mrsdask_complete"] is False
    zarr.open_group(f"{store}/later", mode="w", zarr_format=3)  # written after the copy
    assert "later" in set(open_group(store).group_keys())
    code, _, err = _cli(capsys, "cube", sim_1a.association, "-o", store, *SMALL)  # resumes, completes
    assert code == 0, err
    assert xr.open_zarr(store, group=CUBE).attrs["mrsdask_complete"] is True


def test_a_build_writes_the_consolidated_copy_once_unless_it_would_be_wrong(tmp_path, monkeypatch):
    """Within consolidated_on_leaving, a consolidation that only lets the copy fall behind waits
    for the end of the block (also on an error); one that keeps it from being wrong is done at once."""
    import zarr

    from mrsdask.io import zarr_store

    root = str(tmp_path / "store.zarr")
    zarr.open_group(root, mode="w", zarr_format=3)
    written = []
    real = zarr.consolidate_metadata
    monkeypatch.setattr(zarr, "consolidate_metadata", lambda *a, **k: written.append(1) or real(*a, **k))
    with zarr_store.consolidated_on_leaving(root):
        for name in ("a", "b"):
            zarr.open_group(f"{root}/{name}", mode="w", zarr_format=3)
            zarr_store.consolidate(root)
            with zarr_store.consolidated_on_leaving(root):  # nested: still the outer block's
                zarr_store.consolidate(root)
        assert written == [] and zarr_store.consolidated_names(root) == set()
    assert len(written) == 1 and zarr_store.consolidated_names(root) == {"a", "b"}
    with pytest.raises(RuntimeError), zarr_store.consolidated_on_leaving(root):
        zarr_store.consolidate(root, now=True)
        assert len(written) == 2
        zarr.open_group(f"{root}/c", mode="w", zarr_format=3)
        zarr_store.consolidate(root)
        raise RuntimeError("a build fails")
    assert len(written) == 3 and zarr_store.consolidated_names(root) == {"a", "b", "c"}
    zarr_store.consolidate(root)  # outside a block: at once
    assert len(written) == 4
