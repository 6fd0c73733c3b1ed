"""Recovery of a known sky and of a point source on simulated data.

Scene (``bkg_helpers.SIM_CONFIG``): the simulator's sky (scale 1: ~0.5 MJy/sr at 5 µm, ~25 at
12 µm) in every exposure, a 2 mJy (at 10 µm, F_ν ∝ λ) point source in the science exposures,
bands 1A and 3A (so also 2A and 4A on the same detectors), one science and one dedicated
background exposure per setting.

Measures (:func:`bkg_helpers.band_ratios`), in 8 wavelength bins per channel:

* background: Σ subtracted background / Σ noiseless sky, over all on-slice pixels;
* point source, on truth-known pixels: Σ background-subtracted SCI / Σ noiseless source-only
  image, over the detector pixels within 2 FWHM of the source.

Both must be within 1 %. Without subtraction the source would be off by 70-100 % in 3A.
The master method's table only covers the wavelengths of the background cubes; detector
pixels beyond (a few at the band ends) get no background, as in the official step, so the
bins are limited to the table's range there.
"""

from __future__ import annotations

import numpy as np
import pytest
from bkg_helpers import SIM_CONFIG, band_ratios, truth_images

from mrsdask.background import open_inputs, run_background, subtract_background

pytestmark = pytest.mark.filterwarnings("ignore")
TOLERANCE = 0.01


def _check(ratios, label, expect_sky_matters=False):
    for channel, r in ratios.items():
        print(f"{label} ch{channel}: background {np.round(r['background'], 4)}\n"
              f"    source {np.round(r['source'], 4)}  (unsubtracted {np.round(r['unsubtracted'], 3)})")
        assert np.all(np.abs(r["background"] - 1) < TOLERANCE), (label, channel, r["background"])
        assert np.all(np.abs(r["source"] - 1) < TOLERANCE), (label, channel, r["source"])
        assert np.all(r["n_aperture"] > 100)
        if expect_sky_matters and channel == 3:
            assert np.all(r["unsubtracted"] > 1 + 10 * TOLERANCE)


def _source_radec(truth):
    return truth.sources[0]["RA"], truth.sources[0]["DEC"]


def test_pixel_method_recovers_sky_and_source(sim_1a3a):
    from mrsdask.sim import read_truth

    truth = read_truth(sim_1a3a.truth)
    ds, _ = open_inputs([str(sim_1a3a.association)])
    out, summary, _ = subtract_background(ds, "pixel", save_2d=True)
    assert sorted(summary.per_setting) == ["12A", "34A"]
    assert all(len(v) == 1 for v in summary.per_setting.values())
    for i in range(out.sizes["exposure"]):
        exposure = out.isel(exposure=i)
        setting = str(exposure["setting"].values)
        sci, bkg = exposure["sci"].values, exposure["background"].values
        geometry, sky, star = truth_images(str(exposure["path"].values), setting, truth)
        _check(band_ratios(sci, bkg, geometry, sky, star, _source_radec(truth)), f"pixel {setting}",
               expect_sky_matters=True)


@pytest.fixture(scope="module")
def master_run(sim_1a3a, tmp_path_factory):
    """run_background(method="master") from the association: store, 1-D master, log."""
    import io
    import logging

    folder = tmp_path_factory.mktemp("master")
    store, master_path = str(folder / "sub.zarr"), str(folder / "master_x1d.fits")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("mrsdask.background")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        summary = run_background([str(sim_1a3a.association)], store, method="master", save_2d=True,
                                 save_master=master_path)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return {"store": store, "master": master_path, "summary": summary, "log": stream.getvalue()}


def test_master_spectrum_recovers_sky(master_run):
    from mrsdask.sim import sky_spectrum

    from mrsdask.background import read_spectrum

    summary, log_text = master_run["summary"], master_run["log"]
    assert "building cubes of 2 background exposure(s)" in log_text
    assert "background method: master" in log_text and "bkgtest_12A_bkg_d1_cal.fits" in log_text
    assert len(summary.background) == 2 and len(summary.science) == 2
    # The 1-D master background against the true sky: each band's piece in 8 bins.
    master = read_spectrum(master_run["master"])
    ratio = master.surf_bright / sky_spectrum(master.wavelength)
    cuts = np.nonzero(np.diff(master.wavelength) > 0.05)[0] + 1
    pieces = np.split(np.arange(len(master)), cuts)
    assert len(pieces) == 4  # 1A, 2A, 3A, 4A
    for piece in pieces:
        bins = np.array([ratio[b].mean() for b in np.array_split(piece, 8)])
        lo, hi = master.wavelength[piece[0]], master.wavelength[piece[-1]]
        print(f"master/sky {lo:.2f}-{hi:.2f} um: {np.round(bins, 4)}")
        assert np.all(np.abs(bins - 1) < TOLERANCE)


def test_master_method_recovers_sky_and_source(sim_1a3a, master_run):
    from mrsdask.io.detector_store import open_detector_store
    from mrsdask.sim import read_truth

    from mrsdask.background import read_spectrum

    truth = read_truth(sim_1a3a.truth)
    master = read_spectrum(master_run["master"])
    ds = open_detector_store(master_run["store"])
    assert ds.sizes["exposure"] == 2 and set(ds["exptype"].values) == {"science"}
    assert "mrsdask_background" in ds.attrs
    for i in range(ds.sizes["exposure"]):
        exposure = ds.isel(exposure=i)
        setting = str(exposure["setting"].values)
        geometry, sky, star = truth_images(str(exposure["path"].values), setting, truth)
        ratios = band_ratios(exposure["sci"].values, exposure["background"].values, geometry, sky, star,
                             _source_radec(truth), lam_range=master.wavelength_range)
        _check(ratios, f"master {setting}", expect_sky_matters=True)


def cube_photometry(cube, ra, dec, radius_fwhm=2.0, annulus_fwhm=(2.5, 3.5)):
    """Aperture + annulus photometry of a point source in a cube, plane by plane.

    Aperture radius ``radius_fwhm`` × FWHM(λ); the residual background is the median of the
    annulus, subtracted per spaxel; flux = Σ (SCI − median) · Ω_spaxel, in Jy. Returns
    (flux, annulus median) per plane.
    """
    from mrsdask.datamodel.cube import celestial_wcs
    from mrsdask.sim import psf_fwhm

    x0, y0 = celestial_wcs(cube.attrs).wcs_world2pix(ra, dec, 0)
    yy, xx = np.mgrid[: cube.sizes["y"], : cube.sizes["x"]]
    radius = np.hypot(xx - x0, yy - y0) * cube.attrs["cdelt1"] * 3600.0
    omega = cube.attrs["pixelarea_steradians"]
    sci = cube["sci"].values
    flux, residual = [], []
    for k, lam in enumerate(cube["wavelength"].values):
        fwhm = psf_fwhm(lam)
        ap = radius < radius_fwhm * fwhm
        ann = (radius > annulus_fwhm[0] * fwhm) & (radius < annulus_fwhm[1] * fwhm)
        med = np.nanmedian(sci[k][ann]) if np.isfinite(sci[k][ann]).sum() > 5 else np.nan
        residual.append(med)
        flux.append(np.nansum(sci[k][ap] - np.nan_to_num(med)) * omega * 1e6)
    return np.array(flux), np.array(residual)


@pytest.mark.slow
def test_point_source_from_cubes_of_subtracted_store(sim_1a3a, master_run, tmp_path):
    """End to end: cubes built from the subtracted store; aperture+annulus photometry.

    Slow (four channel cubes); the default run checks the subtracted source on the detector
    (test_master_method_recovers_sky_and_source) and cubes built from a subtracted store
    (tests/pipeline/test_run.py).
    """
    from mrsdask.cube.builder import build_cubes, open_cube
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_detector_store
    from mrsdask.sim import read_truth, sky_spectrum, truth_spectrum

    truth = read_truth(sim_1a3a.truth)
    source = truth.config.sources[0]
    ra, dec = _source_radec(truth)
    root = str(tmp_path / "cubes.zarr")
    names = build_cubes(open_detector_store(master_run["store"]), root, CubeRequest(output_type="band"),
                        progress=False)
    assert names == ["ch1-short", "ch2-short", "ch3-short", "ch4-short"]
    for name in names:
        cube = open_cube(root, name).load()
        flux, residual = cube_photometry(cube, ra, dec)
        lam = cube["wavelength"].values
        ratio = flux / truth_spectrum(source, lam)
        inner = np.arange(len(lam))[20:-20]    # the first/last planes see few detector pixels
        bins = np.array([np.mean(ratio[b]) for b in np.array_split(inner, 8)])
        sky_left = np.nanmedian(residual[inner] / sky_spectrum(lam[inner]))
        print(f"{name}: cube photometry / truth {np.round(bins, 4)}; annulus residual / sky {sky_left:.4f}")
        assert np.all(np.abs(bins - 1) < TOLERANCE)
        assert abs(sky_left) < TOLERANCE


@pytest.mark.slow
def test_more_bands_both_methods(tmp_path):
    """Bands 1B, 2C, 3B, 4C (settings 12B, 12C, 34B, 34C: every channel) with both methods."""
    from mrsdask.background import read_spectrum
    from mrsdask.instrument.reference import disable_crds_context_lookup
    from mrsdask.io.detector_store import open_detector_store
    from mrsdask.sim import read_truth, simulate

    disable_crds_context_lookup()
    config = dict(SIM_CONFIG, bands=["1B", "2C", "3B", "4C"], prefix="bkgmore", seed=8)
    sim = simulate(config, tmp_path / "sim")
    truth = read_truth(sim.truth)
    for method in ("pixel", "master"):
        store = str(tmp_path / f"{method}.zarr")
        master_path = str(tmp_path / "master.txt") if method == "master" else None
        summary = run_background([str(sim.association)], store, method=method, save_2d=True,
                                 save_master=master_path)
        assert len(summary.science) == 4 and len(summary.background) == 8
        lam_range = read_spectrum(master_path).wavelength_range if master_path else None
        ds = open_detector_store(store)
        for i in range(ds.sizes["exposure"]):
            exposure = ds.isel(exposure=i)
            setting = str(exposure["setting"].values)
            geometry, sky, star = truth_images(str(exposure["path"].values), setting, truth)
            ratios = band_ratios(exposure["sci"].values, exposure["background"].values, geometry, sky, star,
                                 _source_radec(truth), lam_range=lam_range)
            _check(ratios, f"{method} {setting}")
