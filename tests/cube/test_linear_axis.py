"""The wavelength axis of a cube (official ``linear_wave``) and the README's selection command."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mrsdask.cube.builder import linear_axis
from mrsdask.cube.cubepars import default_cubepars
from mrsdask.cube.plan import CubeRequest, plan_cubes
from tests.conftest import run_cli_here

ROWS = [{"index": 0, "channel": "12", "band": "SHORT", "exptype": "science"},
        {"index": 1, "channel": "12", "band": "MEDIUM", "exptype": "science"}]


@pytest.mark.parametrize("request_kw, expected", [
    ({}, False),  # 1A, 1B, 2A, 2B: two spectral steps -> tabular instead of the official failure
    ({"scalew": 0.001}, True),  # a user step makes it linear
    ({"linear_wave": False}, False),
    ({"channels": (1,)}, True),  # one channel: one step
    ({"channels": (1,), "linear_wave": False}, False),
    ({"output_type": "multi", "linear_wave": True}, False),  # multi is tabular, as officially
])
def test_linear_axis_follows_the_official_rule_and_defaults_to_what_can_be_built(request_kw, expected):
    kw = {"channels": (1, 2), "subbands": ("A", "B"), **request_kw}
    request = CubeRequest(**kw)
    (plan,) = plan_cubes(ROWS, request)
    assert linear_axis(request, plan, default_cubepars()) is expected


def test_linear_axis_forced_on_bands_of_different_steps_says_how_to_fix_it(sim_1a, tmp_path, capsys):
    proc = run_cli_here(capsys, "cube", *map(str, sim_1a.cal_files), "-o", str(tmp_path / "c.zarr"), "--channel", "1", "2",
                   "--band", "short", "--linear-wave", "--scheduler", "threads", "--no-progress")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "--scalew" in err[0] and "--no-linear-wave" in err[0]


def test_readme_selection_command_builds_one_tabular_cube(sim_1a, tmp_path, capsys, monkeypatch):
    """README: ``mrsdask cube det.zarr -o cubes.zarr --channel 1 2 --band short medium``.

    Built over 5.6–7.6 µm (the end of 1A and the start of 2A) to keep it short: the bands'
    different steps, which made the official default fail, are both in it.
    """
    det = str(tmp_path / "det.zarr")
    monkeypatch.chdir(tmp_path)
    assert run_cli_here(capsys, "ingest", *map(str, sim_1a.cal_files), "-o", det, "--scheduler", "threads",
                   "--no-progress").returncode == 0
    cubes = str(tmp_path / "cubes.zarr")
    proc = run_cli_here(capsys, "cube", det, "-o", cubes, "--channel", "1", "2", "--band", "short", "medium",
                        "--wavemin", "5.6", "--wavemax", "7.6", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cube = xr.open_zarr(cubes, group="ch1-2-short", consolidated=False)  # the data hold band A only
    assert cube.attrs["wavelength_axis"] == "tabular"
    wave = cube["wavelength"].values
    assert 5.59 < wave[0] < 5.7 and 7.5 < wave[-1] < 7.61  # 1A and 2A in one cube
    steps = np.diff(wave)
    assert steps[0] < 0.8 * steps[-1]  # the 1A step (0.0007 µm), then the coarser 2A step (0.001 µm)
    assert not (tmp_path / "cubes.zarr" / "_scratch").exists()
