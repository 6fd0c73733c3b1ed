"""The numba extraction kernel against photutils, astropy and the plain numpy loop it replaces."""

import numpy as np
import pytest

from mrsdask.extract.kernels import OUTPUTS, clipped_mean_std, extract_slab, pairwise_sum
from mrsdask.extract.overlap import circular_overlap_grid
from tests.extract.numpy_reference import clipped_mean_std as numpy_clipped_mean_std
from tests.extract.numpy_reference import extract_planes


@pytest.mark.parametrize("use_exact, subpixels", [(1, 1), (0, 1), (0, 10), (0, 5), (0, 7)])
def test_overlap_grid_is_photutils_bit_for_bit(use_exact, subpixels):
    from photutils.geometry import circular_overlap_grid as photutils_grid

    rng = np.random.default_rng(11)
    for trial in range(1500):
        x, y = rng.uniform(-3, 3, 2)
        r = rng.uniform(0.05, 9.0)
        if trial % 5 == 0:  # centres on spaxel centres or edges, radii on half spaxels: the tie cases
            x, y, r = np.round(2 * x) / 2, np.round(2 * y) / 2, float(rng.integers(1, 12)) / 2
        ixmin, ixmax = np.floor(x - r + 0.5), np.ceil(x + r + 0.5)
        iymin, iymax = np.floor(y - r + 0.5), np.ceil(y + r + 0.5)
        args = (ixmin - 0.5 - x, ixmax - 0.5 - x, iymin - 0.5 - y, iymax - 0.5 - y, int(ixmax - ixmin),
                int(iymax - iymin), r, use_exact, subpixels)
        np.testing.assert_array_equal(circular_overlap_grid(*args), photutils_grid(*args))


def test_pairwise_sum_is_numpys():
    rng = np.random.default_rng(5)
    for n in [*range(0, 300, 7), 1000, 4097]:
        a = rng.normal(0.0, 1.0, n) * 10.0 ** rng.uniform(-6, 6, n)
        assert pairwise_sum(a, 0, n) == np.sum(a)
        if n > 10:
            assert pairwise_sum(a, 3, n - 5) == np.sum(a[3:n - 2])


def test_clipped_statistics_are_astropys_and_the_numpy_loops():
    from astropy.stats import sigma_clipped_stats

    rng = np.random.default_rng(6)
    for trial in range(40):
        n = int(rng.integers(2, 3000))
        values = rng.normal(3.0, 1.0, n)
        bad = rng.integers(0, n, max(1, n // 40))
        values[bad] += rng.uniform(-50, 50, bad.size)  # outliers both ways
        values[rng.integers(0, n, 3)] = [np.nan, np.inf, -np.inf][: 3][trial % 3]
        mean, _, std = sigma_clipped_stats(values, sigma=2.5, maxiters=5)
        got = clipped_mean_std(values, 2.5)
        np.testing.assert_allclose(got, (mean, std), rtol=1e-12)
        assert got == numpy_clipped_mean_std(values, 2.5)
    assert np.isnan(clipped_mean_std(np.full(4, np.nan), 3.0)).all()


def _cube(rng, nz, ny, nx, dtype=np.float64):
    sci = rng.normal(1.0, 0.3, (nz, ny, nx))
    sci[:, ny // 2 - 2:ny // 2 + 2, nx // 2 - 2:nx // 2 + 2] += 30.0  # a source
    hot = rng.random(sci.shape) < 0.02
    sci[hot] += rng.uniform(20, 200, hot.sum())  # outliers for the clipping
    err = rng.uniform(0.05, 0.2, sci.shape)
    wmap = rng.choice([0.0, 0.4, 1.0, 2.0, 3.5], sci.shape, p=[0.1, 0.1, 0.3, 0.3, 0.2])
    wmap[:, :2, :] = 0.0  # uncovered edge
    wmap[1] = 0.0  # a plane with no coverage at all
    sci[2, ny // 2, nx // 2] = np.nan  # NaN in the aperture (of a centred source): propagates
    sci[3, -3:, -3:] = np.nan  # NaN in a corner, away from the aperture: only in the clipped statistics
    sci[3, 0, -2:], wmap[3, 0, -2:] = (np.inf, -np.inf), 1.0  # infinities: left out of the statistics
    err[4, ny // 2 + 1, nx // 2] = np.nan
    wmap[5, ny // 2 - 1, nx // 2 - 1] = np.nan
    return sci.astype(dtype), err.astype(dtype), wmap.astype(dtype)


def _assert_same(got, want):
    for name in OUTPUTS:
        if name == "dq":
            np.testing.assert_array_equal(got[name], want[name])
        else:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-300, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("method", ["subpixel", "exact", "center"])
@pytest.mark.parametrize("centre", [(12.0, 10.0), (13.37, 9.61), (0.2, 19.5), (-0.4, 3.2)])
def test_point_source_kernel_equals_the_numpy_loop(method, centre):
    """Circle and annulus (partly off the plane near the edges), zero-weight planes, NaNs, empty annuli."""
    rng = np.random.default_rng([len(method), int(100 * centre[0]) % 1000, int(100 * centre[1])])
    nz, ny, nx = 14, 21, 25
    sci, err, wmap = _cube(rng, nz, ny, nx, np.float32 if method == "center" else np.float64)
    j, i = min(max(round(centre[1]), 0), ny - 1), min(max(round(centre[0]), 0), nx - 1)
    sci[2, j, i], wmap[2, j, i] = np.nan, 1.0  # a covered NaN under the aperture
    radius = rng.uniform(1.0, 4.0, nz)
    inner, outer = radius * 1.8, radius * 2.4
    radius[6] = 0.0  # no aperture: flagged, geometric area 0
    inner[7], outer[7] = 5.0, 5.0  # degenerate annulus: no background for this plane
    wmap[8, :, :] = np.where(np.hypot(*np.meshgrid(np.arange(nx) - centre[0], np.arange(ny) - centre[1])) > inner[8] - 1,
                             0.0, wmap[8])  # annulus uncovered: its geometric area
    inner[9], outer[9] = 40.0, 45.0  # annulus entirely off the plane
    for subtract in (True, False):
        kwargs = dict(point=True, subtract_background=subtract, method=method, subpixels=10, bkg_sigma_clip=3.0)
        got = extract_slab(sci, err, wmap, radius, inner, outer, *centre, **kwargs)
        want = extract_planes(sci, err, wmap, radius, inner, outer, *centre, **kwargs)
        _assert_same(got, want)
        assert got["dq"][1] == 1 and got["dq"][6] == 1
        assert np.isnan(got["temp_flux"][2]) and np.isfinite(got["temp_flux"][3])
        if subtract:
            assert got["background"][0] != 0 and got["background"][7] == 0


@pytest.mark.parametrize("method", ["subpixel", "exact", "center"])
def test_extended_source_kernel_equals_the_numpy_loop(method):
    rng = np.random.default_rng(8)
    nz, ny, nx = 10, 17, 23
    sci, err, wmap = _cube(rng, nz, ny, nx)
    kwargs = dict(point=False, subtract_background=True, method=method, subpixels=7, bkg_sigma_clip=2.5)
    got = extract_slab(sci, err, wmap, None, None, None, nx / 2 - 0.5, ny / 2 - 0.5, **kwargs)
    want = extract_planes(sci, err, wmap, None, None, None, nx / 2 - 0.5, ny / 2 - 0.5, **kwargs)
    _assert_same(got, want)
    assert got["dq"][1] == 1 and got["npixels"][1] == nx * ny
    assert np.all(got["npixels_bkg"][[0, 2]] > 0)


def test_slab_shapes_are_checked():
    sci = np.zeros((3, 4, 5))
    with pytest.raises(ValueError, match="one value per plane"):
        extract_slab(sci, sci, sci, np.ones(2), np.ones(3), np.ones(3), 2.0, 2.0)
    with pytest.raises(ValueError, match="must have one shape"):
        extract_slab(sci, sci[:2], sci, np.ones(3), np.ones(3), np.ones(3), 2.0, 2.0)


def test_weight_one_values_sorted_per_plane_in_their_own_dtype():
    from mrsdask.extract.kernels import sorted_unit_weight_values

    rng = np.random.default_rng(3)
    sci, _, wmap = _cube(rng, 7, 9, 11, np.float32)
    sci[4, 3:5, :] = np.float32(-0.0)
    wanted = np.array([1, 1, 0, 1, 1, 0, 1], dtype=bool)
    values, ends = sorted_unit_weight_values(sci, wmap, wanted)
    assert values.dtype == np.float32
    for k in range(sci.shape[0]):
        plane = sci[k].astype(np.float64)[wmap[k] >= 1]
        want = np.sort(plane[np.isfinite(plane)]) if wanted[k] else np.zeros(0)
        np.testing.assert_array_equal(values[ends[k - 1] if k else 0:ends[k]].astype(np.float64), want)


@pytest.mark.parametrize("point, subtract", [(True, True), (True, False), (False, True)])
def test_float32_planes_give_the_columns_of_their_float64_copy(point, subtract):
    """The float32 sort of the weight-1 values (and the planes it skips) change no bit of any column."""
    rng = np.random.default_rng(4)
    nz, ny, nx = 12, 19, 21
    sci, err, wmap = _cube(rng, nz, ny, nx, np.float32)
    radius = rng.uniform(1.0, 3.0, nz)
    inner, outer = radius * 1.8, radius * 2.4
    inner[7], outer[7] = 5.0, 5.0  # no annulus
    kwargs = dict(point=point, subtract_background=subtract, method="subpixel", subpixels=10, bkg_sigma_clip=3.0)
    args = (radius, inner, outer, 10.3, 9.2) if point else (None, None, None, nx / 2 - 0.5, ny / 2 - 0.5)
    got = extract_slab(sci, err, wmap, *args, **kwargs)
    want = extract_slab(*(a.astype(np.float64) for a in (sci, err, wmap)), *args, **kwargs)
    for name in OUTPUTS:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    if subtract:
        assert np.count_nonzero(got["background"]) > nz // 2


def test_clipped_statistics_are_wanted_where_a_background_is_clipped():
    from mrsdask.extract.kernels import clipped_statistics_used

    inner, outer = np.array([1.0, 2.0, 0.0, np.nan]), np.array([2.0, 2.0, 3.0, 4.0])
    assert clipped_statistics_used(True, True, inner, outer).tolist() == [True, False, False, False]
    assert not clipped_statistics_used(True, False, inner, outer).any()
    assert clipped_statistics_used(False, True, inner, outer).all()


def test_radix_sort_of_float32_planes_is_numpys_order():
    from mrsdask.extract.kernels import _sort_planes_float32

    rng = np.random.default_rng(9)
    parts = [rng.normal(0, 1, 3000), rng.normal(0, 1, 500) * 1e-40, rng.uniform(-3e38, 3e38, 300),
             rng.integers(-3, 3, 400).astype(float), [0.0, -0.0, 1.4e-45, -1.4e-45, 3.4e38, -3.4e38]]
    values = rng.permutation(np.concatenate(parts)).astype(np.float32)
    ends = np.array([0, 1, 2, 700, 700, 2500, values.size], dtype=np.int64)
    got = values.copy()
    _sort_planes_float32(got, ends)
    for start, end in zip(np.r_[0, ends[:-1]], ends):
        np.testing.assert_array_equal(got[start:end], np.sort(values[start:end]))
        assert np.all(np.diff(np.signbit(got[start:end])[got[start:end] == 0].astype(int)) <= 0)  # -0 first
