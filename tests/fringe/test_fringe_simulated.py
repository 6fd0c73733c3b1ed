"""Injected fringes (5–15 %, realistic periods, changing contrast and period) with emission lines.

Acceptance: the fringe drops at least 5× and line fluxes change by less than 1 % against a
perfect fringe correction (see ``fringe_synth.line_flux_errors``), per column and through the Dask
detector layer.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from fringe_synth import line_flux_errors, residual_fringe_rms, synthetic_column, synthetic_detector

from mrsdask.errors import ParameterError
from mrsdask.fringe import documented_fringefreq, residual_fringe, residual_fringe_summary
from mrsdask.fringe import kernels as K
from mrsdask.fringe.kernels import ComponentStatus, FitSettings, FringeComponent, Status

MAIN = FringeComponent(2.9, 1.5, 10, 10.0, 0.001)
DICHROIC = FringeComponent(0.4, 0.15, 15, 10.0, 0.001)


@pytest.mark.parametrize("amplitude", [0.05, 0.10, 0.15])
@pytest.mark.parametrize("seed", [1, 2])
def test_channel1_column(amplitude, seed):
    col = synthetic_column(amplitude=amplitude, seed=seed, snr=300)
    fit = K.fit_column(col.flux, col.wavenumber, [MAIN], err=col.err, max_ptp=0.8)
    assert fit.status == Status.CORRECTED
    before, after = residual_fringe_rms(col, fit.factor)
    assert after < before / 5
    assert np.all(np.abs(line_flux_errors(col, col.flux * fit.factor)) < 0.01)
    assert fit.periods[0] == pytest.approx(2.9, abs=0.02)


@pytest.mark.parametrize("seed", [1, 2])
def test_channel3_column_with_dichroic_fringe(seed):
    col = synthetic_column(wave_range=(11.55, 13.47), amplitude=0.1, dichroic=0.02, seed=seed, snr=300,
                           lines=((12.0, 1.5, 0.004), (12.8, 0.8, 0.004)))
    settings = FitSettings(smooth_features=7)
    fit = K.fit_column(col.flux, col.wavenumber, [MAIN, DICHROIC], err=col.err, max_ptp=0.8, settings=settings)
    assert fit.status == Status.CORRECTED
    assert fit.n_sines[1] >= 1
    assert fit.periods[1] == pytest.approx(0.4, abs=0.01)
    before, after = residual_fringe_rms(col, fit.factor)
    assert after < before / 5
    assert np.all(np.abs(line_flux_errors(col, col.flux * fit.factor)) < 0.01)
    # without the dichroic component the 2 % dichroic fringe stays
    main_only = K.fit_column(col.flux, col.wavenumber, [MAIN], err=col.err, max_ptp=0.8, settings=settings)
    assert residual_fringe_rms(col, main_only.factor)[1] > 2 * after


def test_lines_are_not_fitted_away_without_fringes():
    col = synthetic_column(amplitude=0.0, seed=5, snr=300)
    fit = K.fit_column(col.flux, col.wavenumber, [MAIN], err=col.err)
    assert fit.status in (Status.NO_FRINGES, Status.CORRECTED)
    assert np.all(np.abs(line_flux_errors(col, col.flux * fit.factor)) < 0.005)
    assert np.max(np.abs(fit.factor - 1)) < 0.01


@pytest.fixture(scope="module")
def detector_result():
    ds, truth = synthetic_detector(ncols_per_slice=3, amplitude=0.1)
    out = residual_fringe(ds, column_block=4)
    lazy = {name: isinstance(out[name].data, da.Array) for name in ("sci", "err", "rf_factor", "rf_status")}
    with dask.config.set(scheduler="threads", num_workers=2):
        computed = out.compute()
    return ds.compute(), truth, computed, lazy, out


def test_detector_layer_is_lazy_and_keeps_chunks(detector_result):
    ds, _, _, lazy, out = detector_result
    assert all(lazy.values())
    assert out["sci"].data.chunks == ds.chunk({"exposure": 1, "y": 256, "x": ds.sizes["x"]})["sci"].data.chunks
    assert out["rf_period"].dims == ("exposure", "rf_slice", "x", "rf_component")
    assert list(out["rf_component"].values) == ["main", "dichroic"]


def test_detector_layer_corrects_columns(detector_result):
    ds, truth, res, _, _ = detector_result
    for j, item in enumerate(truth):
        if item is None:
            continue
        lo, hi, col = item
        factor = res["rf_factor"].values[0, lo:hi, j]
        before, after = residual_fringe_rms(col, factor)
        assert after < before / 5
        assert np.all(np.abs(line_flux_errors(col, res["sci"].values[0, lo:hi, j])) < 0.01)
        # ERR is scaled by the same factor
        np.testing.assert_allclose(res["err"].values[0, lo:hi, j], ds["err"].values[0, lo:hi, j] * factor, rtol=1e-5)
        assert np.all(res["rf_flag"].values[0, lo:hi, j] & 0x0F == Status.CORRECTED)


def test_detector_layer_counts_skipped_columns(detector_result):
    ds, _, res, _, _ = detector_result
    ncols = 6
    status = res["rf_status"].values[0]
    slice_index = {int(s): i for i, s in enumerate(res["rf_slice"].values)}
    assert np.all(status[slice_index[101], :3] == Status.CORRECTED)
    assert np.all(status[slice_index[102], 3:6] == Status.CORRECTED)
    assert status[slice_index[102], ncols] == Status.TOO_FEW_PIXELS
    assert status[slice_index[102], ncols + 1] == Status.LOW_SNR
    assert np.all(status[:, ncols + 2] == Status.NOT_PROCESSED)
    # per component: the main fringe fitted, channel 1 has no dichroic fringe (placeholder);
    # a skipped column never reached its components
    comp = res["rf_component_status"].values[0]
    assert np.all(comp[slice_index[101], :3, 0] == ComponentStatus.FITTED)
    assert np.all(comp[slice_index[101], :3, 1] == ComponentStatus.PLACEHOLDER)
    assert np.all(comp[slice_index[102], ncols : ncols + 2] == ComponentStatus.NOT_RUN)
    assert res["rf_component_status"].attrs["flag_meanings"].split()[ComponentStatus.NO_EVIDENCE] == "no_evidence"
    # skipped pixels are untouched and flagged
    skipped = res["rf_flag"].values[0, :, ncols] == Status.TOO_FEW_PIXELS
    assert skipped.sum() == 30
    np.testing.assert_array_equal(res["sci"].values[0, :, ncols][skipped], ds["sci"].values[0, :, ncols][skipped])
    (summary,) = residual_fringe_summary(res)
    assert summary["corrected"] == 6
    assert summary["too_few_pixels"] == 1
    assert summary["low_snr"] == 1
    assert summary["skipped"] == 2
    assert summary["columns"] == 8
    assert summary["filename"] == "synthetic_cal.fits"


def test_detector_layer_matches_numpy_block(detector_result):
    from mrsdask.fringe import correct_columns

    ds, _, res, _, _ = detector_result
    arrays = [ds[v].values[0] for v in ("sci", "err", "dq", "slice", "wavelength")]
    block = correct_columns(*arrays, "SHORT", documented_fringefreq(), res["rf_slice"].values)
    np.testing.assert_array_equal(block["sci"], res["sci"].values[0])
    np.testing.assert_array_equal(block["status"], res["rf_status"].values[0])


def test_whole_frames_equal_column_blocks(detector_result, monkeypatch):
    """A job of many exposures on few threads runs one task per exposure (the kernel loops over the
    frame's columns, no rechunk) and gives the same numbers as column blocks."""
    import xarray as xr

    from mrsdask.fringe import residual as residual_module
    from mrsdask.fringe.residual import column_block_for

    ds, _, res, _, _ = detector_result
    monkeypatch.setattr(residual_module, "scheduler_threads", lambda: 1)  # 4 exposures, 1 thread: whole frames
    frames = residual_fringe(xr.concat([ds] * 4, dim="exposure"))
    assert frames.attrs["residual_fringe"]["column_block"] == ds.sizes["x"]
    assert frames["sci"].data.chunks[1:] == res["sci"].chunk({"y": 256}).data.chunks[1:]
    with dask.config.set(scheduler="sync"):
        whole = frames.compute()
    for name in ("sci", "err", "rf_factor", "rf_flag", "rf_status", "rf_snr", "rf_period", "rf_n_sines", "rf_component_status"):
        for e in range(4):
            np.testing.assert_array_equal(whole[name].values[e], res[name].values[0], err_msg=name)
    assert column_block_for(8, 1032, 2) is None  # 4 tasks per thread: 8 exposures, 2 threads
    assert column_block_for(1, 1032, 2) == 129  # 8 bands of one exposure
    assert column_block_for(48, 1032, 100) == 115  # 9 bands per exposure on a 100-thread cluster


def test_channel34_exposure_uses_both_components():
    ds, truth = synthetic_detector(ncols_per_slice=1, amplitude=0.1, detector="MIRIFULONG", band="MEDIUM",
                                   wave_range=(13.34, 15.57))
    res = residual_fringe(ds).compute(scheduler="sync")
    status = res["rf_status"].values[0]
    index = {int(s): i for i, s in enumerate(res["rf_slice"].values)}
    assert status[index[301], 0] == Status.CORRECTED
    assert set(res["rf_slice"].values) == set(range(301, 317)) | set(range(401, 413))


def test_ignore_regions_and_errors():
    ds, _ = synthetic_detector(ncols_per_slice=1, amplitude=0.1)
    with pytest.raises(ParameterError, match="ignore region"):
        residual_fringe(ds, ignore_regions=[(5.5, 5.0)])
    with pytest.raises(ParameterError, match="wavelength"):
        residual_fringe(ds.drop_vars("wavelength"))
    ref = documented_fringefreq()
    del ref.tables["SHORT"][103]
    with pytest.raises(ParameterError, match="103"):
        residual_fringe(ds, fringefreq=ref)
    res = residual_fringe(ds.isel(x=[0]), ignore_regions=[(4.0, 5.2)]).compute(scheduler="sync")
    assert res["rf_status"].values.max() == Status.CORRECTED
    assert res.attrs["residual_fringe"]["ignore_regions"] == [[4.0, 5.2]]
