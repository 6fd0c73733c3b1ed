"""Instrument model: bands, and per-pixel geometry vs the official AssignWcsStep gwcs."""

import functools

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.instrument import band_from_name, bands_of_setting
from mrsdask.instrument.bands import SETTINGS, setting_of
from mrsdask.instrument.geometry import pixel_geometry, reference_geometry, slice_map_of, slice_width
from mrsdask.instrument.reference import (
    assign_wcs_offline,
    assign_wcs_reusing,
    remember_instrument_wcs,
    slice_map,
    template_file,
)


def test_band_names_and_settings():
    assert band_from_name("1a").setting == "12A"
    assert band_from_name("4LONG").name == "4C"
    assert band_from_name("3B").detector == "MIRIFULONG"
    assert [b.name for b in bands_of_setting("34", "MEDIUM")] == ["3B", "4B"]
    assert setting_of(2, "LONG") == "12C"
    with pytest.raises(ValueError, match="unknown MRS band"):
        band_from_name("5A")
    with pytest.raises(ValueError, match="cross-dichroic"):
        bands_of_setting("12", "SHORT-MEDIUM")


def _template(setting, ra=80.5, dec=-69.5, roll=20.0, va_scale=None):
    from stdatamodels.jwst.datamodels import IFUImageModel

    with fits.open(template_file(setting)) as hdul:
        del hdul["ASDF"]
        model = IFUImageModel(hdul)
    model.meta.wcsinfo.ra_ref = ra
    model.meta.wcsinfo.dec_ref = dec
    model.meta.wcsinfo.roll_ref = roll
    if va_scale is not None:
        model.meta.velocity_aberration.scale_factor = va_scale
    return model


@functools.lru_cache(maxsize=2)
def _official_model(setting):
    """The official AssignWcsStep's output for a setting (computed once per test process)."""
    return assign_wcs_offline(_template(setting), setting)


def _official_wcs(setting):
    return _official_model(setting).meta.wcs


#: One setting of each detector in the default run; the other four with ``--runslow``.
DEFAULT_RUN_SETTINGS = ("12A", "34C")


@pytest.mark.parametrize("setting", [s if s in DEFAULT_RUN_SETTINGS else pytest.param(s, marks=pytest.mark.slow)
                                     for s in SETTINGS])
def test_reference_geometry_matches_official_gwcs(setting):
    """|Δλ| < 1e-6 µm and |Δα|, |Δβ| < 1e-6″ on every slice pixel, for all six settings."""
    ours = reference_geometry(setting)
    wcs = _official_wcs(setting)
    y, x = np.mgrid[:1024, :1032]
    alpha, beta, lam = wcs.get_transform("detector", "alpha_beta")(x, y)
    on = ours["slice"] > 0
    assert on.sum() > 300_000
    np.testing.assert_array_equal(ours["slice"], slice_map_of(wcs))
    assert np.all(np.isfinite(ours["wavelength"][on]))
    assert np.nanmax(np.abs(ours["wavelength"][on] - lam[on])) < 1e-6
    assert np.nanmax(np.abs(ours["alpha"][on] - alpha[on])) < 1e-6
    assert np.nanmax(np.abs(ours["beta"][on] - beta[on])) < 1e-6
    # λ extent is positive and about one pixel's dispersion.
    assert np.all(ours["dwavelength"][on] > 0)
    assert np.all(np.isnan(ours["wavelength"][~on]))


def test_slice_maps_have_the_documented_slices():
    for setting, (lo, hi) in {"12A": (101, 217), "34C": (301, 412)}.items():
        values = np.unique(slice_map(setting))
        assert values[0] == 0 and values[1] == lo and values[-1] == hi


def test_pixel_geometry_equals_official_evaluations():
    """The geometry the cube builder keeps is exactly what the official cube_build computes."""
    wcs = _official_wcs("12A")
    smap = slice_map_of(wcs)
    ys, xs = np.nonzero((smap >= 101) & (smap <= 121))
    ys, xs = ys[::50].astype(float), xs[::50].astype(float)
    dbeta = slice_width(wcs, smap, 1)
    geom = pixel_geometry(wcs, xs, ys, dbeta)
    ra, dec, lam = wcs(xs, ys)
    _, _, lam1 = wcs(xs, ys - 0.4999)
    _, _, lam2 = wcs(xs, ys + 0.4999)
    a1, beta, _ = wcs.transform("detector", "alpha_beta", xs - 0.4999, ys)
    a2, _, _ = wcs.transform("detector", "alpha_beta", xs + 0.4999, ys)
    # Sky positions come from the compiled pointing chain (mrsdask.instrument.pointing): the same
    # to rounding, ~1e-14 deg; λ and α, β are the gwcs's own numbers.
    sky = {"rtol": 0, "atol": 1e-12}
    np.testing.assert_allclose(geom.ra, ra, **sky)
    np.testing.assert_allclose(geom.dec, dec, **sky)
    np.testing.assert_array_equal(geom.wavelength, lam)
    np.testing.assert_array_equal(geom.dwavelength, np.abs(lam1 - lam2))
    corners = [(a1, beta - dbeta / 2), (a1, beta + dbeta / 2), (a2, beta + dbeta / 2), (a2, beta - dbeta / 2)]
    for i, (a, b) in enumerate(corners):
        cra, cdec, _ = wcs.transform("alpha_beta", wcs.output_frame, a, b, lam)
        np.testing.assert_allclose(geom.corner_ra[i], cra, **sky)
        np.testing.assert_allclose(geom.corner_dec[i], cdec, **sky)
    assert dbeta == pytest.approx(0.1772, abs=1e-3)


def test_reused_instrument_transforms_equal_a_fresh_official_assign_wcs(tmp_path):
    """The simulator's shortcut (instrument part kept, pointing part rebuilt) equals the step.

    Another pointing, roll and velocity-aberration scale than the remembered exposure's: the
    metadata, ``S_REGION`` and the world coordinates of every detector pixel are identical,
    in memory and after a save and reopen.
    """
    from stdatamodels.jwst.datamodels import IFUImageModel

    remember_instrument_wcs(_official_model("12A"), "12A")
    pointing = {"ra": 80.51, "dec": -69.49, "roll": 25.0, "va_scale": 1.00003}
    reused = assign_wcs_reusing(_template("12A", **pointing), "12A")
    fresh = assign_wcs_offline(_template("12A", **pointing), "12A")
    skip = ("data", "err", "dq", "var_", "area", "meta.wcs.")
    flat_fresh = {k: str(v) for k, v in fresh.to_flat_dict().items() if not k.startswith(skip) and k != "meta.wcs"}
    flat_reused = {k: str(v) for k, v in reused.to_flat_dict().items() if not k.startswith(skip) and k != "meta.wcs"}
    assert flat_reused == flat_fresh
    assert reused.meta.wcsinfo.s_region == fresh.meta.wcsinfo.s_region
    y, x = np.mgrid[:1024, :1032]
    for ours, theirs in zip(reused.meta.wcs(x, y), fresh.meta.wcs(x, y)):
        np.testing.assert_array_equal(ours, theirs)
    reused.save(tmp_path / "reused_cal.fits")
    fresh.save(tmp_path / "fresh_cal.fits")
    with IFUImageModel(str(tmp_path / "reused_cal.fits")) as a, IFUImageModel(str(tmp_path / "fresh_cal.fits")) as b:
        assert [s.frame.name for s in a.meta.wcs.pipeline] == [s.frame.name for s in b.meta.wcs.pipeline]
        for ours, theirs in zip(a.meta.wcs(x[::7, ::7], y[::7, ::7]), b.meta.wcs(x[::7, ::7], y[::7, ::7])):
            np.testing.assert_array_equal(ours, theirs)
