"""Aperture correction, auto-centring, proper motion and the spectral leak, against the official code.

The official ``Extract1dStep`` runs on the s3d export of the same cube, with the same reference
files (written here in the official formats, or the shipped ones); the official
``spectral_leak.do_correction`` on x1d files written by mrsdask.
"""

import logging
import os
import shutil
import warnings

import dask
import numpy as np
import pytest
from astropy.io import fits

from mrsdask.cube.builder import build_cubes, open_cube
from mrsdask.cube.export import write_s3d
from mrsdask.cube.plan import CubeRequest
from mrsdask.errors import InputError, ParameterError
from mrsdask.extract import ExtractRequest, default_parameters, extract_spectrum, spectra, write_extract1d
from mrsdask.extract.apcorr import default_apcorr_file, read_apcorr
from mrsdask.extract.leak import (
    correct_spectra,
    correct_x1d_files,
    default_mrsptcorr_file,
    find_leak_pair,
    plan_leak,
    remove_leak_from_columns,
)
from mrsdask.extract.reffiles import write_apcorr_file, write_mrsptcorr_file
from mrsdask.io.detector_store import open_cal
from mrsdask.io.x1d import write_x1d
from tests.extract.official_x1d import assert_same_as_official


@pytest.fixture(scope="module")
def s3d_cube(sim_1a_cube, tmp_path_factory):
    """The first 350 planes of the shared channel-1 band cube (a third: the official step takes ~10 s), its s3d
    export and an EXTRACT1D file of the default apertures. Returns (cube, s3d, extract1d, folder)."""
    store, name = sim_1a_cube
    folder = tmp_path_factory.mktemp("corrections")
    cube = open_cube(store, name).isel(wavelength=slice(0, 350))
    s3d = write_s3d(cube, str(folder / "cube_s3d.fits"))
    return cube, s3d, write_extract1d(default_parameters(), str(folder / "extract1d.asdf")), folder


def _official(s3d, **kwargs):
    from jwst.extract_1d import Extract1dStep
    from stdatamodels.jwst.datamodels import IFUCubeModel

    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    model = IFUCubeModel(s3d)
    model.meta.target.source_type = "POINT"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Extract1dStep(override_psf="N/A", ifu_rfcorr=False, **kwargs).run(model).spec[0]


def test_aperture_correction_and_autocentring_equal_the_official(s3d_cube, tmp_path):
    """One official run: ifu_autocen, an Airy-PSF APCORR table (factors ~1.1), ifu_rscale 1.7
    (radii between the table's rows) and ifu_covar_scale 1.3, the same files on both sides."""
    cube, s3d, ref, _ = s3d_cube
    apcorr = write_apcorr_file(str(tmp_path / "apcorr_airy.asdf"), psf="airy")
    official = _official(s3d, override_extract1d=ref, override_apcorr=apcorr, apply_apcorr=True, ifu_autocen=True,
                         ifu_rscale=1.7, ifu_covar_scale=1.3)
    with dask.config.set(scheduler="threads"):
        spectrum = spectra(cube, override_extract1d=ref, override_apcorr=apcorr, ifu_autocen=True,
                           ifu_rscale=1.7, ifu_rfcorr=False, ifu_set_srctype="POINT", ifu_covar_scale=1.3).load()
    path = assert_same_as_official(official, spectrum, tmp_path)
    factor = spectrum["apcorr"].values
    assert 1.1 < np.median(factor) < 1.3  # a real correction, not 1
    assert spectrum.attrs["center_from"].startswith("auto-centring")
    assert not float(spectrum.attrs["x_center"]).is_integer()  # a centroid, not a spaxel
    header = fits.getheader(path)
    assert header["APCORR"] is True and header["APCORFIL"] == "apcorr_airy.asdf"
    assert header["SRCPOS"].startswith("auto-centring")
    # The point source of sim_1a sits 0.18" from the target: the centroid is within 2 spaxels of its spaxel.
    from mrsdask.extract import source_position

    x_t, y_t, _ = source_position(cube)
    assert abs(spectrum.attrs["x_center"] - x_t) < 2 and abs(spectrum.attrs["y_center"] - y_t) < 2


def test_official_apcorr_class_gives_the_same_factors(s3d_cube):
    """ApCorrRadial itself (no step) on the shipped and an Airy table, radii off the table's rows."""
    from jwst.extract_1d.apply_apcorr import ApCorrRadial
    from stdatamodels.jwst.datamodels import IFUCubeModel, MirMrsApcorrModel

    from mrsdask.extract.apcorr import apcorr_factors

    cube, s3d, _, folder = s3d_cube
    wave = cube["wavelength"].values
    scale = float(cube.attrs["cdelt1"]) * 3600
    radius_px = (0.4 + 0.5 * np.sin(wave)) / scale + 1.0  # anything: between rows and beyond them
    for path in (default_apcorr_file(), write_apcorr_file(str(folder / "airy.asdf"), psf="airy")):
        model = IFUCubeModel(s3d)
        with MirMrsApcorrModel(path) as ref:
            official = ApCorrRadial(model, ref, location=(model.meta.wcsinfo.crval1, model.meta.wcsinfo.crval2,
                                                          wave.min()))
            official.match_wavelengths(wave)
            for k in range(wave.size):
                official.find_apcorr_func(k, radius_px[k])
        mine = apcorr_factors(read_apcorr(path), wave, radius_px, scale)
        np.testing.assert_allclose(mine, np.ravel(official.apcorr_correction), rtol=1e-6)


def test_shipped_reference_files_say_what_they_are():
    table = read_apcorr(default_apcorr_file())
    assert "gaussian PSF model" in table.source and "NOT the CRDS flight values" in table.source
    assert table.radius_units == "arcseconds" and table.apcorr.shape == table.radius.shape
    # At 2 FWHM the Gaussian PSF is whole: the factor is 1 to 2e-5; at 1 FWHM it is 1/(1 - 2^-4).
    k2 = np.argmin(np.abs(table.radius[:, 0] - 2 * (0.033 * 4.5 + 0.106)))
    assert table.apcorr[k2, 0] == pytest.approx(1.0, abs=2e-5)
    with fits.open(default_mrsptcorr_file()) as hdul:
        assert "APPROXIMATE" in hdul[0].header["DESCRIP"]
        assert hdul["LEAKCOR"].data["FRAC_LEAK"].max() == pytest.approx(0.04)


def test_reference_tables_read_without_the_datamodels_equal_theirs(tmp_path):
    """APCORR through its ASDF tree and LEAKCOR from the FITS bytes: the values (and the float32
    type) the datamodels give; what the quick readers do not take, the datamodels read."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import MirMrsApcorrModel, MirMrsPtCorrModel

    from mrsdask.extract.apcorr import read_apcorr
    from mrsdask.extract.leak import read_mrsptcorr

    for path in (default_apcorr_file(), write_apcorr_file(str(tmp_path / "airy.asdf"), psf="airy")):
        quick = read_apcorr(path)
        with MirMrsApcorrModel(path) as ref:
            t = ref.apcorr_table
            for got, want in ((quick.wavelength, np.ravel(t.wavelength)), (quick.radius, t.radius),
                              (quick.apcorr, t.apcorr)):
                assert got.dtype == np.float32 and np.array_equal(got, np.asarray(want, dtype=np.float32))
            assert quick.radius_units == t.radius_units
    written = write_mrsptcorr_file(str(tmp_path / "mrsptcorr.fits"))
    for path in (default_mrsptcorr_file(), written):
        quick = read_mrsptcorr(path)
        with MirMrsPtCorrModel(path) as ref:
            assert np.array_equal(quick.wavelength, np.array(ref.leakcor_table.wavelength))
            assert np.array_equal(quick.frac_leak, np.array(ref.leakcor_table.frac_leak))
            assert quick.wavelength.dtype == np.array(ref.leakcor_table.wavelength).dtype
    with fits.open(written) as hdul:  # float64 columns: not the schema's type, the datamodel converts them
        table = hdul["LEAKCOR"].data
        cols = fits.ColDefs([fits.Column(name=n, format="D", array=np.asarray(table[n], dtype=np.float64) + 1e-9)
                             for n in table.names])
        hdul["LEAKCOR"] = fits.BinTableHDU.from_columns(cols, name="LEAKCOR")
        hdul.writeto(tmp_path / "float64.fits")
    converted = read_mrsptcorr(str(tmp_path / "float64.fits"))
    with MirMrsPtCorrModel(str(tmp_path / "float64.fits")) as ref:
        assert converted.frac_leak.dtype == np.float32  # the datamodel's values, not the file's float64
        assert np.array_equal(converted.frac_leak, np.array(ref.leakcor_table.frac_leak))


def test_unreadable_reference_files_are_refused(tmp_path):
    from mrsdask.extract.leak import read_mrsptcorr

    bad = tmp_path / "junk.asdf"
    bad.write_text("junk")
    with pytest.raises(InputError, match="not an MRS APCORR reference file"):
        read_apcorr(str(bad))
    with pytest.raises(InputError, match="not an MRSPTCORR reference file"):
        read_mrsptcorr(str(bad))


# --------------------------------------------------------------------------- spectral leak
def _spectrum(channel, band, wave, flux, source_type="POINT"):
    import xarray as xr

    n = wave.size
    cols = {name: np.zeros(n) for name in ("flux_error", "surf_bright", "sb_error", "background", "bkgd_error",
                                            "npixels", "dq")}
    ds = xr.Dataset({"flux": ("wavelength", flux), "rf_flux": ("wavelength", 0.9 * flux),
                     "rf_surf_bright": ("wavelength", np.full(n, np.nan)),
                     "rf_background": ("wavelength", np.full(n, np.nan)),
                     **{k: ("wavelength", v) for k, v in cols.items()}}, coords={"wavelength": wave})
    ds.attrs.update({"slit_ra": 80.5, "slit_dec": -69.5, "source_type": source_type, "x_center": 10.0,
                     "y_center": 11.0, "channel": channel, "band": band, "targ_ra": 80.5, "targ_dec": -69.5})
    return ds


@pytest.fixture(scope="module")
def leak_spectra():
    rng = np.random.default_rng(5)
    w1b = np.linspace(5.66, 6.63, 1200)
    w3a = np.linspace(11.55, 13.47, 1100)
    return {"ch1-medium": _spectrum("1", "MEDIUM", w1b, 0.3 * (w1b / 6) ** -2 + rng.normal(0, 1e-3, w1b.size)),
            "ch3-short": _spectrum("3", "SHORT", w3a, 0.05 * (w3a / 12) ** 0.5)}


def test_spectral_leak_equals_the_official(leak_spectra, tmp_path):
    from jwst.spectral_leak import spectral_leak
    from stdatamodels.jwst import datamodels

    ref = write_mrsptcorr_file(str(tmp_path / "mrsptcorr.fits"))
    files = [write_x1d(s, str(tmp_path / f"{n}_x1d.fits")) for n, s in leak_spectra.items()]
    with datamodels.open(files[0]) as ch1b, datamodels.open(files[1]) as ch3a:
        want, want_rf = spectral_leak.do_correction(ref, ch1b, ch3a)
        before = np.array(ch3a.spec[0].spec_table["FLUX"])
    assert np.max(before - want) > 1e-3  # the leak is there to remove
    outcome = correct_x1d_files(files, ref)
    assert outcome.startswith("applied to") and "mrsptcorr.fits" in outcome
    with datamodels.open(files[1]) as fixed:
        np.testing.assert_allclose(fixed.spec[0].spec_table["FLUX"], want, rtol=1e-12)
        np.testing.assert_allclose(fixed.spec[0].spec_table["RF_FLUX"], want_rf, rtol=1e-12)
        assert fixed.meta.cal_step.spectral_leak == "COMPLETE"
    # The same on lazy spectra (what 'mrsdask extract' does before writing).
    lazy = {n: s.copy() for n, s in leak_spectra.items()}
    correct_spectra(lazy, ref)
    np.testing.assert_allclose(lazy["ch3-short"]["flux"].values, want, rtol=1e-12)
    assert lazy["ch3-short"].attrs["spectral_leak"].startswith("applied to ch3-short with ch1-medium")
    # The same on numpy columns (the direct extraction of a store's cubes), bit for bit.
    names = list(leak_spectra)
    attrs = [dict(s.attrs) for s in leak_spectra.values()]
    columns = [{c: s[c].values.copy() for c in ("flux", "rf_flux")} for s in leak_spectra.values()]
    waves = [s["wavelength"].values for s in leak_spectra.values()]
    outcome, plan = plan_leak(names, attrs, waves, ref)
    assert outcome == lazy["ch3-short"].attrs["spectral_leak"]
    remove_leak_from_columns(columns, waves, plan)
    for column in ("flux", "rf_flux"):
        assert np.array_equal(columns[1][column], lazy["ch3-short"][column].values)
        assert np.array_equal(columns[0][column], leak_spectra["ch1-medium"][column].values)  # 1B as it was
    assert attrs == [lazy[n].attrs for n in names]
    path = write_x1d(lazy["ch3-short"], str(tmp_path / "lazy_x1d.fits"))
    header = fits.getheader(path)
    assert header["SPLEAK"] is True and header["S_SPLEAK"] == "COMPLETE" and header["R_MRSPT"] == "mrsptcorr.fits"


def test_spectral_leak_is_skipped_with_a_reason(leak_spectra):
    items = [(s.attrs["channel"], s.attrs["band"], s.attrs["source_type"], s["wavelength"].values)
             for s in leak_spectra.values()]
    assert find_leak_pair(items)[:2] == (0, 1)
    assert find_leak_pair(items[:1])[2] == "skipped: no 3A spectrum among the extracted cubes"
    extended = [(c, b, "EXTENDED", w) for c, b, _, w in items]
    assert find_leak_pair(extended)[2].startswith("skipped: extended source")
    # A multi-band spectrum of channels 1 and 3 covering 6 and 12 um is both (the official rules).
    wave = np.linspace(4.9, 13.0, 100)
    assert find_leak_pair([("13", "MULTIPLE", "POINT", wave)])[:2] == (0, 0)
    one = {"ch1-medium": leak_spectra["ch1-medium"].copy()}
    assert correct_spectra(one) == "skipped: no 3A spectrum among the extracted cubes"
    assert one["ch1-medium"].attrs["spectral_leak"].startswith("skipped")


# --------------------------------------------------------------------------- options
def test_request_takes_official_names_and_the_older_ones():
    from mrsdask.options import check_parameters, from_parameters, pipeline_params

    params = pipeline_params(ExtractRequest)
    keys = {p.name for p in params}
    assert {"center_xy", "ifu_rscale", "ifu_set_srctype", "ifu_rfcorr", "ifu_autocen", "apply_apcorr",
            "bkg_sigma_clip", "ifu_covar_scale", "subtract_background"} <= keys
    old = check_parameters({"center": [3.0, 4.0], "rscale": 1.5, "source_type": "point", "residual_fringe": False},
                           params, "step extract")
    request = from_parameters(ExtractRequest, old)
    assert (request.center_xy, request.ifu_rscale, request.ifu_set_srctype, request.ifu_rfcorr) == \
        ((3.0, 4.0), 1.5, "POINT", False)
    default = ExtractRequest()
    assert default.apply_apcorr and default.ifu_rfcorr and not default.ifu_autocen and default.proper_motion
    with pytest.raises(ParameterError, match="not both"):
        check_parameters({"center": [3.0, 4.0], "center_xy": [3.0, 4.0]}, params, "step extract")
    with pytest.raises(ParameterError, match="ifu_rscale 4.0: allowed 0.5-3"):
        ExtractRequest(ifu_rscale=4.0)
    with pytest.raises(ParameterError, match="give one of them"):
        ExtractRequest(center_xy=(1.0, 2.0), ifu_autocen=True)


def test_rfcorr_is_skipped_for_multi_band_cubes_as_official(s3d_cube):
    cube = s3d_cube[0].copy()
    cube.attrs = dict(cube.attrs)
    cube.attrs["band"] = "MULTIPLE"
    spectrum = extract_spectrum(cube, ifu_set_srctype="EXTENDED")  # ifu_rfcorr on by default
    assert not spectrum.attrs["residual_fringe"]
    assert "single-band cubes" in spectrum.attrs["residual_fringe_note"]
    assert spectrum.attrs["aperture_correction"] == "not applied (extended source)"


# --------------------------------------------------------------------------- proper motion
@pytest.fixture(scope="module")
def moving_star(point_source_sim, tmp_path_factory):
    """point_source_sim as a star that moved 1" north in 20 years: TARG_DEC is its 2004 (MU_EPOCH) position,
    1" south of where it is at EXPMID; the pointing (the simulated field) is centred on the true one."""
    from mrsdask.sim import read_truth

    folder = tmp_path_factory.mktemp("propermotion")
    truth = read_truth(point_source_sim.truth)
    source = truth.config.sources[0]
    ra0 = truth.config.target_ra + source.ra_offset / 3600.0 / np.cos(np.radians(truth.config.target_dec))
    dec0 = truth.config.target_dec + source.dec_offset / 3600.0
    from astropy.time import Time

    epoch, mid = Time("2004-01-01T00:00:00", scale="utc"), Time("2024-01-01T12:00:00", scale="utc")
    mu_dec = 1.0 / (mid - epoch).to_value("yr")  # arcsec/yr: 1" over the interval
    files = []
    for path in point_source_sim.cal_files:
        out = str(folder / os.path.basename(str(path)))
        shutil.copy(str(path), out)
        with fits.open(out, mode="update") as hdul:
            h = hdul[0].header
            h["TARG_RA"], h["TARG_DEC"] = ra0, dec0 - 1.0 / 3600.0
            h["MU_RA"], h["MU_DEC"], h["MU_EPOCH"], h["EXPMID"] = 0.0, mu_dec, epoch.isot, mid.mjd
        files.append(out)
    with dask.config.set(scheduler="threads"):
        (name,) = build_cubes(open_cal(files), str(folder / "c.zarr"), CubeRequest(channels=(1,)), progress=False)
    return str(folder / "c.zarr"), name, truth, source, (ra0, dec0)


def test_proper_motion_puts_the_aperture_on_the_star(moving_star, tmp_path):
    from mrsdask.sim import truth_spectrum

    store, name, truth, source, (ra0, dec0) = moving_star
    cube = open_cube(store, name)
    with dask.config.set(scheduler="threads"):
        moved = spectra(cube, ifu_rfcorr=False).load()
        fixed = spectra(cube, ifu_rfcorr=False, proper_motion=False).load()
    assert moved.attrs["proper_motion"].startswith("applied: moved 1.000 arcsec")
    assert moved.attrs["targ_dec_moved"] == pytest.approx(dec0, abs=1e-3 / 3600)
    assert moved.attrs["targ_ra_moved"] == pytest.approx(ra0, abs=1e-3 / 3600)
    good = moved["dq"].values == 0
    true_flux = truth_spectrum(source, moved["wavelength"].values)
    ratio = moved["flux"].values[good] / true_flux[good]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)
    lost = fixed["flux"].values[good] / true_flux[good]
    assert np.median(lost) < 0.5  # the aperture 1" off the star
    assert fixed.attrs["proper_motion"].startswith("not applied (proper_motion off)")
    header = fits.getheader(write_x1d(moved, str(tmp_path / "moved_x1d.fits")))
    assert header["PMAPPL"] is True and header["PMDEC"] == pytest.approx(dec0, abs=1e-3 / 3600)
    assert header["MU_DEC"] == pytest.approx(0.05, rel=1e-3) and header["MU_EPOCH"].startswith("2004-01-01")


@pytest.mark.slow
def test_the_official_step_misses_a_moving_star(moving_star, tmp_path):
    """The official step places the aperture at TARG_RA/TARG_DEC as given (the catalogue epoch)."""
    from mrsdask.sim import truth_spectrum

    store, name, truth, source, _ = moving_star
    s3d = write_s3d(open_cube(store, name), str(tmp_path / "moving_s3d.fits"))
    ref = write_extract1d(default_parameters(), str(tmp_path / "extract1d.asdf"))
    official = _official(s3d, override_extract1d=ref, apply_apcorr=False)
    table = official.spec_table
    good = table["DQ"] == 0
    lost = np.asarray(table["FLUX"])[good] / truth_spectrum(source, np.asarray(table["WAVELENGTH"])[good])
    assert np.median(lost) < 0.5


def test_spectra_of_a_store_are_lazy_and_say_why_no_leak_correction(sim_1a_cube):
    import dask.array as da

    store, name = sim_1a_cube
    out = spectra(store, ifu_rfcorr=False)
    assert list(out) == [name]
    spectrum = out[name]
    assert isinstance(spectrum["flux"].data, da.Array)  # nothing computed yet
    assert spectrum.attrs["spectral_leak"] == "skipped: no 1B and 3A spectrum among the extracted cubes"
    assert spectrum.attrs["aperture_correction"].startswith("applied: mrsdask_mrs_apcorr_gaussian.asdf")
    off = spectra(store, [name], apply_apcorr=False, spectral_leak=False, ifu_rfcorr=False)[name]
    assert off.attrs["aperture_correction"] == "not applied (apply_apcorr off)"
    assert off.attrs["spectral_leak"] == "not applied (spectral_leak off)"
    with pytest.raises(ParameterError, match="extraction option 'radius' is unknown"):
        spectra(store, radius=3)


def test_a_spectrum_takes_a_few_tasks_per_slab(sim_1a_cube):
    """Each slab: its three reads (SCI, ERR, WMAP), the kernel and two picks; the columns' arithmetic
    runs once per column on the joined slabs, not once per column and slab."""
    from mrsdask.cube.builder import open_cube

    store, name = sim_1a_cube
    n_slabs = open_cube(store, name)["sci"].data.numblocks[0]
    spectrum = spectra(store, [name], apply_apcorr=False, spectral_leak=False, ifu_rfcorr=False)[name]
    assert n_slabs > 1
    assert len(spectrum.__dask_graph__()) <= 6 * n_slabs + 50
