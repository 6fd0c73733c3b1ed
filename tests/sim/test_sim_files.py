"""End-to-end tests of the simulator: the files it writes, on the real MRS geometry.

Each simulated exposure costs a few seconds (mostly the official AssignWcsStep), so the
simulations are module-scoped fixtures shared by the tests.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

from mrsdask.instrument.reference import slice_map
from mrsdask.sim import (
    EmissionLine,
    ExtendedSource,
    PointSource,
    Scene,
    SimulationConfig,
    exposure_rng,
    pixel_geometry,
    read_truth,
    render_exposure,
    simulate,
    sky_spectrum,
    truth_spectrum,
)
from mrsdask.sim.detector import OFF_SLICE_DQ
from mrsdask.sim.observation import dither_positions
from mrsdask.sim.scene import ARCSEC2_SR, radec_to_offsets


def _sep_arcsec(ra1, dec1, ra2, dec2):
    e, n = radec_to_offsets(ra2, dec2, ra1, dec1)
    return float(np.hypot(e, n))


def _pixel_wavelengths(model, setting):
    """On-slice pixels (y, x), their wavelength and wavelength extent, from the file's gwcs.

    The wavelength of a detector pixel does not depend on the pointing.
    """
    y, x = np.nonzero(slice_map(setting))
    d2ab = model.meta.wcs.get_transform("detector", "alpha_beta")
    _, _, lam = d2ab(x.astype(float), y.astype(float))
    _, _, lo = d2ab(x.astype(float), y - 0.49)
    _, _, hi = d2ab(x.astype(float), y + 0.49)
    return y, x, lam, np.abs(hi - lo) / 0.98


def _planes(path):
    """The data planes of a cal file, read directly with astropy."""
    with fits.open(path) as hdul:
        return {k: np.array(hdul[k].data) for k in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")}


# ------------------------------------------------------------------ fixtures
def point_config(seed: int = 11) -> SimulationConfig:
    return SimulationConfig(
        bands=["1A"],
        dither_pattern="none",
        roll=37.0,
        sources=[
            PointSource(0.6, -0.4, continuum_mjy=80.0, slope=-1.0, lines=[EmissionLine(5.3, 0.002, 5e-17)], name="star")
        ],
        sky_background=0.0,
        noise=True,
        seed=seed,
        prefix="simA",
    )


@pytest.fixture(scope="module")
def point_sim(tmp_path_factory):
    """1 band, 1 dither, a point source, noise, no sky."""
    out = tmp_path_factory.mktemp("point")
    return simulate(point_config(), out)


@pytest.fixture(scope="module")
def disc_sim(tmp_path_factory):
    """Uniform disc larger than the field, noiseless, no sky, two 4-point dither positions."""
    cfg = SimulationConfig(
        bands=["1A"],
        dither_pattern="4-point",
        n_dithers=2,
        roll=250.0,
        sources=[ExtendedSource(0.0, 0.0, "disc", 30.0, continuum_mjysr=100.0, lines=[EmissionLine(5.3, 0.003, 2e-9)])],
        sky_background=0.0,
        noise=False,
        seed=3,
        prefix="simB",
    )
    return simulate(cfg, tmp_path_factory.mktemp("disc"))


@pytest.fixture(scope="module")
def sky_sim(tmp_path_factory):
    """Channel 3: sky only, noiseless, fringes, cosmic rays and one background exposure."""
    cfg = SimulationConfig(
        bands=["3A"],
        dither_pattern="none",
        sky_background=1.0,
        noise=False,
        fringes=0.1,
        cosmic_rays=20,
        n_background_exposures=1,
        seed=5,
        prefix="simC",
    )
    return simulate(cfg, tmp_path_factory.mktemp("sky"))


# ------------------------------------------------------------------ file format
def test_cal_file_opens_as_ifuimage_with_official_wcs(point_sim):
    assert [p.name for p in point_sim.cal_files] == ["simA_12A_p1_d1_cal.fits"]
    assert point_sim.background_files == []
    with datamodels.IFUImageModel(point_sim.cal_files[0]) as m:
        assert m.meta.cal_step.assign_wcs == "COMPLETE"
        for step in ("flat_field", "photom", "fringe", "srctype"):
            assert getattr(m.meta.cal_step, step) == "COMPLETE"
        assert m.meta.exposure.type == "MIR_MRS"
        assert m.meta.instrument.detector == "MIRIFUSHORT"
        assert (m.meta.instrument.channel, m.meta.instrument.band) == ("12", "SHORT")
        assert m.meta.bunit_data == "MJy/sr"
        assert m.meta.filename == "simA_12A_p1_d1_cal.fits"
        assert m.meta.target.source_type == "POINT"
        assert (m.meta.target.ra, m.meta.target.dec) == (80.49, -69.5)
        assert m.meta.wcs is not None
        assert m.data.dtype.type is np.float32 and m.err.dtype.type is np.float32
        assert m.dq.dtype.type is np.uint32

        on = slice_map("12A") > 0
        assert np.array_equal(np.isfinite(m.data), on)
        assert np.all(m.dq[on] == 0)
        assert np.all(m.dq[~on] == OFF_SLICE_DQ) and OFF_SLICE_DQ == 513
        var = m.var_poisson[on].astype(float) + m.var_rnoise[on] + m.var_flat[on]
        assert np.allclose(m.err[on].astype(float) ** 2, var, rtol=1e-5)
        assert np.all(np.isnan(m.err[~on]))
        # the pixel world coordinates come from the official gwcs
        y, x = np.nonzero(on)
        ra, dec, lam = m.meta.wcs(x[::5000], y[::5000])
        assert np.all(np.isfinite(ra))
        # the whole 12A exposure is rendered: channel 1 (1A) and channel 2 (2A)
        assert np.all(((lam > 4.8) & (lam < 5.8)) | ((lam > 7.4) & (lam < 8.9)))


def test_pointing_keywords_are_consistent(point_sim):
    """PA_V3 at V1 (from the file's own attitude) equals the configured roll."""
    from jwst.assign_wcs.pointing import v23tosky

    with datamodels.IFUImageModel(point_sim.cal_files[0]) as m:
        assert m.meta.pointing.pa_v3 == 37.0
        sky = v23tosky(m)
        ra1, dec1 = sky(0.0, 0.0)
        assert _sep_arcsec(ra1, dec1, m.meta.pointing.ra_v1, m.meta.pointing.dec_v1) < 1e-6
        ra2, dec2 = sky(0.0, 60.0)  # 60" along +V3
        e, n = radec_to_offsets(ra2, dec2, ra1, dec1)
        pa = np.degrees(np.arctan2(e, n)) % 360
        assert float(pa) == pytest.approx(37.0, abs=1e-3)
        # the target sits on the dither position's V2/V3
        centre = dither_positions("none", 1)[0]
        assert (m.meta.wcsinfo.v2_ref, m.meta.wcsinfo.v3_ref) == pytest.approx((centre.v2, centre.v3))
        ra_t, dec_t = sky(centre.v2, centre.v3)
        assert _sep_arcsec(ra_t, dec_t, 80.49, -69.5) < 1e-6


def test_association_and_truth(point_sim):
    from jwst.associations import load_asn

    with open(point_sim.association) as fh:
        asn = load_asn(fh)
    assert asn["asn_type"] == "spec3"
    (product,) = asn["products"]
    assert product["name"] == "simA"
    assert product["members"] == [{"expname": "simA_12A_p1_d1_cal.fits", "exptype": "science"}]

    truth = read_truth(point_sim.truth)
    assert truth.config == point_config()
    assert truth.sources[0]["SRCTYPE"] == "POINT" and truth.sources[0]["BUNIT"] == "Jy"
    src = truth.config.sources[0]
    assert np.allclose(truth.spectra[0], truth_spectrum(src, truth.wavelength))
    k = np.argmin(np.abs(truth.wavelength - 5.0))
    assert truth.spectra[0][k] == pytest.approx(0.08 * 10 / truth.wavelength[k], rel=1e-9)
    assert np.all(truth.sky == 0)
    assert json.loads(point_sim.scene.read_text())["prefix"] == "simA"


# ------------------------------------------------------------------ scene on the detector
def test_point_source_lands_on_its_position(point_sim):
    with datamodels.IFUImageModel(point_sim.cal_files[0]) as m:
        iy, ix = np.unravel_index(np.nanargmax(m.data), m.data.shape)
        ra, dec, lam = m.meta.wcs(ix, iy)
    src_ra, src_dec = read_truth(point_sim.truth).sources[0]["RA"], read_truth(point_sim.truth).sources[0]["DEC"]
    assert _sep_arcsec(ra, dec, src_ra, src_dec) < 0.3
    e, n = radec_to_offsets(src_ra, src_dec, 80.49, -69.5)
    assert (float(e), float(n)) == pytest.approx((0.6, -0.4), abs=1e-9)


# The disc simulation (two exposures) serves only these two checks of the simulator.
@pytest.mark.slow
def test_uniform_disc_gives_its_surface_brightness(disc_sim):
    with datamodels.IFUImageModel(disc_sim.cal_files[0]) as m:
        y, x, lam, dlam = _pixel_wavelengths(m, "12A")
        values = m.data[y, x].astype(float)
    continuum = np.abs(lam - 5.3) > 0.03
    assert np.allclose(values[continuum], 100.0, rtol=1e-3, atol=0)
    # The emission line: per detector column, sum over the pixels of (I - continuum) dλ
    # equals the integral of the truth spectrum.
    src = read_truth(disc_sim.truth).config.sources[0]
    fine = np.linspace(5.25, 5.35, 100001)
    expected = np.trapezoid(truth_spectrum(src, fine) - 100.0, fine)  # MJy/sr * um
    checked = 0
    for column in (60, 250, 400):
        col = (x == column) & (np.abs(lam - 5.3) < 0.03)
        if col.sum() < 20:
            continue
        got = np.sum((values[col] - 100.0) * dlam[col])
        assert got == pytest.approx(expected, rel=0.01)
        checked += 1
    assert checked >= 2


# The disc simulation (two exposures) serves only these two checks of the simulator.
@pytest.mark.slow
def test_dithers_move_the_pointing_by_the_table_offsets(disc_sim):
    assert [p.name for p in disc_sim.cal_files] == ["simB_12A_p1_d1_cal.fits", "simB_12A_p1_d2_cal.fits"]
    table = dither_positions("4-point", 1, 2)
    sky, refs = [], []
    for path, pos in zip(disc_sim.cal_files, table):
        with datamodels.IFUImageModel(path) as m:
            assert (m.meta.wcsinfo.v2_ref, m.meta.wcsinfo.v3_ref) == (pos.v2, pos.v3)
            assert m.meta.dither.position_number == table.index(pos) + 1
            refs.append((m.meta.wcsinfo.ra_ref, m.meta.wcsinfo.dec_ref))
            ab2w = m.meta.wcs.get_transform("alpha_beta", "world")
            ra, dec, _ = ab2w(0.0, 0.0, 5.3)
            sky.append((float(ra), float(dec)))
    # The target is on each dither position, so a fixed (alpha, beta) moves on the sky by the
    # V2/V3 distance between the positions.
    assert refs[0] == refs[1] == (80.49, -69.5)
    expected = float(np.hypot(table[1].v2 - table[0].v2, table[1].v3 - table[0].v3))
    assert expected > 2.0
    assert _sep_arcsec(*sky[0], *sky[1]) == pytest.approx(expected, abs=2e-3)


# ------------------------------------------------------------------ detector effects
def test_fringes_cosmic_rays_and_background_exposures(sky_sim):
    assert [p.name for p in sky_sim.cal_files] == ["simC_34A_p1_d1_cal.fits"]
    assert [p.name for p in sky_sim.background_files] == ["simC_34A_bkg_d1_cal.fits"]
    with open(sky_sim.association) as fh:
        members = json.load(fh)["products"][0]["members"]
    assert [m["exptype"] for m in members] == ["science", "background"]

    with datamodels.IFUImageModel(sky_sim.cal_files[0]) as sci:
        assert sci.meta.cal_step.fringe == "SKIPPED"
        assert sci.meta.target.source_type == "EXTENDED"
        assert sci.meta.observation.bkgdtarg is False
        y, x, lam, _ = _pixel_wavelengths(sci, "34A")
        sci_ref = (sci.meta.wcsinfo.ra_ref, sci.meta.wcsinfo.dec_ref)
        sci_ids = (sci.meta.observation.observation_number, sci.meta.observation.exposure_number)
    with fits.open(sky_sim.background_files[0]) as hdul:
        hdr = hdul["SCI"].header
        assert hdul[0].header["BKGDTARG"] is True
        assert hdul[0].header["EXP_TYPE"] == "MIR_MRS"
        assert (hdul[0].header["OBSERVTN"], hdul[0].header["EXPOSURE"]) != sci_ids
        assert _sep_arcsec(*sci_ref, hdr["RA_REF"], hdr["DEC_REF"]) == pytest.approx(60.0, abs=1e-6)

    sky = sky_spectrum(lam)
    for path in sky_sim.all_files:
        planes = _planes(path)
        cr = sky_sim.cosmic_rays[path.name]
        assert cr.shape == (20, 2)
        is_cr = np.zeros(planes["SCI"].shape, bool)
        is_cr[cr[:, 0], cr[:, 1]] = True
        clean = ~is_cr[y, x]
        ratio = planes["SCI"][y, x] / sky
        # multiplicative fringes of amplitude 0.1 around the (noiseless) sky, no sources
        assert ratio[clean].max() == pytest.approx(1.1, abs=2e-3)
        assert ratio[clean].min() == pytest.approx(0.9, abs=2e-3)
        # cosmic rays: large, positive, on slice and not flagged
        assert np.all(planes["SCI"][y, x][~clean] - 1.1 * sky[~clean] > 500.0)
        assert np.all(planes["DQ"][is_cr] == 0)
    # each exposure has its own cosmic rays
    assert not np.array_equal(*(sky_sim.cosmic_rays[p.name] for p in sky_sim.all_files))


# ------------------------------------------------------------------ determinism
# Simulates the exposure again (~15 s); the simulator's own reproducibility.
@pytest.mark.slow
def test_same_seed_gives_identical_arrays_and_other_seeds_other_noise(point_sim, tmp_path):
    again = simulate(point_config(), tmp_path / "again")
    a, b = _planes(point_sim.cal_files[0]), _planes(again.cal_files[0])
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=True), key
    # Another seed: simulate() draws each exposure's noise from exposure_rng(seed, plan).
    plan = point_sim.exposures[0]
    with datamodels.IFUImageModel(point_sim.cal_files[0]) as m:
        geom = pixel_geometry(m.meta.wcs, plan.setting)
    cfg = point_config()
    kwargs = dict(noise=True, read_noise=cfg.read_noise, poisson_factor=cfg.poisson_factor, flat_error=cfg.flat_error)
    scene = Scene.from_config(cfg)
    same = render_exposure(geom, scene, exposure_rng(cfg.seed, plan), **kwargs)
    assert np.array_equal(same.sci, a["SCI"], equal_nan=True)
    other = render_exposure(geom, scene, exposure_rng(cfg.seed + 1, plan), **kwargs)
    on = np.isfinite(a["SCI"])
    assert not np.array_equal(a["SCI"][on], other.sci[on])
    assert np.array_equal(a["ERR"], other.err, equal_nan=True)
    diff = (a["SCI"][on] - other.sci[on]).astype(float)
    sigma = np.sqrt(a["VAR_POISSON"][on] + a["VAR_RNOISE"][on]).astype(float)
    assert np.std(diff / sigma) == pytest.approx(np.sqrt(2.0), rel=0.01)


# ------------------------------------------------------------------ official cube_build
def test_official_cube_build_accepts_the_files(point_sim, tmp_path):
    cubepars = pytest.importorskip(
        "mrsdask.cube.cubepars", reason="mrsdask.cube.cubepars (CUBEPAR writer) is not available"
    )
    from mrsdask.instrument.reference import disable_crds_context_lookup

    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    disable_crds_context_lookup()
    from jwst.cube_build import CubeBuildStep

    cubepar = cubepars.write_cubepar(cubepars.default_cubepars(), tmp_path / "cubepar.fits")
    # Planes around 5 µm are all the checks below look at.
    step = CubeBuildStep(
        override_cubepar=str(cubepar), output_type="band", weighting="drizzle", channel="1", band="short",
        wavemin=4.95, wavemax=5.05,
    )
    step.output_dir = str(tmp_path)
    result = step.run([str(p) for p in point_sim.cal_files])
    cube = result[0]
    assert isinstance(cube, datamodels.IFUCubeModel)
    assert cube.meta.bunit_data == "MJy/sr"
    nz = cube.data.shape[0]
    _, _, lam = cube.meta.wcs(0, 0, np.arange(nz))
    k = int(np.argmin(np.abs(lam - 5.0)))
    spaxel_sr = (cube.meta.wcsinfo.cdelt1 * 3600) * (cube.meta.wcsinfo.cdelt2 * 3600) * ARCSEC2_SR
    flux_jy = np.nansum(cube.data[k]) * spaxel_sr * 1e6
    src = read_truth(point_sim.truth).config.sources[0]
    assert flux_jy == pytest.approx(float(truth_spectrum(src, lam[k])), rel=0.02)
    # the cube's brightest spaxel is at the source
    iy, ix = np.unravel_index(np.nanargmax(cube.data[k]), cube.data[k].shape)
    ra, dec, _ = cube.meta.wcs(ix, iy, k)
    t = read_truth(point_sim.truth).sources[0]
    assert _sep_arcsec(ra, dec, t["RA"], t["DEC"]) < 0.3
