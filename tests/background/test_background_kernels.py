"""The array kernels against the official implementations, on synthetic arrays (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from mrsdask.background import kernels

pytestmark = pytest.mark.filterwarnings("ignore")


# --------------------------------------------------------------------------- pixel-by-pixel
def _stack(n=12, shape=(40, 50), seed=1):
    rng = np.random.default_rng(seed)
    data = (10.0 + rng.normal(0, 1, (n,) + shape)).astype(np.float32)
    # Outliers that a 3-sigma clip must reject, in a third of the pixels.
    hit = rng.random((n,) + shape) < 0.03
    data[hit] += rng.uniform(20, 200, hit.sum()).astype(np.float32)
    data[:, :3] = np.nan                        # off-slice rows: all NaN
    data[rng.random((n,) + shape) < 0.02] = np.nan  # scattered NaN
    err = (0.5 + rng.random((n,) + shape)).astype(np.float32)
    dq = np.zeros((n,) + shape, np.uint32)
    dq[rng.random((n,) + shape) < 0.01] = 4
    dq[0, 5, 5] = 1 << 20
    return data, err, dq


@pytest.mark.parametrize("maxiters", [None, 1, 2])
def test_sigma_clip_mask_matches_astropy(maxiters):
    from astropy.stats import sigma_clip

    data, _, _ = _stack()
    expected = sigma_clip(data.astype(np.float64), sigma=3, maxiters=maxiters, axis=0).mask
    got = kernels.sigma_clip_mask(data, 3.0, maxiters)
    assert got.shape == data.shape
    assert np.count_nonzero(got & ~np.isnan(data)) > 100  # outliers were clipped
    np.testing.assert_array_equal(got, expected)


def test_average_background_matches_official():
    """``jwst.background.background_sub.average_background`` on in-memory models."""
    from jwst.background.background_sub import average_background
    from stdatamodels.jwst.datamodels import ImageModel

    data, err, dq = _stack(n=11, shape=(64, 70))
    science = ImageModel(np.zeros(data.shape[1:], np.float32))
    # Full frame of a made-up MIRI subarray: the official needs the subarray keywords.
    models = []
    for i in range(data.shape[0]):
        m = ImageModel(data=data[i], err=err[i], dq=dq[i])
        models.append(m)
    for m in [science, *models]:
        m.meta.instrument.name = "MIRI"
        m.meta.subarray.xstart, m.meta.subarray.ystart = 1, 1
        m.meta.subarray.xsize, m.meta.subarray.ysize = data.shape[2], data.shape[1]
    official = average_background(science, models, 3.0, None)
    ours = kernels.average_background(data, err, dq, 3.0, None)
    np.testing.assert_array_equal(ours["sci"], official.data)
    np.testing.assert_array_equal(ours["err"], official.err)
    np.testing.assert_array_equal(ours["dq"], official.dq)
    assert ours["n"].min() == 0 and ours["n"].max() == data.shape[0]


def test_average_background_and_subtract():
    data, err, dq = _stack(n=5)
    plain = kernels.average_background(data, err, dq)
    assert {name: plain[name].dtype for name in plain} == {
        "sci": np.float32, "err": np.float32, "dq": np.uint32, "n": np.int16}
    sci = np.full(data.shape[1:], 20.0, np.float32)
    e = np.full(data.shape[1:], 3.0, np.float32)
    d = np.zeros(data.shape[1:], np.uint32)
    out_sci, out_err, out_dq = kernels.subtract_background(sci, e, d, plain["sci"], plain["err"], plain["dq"])
    np.testing.assert_array_equal(out_sci, sci - plain["sci"])
    np.testing.assert_allclose(out_err, np.sqrt(9.0 + plain["err"].astype(float) ** 2), rtol=1e-6)
    np.testing.assert_array_equal(out_dq, plain["dq"])
    # Official behaviour: ERR untouched.
    s2, e2, d2 = kernels.subtract_background(sci, e, d, plain["sci"], None, plain["dq"])
    np.testing.assert_array_equal(e2, e)


# --------------------------------------------------------------------------- projection
def test_project_spectrum_semantics():
    tw = np.array([5.0, 6.0, 7.0])
    tb = np.array([1.0, 3.0, 2.0])
    lam = np.array([[np.nan, 4.0, 5.0, 5.5], [6.5, 7.0, 7.01, 6.0]])
    got = kernels.project_spectrum(lam, tw, tb)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([[0, 0, 1, 2], [2.5, 2, 0, 3]], np.float32))
    # Unsorted tables are sorted first, as expand_to_2d does.
    w, b = kernels.sort_table(tw[::-1], tb[::-1])
    np.testing.assert_array_equal(w, tw)
    np.testing.assert_array_equal(b, tb)
    out = kernels.subtract_projected(np.ones_like(lam, dtype=np.float32), lam, tw, tb)
    np.testing.assert_array_equal(out["background"], got)
    np.testing.assert_array_equal(out["sci"], np.float32(1) - got)
    assert out["sci"].dtype == np.float32


# --------------------------------------------------------------------------- extraction
def _synthetic_cube(nz=30, ny=25, nx=22, seed=4):
    rng = np.random.default_rng(seed)
    sci = (10 + rng.normal(0, 1, (nz, ny, nx))).astype(np.float32)
    sci += np.linspace(0, 5, nz, dtype=np.float32)[:, None, None]
    sci[:, 10:13, 8:11] += 100.0          # a "source" the clipping must reject
    wmap = rng.integers(1, 6, (nz, ny, nx)).astype(np.float32)
    wmap[:, :2, :] = 0                    # uncovered edges
    wmap[:, :, -3:] = 0
    sci[wmap == 0] = np.nan
    sci[7] = np.nan                       # an empty plane
    wmap[7] = 0
    err = (0.5 + rng.random((nz, ny, nx))).astype(np.float32)
    err[wmap == 0] = np.nan
    return sci, err, wmap


def test_extended_background_matches_official_extract_ifu():
    """The BACKGROUND column of ``jwst.extract_1d.ifu.extract_ifu`` for an EXTENDED source."""
    from jwst.extract_1d.ifu import extract_ifu
    from stdatamodels.jwst.datamodels import IFUCubeModel

    sci, err, wmap = _synthetic_cube()
    model = IFUCubeModel(data=sci.copy(), err=err.copy(), weightmap=wmap.copy())
    params = {"x_center": None, "y_center": None, "ifu_autocen": False, "method": "subpixel",
              "subpixels": 10, "subtract_background": False, "bkg_sigma_clip": 3.0}
    out = extract_ifu(model, "EXTENDED", params)
    background, b_var_poisson, npixels, dq, npixels_bkg = out[7], out[8], out[11], out[12], out[13]
    ours = kernels.extended_plane_background(sci, err, wmap, 3.0, 5)
    official_bkg = background / np.where(npixels_bkg > 0, npixels_bkg, 1.0)
    np.testing.assert_allclose(ours["background"], official_bkg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours["npixels_bkg"], npixels_bkg, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["npixels"], npixels, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["background_error"],
                               np.sqrt(b_var_poisson) / np.where(npixels_bkg > 0, npixels_bkg, 1.0), rtol=1e-6)
    np.testing.assert_array_equal(ours["dq"], dq)
    assert ours["background"][7] == 0 and ours["dq"][7] == kernels.DO_NOT_USE
    # The clipping removed the source: the background is close to the field level.
    assert np.all(np.abs(ours["background"][ours["dq"] == 0] - (10 + np.linspace(0, 5, 30))[ours["dq"] == 0]) < 0.3)


# --------------------------------------------------------------------------- combine_1d
def _spectra():
    """Three background x1d-like spectra: two on the same grid, one offset and shorter."""
    rng = np.random.default_rng(7)
    grid1 = np.linspace(4.9, 5.74, 800)
    grid2 = np.linspace(5.66, 6.63, 700)          # overlaps grid1 (like 1A and 1B)
    out = []
    for k, (grid, exptime) in enumerate([(grid1, 100.0), (grid1, 300.0), (grid2, 200.0)]):
        sb = 1.0 + 0.1 * grid + rng.normal(0, 0.01, grid.size)
        dq = np.zeros(grid.size, np.uint32)
        dq[rng.random(grid.size) < 0.02] = 1     # DO_NOT_USE
        dq[rng.random(grid.size) < 0.02] |= 4
        flux = sb * 1e-3
        flux[5 + k] = np.nan
        out.append({"wavelength": grid, "surf_bright": sb, "sb_error": np.full(grid.size, 0.01 * (k + 1)),
                    "dq": dq, "flux": flux, "flux_error": np.full(grid.size, 1e-5), "weight": exptime})
    return out


def test_combine_matches_official_combine_1d():
    from jwst.combine_1d.combine1d import combine_1d_spectra
    from jwst.datamodels import ModelContainer
    from stdatamodels.jwst import datamodels

    spectra = _spectra()
    container = ModelContainer()
    for s in spectra:
        table = np.zeros(s["wavelength"].size, dtype=datamodels.SpecModel().get_dtype("spec_table"))
        table["WAVELENGTH"] = s["wavelength"]
        table["SURF_BRIGHT"] = s["surf_bright"]
        table["SB_ERROR"] = s["sb_error"]
        table["FLUX"] = s["flux"]
        table["FLUX_ERROR"] = s["flux_error"]
        table["DQ"] = s["dq"]
        model = datamodels.MultiSpecModel()
        model.spec.append(datamodels.SpecModel(spec_table=table))
        model.meta.exposure.exposure_time = s["weight"]
        model.meta.target.ra, model.meta.target.dec = 80.0, -69.0
        container.append(model)
    official = combine_1d_spectra(container, exptime_key="exposure_time").spec[0].spec_table
    ours = kernels.combine_spectra(spectra)
    np.testing.assert_array_equal(ours["wavelength"], official["wavelength"])
    for name, col in (("surf_bright", "surf_bright"), ("sb_error", "sb_error"), ("flux", "flux"),
                      ("flux_error", "error"), ("weight", "weight"), ("n_input", "n_input")):
        np.testing.assert_allclose(ours[name], official[col], rtol=1e-12, atol=0, err_msg=name)
    np.testing.assert_array_equal(ours["dq"], official["dq"])
    # The overlap of the two grids was clumped, not doubled.
    assert ours["wavelength"].size < 800 + 700
    assert set(np.unique(ours["n_input"])) <= {1.0, 2.0, 3.0}


def test_output_wavelengths_identical_grids():
    grid = np.linspace(10.0, 12.0, 101)
    # Clumps of equal values become one output each (their mean: equal to ~1 ulp).
    np.testing.assert_allclose(kernels.output_wavelengths([grid, grid, grid]), grid, rtol=1e-15)


def test_median_filter_rounds_even_kernels_down():
    from scipy.signal import medfilt

    values = np.random.default_rng(0).normal(size=50)
    np.testing.assert_array_equal(kernels.median_filter(values, 4), medfilt(values, [3]))
    np.testing.assert_array_equal(kernels.median_filter(values, 1), values)
    np.testing.assert_array_equal(kernels.median_filter(values, 2), values)
