"""mrsdask cubes against the official CubeBuildStep on identical inputs (same run)."""

import numpy as np
import pytest

from mrsdask.bench.parity import compare_with_official, parity_ok
from mrsdask.cube.builder import build_cubes, open_cube
from mrsdask.cube.export import write_s3d
from mrsdask.cube.plan import CubeRequest
from mrsdask.io.detector_store import open_cal
from tests.conftest import run_official_cube_build
from tests.extract.official_x1d import assert_same_as_official


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
    cube = open_cube(str(tmp_path / "cubes.zarr"), names[0])
    figures = compare_with_official(path, cube)
    figures.update(_gwcs_difference(path, write_s3d(cube, str(tmp_path / "mrsdask_s3d.fits"))))
    return figures


def _gwcs_difference(official_path, mine_path):
    """Largest differences of the two s3d files' meta.wcs over a grid of voxels (deg, deg, um)."""
    from stdatamodels.jwst.datamodels import IFUCubeModel

    with IFUCubeModel(official_path) as off, IFUCubeModel(mine_path) as mine:
        assert mine.meta.wcs is not None, "the exported s3d has no gwcs"
        nz, ny, nx = off.data.shape
        z, y, x = np.meshgrid(np.linspace(0, nz - 1, 7).round(), np.linspace(0, ny - 1, 5).round(),
                              np.linspace(0, nx - 1, 5).round(), indexing="ij")
        a = off.meta.wcs(x.ravel(), y.ravel(), z.ravel())
        b = mine.meta.wcs(x.ravel(), y.ravel(), z.ravel())
        back = mine.meta.wcs.invert(*b, with_bounding_box=False)  # edges come back at -1e-10
    return {"gwcs_dra": float(np.max(np.abs(a[0] - b[0]) * np.cos(np.radians(a[1])))),
            "gwcs_ddec": float(np.max(np.abs(a[1] - b[1]))), "gwcs_dwave": float(np.max(np.abs(a[2] - b[2]))),
            "gwcs_roundtrip": float(np.max(np.abs(np.asarray(back) - np.stack([x.ravel(), y.ravel(), z.ravel()]))))}


def _gwcs_ok(figures):
    return (figures["gwcs_dra"] < 1e-9 and figures["gwcs_ddec"] < 1e-9 and figures["gwcs_dwave"] < 1e-6
            and figures["gwcs_roundtrip"] < 1e-6)


def _official_selection(request):
    out = {}
    if "channels" in request:
        out["channel"] = " ".join(str(c) for c in request["channels"])
    if "subbands" in request:
        out["band"] = " ".join({"A": "short", "B": "medium", "C": "long"}[s] for s in request["subbands"])
    return out


# EMSM over the whole band is slow; its default-run parity check is the windowed case below.
@pytest.mark.parametrize("weighting", ["drizzle", pytest.param("emsm", marks=pytest.mark.slow)])
def test_band_cube_parity(sim_1a, tmp_path, official_cubepar, weighting):
    figures = _compare(sim_1a, tmp_path, official_cubepar, output_type="band", weighting=weighting,
                       channels=(1,), subbands=("A",))
    assert figures["same_shape"] and figures["same_wcs"], figures
    assert figures["n_both"] > 100_000
    assert figures["median_rel"] <= 1e-5 and figures["p99_rel"] <= 1e-3, figures
    assert figures["wmap_equal"] >= 0.999 and figures["dq_zero_where_official_data"], figures
    assert parity_ok(figures)
    assert _gwcs_ok(figures), {k: v for k, v in figures.items() if k.startswith("gwcs")}


#: A third of band 1A: orientation and weighting parity do not need every plane (the full band is
#: compared with drizzle above, and with every option under --runslow).
WINDOW = {"wavemin": 5.0, "wavemax": 5.3}


@pytest.mark.parametrize("extra", [
    {"coord_system": "ifualign", **WINDOW}, {"cube_pa": 30.0, **WINDOW}, pytest.param({"scalexy": 0.2, **WINDOW}, marks=pytest.mark.slow),
    {"weighting": "emsm", **WINDOW},
    pytest.param({"coord_system": "ifualign"}, marks=pytest.mark.slow),
    pytest.param({"cube_pa": 30.0}, marks=pytest.mark.slow),
])
def test_band_cube_parity_with_orientation_and_overrides(sim_1a, tmp_path, official_cubepar, extra):
    extra = {"weighting": "drizzle", **extra}
    figures = _compare(sim_1a, tmp_path, official_cubepar, output_type="band",
                       channels=(1,), subbands=("A",), **extra)
    assert parity_ok(figures), figures
    assert _gwcs_ok(figures), {k: v for k, v in figures.items() if k.startswith("gwcs")}
    if extra.get("cube_pa") == 30.0 and "wavemin" in extra:  # a rotated official s3d: extract it too
        _official_s3d_extraction_parity(str(tmp_path / "official_s3d.fits"), tmp_path)


def _official_s3d_extraction_parity(s3d, tmp_path):
    """``mrsdask.extract.spectra`` on an s3d file of the official CubeBuildStep equals the official
    Extract1dStep on the same file (point source: aperture, annulus background, aperture correction)."""
    import logging
    import warnings

    from jwst.extract_1d import Extract1dStep

    import mrsdask.extract
    from mrsdask.extract import default_parameters, write_extract1d
    from mrsdask.extract.apcorr import default_apcorr_file

    ref = write_extract1d(default_parameters(), str(tmp_path / "extract1d.asdf"))
    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = Extract1dStep(override_extract1d=ref, override_apcorr=default_apcorr_file(), override_psf="N/A",
                                 ifu_set_srctype="POINT", ifu_rfcorr=False).run(s3d).spec[0]
    spectrum = mrsdask.extract.spectra(s3d, override_extract1d=ref, ifu_set_srctype="POINT", ifu_rfcorr=False,
                                       proper_motion=False).load()
    assert spectrum.attrs["aperture_correction"].startswith("applied")
    assert_same_as_official(official, spectrum, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["drizzle", "msm", "emsm"])
def test_multi_cube_parity(sim_1a, tmp_path, official_cubepar, weighting):
    figures = _compare(sim_1a, tmp_path, official_cubepar, output_type="multi", weighting=weighting)
    assert parity_ok(figures), figures
    assert _gwcs_ok(figures), {k: v for k, v in figures.items() if k.startswith("gwcs")}


def test_channel_selection_builds_one_user_cube(sim_1a, tmp_path):
    import dask

    with dask.config.set(scheduler="threads"):
        names = build_cubes(open_cal([str(p) for p in sim_1a.cal_files]), str(tmp_path / "c.zarr"),
                            CubeRequest(output_type="band", channels=(2,)), progress=False)
    assert names == ["ch2-short"]
    cube = open_cube(str(tmp_path / "c.zarr"), "ch2-short")
    assert cube.attrs["channel"] == "2" and cube.attrs["wavelength_axis"] == "linear"
    assert float(cube.wavelength[0]) > 7.0
