"""The compiled per-spaxel median: the numbers of the official ``np.ma.median`` of the planes with
invalid values masked, bit for bit."""

import warnings

import numpy as np
import pytest

from mrsdask.extract.median import spaxel_medians


def _reference(planes: np.ndarray) -> np.ma.MaskedArray:
    """What the official ifu_autocen collapses a cube with (jwst's ifu.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-masked spaxels, overflow
        return np.ma.median(np.ma.masked_invalid(planes), axis=0)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("n_planes", [1, 2, 3, 4, 40, 601, 1200])
@pytest.mark.parametrize("kind", ["normal", "duplicates", "holes", "signed zeros", "huge", "float64"])
def test_the_medians_are_the_official_ones_bit_for_bit(n_planes, kind):
    rng = np.random.default_rng(n_planes)
    planes = rng.normal(size=(n_planes, 13, 11)).astype(np.float32)
    if kind == "duplicates":  # many equal values: the selection must not lose or repeat one
        planes = np.round(planes * 2)
    elif kind == "holes":
        planes[rng.random(planes.shape) < 0.5] = np.nan
        planes[rng.random(planes.shape) < 0.05] = np.inf
        planes[rng.random(planes.shape) < 0.05] = -np.inf
        planes[:, 0, :3] = np.nan  # no finite value
    elif kind == "signed zeros":  # the masked median of -0 is +0 (a mean, summed from +0)
        planes = np.where(rng.random(planes.shape) < 0.7, np.float32(-0.0), np.float32(0.0))
    elif kind == "huge":  # its mean of the middle value twice (odd counts) or of two overflows to inf
        planes = np.where(rng.random(planes.shape) < 0.5, np.float32(3e38), np.float32(2e38))
    elif kind == "float64":
        planes = planes.astype(np.float64) * 1e308  # means of middle values beyond 9e307 overflow
    median, empty = spaxel_medians(planes, threads=2)
    reference = _reference(planes)
    assert median.dtype == reference.dtype == planes.dtype
    assert np.array_equal(empty, np.ma.getmaskarray(reference))
    assert np.array_equal(_bits(median[~empty]), _bits(reference.data[~empty]))
    assert np.isnan(median[empty]).all()
    if kind == "huge" and n_planes > 1:
        assert np.isinf(median).any()  # the case is exercised
    one, _ = spaxel_medians(planes, threads=1)  # rows split over 2 threads above: the same numbers
    assert np.array_equal(_bits(one), _bits(median))


def test_a_large_block_is_shared_by_threads_by_default_with_the_same_numbers():
    planes = np.random.default_rng(0).normal(size=(2000, 37, 29)).astype(np.float32)  # > 2^20 values
    planes[::3, 5] = np.nan
    default, _ = spaxel_medians(planes)
    single, _ = spaxel_medians(planes, threads=1)
    assert np.array_equal(_bits(default), _bits(single))
    assert np.array_equal(_bits(default), _bits(_reference(planes).data))


def test_other_arrays_are_refused():
    with pytest.raises(ValueError, match="3-D float32 or float64"):
        spaxel_medians(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="3-D float32 or float64"):
        spaxel_medians(np.zeros((3, 4, 5), np.int32))
    with pytest.raises(ValueError, match="native byte order, not 3-D >f4"):
        spaxel_medians(np.zeros((3, 4, 5), ">f4"))
