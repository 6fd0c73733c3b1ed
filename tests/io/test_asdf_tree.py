"""The plain ASDF tree reader against asdf itself."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.io import asdf_tree, mrs_wcs


def _raw(path) -> bytes:
    with fits.open(path) as hdul:
        return bytes(hdul["ASDF"].data["ASDF_METADATA"][0])


def _assert_same_tree(got, expected, path=""):
    """Same structure, tags, scalars and arrays; objects asdf converted are skipped."""
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray), path
        assert got.dtype == expected.dtype and got.shape == expected.shape, path
        np.testing.assert_array_equal(got, expected, err_msg=path)
        return
    if hasattr(expected, "_tag"):
        assert getattr(got, "_tag", None) == expected._tag, path
    if isinstance(expected, dict):
        assert set(got) == set(expected), path
        for key in expected:
            _assert_same_tree(got[key], expected[key], f"{path}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_same_tree(g, e, f"{path}[{i}]")
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(got), path
    elif isinstance(expected, (bool, int, float, str, type(None))):
        assert got == expected and type(got) is type(expected) or isinstance(got, asdf_tree.TaggedString), path


def test_a_cal_files_gwcs_reads_as_asdf_reads_it(sim_1a):
    raw = _raw(sim_1a.cal_files[0])
    header, steps, blocks, _ = mrs_wcs._layout(raw)
    document = mrs_wcs._steps_document(header, steps, blocks)
    got = asdf_tree.read_tree(document)
    # asdf with only the core converters (ndarray): every transform stays a tagged dict.
    expected = asdf_tree.open_tree(document, skip_extensions=(
        "asdf://asdf-format.org/transform/", "asdf://asdf-format.org/astronomy/", "asdf://astropy.org/",
        "asdf://stsci.edu/jwst_pipeline/"))
    _assert_same_tree(got, expected)
    # The blocks are a view of the extension's bytes, read as they lie (no joined copy).
    assert isinstance(blocks, memoryview) and blocks.obj is raw
    _assert_same_tree(asdf_tree.read_tree_parts(mrs_wcs._steps_text(header, steps), blocks), expected)
    step = got["mrsdask_steps"]["steps"][0]
    assert asdf_tree.short_tag(step) == "gwcs/step" and step["frame"]["name"] == "detector"
    slice_map = step["transform"]["label_mapper"]["mapper"]
    assert isinstance(slice_map, np.ndarray) and slice_map.shape == (1024, 1032)
    assert slice_map.flags.writeable and slice_map.dtype.isnative


@pytest.mark.parametrize("compression", ["zlib", "bzp2", None])
def test_compressed_big_endian_and_inline_arrays(compression):
    import asdf

    tree = {
        "big": np.arange(12, dtype=">f8").reshape(3, 4),
        "ints": np.array([[1, 2], [3, 4]], dtype=np.int32),
        "view": np.arange(20, dtype=np.float32)[2:14:3],
        "flags": np.array([True, False]),
    }
    af = asdf.AsdfFile(tree)
    af.set_array_storage(tree["ints"], "inline")
    buffer = io.BytesIO()
    af.write_to(buffer, all_array_compression=compression)
    got = asdf_tree.read_tree(buffer.getvalue())
    for key, value in tree.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].dtype.isnative and got[key].dtype.kind == value.dtype.kind


def test_what_it_cannot_read_exactly_is_refused():
    import asdf

    for tree, kwargs in (
        ({"s": np.array(["ab", "cd"])}, {}),  # string arrays
        ({"m": np.ma.masked_array([1.0, 2.0], mask=[True, False])}, {}),  # masked arrays
        ({"a": np.arange(1000.0)}, {"all_array_compression": "lz4"}),  # a compression it does not know
    ):
        buffer = io.BytesIO()
        try:
            asdf.AsdfFile(tree).write_to(buffer, **kwargs)
        except Exception:  # pragma: no cover - an optional codec missing here
            continue
        with pytest.raises(asdf_tree.UnsupportedTree):
            asdf_tree.read_tree(buffer.getvalue())
    with pytest.raises(asdf_tree.UnsupportedTree):
        asdf_tree.read_tree(b"#ASDF 1.0.0\n%YAML 1.1\n--- !<tag:example.org:thing-1.0.0> {a: 1}\n...\n")
    # An array that claims more bytes than its block holds.
    buffer = io.BytesIO()
    asdf.AsdfFile({"a": np.arange(12.0)}).write_to(buffer)
    document = buffer.getvalue()
    assert b"shape: [12]" in document
    with pytest.raises(asdf_tree.UnsupportedTree):
        asdf_tree.read_tree(document.replace(b"shape: [12]", b"shape: [99]", 1))


def test_a_reference_tree_is_read_only_for_its_reftype(tmp_path):
    import asdf

    path = str(tmp_path / "ref.asdf")
    asdf.AsdfFile({"meta": {"reftype": "apcorr"}, "table": {"x": np.arange(3.0)}}).write_to(path)
    tree = asdf_tree.read_reference_tree(path, "APCORR")
    np.testing.assert_array_equal(tree["table"]["x"], np.arange(3.0))
    assert asdf_tree.read_reference_tree(path, "EXTRACT1D") is None  # another kind of file
    assert asdf_tree.read_reference_tree(str(tmp_path / "missing.asdf"), "APCORR") is None
    (tmp_path / "text.asdf").write_text("not ASDF")
    assert asdf_tree.read_reference_tree(str(tmp_path / "text.asdf"), "APCORR") is None
    asdf.AsdfFile({"meta": "flat"}).write_to(str(tmp_path / "flat.asdf"))
    assert asdf_tree.read_reference_tree(str(tmp_path / "flat.asdf"), "APCORR") is None


def test_the_cal_reader_splits_the_gwcs_from_its_buffer_as_from_bytes(sim_1a):
    from mrsdask.io import calfits

    path = str(sim_1a.cal_files[0])
    _, raw = calfits._read_planes_and_asdf(path, False, True)
    assert isinstance(raw, bytearray) and raw == _raw(path)  # the direct reader's buffer, as read
    from_buffer, from_bytes = mrs_wcs.split_mrs_wcs(path, raw), mrs_wcs.split_mrs_wcs(path, _raw(path))
    assert from_buffer.instrument_key == from_bytes.instrument_key is not None
    x, y = np.meshgrid(np.arange(0, 1032, 37.0), np.arange(0, 1024, 41.0))
    for got, expected in zip(from_buffer.detector_to_alpha_beta(x, y), from_bytes.detector_to_alpha_beta(x, y)):
        np.testing.assert_array_equal(got, expected)
    assert isinstance(calfits.read_asdf_extension(path), bytes)
