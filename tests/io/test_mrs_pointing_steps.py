"""The pointing compiled from the ASDF tree equals the one compiled from astropy models, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.instrument import pointing
from mrsdask.io import asdf_tree, calfits, mrs_wcs
from mrsdask.io.mrs_pointing_steps import compiled_pointing

_FIELDS = ("ranges", "range_labels", "no_label", "labels", "coefficients", "affine", "matrix", "wrap_360")


def _raw(path) -> bytes:
    with fits.open(path) as hdul:
        return bytes(hdul["ASDF"].data["ASDF_METADATA"][0])


def _tree_steps(raw: bytes, edit=None) -> list:
    header, steps, blocks, _ = mrs_wcs._layout(raw)
    texts = [edit(t) if edit else t for t in steps[1:4]]
    return asdf_tree.read_tree(mrs_wcs._steps_document(header, texts, blocks))["mrsdask_steps"]["steps"]


def _assert_identical(got, expected):
    assert isinstance(got, pointing.CompiledPointing) and isinstance(expected, pointing.CompiledPointing)
    for name in _FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


@pytest.fixture(scope="module", params=["sim_12A", "assign_wcs_34C"])
def cal_file(request, sim_1a, assign_wcs_34c):
    return str(sim_1a.cal_files[0]) if request.param == "sim_12A" else assign_wcs_34c


def test_tree_and_astropy_compile_to_the_same_numbers(cal_file):
    parts = calfits.read_wcs_parts(cal_file)
    assert isinstance(parts.pointing, pointing.CompiledPointing)
    assert "pointing_steps" not in vars(parts)  # no astropy model was built for it
    _assert_identical(parts.pointing, pointing.compile_pointing(*parts.pointing_steps))


def test_the_velocity_aberration_step_is_compiled(assign_wcs_34c):
    parts = calfits.read_wcs_parts(assign_wcs_34c)
    va = parts.pointing.affine[0]
    assert va[0] == pytest.approx(1.000037) and va[2] == pytest.approx(1.000037)
    assert va[1] != 0.0 and va[3] != 0.0  # the shifts of (1 - scale) × (v2_ref, v3_ref)


def test_the_rotation_matrix_is_astropys(cal_file):
    steps = calfits.read_wcs_parts(cal_file).pointing_steps
    chain = pointing._flatten(steps[2].left, "|")
    rotation = chain[-2]
    basis = np.eye(3)
    expected = np.array(rotation(basis[0], basis[1], basis[2]))
    got = pointing.rotation_sequence_matrix(rotation.angles.value, rotation.axes_order)
    np.testing.assert_array_equal(got, expected)


def test_the_footprint_equals_the_gwcs_at_the_range_limits(sim_1a):
    import warnings

    parts = calfits.read_wcs_parts(str(sim_1a.cal_files[0]))
    compiled = parts.pointing
    lam = np.concatenate([compiled.ranges.ravel(), compiled.ranges.ravel() + 1e-9, [np.nan]])
    alpha, beta = np.full(lam.shape, 0.3), np.full(lam.shape, -0.2)
    ra, dec, _, _ = compiled.footprint(alpha, alpha - 0.05, alpha + 0.05, beta, 0.09, lam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(parts.alpha_beta_to_world(alpha, beta, lam)[:2])
    np.testing.assert_array_equal(np.isnan(ra), np.isnan(expected[0]))
    assert np.isnan(ra[: compiled.ranges.size]).all()  # the limits themselves are in no range
    np.testing.assert_allclose(ra, expected[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(dec, expected[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("undefined_transform_value: .nan", "undefined_transform_value: 0.0", 1),
    lambda t: t.replace("                  name: ab_v23\n",
                        "                  name: ab_v23\n                  bounding_box: [[-1, 1], [-1, 1]]\n", 1),
    lambda t: t.replace("mapping: [0, 1, 0, 1]", "mapping: [1, 0, 1, 0]", 1),
    lambda t: t.replace("transform_type: cartesian_to_spherical", "transform_type: spherical_to_cartesian", 1),
    lambda t: t.replace("axes_order: zyxyz", "axes_order: zyxy", 1),
    lambda t: t.replace("rotation_type: cartesian", "rotation_type: spherical", 1),
    lambda t: t.replace("factor: 0.0002777777777777778", "factor: [1.0, 2.0]", 1),
    lambda t: t.replace("name: v2v3vacorr\n", "name: other\n", 1),
])
def test_anything_else_is_not_compiled_from_the_tree(sim_1a, edit):
    raw = _raw(sim_1a.cal_files[0])
    assert isinstance(compiled_pointing(_tree_steps(raw)), pointing.CompiledPointing)
    header, steps, _, _ = mrs_wcs._layout(raw)
    assert any(edit(t) != t for t in steps[1:4]), "the edit must change something"
    assert compiled_pointing(_tree_steps(raw, edit)) is None


def test_an_untouched_layout_with_a_bounding_box_falls_back_to_the_checked_astropy_path(sim_1a):
    raw = _raw(sim_1a.cal_files[0])
    header, steps, blocks, _ = mrs_wcs._layout(raw)
    text = steps[3].replace("          name: v23tosky\n", "          name: v23tosky\n          bounding_box: [[0, 1], [0, 1]]\n", 1)
    assert text != steps[3]
    patched = raw.replace(steps[3].encode(), text.encode())
    parts = mrs_wcs.split_mrs_wcs("patched", patched)
    assert parts._compiled is None  # not from the tree
