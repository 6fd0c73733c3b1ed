"""FITS image bytes: what astropy writes and reads back for the same values."""

import io

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.io.fits_data import fits_image_data


def _astropy_data_bytes(values: np.ndarray) -> bytes:
    """The data part astropy writes for ``values`` (uint32 with BZERO = 2**31)."""
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(values)]).writeto(buffer)
    written = buffer.getvalue()
    with fits.open(io.BytesIO(written)) as hdul:
        start = hdul[1].fileinfo()["datLoc"]
    return written[start:start + values.nbytes]


@pytest.mark.parametrize("dtype", [np.float32, np.uint32])
def test_bytes_are_astropys_and_read_back(dtype):
    rng = np.random.default_rng(5)
    if dtype == np.float32:
        values = rng.normal(size=(3, 5, 7)).astype(np.float32)
        values[0, 0, :3] = [np.nan, np.inf, -0.0]
    else:
        values = rng.integers(0, 2**32, size=(3, 5, 7), dtype=np.uint64).astype(np.uint32)
        values[0, 0, :3] = [0, 2**31, 2**32 - 1]
    data = fits_image_data(values, dtype)
    assert data.dtype.byteorder == ">" and data.shape == values.shape
    assert data.tobytes() == _astropy_data_bytes(values)
    back = data.astype(np.int64) + 2**31 if dtype == np.uint32 else data.astype(np.float32)
    np.testing.assert_array_equal(back, values)
    assert values[0, 0, 1] == (2**31 if dtype == np.uint32 else np.inf)  # not inplace: untouched


def test_inplace_converts_the_array_itself_and_copies_otherwise():
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    expected = values.astype(">f4").tobytes()
    strided = values[:, ::2]  # not C-contiguous: converted as a copy, `values` untouched
    assert fits_image_data(strided, np.float32, inplace=True).tobytes() == strided.astype(">f4").tobytes()
    np.testing.assert_array_equal(values, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    data = fits_image_data(values, np.float32, inplace=True)
    assert np.shares_memory(data, values) and data.tobytes() == expected
    float64 = np.arange(4.0)
    assert fits_image_data(float64, np.float32, inplace=True).tobytes() == float64.astype(">f4").tobytes()
    assert float64.dtype == np.float64 and float64[3] == 3.0


def test_other_types_are_refused():
    with pytest.raises(ValueError, match="only float32 and uint32"):
        fits_image_data(np.zeros(3, np.int16), np.int16)
