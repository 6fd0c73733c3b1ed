"""Running pipelines: steps chained through their stores, the run record, resuming, failures."""

import json
import os

import dask
import numpy as np
import pytest

from mrsdask.errors import InputError
from mrsdask.pipeline import MANIFEST, load_pipeline, read_manifest, run_pipeline
from tests.conftest import run_cli as _cli
from tests.conftest import run_cli_here

DEFINITION = """\
name: bg-cubes
description: master background from a user spectrum, then band cubes of channel 1
steps:
  - step: background
    method: master
    user_background: {spectrum}
  - step: cube
    channels: [1]
    wavemin: {wavemin}
    wavemax: {wavemax}
  - step: export
"""

#: The stretch of band 1A (µm) the cube steps build: what is checked holds at every wavelength.
WAVEMIN, WAVEMAX = 5.0, 5.25


def _spectrum(path, level):
    path.write_text(f"# um MJy/sr\n4.5 {level}\n6.5 {level}\n")
    return str(path)


def _run(pipeline, inputs, folder, **kwargs):
    with dask.config.set(scheduler="threads", num_workers=2):
        return run_pipeline(pipeline, inputs, folder, progress=False, announce=lambda line: None, **kwargs)


def _stamps(folder):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(folder) for f in files if f != MANIFEST and not f.endswith(".part")}


def test_a_pipeline_chains_its_steps_records_them_and_resumes(sim_1a, tmp_path):
    import xarray as xr
    from stdatamodels.jwst.datamodels import IFUCubeModel

    from mrsdask.cube.builder import build_cubes, open_cube
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal

    spectrum = _spectrum(tmp_path / "background.txt", 1.0)
    definition = tmp_path / "bg-cubes.yaml"
    definition.write_text(DEFINITION.format(spectrum=spectrum, wavemin=WAVEMIN, wavemax=WAVEMAX))
    folder = str(tmp_path / "run")
    inputs = [str(sim_1a.association)]
    outcomes = _run(load_pipeline(str(definition)), inputs, folder)
    assert [o.state for o in outcomes] == ["ran", "ran", "ran"]
    record = read_manifest(folder)
    assert [s["status"] for s in record["steps"]] == ["complete"] * 3
    assert record["steps"][1]["products"] == ["ch1-short"]
    assert {i["role"] for i in record["inputs"]} == {"science"} and len(record["inputs"]) == 2

    # The cube is built from the background-subtracted store: 1 MJy/sr lower than without.
    cube = open_cube(f"{folder}/cubes.zarr", "ch1-short").load()
    with dask.config.set(scheduler="threads", num_workers=2):  # the same cube from the cal files as they are
        (name,) = build_cubes(open_cal([str(f) for f in sim_1a.cal_files]), str(tmp_path / "plain.zarr"),
                              CubeRequest(channels=(1,), wavemin=WAVEMIN, wavemax=WAVEMAX), progress=False)
    plain = open_cube(str(tmp_path / "plain.zarr"), name).load()
    covered = (cube["wmap"].values > 0) & np.isfinite(cube["sci"].values) & np.isfinite(plain["sci"].values)
    assert covered.sum() > 2e4
    diff = plain["sci"].values[covered] - cube["sci"].values[covered]
    np.testing.assert_allclose(np.median(diff), 1.0, rtol=1e-4)
    assert np.percentile(np.abs(diff - 1.0), 99) < 1e-3
    (s3d,) = record["steps"][2]["products"]
    assert os.path.dirname(s3d) == f"{folder}/s3d"
    assert os.path.basename(s3d).startswith("t1a_") and s3d.endswith("_ch1-short_s3d.fits")
    with IFUCubeModel(s3d) as model:
        np.testing.assert_array_equal(model.data, cube["sci"].values)
    assert xr.open_zarr(f"{folder}/01-background.zarr", consolidated=False).attrs["mrsdask_complete"]

    # The same run again: nothing is recomputed or rewritten.
    before = _stamps(folder)
    outcomes = _run(load_pipeline(str(definition)), inputs, folder)
    assert [o.state for o in outcomes] == ["up to date"] * 3
    assert _stamps(folder) == before

    # Another weighting: only the cube and the export run again.
    outcomes = _run(load_pipeline(str(definition), ["cube.weighting=emsm"]), inputs, folder)
    assert [o.state for o in outcomes] == ["up to date", "ran", "ran"]
    assert open_cube(f"{folder}/cubes.zarr", "ch1-short").attrs["weighting"] == "emsm"

    # A file a parameter names is part of the step: a new background spectrum reruns everything.
    _spectrum(tmp_path / "background.txt", 2.0)
    outcomes = _run(load_pipeline(str(definition), ["cube.weighting=emsm"]), inputs, folder)
    assert [o.state for o in outcomes] == ["ran", "ran", "ran"]
    again = open_cube(f"{folder}/cubes.zarr", "ch1-short")["sci"].values  # 1 MJy/sr more subtracted
    covered = np.isfinite(again) & covered
    assert np.median(cube["sci"].values[covered] - again[covered]) == pytest.approx(1.0, rel=2e-2)


def test_a_failing_step_is_recorded_and_stops_the_run(sim_1a, tmp_path):
    definition = tmp_path / "broken.yaml"
    definition.write_text("steps:\n  - step: fringe\n    flat: [%s]\n    residual: false\n"
                          "  - step: cube\n  - step: export\n" % (tmp_path / "no_such_fringe.fits"))
    folder = str(tmp_path / "run")
    with pytest.raises(Exception, match="no_such_fringe.fits"):
        _run(load_pipeline(str(definition)), [str(sim_1a.association)], folder)
    record = read_manifest(folder)
    assert [s["id"] for s in record["steps"]] == ["fringe"]
    assert record["steps"][0]["status"] == "failed" and "no_such_fringe.fits" in record["steps"][0]["error"]
    assert "finished" not in record
    assert not os.path.exists(os.path.join(folder, "cubes.zarr"))


def test_the_run_folder_must_be_new_empty_or_a_run_folder(sim_1a, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("do not touch")
    with pytest.raises(InputError, match="not a pipeline run folder"):
        _run(load_pipeline("cubes"), [str(sim_1a.association)], str(busy))
    assert os.listdir(busy) == ["thesis.tex"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="a file is there"):
        _run(load_pipeline("cubes"), [str(sim_1a.association)], str(afile))




def test_mrsdask_run_on_the_command_line(sim_1a, tmp_path, capsys):
    """The first run in its own process, as a user runs it; the rest in this one (same ``main``)."""
    folder = str(tmp_path / "run")
    args = ("run", "cubes", str(sim_1a.association), "-o", folder, "--set", "cube.channels=[1]",
            "--set", f"cube.wavemin={WAVEMIN}", "--set", f"cube.wavemax={WAVEMAX}",
            "--set", "outlier.skip=true", "--no-progress")  # outlier detection: tests/outlier
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 1/4 outlier: skipped (skip: true (--set outlier.skip=false runs it))" in proc.stdout
    assert "step 2/4 cube: running cube" in proc.stdout and "1 drizzle cube(s): ch1-short" in proc.stdout
    assert "pipeline cubes: 4 step(s) (3 ran, 1 skipped)" in proc.stdout
    assert len(os.listdir(os.path.join(folder, "x1d"))) == 1
    with open(os.path.join(folder, MANIFEST)) as fobj:
        assert json.load(fobj)["pipeline"] == "cubes"
    proc = run_cli_here(capsys, *args, "--json", "-")  # the machine-readable summary on standard output
    assert proc.returncode == 0 and "(3 up to date, 1 skipped)" in proc.stdout
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["command"] == "run" and summary["pipeline"] == "cubes"
    assert [(s["id"], s["state"]) for s in summary["steps"]] == [
        ("outlier", "skipped"), ("cube", "up to date"), ("export", "up to date"), ("extract", "up to date")]
    assert summary["steps"][1]["products"] == ["ch1-short"] and summary["provenance"]["software"]["mrsdask"]
    # Mistakes exit with status 2 and one line, before anything is written.
    proc = run_cli_here(capsys, "run", "cubes", str(sim_1a.association), "-o", str(tmp_path / "other"), "--set", "cube.bogus=1")
    assert proc.returncode == 2 and "unknown parameter 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists(tmp_path / "other")
    proc = run_cli_here(capsys, "run", "no-such-pipeline", str(sim_1a.association), "-o", str(tmp_path / "other"))
    assert proc.returncode == 2 and "no pipeline of that name" in proc.stderr
    proc = run_cli_here(capsys, "run", "--list")
    assert proc.returncode == 0 and "fringe-cubes" in proc.stdout


@pytest.mark.slow
def test_the_demo_of_a_ready_pipeline_with_every_detector_step(tmp_path):
    """``mrsdask run background-fringe-cubes`` with no input: simulated science and background
    exposures with fringes, background subtracted, fringes fitted, cubes built and exported."""
    folder = str(tmp_path / "demo")
    proc = _cli("run", "background-fringe-cubes", "-o", folder, "--bands", "1A", "--dithers", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = read_manifest(folder)
    assert [s["status"] for s in record["steps"]] == ["complete"] * 5
    assert record["demo"]["config"]["fringes"] > 0 and record["demo"]["config"]["n_background_exposures"] == 1
    assert "subtracted from 2 science exposure(s)" in record["steps"][0]["summary"]
    assert " corrected, " in record["steps"][1]["summary"]
    assert sorted(record["steps"][2]["products"]) == ["ch1-short", "ch2-short"]
    assert len(record["steps"][3]["products"]) == 2 and len(record["steps"][4]["products"]) == 2
    proc = _cli("run", "background-fringe-cubes", "-o", folder, "--bands", "1A", "--dithers", "2", "--no-progress")
    assert proc.returncode == 0 and "using the demo observation simulated before" in proc.stdout
    assert "(5 up to date)" in proc.stdout


def test_fits_writing_steps_need_a_local_folder_when_the_run_folder_is_remote(sim_1a):
    from mrsdask.errors import ParameterError

    with pytest.raises(ParameterError, match="steps export, extract write local FITS files.*--set export.folder="):
        run_pipeline(load_pipeline("cubes"), [str(sim_1a.association)], "s3://bucket/runs/one")
