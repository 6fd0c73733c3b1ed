"""The compiled per-spaxel median: the numbers of ``np.nanmedian`` (infinities left out), bit for bit."""

import warnings

import numpy as np
import pytest

from mrsdask.extract.median import spaxel_medians


def _reference(planes: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN spaxels
        return np.nanmedian(np.where(np.isinf(planes), np.nan, planes), axis=0)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("n_planes", [1, 2, 3, 4, 40, 601, 1200])
@pytest.mark.parametrize("kind", ["normal", "duplicates", "holes", "signed zeros", "float64"])
def test_the_medians_are_numpys_bit_for_bit(n_planes, kind):
    rng = np.random.default_rng(n_planes)
    planes = rng.normal(size=(n_planes, 13, 11)).astype(np.float32)
    if kind == "duplicates":  # many equal values: the selection must not lose or repeat one
        planes = np.round(planes * 2)
    elif kind == "holes":
        planes[rng.random(planes.shape) < 0.5] = np.nan
        planes[rng.random(planes.shape) < 0.05] = np.inf
        planes[rng.random(planes.shape) < 0.05] = -np.inf
        planes[:, 0, :3] = np.nan  # no finite value
    elif kind == "signed zeros":  # numpy's median of -0 is +0 (a mean, summed from +0)
        planes = np.where(rng.random(planes.shape) < 0.7, np.float32(-0.0), np.float32(0.0))
    elif kind == "float64":
        planes = planes.astype(np.float64) * 1e300  # the mean of two middle values may overflow
    median, empty = spaxel_medians(planes, threads=2)
    reference = _reference(planes)
    assert median.dtype == planes.dtype
    assert np.array_equal(empty, np.isnan(reference))
    assert np.array_equal(_bits(median[~empty]), _bits(reference[~empty]))
    assert np.isnan(median[empty]).all()
    one, _ = spaxel_medians(planes, threads=1)
    assert np.array_equal(_bits(one), _bits(median))


def test_a_large_block_is_shared_by_threads_with_the_same_numbers():
    planes = np.random.default_rng(0).normal(size=(2000, 37, 29)).astype(np.float32)  # > 2^20 values
    planes[::3, 5] = np.nan
    threaded, _ = spaxel_medians(planes, threads=3)
    single, _ = spaxel_medians(planes, threads=1)
    assert np.array_equal(_bits(threaded), _bits(single))
    assert np.array_equal(_bits(threaded), _bits(_reference(planes)))


def test_other_arrays_are_refused():
    with pytest.raises(ValueError, match="3-D float32 or float64"):
        spaxel_medians(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="3-D float32 or float64"):
        spaxel_medians(np.zeros((3, 4, 5), np.int32))
