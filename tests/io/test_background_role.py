"""Dedicated background exposures are recognised from their headers (BKGDTARG), as the
official association rules do, and kept out of science cubes (issue 16, item 5)."""

from __future__ import annotations

import json
import shutil

import xarray as xr
from astropy.io import fits

from tests.conftest import run_cli_here


def _as_background(src, dst):
    """A copy of a simulated cal file flagged as a dedicated background observation."""
    shutil.copy(src, dst)
    with fits.open(dst, mode="update") as hdul:
        hdul[0].header["BKGDTARG"] = True
    return str(dst)


def test_header_decides_the_role_of_a_plain_file_and_an_association_overrides_it(sim_1a, tmp_path):
    from mrsdask.io.association import Member, write_association
    from mrsdask.io.detector_store import open_cal

    science = str(sim_1a.cal_files[0])
    background = _as_background(sim_1a.cal_files[1], tmp_path / "bkg_cal.fits")
    ds = open_cal([science, background])
    assert list(ds["exptype"].values) == ["science", "background"]
    assert list(ds["bkgdtarg"].values) == [False, True]

    asn = str(tmp_path / "asn.json")  # an association's role is what the user asked for
    write_association(asn, "obs", [Member(science, "science"), Member(background, "science")])
    assert list(open_cal([asn])["exptype"].values) == ["science", "science"]


def test_ingest_labels_background_files_and_cube_leaves_them_out(sim_1a, tmp_path, capsys):
    science = str(sim_1a.cal_files[0])
    background = _as_background(sim_1a.cal_files[1], tmp_path / "bkg_cal.fits")
    store = str(tmp_path / "det.zarr")
    proc = run_cli_here(capsys, "ingest", science, background, "-o", store, "--scheduler", "threads", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = run_cli_here(capsys, "info", store)
    lines = [line for line in info.stdout.splitlines() if "_cal.fits" in line]
    assert len(lines) == 2 and lines[0].split()[-1] == "science" and lines[1].split()[-1] == "background"

    cubes = str(tmp_path / "cubes.zarr")
    proc = run_cli_here(capsys, "cube", store, "-o", cubes, "--channel", "1", "--wavemin", "5.0", "--wavemax", "5.1",
                   "--scheduler", "threads", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 background exposure(s) in the input are not put in cubes" in proc.stdout
    cube = xr.open_zarr(cubes, group="ch1-short", consolidated=False)
    inputs = cube.attrs["inputs"]
    inputs = json.loads(inputs) if isinstance(inputs, str) else inputs
    assert inputs == [fits.getval(science, "FILENAME")]
