"""1-D extraction: the official Extract1dStep side by side on the same s3d file, and the truth."""

import os
import warnings

import dask
import numpy as np
import pytest

from mrsdask.cube.builder import build_cubes, open_cube
from mrsdask.cube.export import write_s3d
from mrsdask.cube.plan import CubeRequest
from mrsdask.errors import ParameterError
from mrsdask.extract import default_parameters, extract_spectrum, read_extract1d, write_extract1d
from mrsdask.io.detector_store import open_cal
from mrsdask.io.x1d import write_x1d


@pytest.fixture(scope="module")
def band_cube(window_cube_1a, tmp_path_factory):
    """Channel 1 band cube of sim_1a over 5.0-5.4 µm (the shared store, read only) and its s3d export.

    Half of band 1A: the official Extract1dStep's time goes with the number of planes, and the
    apertures still grow with the wavelength across 500 planes.
    """
    store, name = window_cube_1a
    folder = tmp_path_factory.mktemp("extract")
    return store, name, write_s3d(open_cube(store, name), str(folder / "cube_s3d.fits"))


def _official_x1d(s3d, source_type, ref):
    import logging

    from jwst.extract_1d import Extract1dStep
    from stdatamodels.jwst.datamodels import IFUCubeModel

    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()
    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    model = IFUCubeModel(s3d)
    model.meta.target.source_type = source_type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Extract1dStep(override_extract1d=ref, override_psf="N/A", apply_apcorr=False,
                             ifu_rfcorr=False).run(model)


@pytest.mark.parametrize("source_type", ["POINT", "EXTENDED"])
def test_spectra_equal_the_official_extract_1d(band_cube, tmp_path, source_type):
    from stdatamodels.jwst import datamodels

    store, name, s3d = band_cube
    ref = write_extract1d(default_parameters(), str(tmp_path / "extract1d.asdf"))
    official = _official_x1d(s3d, source_type, ref).spec[0]
    params = read_extract1d(ref)  # the same apertures, read back from the official format
    with dask.config.set(scheduler="threads"):
        spectrum = extract_spectrum(open_cube(store, name), params, source_type=source_type, apply_apcorr=False,
                                    ifu_rfcorr=False).load()
    path = write_x1d(spectrum, str(tmp_path / "mrsdask_x1d.fits"))
    with datamodels.open(path) as model:
        mine = model.spec[0]
        assert (mine.extraction_x, mine.extraction_y) == (official.extraction_x, official.extraction_y)
        assert mine.source_type == source_type
        a, b = official.spec_table, mine.spec_table
        np.testing.assert_array_equal(b["WAVELENGTH"], a["WAVELENGTH"])
        np.testing.assert_array_equal(b["DQ"], a["DQ"])
        for column, rtol in (("FLUX", 1e-10), ("SURF_BRIGHT", 1e-10), ("BACKGROUND", 1e-10),
                             ("FLUX_ERROR", 1e-6), ("SB_ERROR", 1e-6), ("BKGD_ERROR", 1e-6), ("NPIXELS", 1e-6)):
            np.testing.assert_allclose(b[column], a[column], rtol=rtol, atol=0, err_msg=column)
        assert np.all(np.isnan(b["RF_FLUX"]))
        pixels = np.array([0.0, 10.5, len(a) - 1.0])
        for got, want in zip(mine.meta.wcs(pixels), official.meta.wcs(pixels)):
            np.testing.assert_allclose(got, want, rtol=1e-12)
        wave = np.asarray(a["WAVELENGTH"])[[3, 500]]
        np.testing.assert_allclose(mine.meta.wcs.invert(0.0, 0.0, wave), [3, 500], atol=1e-9)
    assert np.nanmedian(spectrum["flux"].values) > 0
    if source_type == "POINT":
        assert spectrum.attrs["subtract_background"] and np.any(spectrum["background"].values != 0)


def test_point_source_flux_against_the_simulated_truth(point_source_sim, tmp_path):
    """A 3-FWHM aperture holds the simulator's (Gaussian) PSF whole (the shipped Gaussian-PSF aperture
    correction is 1.0000000 there)."""
    from mrsdask.datamodel import cube as cmodel
    from mrsdask.sim import read_truth, truth_spectrum

    with dask.config.set(scheduler="threads"):
        (name,) = build_cubes(open_cal([str(p) for p in point_source_sim.cal_files]), str(tmp_path / "c.zarr"),
                              CubeRequest(channels=(1,)), progress=False)
        cube = open_cube(str(tmp_path / "c.zarr"), name)
        truth = read_truth(point_source_sim.truth)
        source = truth.config.sources[0]
        ra0 = truth.config.target_ra + source.ra_offset / 3600.0 / np.cos(np.radians(truth.config.target_dec))
        dec0 = truth.config.target_dec + source.dec_offset / 3600.0
        x0, y0 = cmodel.celestial_wcs(cube.attrs).wcs_world2pix(ra0, dec0, 0)
        spectrum = extract_spectrum(cube, source_type="point", center=(float(x0), float(y0)), rscale=3.0,
                                    ifu_rfcorr=False).load()
        nearest = extract_spectrum(cube, source_type="point", ifu_rfcorr=False).load()
    ratio = spectrum["flux"].values / truth_spectrum(source, spectrum["wavelength"].values)
    good = spectrum["dq"].values == 0
    assert good.sum() > 0.9 * ratio.size
    assert np.median(ratio[good]) == pytest.approx(1.0, abs=0.01)
    assert np.percentile(np.abs(ratio[good] - 1), 90) < 0.03
    # Without a centre, the aperture sits on the spaxel nearest the target (0.18" from the source).
    assert nearest.attrs["center_from"] == "spaxel nearest to TARG_RA/TARG_DEC"
    assert float(nearest.attrs["x_center"]).is_integer()


@pytest.mark.parametrize("method", ["exact", "subpixel", "center"])
def test_aperture_weights_are_photutils(method):
    from photutils.aperture import CircularAnnulus, CircularAperture

    from mrsdask.extract.kernels import circle_box

    rng = np.random.default_rng(2)
    shape = (31, 40)
    for trial in range(30):
        x, y = rng.uniform(-3, 43), rng.uniform(-3, 34)  # some near or beyond the edges
        r = rng.uniform(0.3, 9.0)
        r_in = r * rng.uniform(1.5, 2.0)
        for box, aperture in ((circle_box(shape, x, y, r, 0.0, method, 10), CircularAperture((x, y), r)),
                              (circle_box(shape, x, y, 1.3 * r_in, r_in, method, 10),
                               CircularAnnulus((x, y), r_in, 1.3 * r_in))):
            mine = np.zeros(shape)
            mine[box.y0:box.y1, box.x0:box.x1] = box.weights
            expected = aperture.to_mask(method=method, subpixels=10).to_image(shape, dtype=np.float64)
            np.testing.assert_array_equal(mine, np.zeros(shape) if expected is None else expected)


def test_clipped_statistics_are_astropys():
    from astropy.stats import sigma_clipped_stats

    from mrsdask.extract.kernels import clipped_mean_std

    rng = np.random.default_rng(4)
    for trial in range(20):
        values = rng.normal(3.0, 1.0, 500)
        values[rng.integers(0, 500, 12)] += rng.uniform(5, 50, 12)  # outliers
        values[:3] = np.nan
        mean, _, std = sigma_clipped_stats(values, sigma=3.0, maxiters=5)
        np.testing.assert_allclose(clipped_mean_std(values, 3.0), (mean, std), rtol=1e-12)
    assert np.isnan(clipped_mean_std(np.array([np.nan]), 3.0)[0])


def test_parameters_interpolate_extrapolate_and_round_trip(tmp_path):
    params = default_parameters()
    radius, inner, outer = params.at(np.array([2.0, 5.0, 30.0]))
    fwhm = 0.033 * np.array([2.0, 5.0, 30.0]) + 0.106
    np.testing.assert_allclose(radius, 2 * fwhm, rtol=1e-12)  # linear, so extrapolation is exact
    np.testing.assert_allclose(inner, 4 * fwhm, rtol=1e-12)
    np.testing.assert_allclose(outer, 5 * fwhm, rtol=1e-12)
    np.testing.assert_allclose(params.at(np.array([5.0]), rscale=3.0)[0], 3 * fwhm[1], rtol=1e-12)
    back = read_extract1d(write_extract1d(params, str(tmp_path / "ref.asdf")))
    np.testing.assert_allclose(back.radius, params.radius, rtol=1e-6)
    assert (back.method, back.subpixels, back.subtract_background) == ("subpixel", 10, True)
    with pytest.raises(ParameterError, match="rscale 5.0: allowed 0.5-3"):
        params.at(np.array([5.0]), rscale=5.0)
    bad = tmp_path / "not_a_ref.asdf"
    bad.write_text("hello")
    from mrsdask.errors import InputError

    with pytest.raises(InputError, match="not an IFU EXTRACT1D reference file"):
        read_extract1d(str(bad))
    from dataclasses import replace

    with pytest.raises(ParameterError, match="must be finite and the radii positive"):
        replace(params, radius=np.where(params.wavelength > 10, np.nan, params.radius))
    with pytest.raises(ParameterError, match="of one length"):
        replace(params, radius=params.radius[:3])


def test_a_centre_outside_the_cube_is_refused(band_cube):
    store, name, _ = band_cube
    cube = open_cube(store, name)
    with pytest.raises(ParameterError, match=r"aperture centre \(80, 3\) is outside the cube"):
        extract_spectrum(cube, source_type="point", center=(80.0, 3.0))


def test_an_extraction_in_this_process_does_not_import_distributed(band_cube):
    """Nor does building its graph (Dask looks for a distributed client when left to choose how
    to rechunk): ~0.15 s of every local extraction."""
    import subprocess
    import sys
    import textwrap

    store, name, _ = band_cube
    code = textwrap.dedent(f"""
        import sys
        import dask
        from mrsdask.extract import spectra
        from mrsdask.scheduling import scheduler_block
        with scheduler_block("threads"):
            dask.compute(spectra({store!r}, [{name!r}], source_type="point", ifu_rfcorr=False))
        print("distributed" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_extract_command_writes_x1d_files(band_cube, tmp_path, capsys, monkeypatch, caplog):
    import logging

    from mrsdask.cube import store as cube_store
    from mrsdask.phases import parse_phases
    from tests.conftest import run_cli_here

    store, name, _ = band_cube
    out = str(tmp_path / "x1d")
    listed = []  # the command opens the cube, and lists its chunks, once
    monkeypatch.setattr(cube_store, "missing_chunks", lambda *a, f=cube_store.missing_chunks: listed.append(a) or f(*a))
    # --source-type: the flag of earlier releases for --ifu-set-srctype
    with caplog.at_level(logging.INFO, logger="mrsdask.phases"):
        proc = run_cli_here(capsys, "--log-level", "info", "extract", store, "--x1d", out, "--source-type", "point",
                            "--no-ifu-rfcorr")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert listed == [(store, name)]
    # the phases mrsdask bench reads back from the log
    assert set(parse_phases(caplog.text)) == {"start-up", "open inputs", "graph", "extraction", "x1d write"}
    product = open_cube(store, name).attrs["product_name"]  # the cube's product, not a fixed prefix
    assert product and os.listdir(out) == [f"{product}_{name}_x1d.fits"]
    assert "aperture correction applied: mrsdask_mrs_apcorr_gaussian.asdf" in proc.stdout
    from astropy.io import fits

    header = fits.getheader(os.path.join(out, f"{product}_{name}_x1d.fits"))
    assert header["APCORR"] is True and header["APCORFIL"] == "mrsdask_mrs_apcorr_gaussian.asdf"
    assert header["S_EXTR1D"] == "COMPLETE" and header["SRCPOS"].startswith("spaxel nearest")
    proc = run_cli_here(capsys, "extract", str(tmp_path / "nothing.zarr"), "--x1d", out)
    assert proc.returncode == 2 and "no zarr store there" in proc.stderr
    # As a user runs it (its own process: the x1d is written by its writer process,
    # mrsdask.io.writer_process): the same file, which the official reader opens.
    from stdatamodels.jwst import datamodels

    from tests.conftest import run_cli

    fresh = str(tmp_path / "fresh")
    proc = run_cli("extract", store, "--x1d", fresh, "--source-type", "point", "--no-ifu-rfcorr", "--no-progress")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    with datamodels.open(os.path.join(out, f"{product}_{name}_x1d.fits")) as here, \
            datamodels.open(os.path.join(fresh, f"{product}_{name}_x1d.fits")) as there:
        assert isinstance(there, datamodels.MRSMultiSpecModel)
        a, b = here.spec[0].spec_table, there.spec[0].spec_table
        assert a.dtype == b.dtype and all(np.array_equal(a[c], b[c], equal_nan=True) for c in a.dtype.names)
        assert there.spec[0].meta.wcs(3.0)[2] == here.spec[0].meta.wcs(3.0)[2]


@pytest.mark.parametrize("storage", ["inline", "internal", "zlib"])
def test_an_extract1d_file_reads_the_same_without_the_datamodel(tmp_path, monkeypatch, storage):
    """The tree-only reader of EXTRACT1D files gives what the ``Extract1dIFUModel`` gives, for
    inline arrays, binary blocks and zlib-compressed blocks."""
    from dataclasses import fields

    from stdatamodels.jwst.datamodels import Extract1dIFUModel

    from mrsdask.extract import parameters

    path = write_extract1d(default_parameters(), str(tmp_path / "ref.asdf"))
    if storage != "inline":
        with Extract1dIFUModel(path) as model:
            model.meta.method = "exact"
            model.meta.subtract_background = False
            model.save(path, all_array_storage="internal",
                       all_array_compression="zlib" if storage == "zlib" else "input")
    assert parameters._read_extract1d_tree(path, 3.0) is not None  # read without the datamodel
    got = read_extract1d(path)
    monkeypatch.setattr(parameters, "_read_extract1d_tree", lambda *args: None)
    expected = read_extract1d(path)
    for field in fields(expected):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), field.name
        else:
            assert a == b, field.name
    assert got.method == ("subpixel" if storage == "inline" else "exact")


def test_cubes_given_opened_must_hold_the_names_asked(band_cube):
    from mrsdask.extract import spectra
    from mrsdask.extract.run import check_extraction
    from mrsdask.extract.request import ExtractRequest

    store, name, _ = band_cube
    cubes = check_extraction(store, [name], ExtractRequest())
    assert set(spectra(cubes, [name], ifu_rfcorr=False)) == {name}
    with pytest.raises(ParameterError, match=f"cube\\(s\\) ch9-long not among the cubes given \\({name}\\)"):
        spectra(cubes, ["ch9-long"])
