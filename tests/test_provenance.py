"""Every output says what made it: software versions, dates, parameters (issue 20, item 4)."""

import os

import pytest
from astropy.io import fits

import mrsdask
from mrsdask.provenance import software_versions


def test_cube_stores_s3d_and_x1d_carry_versions_dates_and_parameters(window_cube_1a, tmp_path):
    """(Detector stores: tests/io/test_detector_store.py.)"""
    from mrsdask.cube.export import write_s3d
    from mrsdask.cube.reader import open_cube
    from mrsdask.extract import extract_spectrum
    from mrsdask.io.x1d import write_x1d

    store, name = window_cube_1a
    cube = open_cube(store, name)
    record = cube.attrs["mrsdask_provenance"]
    assert record["software"] == software_versions() and record["software"]["mrsdask"] == mrsdask.__version__
    assert record["date"].startswith("20") and "weighting" in cube.attrs["mrsdask_request"]

    s3d = str(tmp_path / f"p_{name}_s3d.fits")
    write_s3d(cube, s3d)
    header = fits.getheader(s3d)
    assert header["CAL_VER"] == mrsdask.__version__ and header["CAL_VCS"] == "mrsdask"
    assert header["DATE"] >= record["date"] and header["FILENAME"] == os.path.basename(s3d)
    history = "\n".join(str(h) for h in header["HISTORY"])
    assert f"jwst {software_versions()['jwst']}" in history and f"cube built {record['date']}" in history
    assert "cube parameters:" in history

    x1d = str(tmp_path / f"p_{name}_x1d.fits")
    write_x1d(extract_spectrum(cube), x1d)
    header = fits.getheader(x1d)
    assert (header["TELESCOP"], header["INSTRUME"], header["FILENAME"]) == ("JWST", "MIRI", os.path.basename(x1d))
    assert header["CAL_VER"] == mrsdask.__version__ and header["DATE"] >= record["date"]
    assert f"dask {software_versions()['dask']}" in "\n".join(str(h) for h in header["HISTORY"])
    specutils = pytest.importorskip("specutils")
    spectrum = specutils.Spectrum.read(x1d)  # no format=: specutils identifies a JWST x1d itself
    assert spectrum.flux.size == cube.sizes["wavelength"]


def test_extract_writes_a_json_summary(window_cube_1a, tmp_path):
    """``--json FILE`` (the cube and run commands: tests/test_cli.py, tests/pipeline/test_run.py)."""
    import json

    from mrsdask.cli import main

    store, name = window_cube_1a
    summary = tmp_path / "extract.json"
    assert main(["extract", store, "--x1d", str(tmp_path / "x1d"), "--json", str(summary)]) == 0
    record = json.loads(summary.read_text())
    assert record["command"] == "extract" and record["cubes"] == [name]
    assert [os.path.basename(f) for f in record["x1d"]] == os.listdir(tmp_path / "x1d")
    assert record["request"]["apply_apcorr"] is True and record["provenance"]["software"]["mrsdask"] == mrsdask.__version__
