"""Chunks written directly are the files zarr writes (mrsdask.io.zarr_chunks)."""

import os

import numpy as np
import pytest
import zarr

from mrsdask.io.zarr_chunks import write_block

CASES = [("float32", np.nan, (4, 5, 6)), ("float32", np.nan, (4, 2, 4)), ("uint32", 0, (4, 5, 6)),
         ("uint32", 513, (3, 5, 6)), ("float64", 0.0, (4, 5, 6))]


def _array(path, dtype, fill, chunks, shape=(10, 5, 6), level=1):
    return zarr.create_array(str(path), shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
                             compressors=(zarr.codecs.ZstdCodec(level=level),))


def _files(path):
    out = {}
    for folder, _, names in os.walk(path):
        for name in names:
            with open(os.path.join(folder, name), "rb") as fobj:
                out[os.path.relpath(os.path.join(folder, name), path)] = fobj.read()
    return out


@pytest.mark.parametrize("dtype, fill, chunks", CASES)
def test_blocks_written_directly_are_zarrs_files(tmp_path, dtype, fill, chunks):
    """Whole chunks, several spatial chunks per block, edge chunks padded with the fill value."""
    rng = np.random.default_rng(1)
    values = (rng.random((10, 5, 6)) * 1000).astype(dtype)
    if values.dtype.kind == "f":
        values[1, 2, 3] = np.nan
    mine, theirs = _array(tmp_path / "mine", dtype, fill, chunks), _array(tmp_path / "theirs", dtype, fill, chunks)
    for z0 in range(0, 10, chunks[0]):
        z1 = min(10, z0 + chunks[0])
        assert write_block(str(tmp_path / "mine"), (z0, 0, 0), values[z0:z1])
        theirs.with_config({"write_empty_chunks": True})[z0:z1] = values[z0:z1]
    assert _files(tmp_path / "mine") == _files(tmp_path / "theirs")
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "mine"))[:], values)
    assert mine.shape == (10, 5, 6)


def test_a_one_element_marker_is_zarrs_file(tmp_path):
    mine = zarr.create_array(str(tmp_path / "mine"), shape=(5,), chunks=(1,), dtype=bool, fill_value=False)
    theirs = zarr.create_array(str(tmp_path / "theirs"), shape=(5,), chunks=(1,), dtype=bool, fill_value=False)
    assert write_block(str(tmp_path / "mine"), (3,), np.ones(1, dtype=bool))
    theirs[3] = True
    assert _files(tmp_path / "mine") == _files(tmp_path / "theirs")
    assert mine[:].tolist() == [False, False, False, True, False]


def test_other_layouts_and_blocks_are_left_to_zarr(tmp_path):
    values = np.ones((4, 5, 6), dtype=np.float32)
    plain = _array(tmp_path / "plain", "float32", np.nan, (4, 5, 6))
    assert not write_block(str(tmp_path / "plain"), (2, 0, 0), values)  # not on a chunk boundary
    assert not write_block(str(tmp_path / "plain"), (0, 0, 0), values[:3])  # part of a chunk, not the end
    assert not write_block(str(tmp_path / "plain"), (0, 0, 0), values.astype(np.float64))  # another dtype
    zarr.create_array(str(tmp_path / "gzip"), shape=(10, 5, 6), chunks=(4, 5, 6), dtype="float32",
                      compressors=(zarr.codecs.GzipCodec(),))
    assert not write_block(str(tmp_path / "gzip"), (0, 0, 0), values)
    zarr.create_array(str(tmp_path / "v2"), shape=(10, 5, 6), chunks=(4, 5, 6), dtype="float32", zarr_format=2)
    assert not write_block(str(tmp_path / "v2"), (0, 0, 0), values)
    assert not write_block(str(tmp_path / "absent"), (0, 0, 0), values)
    assert not any("/c/" in k or k.startswith("c/") for k in _files(tmp_path))  # nothing written
    assert plain.nchunks_initialized == 0
