"""The compiled pointing transform against the gwcs evaluation it replaces."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from mrsdask.instrument import pointing
from mrsdask.io import calfits


@pytest.fixture(scope="module")
def real_steps(sim_1a):
    parts = calfits.read_wcs_parts(str(sim_1a.cal_files[0]))
    return parts, parts.pointing_steps


@pytest.fixture(scope="module")
def frame(real_steps):
    from mrsdask.cube import pixels

    parts, _ = real_steps
    return pixels.channel_frame(parts, 1)


def _astropy_footprint(model, alpha, alpha_lo, alpha_hi, beta, half, lam):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = [(alpha, beta), (alpha_lo, beta - half), (alpha_lo, beta + half),
                  (alpha_hi, beta + half), (alpha_hi, beta - half)]
        return [np.asarray(model(a, b, lam)[:2]) for a, b in points]


def _assert_same_sky(expected, got, atol_deg):
    for (era, edec), (gra, gdec) in zip(expected, got):
        np.testing.assert_array_equal(np.isnan(era), np.isnan(gra))
        ok = np.isfinite(era)
        dra = (gra[ok] - era[ok] + 180.0) % 360.0 - 180.0
        assert np.max(np.abs(dra)) <= atol_deg
        assert np.max(np.abs(gdec[ok] - edec[ok])) <= atol_deg


def test_compiled_pointing_matches_the_gwcs_on_every_pixel_of_a_channel(real_steps, frame):
    parts, steps = real_steps
    compiled = pointing.compile_pointing(*steps)
    assert isinstance(compiled, pointing.CompiledPointing)
    assert parts.pointing is not None and hasattr(parts.pointing, "footprint")
    f = frame.frame
    half = frame.dbeta / 2
    ra, dec, cra, cdec = compiled.footprint(f.alpha, f.alpha_lo, f.alpha_hi, f.beta, half, f.wavelength)
    expected = _astropy_footprint(parts.alpha_beta_to_world, f.alpha, f.alpha_lo, f.alpha_hi, f.beta, half,
                                  f.wavelength)
    # ~1e-14 deg in practice: rounding only.
    _assert_same_sky(expected, [(ra, dec)] + [(cra[i], cdec[i]) for i in range(4)], atol_deg=1e-12)


def test_corners_far_from_the_centre_use_the_full_trigonometry(real_steps):
    parts, steps = real_steps
    compiled = pointing.compile_pointing(*steps)
    alpha = np.array([-3.0, 0.0, 2.0])
    beta = np.array([1.0, -2.0, 0.5])
    lam = np.full(3, 5.3)
    half = 200.0  # arcsec: far beyond SMALL_ANGLE, so the series is not used
    got = compiled.footprint(alpha, alpha - 150.0, alpha + 150.0, beta, half, lam)
    expected = _astropy_footprint(parts.alpha_beta_to_world, alpha, alpha - 150.0, alpha + 150.0, beta, half, lam)
    _assert_same_sky(expected, [got[:2]] + [(got[2][i], got[3][i]) for i in range(4)], atol_deg=1e-11)


def test_points_outside_every_wavelength_range_are_nan(real_steps):
    _, steps = real_steps
    compiled = pointing.compile_pointing(*steps)
    ra, dec, cra, cdec = compiled.footprint(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), 0.1,
                                            np.array([1.0, np.nan]))
    assert np.isnan(ra).all() and np.isnan(dec).all() and np.isnan(cra).all() and np.isnan(cdec).all()


def test_the_check_rejects_a_compiled_form_that_disagrees(real_steps):
    _, steps = real_steps
    compiled = pointing.compile_pointing(*steps)
    reference = steps[0] | steps[1] | steps[2]
    assert pointing._agrees(compiled, reference)
    tilted = compiled.matrix.copy()
    tilted[0, 1] += 1e-9  # a 0.2 mas error
    assert not pointing._agrees(dataclasses.replace(compiled, matrix=tilted), reference)


def test_unknown_structures_are_left_to_astropy(real_steps):
    from astropy.modeling import models

    _, (ab2v23, va, sky) = real_steps
    assert pointing.compile_pointing(models.Identity(3), va, sky) is None
    assert pointing.compile_pointing(ab2v23, models.Identity(2) & models.Shift(1.0), sky) is None  # λ shifted
    assert pointing.compile_pointing(ab2v23, va, models.Identity(3)) is None
    # A velocity-aberration scale about a reference point is compiled (and checked).
    dva = ((models.Shift(-500.0) & models.Shift(-320.0)) | (models.Scale(1.0001) & models.Scale(1.0001))
           | (models.Shift(500.0) & models.Shift(320.0))) & models.Identity(1)
    assert pointing.compile_pointing(ab2v23, dva, sky) is not None


def test_pixel_geometry_with_a_compiled_pointing_equals_the_gwcs(sim_1a):
    from mrsdask.instrument.geometry import detector_frame_geometry, pixel_geometry, sky_geometry

    wcs = calfits.load_wcs(str(sim_1a.cal_files[1]))
    ys, xs = np.mgrid[500:520, 20:400:7]
    geom = pixel_geometry(wcs, xs.astype(float), ys.astype(float), 0.177)
    frame = detector_frame_geometry(wcs, xs.astype(float), ys.astype(float))
    plain = sky_geometry(wcs.get_transform("alpha_beta", "world"), frame, 0.177)
    assert np.isfinite(geom.ra).sum() > 100
    for name in ("ra", "dec", "corner_ra", "corner_dec"):
        np.testing.assert_allclose(getattr(geom, name), getattr(plain, name), rtol=0, atol=1e-12, err_msg=name)


def test_footprint_rows_are_the_footprint_bit_for_bit(real_steps, frame):
    _, steps = real_steps
    compiled = pointing.compile_pointing(*steps)
    f = frame.frame
    half = frame.dbeta / 2
    lam = f.wavelength.copy()
    lam[:3] = np.nan  # no label: no sky position
    alpha_hi = f.alpha_hi.copy()
    alpha_hi[1000:1005] += 2e4  # corners far (0.1 rad) from their centre: the full trigonometry
    alpha_hi[2000] = np.nan  # a centre without two of its corners
    ra, dec, cra, cdec = compiled.footprint(f.alpha, f.alpha_lo, alpha_hi, f.beta, half, lam)
    rng = np.random.default_rng(1)
    n = f.alpha.size
    target = rng.permutation(n)
    target[target >= n - 100] = -1  # 100 pixels without a row
    rows = np.full((n - 100, 16), -7.0)
    index = compiled.label_index(f.alpha, f.beta, lam)
    extra = np.arange(n, dtype=np.float64)
    extra.flags.writeable = False
    got_ra, got_dec, finite = compiled.footprint_rows(f.alpha, f.alpha_lo, alpha_hi, f.beta, half, index, target,
                                                      rows, (1, 2, 3, 7), (extra,), (15,))
    np.testing.assert_array_equal(got_ra, ra)
    np.testing.assert_array_equal(got_dec, dec)
    has = target >= 0
    t = target[has]
    np.testing.assert_array_equal(rows[t, 1], ra[has])
    np.testing.assert_array_equal(rows[t, 2], dec[has])
    for i in range(4):
        np.testing.assert_array_equal(rows[t, 3 + i], cra[i, has])
        np.testing.assert_array_equal(rows[t, 7 + i], cdec[i, has])
    np.testing.assert_array_equal(rows[t, 15], extra[has])
    assert np.all(rows[:, [0, 11, 12, 13, 14]] == -7.0)  # other columns untouched
    np.testing.assert_array_equal(finite[t], np.isfinite(ra[has]) & np.all(np.isfinite(cra[:, has]), axis=0))
    assert (~finite).sum() == np.count_nonzero(target[:3] >= 0) + (target[2000] >= 0) > 0
