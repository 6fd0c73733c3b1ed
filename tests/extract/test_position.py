"""Auto-centring's median image, by bands of rows: the official whole-cube collapse, in bounded memory."""

import numpy as np
import pytest

from mrsdask.extract.position import autocentre, brightest_source, median_image


def _cube(seed: int = 3, n_planes: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    planes = rng.normal(1.0, 0.1, size=(n_planes, 23, 17)).astype(np.float32)
    yy, xx = np.mgrid[:23, :17]
    planes += (50 * np.exp(-((xx - 11.3) ** 2 + (yy - 7.6) ** 2) / (2 * 1.3**2))).astype(np.float32)
    planes[:, 0, :4] = np.nan  # spaxels never covered
    planes[rng.random(planes.shape) < 0.2] = np.nan  # holes, as at a cube's edges
    planes[:3, 5, 5] = np.inf
    return planes


@pytest.mark.parametrize("n_planes", [40, 601, 1200])  # numpy's nanmedian sorts below 600, partitions above
@pytest.mark.parametrize("band_bytes", [1, 5, 10**9])  # one row, 5 rows (23 = 4 x 5 + 3), all
def test_bands_of_rows_give_the_official_collapse(band_bytes, n_planes):
    """Every band size gives the image and mask of the official ``np.ma.median`` of the whole
    cube, even and odd numbers of valid planes alike, the data under the mask included."""
    planes = _cube(n_planes=n_planes)
    planes[: n_planes // 2 * 2, 3, 3] = np.arange(n_planes // 2 * 2, dtype=np.float32) / 7  # an even count
    planes[n_planes // 2 * 2:, 3, 3] = np.nan
    band_bytes = band_bytes if band_bytes != 5 else n_planes * 17 * 4 * 5
    official = np.ma.median(np.ma.masked_invalid(planes), axis=0)
    read = []

    def read_rows(y0, y1):
        read.append((y0, y1))
        return planes[:, y0:y1]

    got = median_image(read_rows, *planes.shape, band_bytes=band_bytes)
    assert got.dtype == official.dtype == np.float32
    assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(official))
    assert np.array_equal(got.data, official.data, equal_nan=True)  # under the mask too
    assert got.mask[0, :4].all()
    assert read[0][0] == 0 and read[-1][1] == 23 and all(a[1] == b[0] for a, b in zip(read, read[1:]))
    assert len(read) == {1: 23, 10**9: 1}.get(band_bytes, 5)
    assert np.isfinite(planes[:, 3, 3]).sum() % 2 == 0 and not got.mask[3, 3]


def test_the_source_found_is_the_brightest_and_the_one_of_the_official_collapse():
    planes = _cube(n_planes=700)
    x, y = autocentre(planes)
    assert abs(x - 11.3) < 0.3 and abs(y - 7.6) < 0.3
    official = brightest_source(np.ma.median(np.ma.masked_invalid(planes), axis=0))  # jwst's ifu.py collapse
    banded = brightest_source(median_image(lambda y0, y1: planes[:, y0:y1], *planes.shape, band_bytes=1))
    assert banded == official == (x, y)


def test_an_image_without_data_finds_no_source():
    """No plane below 26 um, or none with a finite value: no source (the target position is
    used), not photutils' error about the threshold's shape."""
    for planes in (np.zeros((0, 6, 5), np.float32), np.full((30, 6, 5), np.nan, np.float32)):
        assert autocentre(planes) is None


def test_a_reader_that_returns_the_wrong_shape_is_refused():
    planes = _cube()
    with pytest.raises(ValueError, match=r"rows 0:23 read as \(39, 23, 17\)"):
        median_image(lambda y0, y1: planes[1:, y0:y1], *planes.shape)
