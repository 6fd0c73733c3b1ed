"""Stray light (cross-artifact model): kernels against the official code, the step, the CLI.

The official ``StraylightStep`` spends about 200 s per exposure in its direct C loop, so the
full-frame comparison is ``slow``; the default run compares the row model with the official C
extension on a strip of rows, the rest of the step (mask, pedestal, reference columns) with the
official step on a cross-dichroic exposure (for which it builds no model), and the shower model
with the official ``clean_showers``.
"""

from __future__ import annotations

import shutil
import time
import warnings

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.errors import InputError, ParameterError
from mrsdask.straylight import kernels
from mrsdask.straylight.reference import read_xartcorr
from tests.straylight.conftest import xart_tables

pytestmark = pytest.mark.filterwarnings("ignore")


def _official_model(source, params, imin, imax):
    """The official C extension's model of one half (``jwst.straylight.calc_xart``)."""
    from jwst.straylight.calc_xart import xart_wrapper

    ny, nx = source.shape
    gamma = params[0] / 2.0
    g_std = params[2] / (2 * np.sqrt(2.0 * np.log(2)))
    result = xart_wrapper(imin, imax, nx, ny, np.arange(nx, dtype=float), source.ravel(), gamma, params[1],
                          g_std, params[3], params[4], params[5])
    return result[0].reshape(source.shape)


def _run_official(path, xart_file, setting="12A"):
    from jwst.straylight import StraylightStep
    from stdatamodels.jwst.datamodels import IFUImageModel

    from mrsdask.instrument.reference import disable_crds_context_lookup, regions_file

    disable_crds_context_lookup()
    step = StraylightStep(override_mrsxartcorr=str(xart_file), override_regions=str(regions_file(setting)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return step.run(IFUImageModel(path))


def test_row_model_matches_official_c_extension():
    """The FFT row model equals the official direct loop (both halves, per-row parameters, Gaussians)."""
    rows = slice(300, 306)
    tables = xart_tables()
    left, right = tables["ch1b"][:, rows], tables["ch2b"][:, rows]
    source = np.random.default_rng(1).uniform(0.0, 50.0, (6, 1032))
    official = _official_model(source, left, 0, 516) + _official_model(source, right, 516, 1024)
    official[:, :4] = official[:, 1028:] = 0.0
    ours = kernels.xartifact_model(source, left, right)
    assert np.abs(official).max() > 1.0
    np.testing.assert_allclose(ours, official, rtol=0, atol=1e-12 * np.abs(official).max())
    # Each half's light reaches the other half, as in the official code.
    only_left = kernels.xartifact_model(np.where(np.arange(1032) < 516, source, 0.0), left, None)
    assert (only_left[:, 600:1000] > 0).all()


def test_point_source_spreads_with_lorentzian_wings():
    """A bright point on a flat pedestal: the model is the Lorentzian (and Gaussian pairs) of the row."""
    tables = {name: t.copy() for name, t in xart_tables().items()}
    frame = np.full((1024, 1032), 2.0, dtype=np.float32)
    y0, x0, peak = 500, 200, 1000.0
    frame[y0, x0] += peak
    dq = np.zeros(frame.shape, np.uint32)
    left, right = tables["ch1a"], tables["ch2a"]
    out, pedestal = kernels.correct_xartifact(frame, dq, "12", left, right)
    assert pedestal == pytest.approx(2.0, abs=1e-6)
    removed = frame.astype(np.float64) - out - pedestal  # the cross-artifact model
    removed[:, :4] = removed[:, 1028:] = 0.0
    fwhm, amp, g_fwhm, g_dx, g1, g2 = left[:, y0]
    d = np.arange(1032) - x0
    gamma, sigma = fwhm / 2, g_fwhm / kernels.FWHM_PER_SIGMA
    expected = peak * (amp * gamma**2 / (gamma**2 + d**2)
                       + g1 * (np.exp(-(d - g_dx) ** 2 / (2 * sigma**2)) + np.exp(-(d + g_dx) ** 2 / (2 * sigma**2)))
                       + g2 * (np.exp(-(d - 2 * g_dx) ** 2 / (8 * sigma**2))
                               + np.exp(-(d + 2 * g_dx) ** 2 / (8 * sigma**2))))
    expected[:4] = expected[1028:] = 0.0
    np.testing.assert_allclose(removed[y0], expected, rtol=0, atol=2e-4)
    # Far wings are Lorentzian: 1/d² well outside the Gaussian pairs, also across the halves.
    assert removed[y0, x0 + 300] / removed[y0, x0 + 150] == pytest.approx(
        (gamma**2 + 150**2) / (gamma**2 + 300**2), rel=1e-3)
    assert removed[y0, 800] > 0
    # Other rows get nothing but the pedestal.
    assert np.abs(removed[y0 + 1]).max() < 1e-5


def test_pedestal_and_masking_match_official_step(stray_cal, xart_file):
    """Official StraylightStep on a cross-dichroic exposure (no band table: the pedestal path only)."""
    from stdatamodels.jwst.datamodels import IFUImageModel

    path = stray_cal[1]
    official = _run_official(path, xart_file)
    assert official.meta.cal_step.straylight == "COMPLETE"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = IFUImageModel(path)
    ref = read_xartcorr(xart_file)
    left, right = kernels.band_tables("12", "SHORT-MEDIUM")
    assert (left, right) == (None, None)
    ours, pedestal = kernels.correct_xartifact(model.data, model.dq, "12", ref.params(left), ref.params(right))
    assert pedestal == pytest.approx(0.4, abs=0.005)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(official.data))
    np.testing.assert_allclose(ours, official.data, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(ours[:, :4], model.data[:, :4])  # reference columns untouched


def test_shower_model_matches_official(stray_cal):
    """The residual-shower model equals the official ``clean_showers`` on the same frame and REGIONS."""
    from jwst.straylight.straylight import clean_showers
    from stdatamodels.jwst.datamodels import IFUImageModel, RegionsModel

    from mrsdask.instrument.reference import regions_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = IFUImageModel(stray_cal[0])
        with RegionsModel(str(regions_file("12A"))) as reg:
            regions = np.array(reg.regions)
    # As before flat_field (where the official pipeline runs the step): pixels between the slices
    # are not DO_NOT_USE yet (the simulated cal files have them so).
    model.dq[regions[3] == 0] &= ~np.uint32(kernels.DO_NOT_USE)
    model.data[100:140, 490:520] += 3.0  # a shower between the channels
    frame, dq = model.data.copy(), model.dq.copy()
    official, _ = clean_showers(model, regions, 3, 18.0, 5.0, 0.1, 99.9)
    shower = kernels.shower_model(frame, dq, regions[3], 18.0, 5.0, 0.1, 99.9)
    assert shower[120, 505] > 0.5 + shower[600, 505]  # the shower is in the model
    np.testing.assert_allclose(frame - shower, official.data, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_correct_writes_store_as_the_kernel(stray_cal, xart_file, tmp_path):
    """``correct`` → detector store: SCI as the kernel on the file's arrays, ERR and DQ unchanged."""
    import mrsdask.straylight
    from mrsdask.io.detector_store import open_cal, open_detector_store
    from mrsdask.straylight import straylight_summary

    path = stray_cal[0]
    lazy = mrsdask.straylight.correct([path], override_mrsxartcorr=xart_file)
    assert straylight_summary(lazy).exposures[0]["left"] == "ch1a"
    store = str(tmp_path / "sl.zarr")
    ds = mrsdask.straylight.correct([path], output=store, override_mrsxartcorr=xart_file, scheduler="synchronous")
    raw = open_cal([path])
    ref = read_xartcorr(xart_file)
    sci = raw["sci"].values[0]
    expected, _ = kernels.correct_xartifact(sci, raw["dq"].values[0], "12", ref.params("ch1a"), ref.params("ch2a"))
    np.testing.assert_array_equal(ds["sci"].values[0], expected)
    np.testing.assert_array_equal(ds["dq"].values, raw["dq"].values)
    np.testing.assert_array_equal(ds["err"].values, raw["err"].values)
    assert np.nanmax(np.abs(expected - sci)) > 0.05
    assert straylight_summary(open_detector_store(store)).mrsxartcorr == str(xart_file)
    with pytest.raises(InputError, match="already"):
        mrsdask.straylight.correct(store, override_mrsxartcorr=xart_file)


def test_refusals_and_cli(stray_cal, tmp_path, capsys):
    """No reference file, showers without REGIONS, a bad file: one-line errors before any work."""
    import mrsdask.straylight
    from mrsdask.cli import main
    from mrsdask.straylight import StraylightRequest

    with pytest.raises(ParameterError, match="override_mrsxartcorr"):
        mrsdask.straylight.correct([stray_cal[0]])
    with pytest.raises(ParameterError, match="override_regions"):
        StraylightRequest(override_mrsxartcorr="x.fits", clean_showers=True).check_runnable()
    with pytest.raises(ParameterError, match="shower_plane"):
        StraylightRequest(shower_plane=9)
    with pytest.raises(InputError, match="not found"):
        read_xartcorr(tmp_path / "missing.fits")
    assert main(["straylight", stray_cal[0], "-o", str(tmp_path / "o.zarr")]) == 2
    assert "override_mrsxartcorr" in capsys.readouterr().err
    # Files the official pipeline corrected already (S_STRAY = COMPLETE, as the simulator writes).
    from mrsdask.io.detector_store import open_cal

    done = str(tmp_path / "done_cal.fits")
    shutil.copy(stray_cal[0], done)
    with fits.open(done, mode="update") as hdul:
        hdul[0].header["S_STRAY"] = "COMPLETE"
    assert mrsdask.straylight.corrected_by_the_pipeline(open_cal([stray_cal[0]])) == []
    with pytest.raises(InputError, match="S_STRAY = COMPLETE.*subtract it twice"):
        mrsdask.straylight.correct([done], override_mrsxartcorr="unused.fits")
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.slow
def test_full_parity_with_official_step(stray_cal, xart_file, tmp_path):
    """The official StraylightStep (direct C loop, ~200 s) and mrsdask on the same cal file and MRSXARTCORR."""
    import mrsdask.straylight

    t0 = time.perf_counter()
    official = _run_official(stray_cal[0], xart_file)
    t_official = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = mrsdask.straylight.correct([stray_cal[0]], output=str(tmp_path / "sl.zarr"),
                                    override_mrsxartcorr=xart_file, scheduler="synchronous")
    t_ours = time.perf_counter() - t0
    print(f"official {t_official:.1f} s, mrsdask (with the store) {t_ours:.1f} s")
    ours = ds["sci"].values[0]
    assert np.nanmax(np.abs(official.data - ours)) <= 1e-6 * np.nanmax(np.abs(official.data))
    np.testing.assert_allclose(ours, official.data, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(ds["dq"].values[0], official.dq)
    np.testing.assert_array_equal(ds["err"].values[0], official.err)


def test_official_parameter_file_and_pipeline_definition(tmp_path):
    """``--params`` takes an official StraylightStep file; a pipeline's straylight step checks its parameters."""
    from jwst.straylight import StraylightStep

    from mrsdask.options import request_from_step_file
    from mrsdask.pipeline.definition import parse_pipeline
    from mrsdask.straylight import StraylightRequest

    path = str(tmp_path / "straylight.asdf")
    StraylightStep(clean_showers=True, shower_x_stddev=12.0, shower_high_reject=99.5).export_config(path)
    request = request_from_step_file(StraylightRequest, path, override_mrsxartcorr="x.fits")
    assert (request.clean_showers, request.shower_x_stddev, request.shower_high_reject, request.shower_plane) == (
        True, 12.0, 99.5, 3)
    unsupported = str(tmp_path / "save.asdf")
    StraylightStep(save_shower_model=True).export_config(unsupported)
    with pytest.raises(ParameterError, match="save_shower_model"):
        request_from_step_file(StraylightRequest, unsupported)
    steps = [{"step": "straylight", "override_mrsxartcorr": "xart.fits", "shower_plane": 4},
             {"step": "fringe", "residual": True}, {"step": "cube"}]
    pipeline = parse_pipeline({"name": "sl", "steps": steps}, "test")
    assert pipeline.steps[0].params["shower_plane"] == 4
    with pytest.raises(ParameterError, match="shower_plan"):
        parse_pipeline({"name": "sl", "steps": [{"step": "straylight", "shower_plan": 4}, {"step": "cube"}]}, "test")
