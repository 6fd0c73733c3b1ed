"""The MRS gwcs split into instrument model (shared, keyed by content) and pointing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.io import calfits
from mrsdask.io.mrs_wcs import _layout, split_mrs_wcs


def _raw(path) -> bytes:
    with fits.open(path) as hdul:
        return bytes(hdul["ASDF"].data["ASDF_METADATA"][0])


def _samples():
    rng = np.random.default_rng(1)
    return rng.uniform(-3, 3, 200), rng.uniform(-2, 2, 200), rng.uniform(4.9, 5.8, 200)


def test_dithers_share_the_instrument_key_and_keep_their_own_pointing(sim_1a):
    parts = [split_mrs_wcs(str(f), _raw(f)) for f in sim_1a.cal_files]
    assert parts[0].instrument_key is not None
    assert parts[0].instrument_key == parts[1].instrument_key
    a, b, lam = _samples()
    worlds = []
    for f, p in zip(sim_1a.cal_files, parts):
        wcs = calfits.load_wcs(str(f))
        expected = np.array(wcs.get_transform("alpha_beta", "world")(a, b, lam))
        got = np.array(p.alpha_beta_to_world(a, b, lam))
        np.testing.assert_array_equal(got, expected)
        worlds.append(got)
        x, y = np.meshgrid(np.arange(0, 1032, 37.0), np.arange(0, 1024, 41.0))
        np.testing.assert_array_equal(np.array(p.detector_to_alpha_beta(x, y)),
                                      np.array(wcs.get_transform("detector", "alpha_beta")(x, y)))
    assert not np.allclose(worlds[0][:2], worlds[1][:2], equal_nan=True)  # dithers point differently


def test_any_change_to_the_instrument_step_changes_the_key(sim_1a):
    raw = _raw(sim_1a.cal_files[0])
    key = split_mrs_wcs("a", raw).instrument_key
    header, steps, blocks, offsets = _layout(raw)
    # A coefficient in the YAML of the detector step.
    start = raw.index(steps[0].encode())
    text = bytearray(raw)
    pos = start + steps[0].index("beta_zero: ") + len("beta_zero: -1.7")  # a digit of a slice's β
    text[pos] = ord("3") if text[pos] != ord("3") else ord("4")
    assert split_mrs_wcs("b", bytes(text)).instrument_key not in (None, key)
    # A byte of a binary block the detector step references (e.g. the slice map).
    ref = int(steps[0].split("source: ")[1].split()[0])
    data_start, size = offsets[ref]
    block = bytearray(raw)
    where = len(raw) - len(raw[raw.index(b"\xd3BLK"):]) + data_start + size // 2
    block[where] ^= 0x01
    assert split_mrs_wcs("c", bytes(block)).instrument_key not in (None, key)


def test_an_unexpected_layout_falls_back_to_the_whole_gwcs_and_shares_nothing(sim_1a):
    import asdf
    from gwcs import WCS

    wcs = calfits.load_wcs(str(sim_1a.cal_files[0]))
    frames = wcs.available_frames
    # Same transforms, one step fewer (v2v3 -> world in one step): not the layout split expects.
    merged = WCS([
        (getattr(wcs, frames[0]), wcs.get_transform(frames[0], frames[1])),
        (getattr(wcs, frames[1]), wcs.get_transform(frames[1], frames[2])),
        (getattr(wcs, frames[2]), wcs.get_transform(frames[2], frames[4])),
        (getattr(wcs, frames[4]), None),
    ])
    buf = io.BytesIO()
    asdf.AsdfFile({"meta": {"wcs": merged}}).write_to(buf)
    raw = buf.getvalue()
    assert _layout(raw) is None
    parts = split_mrs_wcs("merged", raw)
    assert parts.instrument_key is None
    a, b, lam = _samples()
    np.testing.assert_allclose(np.array(parts.alpha_beta_to_world(a, b, lam)),
                               np.array(wcs.get_transform("alpha_beta", "world")(a, b, lam)), rtol=0, atol=1e-12)


def test_pixel_tables_from_the_split_wcs_equal_the_full_gwcs_evaluation(sim_1a):
    from mrsdask.cube import pixels
    from mrsdask.instrument import frames
    from mrsdask.instrument.bands import CHANNEL_INFO
    from mrsdask.instrument.geometry import pixel_geometry, slice_map_of, slice_width
    from mrsdask.io.sources import ExposureData

    path = str(sim_1a.cal_files[1])
    frames.FRAME_CACHE.clear()
    for f in sim_1a.cal_files:  # the second file's detector frame comes from the cache
        planes, parts = calfits.read_planes_and_wcs_parts(str(f))
        px = pixels.channel_pixels(ExposureData(*planes, parts=parts), 1)
    assert len(frames.FRAME_CACHE) == 1
    wcs = calfits.load_wcs(path)
    smap = slice_map_of(wcs)
    ys, xs = np.nonzero(frames.channel_mask(smap, CHANNEL_INFO[1]))
    geom = pixel_geometry(wcs, xs, ys, slice_width(wcs, smap, 1))
    for name in ("ra", "dec", "wavelength", "dwavelength", "corner_ra", "corner_dec"):
        np.testing.assert_array_equal(px[name], getattr(geom, name), err_msg=name)
    with pytest.raises(ValueError):
        next(iter(frames.FRAME_CACHE.values())).frame.alpha[0] = 0.0  # shared arrays are read-only


def test_a_step_sharing_yaml_nodes_with_the_rest_is_not_cut_out():
    from mrsdask.io.mrs_wcs import _self_contained

    assert _self_contained("- &id001 !a\n  x: 1\n- *id001\n")
    assert not _self_contained("  forward:\n  - *id007\n")
    assert _self_contained("expr: '[0] & [1]'\nname: a*b\n")


def test_a_wcs_without_the_mrs_frames_is_refused_naming_the_file(sim_1a):
    import asdf
    from gwcs import WCS

    from mrsdask.errors import InputError

    wcs = calfits.load_wcs(str(sim_1a.cal_files[0]))
    frames = wcs.available_frames
    imaging_like = WCS([(getattr(wcs, frames[0]), wcs.get_transform(frames[0], frames[4])),
                        (getattr(wcs, frames[4]), None)])
    buf = io.BytesIO()
    asdf.AsdfFile({"meta": {"wcs": imaging_like}}).write_to(buf)
    with pytest.raises(InputError, match="not_mrs_cal.fits: its WCS has no alpha_beta frame"):
        split_mrs_wcs("not_mrs_cal.fits", buf.getvalue())
