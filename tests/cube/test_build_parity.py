"""mrsdask cubes against the official CubeBuildStep on identical inputs (same run)."""

import numpy as np
import pytest

from mrsdask.bench.parity import compare_with_official, parity_ok
from mrsdask.cube.build import build_cubes, open_cube
from mrsdask.cube.plan import CubeRequest
from mrsdask.io.detector_store import open_cal
from tests.conftest import run_official_cube_build


def _compare(sim, tmp_path, cubepar, **request):
    files = [str(p) for p in sim.cal_files]
    official = run_official_cube_build(files, cubepar, **{k: v for k, v in request.items() if k != "channels" and k != "subbands"},
                                       **_official_selection(request))
    path = str(tmp_path / "official_s3d.fits")
    official[0].save(path)
    import dask

    with dask.config.set(scheduler="threads"):
        names = build_cubes(open_cal(files), str(tmp_path / "cubes.zarr"), CubeRequest(**request), progress=False)
    assert len(names) == 1
    return compare_with_official(path, open_cube(str(tmp_path / "cubes.zarr"), names[0]))


def _official_selection(request):
    out = {}
    if "channels" in request:
        out["channel"] = " ".join(str(c) for c in request["channels"])
    if "subbands" in request:
        out["band"] = " ".join({"A": "short", "B": "medium", "C": "long"}[s] for s in request["subbands"])
    return out


@pytest.mark.parametrize("weighting", ["drizzle", "emsm"])
def test_band_cube_parity(sim_1a, tmp_path, official_cubepar, weighting):
    figures = _compare(sim_1a, tmp_path, official_cubepar, output_type="band", weighting=weighting,
                       channels=(1,), subbands=("A",))
    assert figures["same_shape"] and figures["same_wcs"], figures
    assert figures["n_both"] > 100_000
    assert figures["median_rel"] <= 1e-5 and figures["p99_rel"] <= 1e-3, figures
    assert figures["wmap_equal"] >= 0.999 and figures["dq_zero_where_official_data"], figures
    assert parity_ok(figures)


@pytest.mark.parametrize("extra", [{"coord_system": "ifualign"}, {"cube_pa": 30.0}, {"scalexy": 0.2, "wavemin": 5.0, "wavemax": 5.3}])
def test_band_cube_parity_with_orientation_and_overrides(sim_1a, tmp_path, official_cubepar, extra):
    figures = _compare(sim_1a, tmp_path, official_cubepar, output_type="band", weighting="drizzle",
                       channels=(1,), subbands=("A",), **extra)
    assert parity_ok(figures), figures


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["drizzle", "msm", "emsm"])
def test_multi_cube_parity(sim_1a, tmp_path, official_cubepar, weighting):
    figures = _compare(sim_1a, tmp_path, official_cubepar, output_type="multi", weighting=weighting)
    assert parity_ok(figures), figures


def test_channel_selection_builds_one_user_cube(sim_1a, tmp_path):
    import dask

    with dask.config.set(scheduler="threads"):
        names = build_cubes(open_cal([str(p) for p in sim_1a.cal_files]), str(tmp_path / "c.zarr"),
                            CubeRequest(output_type="band", channels=(2,)), progress=False)
    assert names == ["ch2-short"]
    cube = open_cube(str(tmp_path / "c.zarr"), "ch2-short")
    assert cube.attrs["channel"] == "2" and cube.attrs["wavelength_axis"] == "linear"
    assert float(cube.wavelength[0]) > 7.0
