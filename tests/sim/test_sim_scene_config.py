"""Fast unit tests of the simulator's configuration, scene and observation planning."""

from __future__ import annotations

import numpy as np
import pytest

from mrsdask.sim import EmissionLine, ExtendedSource, PointSource, SimulationConfig, truth_spectrum
from mrsdask.sim.observation import dither_positions, dither_table, exposure_filename, plan_exposures
from mrsdask.sim.scene import (
    ARCSEC2_SR,
    Scene,
    offsets_to_radec,
    psf_fwhm,
    radec_to_offsets,
    sky_spectrum,
    spatial_profile,
)

C = 299_792_458.0


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bands": ["5A"]}, "bands"),
        ({"bands": ["1D"]}, "bands"),
        ({"bands": []}, "bands"),
        ({"n_dithers": 5}, "n_dithers"),
        ({"n_dithers": 0}, "n_dithers"),
        ({"dither_pattern": "2-point", "n_dithers": 3}, "n_dithers"),
        ({"dither_pattern": "none", "n_dithers": 2}, "n_dithers"),
        ({"dither_pattern": "spiral"}, "dither_pattern"),
        ({"sources": [PointSource(continuum_mjy=-1.0)]}, "continuum_mjy"),
        ({"sources": [ExtendedSource(continuum_mjysr=-5.0)]}, "continuum_mjysr"),
        ({"sources": [ExtendedSource(size=0.0)]}, "size"),
        ({"sources": [PointSource(lines=[EmissionLine(5.3, 0.002, -1e-17)])]}, "flux"),
        ({"sources": [PointSource(lines=[EmissionLine(5.3, -0.002, 1e-17)])]}, "fwhm"),
        ({"sky_background": -1.0}, "sky_background"),
        ({"read_noise": -0.1}, "read_noise"),
        ({"fringes": 1.5}, "fringes"),
        ({"cosmic_rays": -3}, "cosmic_rays"),
        ({"n_background_exposures": 1.5}, "n_background_exposures"),
        ({"target_dec": 95.0}, "target_dec"),
        ({"pointings": [(0.0,)]}, "pointings"),
        ({"seed": -1}, "seed"),
        ({"source_type": "DIFFUSE"}, "source_type"),
        ({"dither_channel": 7}, "dither_channel"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SimulationConfig(**kwargs)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="colour"):
        SimulationConfig.from_dict({"bands": ["1A"], "colour": "red"})
    with pytest.raises(ValueError, match="point or|'point' or 'extended'"):
        SimulationConfig.from_dict({"sources": [{"type": "comet"}]})


def test_config_round_trips_through_dict_json_and_yaml(tmp_path):
    import yaml

    cfg = SimulationConfig(
        bands=["2a", "1A", "3C"],
        pointings=[(0, 0), (3.5, -2)],
        sources=[
            PointSource(0.1, 0.2, 5.0, -1.5, [EmissionLine(6.98, 0.003, 2e-17)], name="a"),
            ExtendedSource(
                1.0, -1.0, "disk", 2.0, 0.5, 40.0, 30.0, 1.0, [{"wavelength": 17.03, "fwhm": 0.006, "flux": 1e-9}]
            ),
        ],
        fringes=0.1,
        seed=7,
    )
    assert cfg.bands == ["2A", "1A", "3C"]
    assert cfg.settings == ["12A", "34C"]
    assert cfg.sources[1].profile == "disc"
    assert cfg.resolved_source_type == "POINT"
    again = SimulationConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert SimulationConfig.from_json(cfg.to_json()) == cfg
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert SimulationConfig.from_yaml(path) == cfg


def test_source_type_default_and_override():
    assert SimulationConfig(sources=[ExtendedSource()]).resolved_source_type == "EXTENDED"
    assert SimulationConfig().resolved_source_type == "EXTENDED"
    assert SimulationConfig(sources=[PointSource()], source_type="extended").resolved_source_type == "EXTENDED"


# ------------------------------------------------------------------ scene
def test_psf_is_normalised_and_has_the_law_2023_width():
    assert psf_fwhm(10.0) == pytest.approx(0.436)
    src = PointSource(0.3, -0.2)
    step = 0.01
    g = np.arange(-3, 3, step)
    ee, nn = np.meshgrid(g + 0.3, g - 0.2)
    for lam in (5.0, 15.0, 27.0):
        total = spatial_profile(src, ee, nn, lam).sum() * step * step
        assert total == pytest.approx(1.0, rel=1e-4)
        half = spatial_profile(src, 0.3 + psf_fwhm(lam) / 2, -0.2, lam) / spatial_profile(src, 0.3, -0.2, lam)
        assert half == pytest.approx(0.5, rel=1e-9)


def test_point_source_surface_brightness_integrates_to_its_flux():
    src = PointSource(0.0, 0.0, continuum_mjy=20.0, slope=2.0)
    scene = Scene(80.0, -60.0, [src])
    step = 0.01
    g = np.arange(-3, 3, step)
    ee, nn = np.meshgrid(g, g)
    sb = scene.surface_brightness_offsets(ee, nn, 12.0, include_sky=False)  # MJy/sr
    flux_jy = sb.sum() * step * step * ARCSEC2_SR * 1e6
    assert flux_jy == pytest.approx(20e-3 * (12.0 / 10.0) ** 2, rel=1e-4)


def test_line_flux_is_conserved_and_pixel_averaging_is_exact():
    line = EmissionLine(10.0, 0.004, 3e-17)  # W/m^2
    src = PointSource(continuum_mjy=0.0, lines=[line])
    lam = np.linspace(9.95, 10.05, 200001)
    fnu = truth_spectrum(src, lam)  # Jy
    # back to W/m^2: F_lambda = F_nu c / lambda^2
    f_lambda = fnu * 1e-26 * C / (lam * 1e-6) ** 2 * 1e-6  # W m^-2 um^-1
    assert np.trapezoid(f_lambda, lam) == pytest.approx(3e-17, rel=1e-6)
    # Bin averages equal the mean of the finely sampled profile over the bin (the F_lambda ->
    # F_nu factor lambda^2 is taken at the bin centre: a 1e-5 effect).
    centres = np.array([9.999, 10.0013, 10.004])
    width = 0.0012
    binned = truth_spectrum(src, centres, np.full(3, width))
    for c, b in zip(centres, binned):
        fine = np.linspace(c - width / 2, c + width / 2, 20001)
        assert b == pytest.approx(truth_spectrum(src, fine).mean(), rel=1e-4)


def test_extended_sources_profiles():
    disc = ExtendedSource(1.0, 0.0, "disc", 2.0, 0.5, 90.0, continuum_mjysr=7.0)
    scene = Scene(10.0, 20.0, [disc])
    # position angle 90: major axis east-west, radius 2 east-west and 1 north-south
    pts_e = np.array([1.0, 2.9, 3.1, 1.0, 1.0])
    pts_n = np.array([0.0, 0.0, 0.0, 0.9, 1.1])
    assert scene.surface_brightness_offsets(pts_e, pts_n, 10.0, include_sky=False).tolist() == [7, 7, 0, 7, 0]
    gauss = ExtendedSource(0, 0, "gaussian", 1.5, 1.0, continuum_mjysr=10.0, psf_convolved=False)
    assert spatial_profile(gauss, 0.75, 0.0, 10.0) == pytest.approx(0.5)
    conv = ExtendedSource(0, 0, "gaussian", 1.5, 1.0, continuum_mjysr=10.0, psf_convolved=True)
    # convolution keeps the total: integral of the profile is the same
    step = 0.02
    g = np.arange(-6, 6, step)
    ee, nn = np.meshgrid(g, g)
    a = spatial_profile(gauss, ee, nn, 20.0).sum()
    b = spatial_profile(conv, ee, nn, 20.0).sum()
    assert b == pytest.approx(a, rel=1e-6)
    assert spatial_profile(conv, 0, 0, 20.0) < 1.0


def test_sky_spectrum_rises_to_long_wavelengths_and_scales():
    lam = np.array([5.0, 10.0, 20.0, 25.0, 28.0])
    sky = sky_spectrum(lam)
    assert np.all(np.diff(sky) > 0)
    assert 0.1 < sky[0] < 2 and 5 < sky[1] < 50 and 100 < sky[3] < 1000
    assert np.allclose(sky_spectrum(lam, 2.5), 2.5 * sky)
    assert np.all(sky_spectrum(lam, 0.0) == 0)


def test_tangent_plane_offsets_round_trip():
    east = np.array([0.0, 1.5, -30.0, 60.0])
    north = np.array([0.0, -2.0, 12.0, 60.0])
    for ra0, dec0 in ((80.49, -69.5), (359.9999, 0.0), (0.0, 85.0)):
        ra, dec = offsets_to_radec(east, north, ra0, dec0)
        e2, n2 = radec_to_offsets(ra, dec, ra0, dec0)
        assert np.allclose(e2, east, atol=1e-8) and np.allclose(n2, north, atol=1e-8)
    ra, dec = offsets_to_radec(0.0, 3600.0, 10.0, 0.0)
    assert float(dec) == pytest.approx(1.0, abs=1e-3)


# ------------------------------------------------------------------ observation planning
def test_dither_positions_come_from_the_m025_table():
    rows = dither_table()
    assert len(rows) == 52
    four = dither_positions("4-point", 1)
    assert [p.index for p in four] == [1, 2, 3, 4]
    assert (four[0].v2, four[0].v3) == (-504.793, -319.106)
    assert [p.index for p in dither_positions("4-point", 3)] == [17, 18, 19, 20]
    assert [p.index for p in dither_positions("2-point", 1)] == [37, 38]
    assert [p.index for p in dither_positions("2-point", 4)] == [49, 50]
    centre = dither_positions("none", 1)[0]
    assert centre.v2 == pytest.approx(-503.654, abs=2e-3)
    assert centre.v3 == pytest.approx(-318.742, abs=2e-3)


def test_plan_exposures_names_and_order():
    cfg = SimulationConfig(
        bands=["1A", "2A", "3B"], n_dithers=2, pointings=[(0, 0), (5, 0)], n_background_exposures=3, prefix="x"
    )
    plans = plan_exposures(cfg)
    names = [p.filename for p in plans]
    assert len(plans) == 2 * 2 * 2 + 2 * 3
    assert names[0] == "x_12A_p1_d1_cal.fits"
    assert names[3] == "x_12A_p2_d2_cal.fits"
    assert names[4] == "x_34B_p1_d1_cal.fits"
    assert names[8:] == [exposure_filename("x", s, 0, k, True) for s in ("12A", "34B") for k in (1, 2, 3)]
    assert names[8] == "x_12A_bkg_d1_cal.fits"
    assert len(set(names)) == len(names)
    # 34B uses channel-3 positions by default, channel 1 when asked
    assert plans[4].position.index == 17
    assert plan_exposures(SimulationConfig(bands=["3B"], dither_channel=1))[0].position.index == 1
    # background exposures sit 60" north of the target
    e, n = radec_to_offsets(plans[-1].ra_ref, plans[-1].dec_ref, cfg.target_ra, cfg.target_dec)
    assert (float(e), float(n)) == pytest.approx((0.0, 60.0), abs=1e-6)


def test_fringe_period_in_wavenumber():
    from types import SimpleNamespace

    from mrsdask.sim.detector import fringe_factor

    nu = np.linspace(1000.0, 1010.0, 11)
    for period in (2.9, 1.7):
        geom = SimpleNamespace(
            wavelength=1e4 / np.concatenate([nu, nu + period]), slice_id=np.full(22, 105), alpha=np.zeros(22)
        )
        f = fringe_factor(geom, 0.12, period)
        assert np.allclose(f[:11], f[11:], atol=1e-9)
        assert f.max() <= 1.12 + 1e-12 and f.min() >= 0.88 - 1e-12


def test_mosaic_pointings_offset_the_reference_position():
    cfg = SimulationConfig(bands=["1A"], dither_pattern="none", pointings=[(0, 0), (5.0, -3.0)])
    plans = plan_exposures(cfg)
    e, n = radec_to_offsets(plans[1].ra_ref, plans[1].dec_ref, cfg.target_ra, cfg.target_dec)
    assert (float(e), float(n)) == pytest.approx((5.0, -3.0), abs=1e-9)
    assert (plans[0].ra_ref, plans[0].dec_ref) == pytest.approx((cfg.target_ra, cfg.target_dec))
