"""The mrsdask command: the main job end to end on a local cluster, and clear errors."""

import os

import numpy as np
import pytest


from tests.conftest import run_cli as _run
from tests.conftest import run_cli_here


#: A stretch of band 1A (µm): what the command tests check does not need every plane.
WINDOW = ("--wavemin", "5.0", "--wavemax", "5.4")


def test_cube_command_on_a_local_cluster_with_s3d_export(sim_1a, tmp_path, capsys):
    store = str(tmp_path / "cubes.zarr")
    s3d = str(tmp_path / "s3d")
    proc = _run("cube", str(sim_1a.association), "-o", store, "--channel", "1", *WINDOW, "--n-workers", "2",
                "--memory-limit", "1GB", "--no-progress", "--s3d", s3d)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "local Dask cluster: 2 worker process(es)" in proc.stdout
    assert "dashboard" in proc.stdout
    assert "ch1-short" in proc.stdout
    import xarray as xr

    cube = xr.open_zarr(store, group="ch1-short", consolidated=False)
    assert cube.attrs["mrsdask_complete"] is True
    assert cube["sci"].dims == ("wavelength", "y", "x") and cube["sci"].attrs["units"] == "MJy / sr"
    files = os.listdir(s3d)
    from mrsdask.io.association import read_association

    product = read_association(str(sim_1a.association))[0]  # named as the official spec3 names it
    assert files == [f"{product}_ch1-short_s3d.fits"] and cube.attrs["product_name"] == product
    from stdatamodels.jwst.datamodels import IFUCubeModel

    with IFUCubeModel(os.path.join(s3d, files[0])) as model:
        assert model.data.shape == cube["sci"].shape
        np.testing.assert_array_equal(model.data, cube["sci"].values)
        np.testing.assert_array_equal(model.dq, cube["dq"].values)
        assert model.meta.wcsinfo.ctype3 == "WAVE"
        assert model.meta.wcsinfo.crval3 == pytest.approx(float(cube["wavelength"][0]))
        assert model.wavetable.wavelength.size == cube.sizes["wavelength"]
    info = run_cli_here(capsys, "info", store)
    assert info.returncode == 0 and "ch1-short" in info.stdout and "complete" in info.stdout
    # With no cluster named, a job this small runs in the command's own process: same cube.
    mine = str(tmp_path / "in_process.zarr")
    proc = run_cli_here(capsys, "cube", str(sim_1a.association), "-o", mine, "--channel", "1", *WINDOW, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "in-process Dask scheduler: threads" in proc.stdout and "local Dask cluster" not in proc.stdout
    other = xr.open_zarr(mine, group="ch1-short", consolidated=False)
    for name in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(other[name].values, cube[name].values)


def test_only_small_jobs_with_no_cluster_named_run_in_process(sim_1a, tmp_path, monkeypatch):
    from mrsdask.cli import small_job_scheduler, build_parser

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    files = [str(p) for p in sim_1a.cal_files]

    def choice(*extra, inputs=files):
        return small_job_scheduler(build_parser().parse_args(["cube", *inputs, *extra]), inputs)

    assert choice("--channel", "1") == "threads"  # 2 files x 1 channel
    assert choice() == "threads"  # 2 files x 2 channels
    assert choice(inputs=files * 3) is None  # duplicates: refused where the inputs are read
    many = []
    for i in range(9):  # 9 files x 2 channels = 18 exposure-channels: a local cluster
        other = tmp_path / f"other{i}_cal.fits"
        other.write_bytes(b"")  # only the list of inputs is looked at, no file is opened
        many.append(str(other))
    assert choice(inputs=many) is None
    assert choice("--channel", "1", inputs=many) == "threads"  # 9 x 1
    assert choice("--n-workers", "2") is None  # workers asked for
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    assert choice() is None  # a cluster named


@pytest.mark.parametrize(
    "args, message",
    [
        (["cube", "/nonexistent/x_cal.fits", "-o", "{tmp}/o.zarr"], "file not found"),
        (["cube", "{tmp}/*.fits", "-o", "{tmp}/o.zarr"], "no file matches"),
        (["cube", "{cal}", "-o", "{tmp}/o.zarr", "--channel", "7"], "channel"),
        (["cube", "{cal}", "-o", "{tmp}/o.zarr", "--channel", "3"], "no science exposure holds"),
        (["cube", "{cal}", "-o", "{tmp}/o.zarr", "--cubepar", "{cal}"], "CUBEPAR"),
        (["ingest", "{tmp}/missing.zarr", "-o", "{tmp}/d.zarr"], "not found|no such"),
        (["cube", "{tmp}/empty.zarr", "-o", "{tmp}/o.zarr"], "no zarr|no such|unrecognised"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(sim_1a, tmp_path, capsys, args, message):
    """In this process (``mrsdask.cli.main``, what the command runs); the next test runs one in its own."""
    import re

    from mrsdask.cli import main

    os.makedirs(tmp_path / "empty.zarr", exist_ok=True)
    filled = [a.format(tmp=tmp_path, cal=sim_1a.cal_files[0]) for a in args]
    code = main([*filled, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(message, err, re.IGNORECASE), err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "o.zarr" / "ch1-short")


def test_bad_input_from_the_command_line_exits_2_with_one_line(sim_1a, tmp_path):
    proc = _run("cube", str(sim_1a.cal_files[0]), "-o", str(tmp_path / "o.zarr"), "--channel", "3", "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().startswith("mrsdask: error:") and "no science exposure holds" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "o.zarr" / "ch3-short")


def test_fringe_flat_command_writes_a_corrected_store_that_builds_cubes(sim_1a, tmp_path, capsys):
    """Detector steps chain through stores: fringe flat -> store -> cube."""
    import xarray as xr

    from mrsdask.fringe.reference import write_fringe_flat

    flat = str(tmp_path / "fringe_12A.fits")
    write_fringe_flat(flat, np.full((1024, 1032), 2.0), "MIRIFUSHORT", "SHORT")
    store = str(tmp_path / "flat.zarr")
    proc = run_cli_here(capsys, "fringe", str(sim_1a.association), "-o", store, "--flat", flat, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = xr.open_zarr(store, consolidated=False)
    from astropy.io import fits

    original = fits.getdata(sim_1a.cal_files[0], "SCI")
    np.testing.assert_allclose(out["sci"].isel(exposure=0).values, original / 2.0, rtol=1e-6, equal_nan=True)
    cubes = str(tmp_path / "cubes.zarr")
    summary = str(tmp_path / "summary.json")
    proc = run_cli_here(capsys, "cube", store, "-o", cubes, "--channel", "1", *WINDOW, "--no-progress", "--json", summary)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ch1-short" in proc.stdout
    import json

    with open(summary) as fobj:
        record = json.load(fobj)
    assert record["command"] == "cube" and record["output"] == cubes and record["request"]["weighting"] == "drizzle"
    assert list(record["cubes"]) == ["ch1-short"] and record["cubes"]["ch1-short"]["wavelength_axis"] == "linear"
    assert 5.0 <= record["cubes"]["ch1-short"]["wavelength_um"][0] < 5.01
    assert record["provenance"]["software"]["jwst"] and record["inputs"] == [p.name for p in sim_1a.cal_files]


def test_every_option_of_every_command_says_what_it_is():
    """Help text on every option and argument, and a top-level description (issue 16, item 8)."""
    import argparse

    from mrsdask.cli import build_parser

    def undocumented(parser, path):
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += undocumented(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                found.append(f"{path}: {action.dest}")
        return found

    parser = build_parser()
    assert undocumented(parser, "mrsdask") == []
    assert "MIRI MRS" in parser.description and "``" not in parser.description


def test_small_ingest_runs_in_process_with_a_progress_bar(sim_1a, tmp_path, capsys):
    """A detector job of two exposures starts no cluster and shows its progress (issue 16, item 8)."""
    store = str(tmp_path / "det.zarr")
    proc = run_cli_here(capsys, "ingest", *map(str, sim_1a.cal_files), "-o", store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "in-process Dask scheduler: threads" in proc.stdout and "local Dask cluster" not in proc.stdout
    assert "writing the detector store" in proc.stdout


def test_a_pipeline_that_fits_residual_fringes_gets_worker_processes(sim_1a, monkeypatch):
    """Small jobs run in process, but not the residual-fringe fit (partly Python: threads share a GIL)."""
    import mrsdask.cli as cli
    from mrsdask.pipeline import load_pipeline

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    chosen = {}

    class Stop(Exception):
        pass

    def fake_client(scheduler, *args, **kwargs):
        chosen["scheduler"] = scheduler
        raise Stop

    monkeypatch.setattr("mrsdask.cluster.dask_client", fake_client)
    for name, expected in (("cubes", "threads"), ("fringe-cubes", None)):
        assert load_pipeline(name).steps  # the ready pipelines
        args = cli.build_parser().parse_args(["run", name, str(sim_1a.association), "-o", "unused"])
        with pytest.raises(Stop):
            cli.cmd_run(args)
        assert chosen["scheduler"] == expected, name


@pytest.mark.parametrize("level, libraries, shown", [
    ("warning", False, {"ours"}), ("error", False, set()), ("info", True, {"ours", "theirs", "info"}),
    ("debug", False, {"ours", "info", "debug"}),
])
def test_log_levels_show_our_warnings_and_hide_the_libraries(level, libraries, shown):
    """Default: mrsdask's warnings shown, the libraries' hidden; -q: errors only; -v: everything."""
    import subprocess
    import sys

    code = (
        "import logging, warnings\n"
        "from mrsdask.cli import configure_logging\n"
        f"configure_logging({level!r}, libraries={libraries})\n"
        "warnings.warn_explicit('ours', UserWarning, 'x.py', 1, module='mrsdask.cube.builder')\n"
        "warnings.warn_explicit('theirs', UserWarning, 'y.py', 1, module='astropy.io.fits')\n"
        "logging.getLogger('mrsdask.cube').info('info')\n"
        "logging.getLogger('mrsdask.cube').debug('debug')\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert {word for word in ("ours", "theirs", "info", "debug") if word in err} == shown, err


def test_quiet_and_verbose_exclude_each_other(capsys):
    from mrsdask.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["-q", "-v", "info", "x.zarr"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
