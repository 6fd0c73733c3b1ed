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
@pytest.mark.parametrize("band_bytes", [1, 5, 12, 10**9])  # one row, 5 rows (23 = 4 x 5 + 3), 12 (2 bands), all
@pytest.mark.parametrize("scratch", [True, False])  # scratch files, or (no room for them) each band reads its rows
def test_bands_of_rows_give_the_official_collapse(band_bytes, n_planes, scratch, tmp_path):
    """Every band size gives the image and mask of the official ``np.ma.median`` of the whole
    cube, even and odd numbers of valid planes alike, the data under the mask included; with
    scratch files each plane is read once, by groups of whole chunks."""
    planes = _cube(n_planes=n_planes)
    planes[: n_planes // 2 * 2, 3, 3] = np.arange(n_planes // 2 * 2, dtype=np.float32) / 7  # an even count
    planes[n_planes // 2 * 2:, 3, 3] = np.nan
    band_rows = band_bytes if band_bytes in (5, 12) else None
    band_bytes = band_bytes if band_rows is None else n_planes * 17 * 4 * band_rows
    official = np.ma.median(np.ma.masked_invalid(planes), axis=0)
    read = []

    def read_block(z, y):
        read.append((z.start, z.stop, y.start, y.stop))
        return planes[z, y]

    folder = tmp_path if scratch else tmp_path / "absent"  # a folder that is not there has no room
    got = median_image(read_block, *planes.shape, band_bytes=band_bytes, plane_chunk=7, scratch_dir=str(folder))
    assert got.dtype == official.dtype == np.float32
    assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(official))
    assert np.array_equal(got.data, official.data, equal_nan=True)  # under the mask too
    assert got.mask[0, :4].all()
    assert np.isfinite(planes[:, 3, 3]).sum() % 2 == 0 and not got.mask[3, 3]
    assert list(tmp_path.iterdir()) == []  # no scratch file left
    if band_bytes == 10**9:  # one band: one read of everything
        assert read == [(0, n_planes, 0, 23)]
    elif scratch and band_rows != 12:  # groups of planes (up to half the bytes), each read once, every row
        assert all(y0 == 0 and y1 == 23 for _, _, y0, y1 in read)
        assert read[0][0] == 0 and read[-1][1] == n_planes and all(a[1] == b[0] for a, b in zip(read, read[1:]))
        step = max(1, band_bytes // 2 // (23 * 17 * 4))
        step = step // 7 * 7 if step >= 7 else step  # whole chunks when one fits in half the bytes
        assert len(read) == -(-n_planes // step) and all(z1 - z0 <= step for z0, z1, _, _ in read)
        assert all(z0 % 7 == 0 for z0, _, _, _ in read) or step < 7
    else:  # bands of rows, each reading every plane (2 bands: so even with room for scratch files)
        assert all(z0 == 0 and z1 == n_planes for z0, z1, _, _ in read)
        assert read[0][2] == 0 and read[-1][3] == 23 and all(a[3] == b[2] for a, b in zip(read, read[1:]))
        assert len(read) == {1: 23, 5: 5, 12: 2}[band_rows or band_bytes]


def test_the_source_found_is_the_brightest_and_the_one_of_the_official_collapse():
    planes = _cube(n_planes=700)
    x, y = autocentre(planes)
    assert abs(x - 11.3) < 0.3 and abs(y - 7.6) < 0.3
    official = brightest_source(np.ma.median(np.ma.masked_invalid(planes), axis=0))  # jwst's ifu.py collapse
    banded = brightest_source(median_image(lambda z, y: planes[z, y], *planes.shape, band_bytes=1))
    assert banded == official == (x, y)


def test_an_image_without_data_finds_no_source():
    """No plane below 26 um, or none with a finite value: no source (the target position is
    used), not photutils' error about the threshold's shape."""
    for planes in (np.zeros((0, 6, 5), np.float32), np.full((30, 6, 5), np.nan, np.float32)):
        assert autocentre(planes) is None


def test_a_reader_that_returns_the_wrong_shape_is_refused():
    planes = _cube()
    with pytest.raises(ValueError, match=r"planes 0:40, rows 0:23 read as \(39, 23, 17\)"):
        median_image(lambda z, y: planes[1:][z, y], *planes.shape)


def test_a_failed_read_leaves_no_scratch_file(tmp_path):
    planes = _cube(n_planes=40)

    def read_block(z, y):
        if z.start > 0:
            raise OSError("chunk 1 of sci cannot be read")
        return planes[z, y]

    with pytest.raises(OSError, match="chunk 1"):
        median_image(read_block, *planes.shape, band_bytes=1, plane_chunk=7, scratch_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_scratch_folder_held_in_memory_is_not_used(tmp_path):
    """A tmpfs (here /dev/shm) would hold the scratch file in memory: each band reads its rows."""
    from mrsdask.extract.position import _filesystem_type

    if _filesystem_type("/dev/shm") != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    assert _filesystem_type(str(tmp_path)) not in ("tmpfs", "ramfs") or pytest.skip("tmp_path is a tmpfs")
    planes = _cube(n_planes=40)
    read = []

    def read_block(z, y):
        read.append((z.start, z.stop))
        return planes[z, y]

    got = median_image(read_block, *planes.shape, band_bytes=1, scratch_dir="/dev/shm")
    assert all(r == (0, 40) for r in read) and len(read) == 23  # 23 bands of one row, each every plane
    assert np.array_equal(got.data, np.ma.median(np.ma.masked_invalid(planes), axis=0).data)


@pytest.mark.parametrize("dtype", [">f4", "<f8", ">f8"])
@pytest.mark.parametrize("band_bytes", [1, 10**9])  # through the scratch file, and at once
def test_other_dtypes_give_the_official_collapse(dtype, band_bytes, tmp_path):
    planes = _cube(n_planes=41).astype(dtype)
    official = np.ma.median(np.ma.masked_invalid(planes), axis=0)
    got = median_image(lambda z, y: planes[z, y], *planes.shape, band_bytes=band_bytes, scratch_dir=str(tmp_path),
                       dtype=planes.dtype)
    assert got.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(official))
    assert np.array_equal(got.data, official.data)
