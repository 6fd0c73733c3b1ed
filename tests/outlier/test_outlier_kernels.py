"""The outlier kernels on arrays against the official code: stcal's ``medfilt`` and the
official ``jwst.outlier_detection.ifu.detect_outliers`` run on in-memory models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mrsdask.errors import ParameterError
from mrsdask.outlier import OutlierRequest
from mrsdask.outlier import kernels

pytestmark = pytest.mark.filterwarnings("ignore")


def _frame(rng, shape=(64, 90), nan_fraction=0.1):
    a = rng.lognormal(size=shape)
    a[rng.random(shape) < nan_fraction] = np.nan
    a[10:14, 20:27] = np.nan  # an all-NaN window
    return a


@pytest.mark.parametrize("kernel", [(7, 7), (3, 5), (5, 3), (1, 9)])
def test_median_filter_equals_stcal_medfilt(kernel):
    from stcal.outlier_detection.utils import medfilt

    rng = np.random.default_rng(sum(kernel))
    for nan_fraction in (0.0, 0.3, 0.9):
        a = _frame(rng, nan_fraction=nan_fraction)
        expected = medfilt(a, list(kernel))
        assert np.array_equal(kernels.nan_median_filter(a, kernel), expected, equal_nan=True)


def test_min_difference_is_the_same_by_blocks_of_rows():
    rng = np.random.default_rng(1)
    sci = rng.normal(size=(3, 40, 50)).astype(np.float32)
    dq = (rng.random(sci.shape) < 0.05).astype(np.uint32)
    whole = kernels.min_difference(sci, dq)
    blocks = np.concatenate([kernels.min_difference(sci[:, y:y + 7], dq[:, y:y + 7]) for y in range(0, 40, 7)])
    assert np.array_equal(whole, blocks, equal_nan=True)
    # DO_NOT_USE pixels count as NaN; the first column is differenced against 0
    one = kernels.neighbour_min_difference(sci[0], dq[0])
    ref = np.where(dq[0] & 1, np.nan, sci[0]).astype(np.float64)
    left = np.abs(np.diff(ref, axis=1, prepend=0))
    right = np.abs(np.diff(ref[:, ::-1], axis=1, prepend=0))[:, ::-1]
    assert np.array_equal(one, np.fmin(left, right), equal_nan=True)


def _models(rng, n=3, shape=(64, 90)):
    """``n`` MIRI MRS models: smooth data, NaN/DO_NOT_USE regions, hot pixels in every exposure."""
    from stdatamodels.jwst.datamodels import IFUImageModel

    y, x = np.mgrid[:shape[0], :shape[1]]
    hot = (rng.integers(5, shape[0] - 5, 30), rng.integers(5, shape[1] - 5, 30))
    models = []
    for _ in range(n):
        data = (10 + 5 * np.sin(x / 4.0) + rng.normal(0, 0.5, shape)).astype(np.float32)
        data[hot] += rng.uniform(20, 200, 30).astype(np.float32)
        dq = np.zeros(shape, np.uint32)
        dq[:, 40:42] = 513  # an inter-slice gap: NON_SCIENCE | DO_NOT_USE
        data[:, 40:42] = np.nan
        dq[rng.random(shape) < 0.01] |= 1  # DO_NOT_USE with finite data
        data[rng.random(shape) < 0.005] = np.nan  # NaN not flagged in DQ
        err = np.full(shape, 0.5, np.float32)
        err[rng.random(shape) < 0.005] = np.nan  # NaN ERR
        model = IFUImageModel(data=data, dq=dq, err=err)
        model.meta.instrument.name = "MIRI"
        model.meta.instrument.detector = "MIRIFUSHORT"
        model.meta.exposure.type = "MIR_MRS"
        models.append(model)
    return models


@pytest.mark.parametrize("kernel_size, threshold, second", [("7 7", 99.8, False), ("5 3", 99.0, True),
                                                            ("3 3", 97.5, False)])
def test_flag_detector_equals_official_ifu(kernel_size, threshold, second):
    from jwst.datamodels import ModelContainer
    from jwst.outlier_detection import ifu

    rng = np.random.default_rng(7)
    models = _models(rng)
    sci = np.stack([m.data.copy() for m in models])
    err = np.stack([m.err.copy() for m in models])
    dq = np.stack([m.dq.copy() for m in models])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = ifu.detect_outliers(ModelContainer(models), False, kernel_size, second, threshold, None)
    request = OutlierRequest(kernel_size=kernel_size, threshold_percent=threshold, ifu_second_check=second)
    ours_sci, ours_err, ours_dq, found = kernels.flag_detector(sci, err, dq, request.kernel_size,
                                                               request.threshold_percent, request.ifu_second_check)
    for i, model in enumerate(official):
        assert np.array_equal(model.dq, ours_dq[i])
        assert np.array_equal(model.data, ours_sci[i], equal_nan=True)
        assert np.array_equal(model.err, ours_err[i], equal_nan=True)
    flagged = (ours_dq[0] & kernels.OUTLIER) > 0
    assert flagged.sum() == found.mask.sum() > 0
    if second:
        assert found.n_nan > 0


def test_request_accepts_the_official_string_and_a_pair():
    assert OutlierRequest(kernel_size="7 7").kernel_size == (7, 7)
    assert OutlierRequest(kernel_size=[5, 3]).kernel_size == (5, 3)
    assert OutlierRequest(kernel_size=["3 5"]).kernel_size == (3, 5)
    assert OutlierRequest(kernel_size="6 7").kernel_size == (7, 7)  # even: +1, as the official step
    for bad in ("7", "7 7 7", "a b", [7.5, 7], "0 3"):
        with pytest.raises(ParameterError, match="kernel_size"):
            OutlierRequest(kernel_size=bad)
    with pytest.raises(ParameterError, match="threshold_percent"):
        OutlierRequest(threshold_percent=120)
