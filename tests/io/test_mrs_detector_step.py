"""The detector step read as plain arrays equals the gwcs step bit for bit, or is not used."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.instrument.detector_model import DetectorModel
from mrsdask.instrument.geometry import EDGE_OFFSET
from mrsdask.io import calfits, mrs_wcs
from mrsdask.io.mrs_detector_step import detector_model


def _assert_bit_identical(model, reference):
    yy, xx = np.mgrid[0:1024, 0:1032]
    points = [(xx.astype(float), yy.astype(float))]  # every detector pixel, on and off the slices
    ys, xs = np.nonzero(model.slice_map > 0)
    ys, xs = ys[::7].astype(float), xs[::7].astype(float)
    points += [(xs + dx, ys + dy) for dx, dy in ((0, -EDGE_OFFSET), (0, EDGE_OFFSET),
                                                  (-EDGE_OFFSET, 0), (EDGE_OFFSET, 0))]
    for x, y in points:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = reference(x, y)
        got = model(x, y)
        for name, g, e in zip(("alpha", "beta", "lambda"), got, expected):
            np.testing.assert_array_equal(g, np.asarray(e), err_msg=name)


def test_the_detector_step_of_a_cal_file_is_read_as_arrays_and_equals_the_gwcs(sim_1a):
    path = str(sim_1a.cal_files[0])
    model = calfits.read_wcs_parts(path).detector_to_alpha_beta
    assert isinstance(model, DetectorModel)
    reference = calfits.load_wcs(path).get_transform("detector", "alpha_beta")
    np.testing.assert_array_equal(model.slice_map, reference.label_mapper.mapper)
    _assert_bit_identical(model, reference)
    # Scalars, as slice_width calls it.
    ys, xs = np.nonzero(model.slice_map == 105)
    alpha, beta, lam = model(float(xs[10]), float(ys[10]))
    assert np.shape(alpha) == () and np.isfinite(lam) and np.isfinite(beta)


def test_a_long_wavelength_setting_written_by_assign_wcs_is_read_too(assign_wcs_34c):
    parts = calfits.read_wcs_parts(assign_wcs_34c)
    assert isinstance(parts.detector_to_alpha_beta, DetectorModel)
    _assert_bit_identical(parts.detector_to_alpha_beta,
                          calfits.load_wcs(assign_wcs_34c).get_transform("detector", "alpha_beta"))


def test_an_unexpected_layout_falls_back_to_the_gwcs(sim_1a):
    path = str(sim_1a.cal_files[0])
    with fits.open(path) as hdul:
        raw = bytes(hdul["ASDF"].data["ASDF_METADATA"][0])
    header, steps, blocks, _ = mrs_wcs._layout(raw)

    def model(step_text):
        return detector_model(mrs_wcs._steps_text(header, [step_text]), blocks)

    assert isinstance(model(steps[0]), DetectorModel)
    # Another axis mapping in one slice: not the official structure, so not read as arrays.
    changed = steps[0].replace("mapping: [1, 0, 0, 1, 0]", "mapping: [0, 1, 0, 1, 0]", 1)
    assert changed != steps[0]
    assert model(changed) is None
    # split_mrs_wcs then converts the step with asdf/gwcs and still works.
    patched = raw.replace(steps[0].encode(), changed.encode())
    parts = mrs_wcs.split_mrs_wcs(path, patched)
    det2ab = parts.detector_to_alpha_beta
    assert not isinstance(det2ab, DetectorModel) and hasattr(det2ab, "label_mapper")


@pytest.mark.parametrize("degree", [0, 1, 3, 8])
def test_the_horner_order_is_astropys(degree):
    from astropy.modeling.models import Polynomial2D

    from mrsdask.instrument.detector_model import SlicePolynomial, domain_map

    rng = np.random.default_rng(degree)
    coefficients = np.zeros((degree + 1, degree + 1))
    poly = Polynomial2D(degree, x_domain=(-2.0, 3.0), x_window=(-1.0, 1.0))
    for name in poly.param_names:
        i, j = (int(v) for v in name[1:].split("_"))
        coefficients[i, j] = value = rng.normal() * 10.0 ** (-2 * (i + j))
        setattr(poly, name, value)
    shift = 3.25
    sp = SlicePolynomial(coefficients, shift, domain_map((-2.0, 3.0), (-1.0, 1.0)), (0.0, 1.0))
    slice_map = np.full((4, 5), 7)
    model = DetectorModel.from_slices(slice_map, {7: (sp, 0.5, sp)})
    x = rng.uniform(-0.5, 4.4, 50)
    y = rng.uniform(-0.5, 3.4, 50)
    alpha, beta, lam = model(x, y)
    np.testing.assert_array_equal(alpha, poly(y, x + shift))
    np.testing.assert_array_equal(lam, alpha)
    assert np.all(beta == 0.5)
