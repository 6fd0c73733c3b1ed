"""The quick FITS header reader gives astropy's values, and leaves anything unusual to astropy."""

import gzip
import io

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.io import fits_headers
from mrsdask.io.calfits import read_exposure_info
from mrsdask.instrument.reference import template_file

KEEP = ("SCI", "ERR", "DQ")


def _both(data: bytes) -> tuple[fits_headers.Headers, fits_headers.Headers]:
    fobj = io.BytesIO(data)
    plain = fits_headers._read_plain(fobj, len(data), KEEP)  # raises if it would leave the file to astropy
    fobj.seek(0)
    return plain, fits_headers._read_astropy(fobj, KEEP)


def _assert_same(plain: fits_headers.Headers, ref: fits_headers.Headers) -> int:
    assert plain.names == ref.names and plain.end == ref.end and set(plain.extensions) == set(ref.extensions)
    assert plain.data_at == ref.data_at
    n = 0
    for mine, theirs in [(plain.primary, ref.primary)] + [(plain.extensions[k], ref.extensions[k]) for k in ref.extensions]:
        keys = [k for k in theirs if k not in fits_headers.COMMENTARY]
        assert sorted(mine) == sorted(set(keys))
        for key in keys:
            assert type(mine[key]) is type(theirs[key]) and mine[key] == theirs[key], key
            n += 1
    return n


def _files(sim_1a, assign_wcs_34c) -> dict[str, bytes]:
    files = {f"template {s}": gzip.decompress(template_file(s).read_bytes()) for s in ("12A", "34C")}
    for path in [*sim_1a.cal_files, assign_wcs_34c]:
        with open(path, "rb") as fobj:
            files[str(path)] = fobj.read()
    return files


def test_cal_files_are_read_without_astropy_with_its_values(sim_1a, assign_wcs_34c):
    """Official templates, simulated cal files and one the official assign_wcs wrote: every
    keyword of the primary, SCI, ERR and DQ headers (long CONTINUE strings included)."""
    files = _files(sim_1a, assign_wcs_34c)
    for name, data in files.items():
        plain, ref = _both(data)
        assert _assert_same(plain, ref) > 100, name
    assert sum(b"CONTINUE  '" in data for data in files.values()) >= 2  # long strings among them


def test_exposure_info_is_the_same_read_either_way(sim_1a, assign_wcs_34c, monkeypatch):
    paths = [str(p) for p in sim_1a.cal_files] + [assign_wcs_34c]
    quick = [read_exposure_info(p) for p in paths]

    def unusual(*args):
        raise fits_headers._Unusual

    monkeypatch.setattr(fits_headers, "_read_plain", unusual)
    assert [read_exposure_info(p) for p in paths] == quick


READ = [
    "KEY     = 'O''Brien'           / a doubled quote",
    "KEY     = 'a'' / x'",  # astropy ends the string at the first quote a comment can follow: "a'"
    "KEY     = '''' / only a quote",
    "KEY     = 'trailing   '        / blanks dropped",
    "KEY     = '  leading'",
    "KEY     = ''",
    "KEY     = 't'",
    "KEY     = T / logical",
    "KEY     =                    F",
    "KEY     =                  -12 / integer",
    "KEY     = +0007",
    "KEY     = 1.5D+03 / Fortran exponent",
    "KEY     = -.5e-2",
    "KEY     = 12.",
    "KEY     = 3.0 E 2",
    "KEY     = 123456789012345678901234567890",
    "KEY     = 'a' b'",  # astropy's string runs to the last quote a comment can follow: "a' b"
]
LEFT = ["KEY     = 'a' b' c", "KEY     = 'AXIS.1: 2'", "KEY     = (1.0, 2.0)", "KEY     =", "KEY     = abc",
        "KEY     = 'no end", "KEY     = TRUE", "KEY     = 0x10", "KEY     = 1_000", "KEY     = 1 000", "KEY     = inf"]


@pytest.mark.parametrize("image", READ)
def test_a_plain_card_value_is_astropys(image):
    image = image.ljust(80)
    value = fits_headers.card_value(image[10:])
    expected = fits.Card.fromstring(image).value
    assert type(value) is type(expected) and value == expected


@pytest.mark.parametrize("image", LEFT)
def test_other_card_values_are_left_to_astropy(image):
    with pytest.raises(fits_headers._Unusual):
        fits_headers.card_value(image.ljust(80)[10:])


def _primary_only(cards: list[str]) -> bytes:
    """A FITS file of one empty primary HDU with ``cards`` as they are (astropy would rewrite them)."""
    text = "".join(c.ljust(80) for c in ["SIMPLE  =                    T", "BITPIX  =                    8",
                                        "NAXIS   =                    0", *cards, "END"])
    return text.ljust(-(-len(text) // 2880) * 2880).encode("ascii")


def test_a_long_string_joins_its_parts_as_astropy_does():
    data = _primary_only(["LONGSTR = 'first part with a quote '' and &'", "CONTINUE  '&'",
                          "CONTINUE  'last''' / note", "NEXT    = 'no ampersand'", "CONTINUE  ' joined' / too"])
    plain, ref = _both(data)
    _assert_same(plain, ref)
    assert plain.primary["LONGSTR"] == "first part with a quote ' and last'"
    assert plain.primary["NEXT"] == "no ampersand joined"


@pytest.mark.parametrize("cards", [
    ["HIERARCH ESO DET CHIP = 'x'"],
    ["KEY     = (1, 2)"],
    ["KEY     = 'AXIS.1: 2'"],
    ["COMMENT a comment", "CONTINUE  'continued'"],
    ["key     = 1"],
])
def test_unusual_headers_are_read_by_astropy(cards):
    data = _primary_only(cards)
    with pytest.raises(fits_headers._Unusual):
        fits_headers._read_plain(io.BytesIO(data), len(data), KEEP)
    headers = fits_headers.read_headers(io.BytesIO(data), len(data), KEEP)
    assert isinstance(headers.primary, fits.Header) and headers.names == ("PRIMARY",) and headers.end == 2880


def test_bytes_after_the_last_hdu_and_a_cut_file_are_left_to_astropy(sim_1a):
    with open(sim_1a.cal_files[0], "rb") as fobj:
        data = fobj.read()
    padded, cut = data + b"\0" * 2880, data[:-2880]
    for changed in (padded, cut):
        with pytest.raises(fits_headers._Unusual):
            fits_headers._read_plain(io.BytesIO(changed), len(changed), KEEP)
    assert fits_headers.read_headers(io.BytesIO(padded), len(padded), KEEP).end == _both(data)[1].end


def _planes_both_ways(path):
    from mrsdask.io import calfits

    direct = calfits._read_planes_and_asdf(str(path), True, True)
    with open(path, "rb") as fobj:
        ref = calfits._read_with_astropy(str(path), fobj.read(), True, True)
    for mine, theirs in zip(direct[0], ref[0]):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape and mine.flags.writeable
        np.testing.assert_array_equal(mine, theirs)
    assert direct[1] == ref[1]
    return direct


def test_planes_and_asdf_are_read_by_offset_as_astropy_reads_them(sim_1a, assign_wcs_34c, monkeypatch):
    """SCI/ERR/DQ (DQ stored as int32 + BZERO) and the ASDF bytes, read from their offsets
    alone, are astropy's arrays and bytes; astropy is not used for such a file."""
    from mrsdask.io import calfits

    def refused(*args):
        raise AssertionError("a plain cal file went to astropy")

    for path in [sim_1a.cal_files[0], assign_wcs_34c]:
        _planes_both_ways(path)
        with monkeypatch.context() as m:
            m.setattr(calfits, "_read_with_astropy", refused)
            (sci, err, dq), raw = calfits._read_planes_and_asdf(str(path), True, True)
        assert sci.shape == dq.shape == (1024, 1032) and raw.startswith(b"#ASDF")


@pytest.mark.parametrize("change", ["sci float64", "dq signed int32", "dq uint16", "sci scaled"])
def test_other_image_kinds_are_read_as_astropy_reads_them(sim_1a, tmp_path, change):
    """Other BITPIX and BZERO are converted as astropy converts them; scaled data (BSCALE) go to astropy."""
    out = tmp_path / "changed_cal.fits"
    with fits.open(sim_1a.cal_files[0], do_not_scale_image_data=change == "sci scaled") as hdul:
        if change == "sci float64":
            hdul["SCI"].data = hdul["SCI"].data.astype(np.float64)
        elif change == "dq signed int32":
            hdul["DQ"].data = hdul["DQ"].data.astype(np.int32)
        elif change == "dq uint16":
            hdul["DQ"].data = (hdul["DQ"].data & 0xFFFF).astype(np.uint16)
        else:
            hdul["SCI"].header["BSCALE"] = 2.0
        hdul.writeto(out)
    (sci, _, dq), _ = _planes_both_ways(out)
    with fits.open(out) as ref:
        assert ref["SCI"].header["BITPIX"] == (-64 if change == "sci float64" else -32)
        assert ref["DQ"].header["BITPIX"] == (16 if change == "dq uint16" else 32)
        assert ("BZERO" in ref["DQ"].header) == (change != "dq signed int32")
    assert sci.dtype == np.float32 and dq.dtype == np.uint32
