"""Detector frames kept on disk: the same numbers as computing them, and never a wrong or half file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mrsdask.instrument import frame_files, frames
from mrsdask.io import calfits


@pytest.fixture()
def parts(sim_1a, tmp_path, monkeypatch):
    monkeypatch.setenv("MRSDASK_CACHE", str(tmp_path))
    monkeypatch.delenv(frame_files.SWITCH, raising=False)
    frames.FRAME_CACHE.clear()
    yield calfits.read_wcs_parts(str(sim_1a.cal_files[0]))
    frames.FRAME_CACHE.clear()


def _fields(entry: frames.ChannelFrame) -> dict:
    return {"ys": entry.ys, "xs": entry.xs, "dbeta": entry.dbeta, **vars(entry.frame)}


def _fresh(parts, channel=1) -> frames.ChannelFrame:
    frames.FRAME_CACHE.clear()  # as in another process
    return frames.channel_frame(parts, channel)


def test_a_stored_frame_reads_back_bit_for_bit_without_the_detector_step(parts, monkeypatch):
    computed = frames.channel_frame(parts, 1)
    path = frame_files.frame_path(parts.instrument_key, 1)
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    monkeypatch.setattr(type(parts), "detector_to_alpha_beta",
                        property(lambda self: pytest.fail("the detector step was read for a stored frame")))
    stored = _fresh(parts)
    for name, value in _fields(computed).items():
        got = _fields(stored)[name]
        if name == "dbeta":
            assert got == value
        else:
            assert got.dtype == value.dtype, name
            np.testing.assert_array_equal(got, value, err_msg=name)
            assert not got.flags.writeable, name
    assert stored.ys.dtype == np.intp


def test_a_damaged_frame_file_is_computed_again_and_replaced(parts):
    expected = _fields(frames.channel_frame(parts, 1))
    path = frame_files.frame_path(parts.instrument_key, 1)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # cut in the middle, as a full disk would
        f.truncate(size // 2)
    again = _fields(_fresh(parts))
    for name in ("ys", "xs", "alpha", "wavelength", "dwavelength"):
        np.testing.assert_array_equal(again[name], expected[name], err_msg=name)
    assert path.stat().st_size == size


def test_the_switch_turns_the_files_off(parts, monkeypatch):
    monkeypatch.setenv(frame_files.SWITCH, "0")
    frames.channel_frame(parts, 1)
    assert not frame_files.frame_path(parts.instrument_key, 1).exists()


def test_the_least_recently_used_files_go_first(tmp_path):
    for age, name in enumerate(("old", "mid", "new")):
        path = tmp_path / f"{name}.npy"
        path.write_bytes(b"x" * 100)
        os.utime(path, ns=(10**18 + age * 10**9,) * 2)
    frame_files.prune(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid.npy", "new.npy"]


def test_the_file_name_follows_the_code_that_computes_frames(parts):
    name = frame_files.frame_path(parts.instrument_key, 2).name
    assert name == f"{parts.instrument_key}_{frame_files.code_digest()}_ch2.npy"
