"""Detector-frame geometry of one channel, shared by the exposures of an instrument setting.

The detector → α, β, λ step of an MRS gwcs comes from the reference files only: every exposure
of a setting has the same one (:mod:`mrsdask.io.mrs_wcs` gives it a content key). Its evaluation
on a channel's ~0.37 M pixels is most of the cost of per-pixel geometry, so it is kept per
process and in files shared by the processes of a machine (:func:`channel_frame`,
:mod:`mrsdask.instrument.frame_files`), and only the pointing is evaluated per exposure
(:func:`mrsdask.instrument.geometry.sky_geometry`). The cube builder's pixel tables and the
detector store's geometry both use it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from mrsdask.instrument import frame_files
from mrsdask.instrument.bands import CHANNEL_INFO
from mrsdask.instrument.geometry import DetectorFrameGeometry, detector_frame_geometry, slice_map_of, slice_width


@dataclass(frozen=True)
class ChannelFrame:
    """Pixels of one channel and their detector-frame geometry (instrument model only)."""

    ys: np.ndarray
    xs: np.ndarray
    frame: DetectorFrameGeometry
    dbeta: float

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (:attr:`wavelength_order` once computed)."""
        order = self.__dict__.get("wavelength_order")
        return self.ys.nbytes + self.xs.nbytes + self.frame.nbytes + (0 if order is None else order.nbytes)

    @functools.cached_property
    def wavelength_order(self) -> np.ndarray:
        """The pixels in stable order of λ (int32, read-only; ties in detector order, NaN last).

        Computed once per frame: every exposure of the instrument model has these λ, and the
        stable order of a subset of the pixels is this order restricted to the subset, so a
        pixel table's λ order needs no sort of its own (see :mod:`mrsdask.cube.pixels`).
        """
        order = np.argsort(self.frame.wavelength, kind="stable").astype(np.int32)
        order.setflags(write=False)
        return order


#: Detector-frame geometry of recently seen (instrument model, channel) pairs in this process,
#: keyed by the content hash of the exposure's detector → alpha_beta step
#: (:func:`mrsdask.io.mrs_wcs.split_mrs_wcs`): exposures of one setting share it.
FRAME_CACHE: OrderedDict[tuple[str, int], ChannelFrame] = OrderedDict()
#: Most memory the cache may hold (one channel is ~22-25 MB with its λ order: the two channels
#: of one setting, which is what a task of grouped exposures needs; 12A's take 48.4 MiB).
FRAME_CACHE_BYTES = 52 * 2**20


def cache_frame(key: tuple[str, int], entry: ChannelFrame) -> None:
    for array in (entry.ys, entry.xs, *vars(entry.frame).values()):
        if array.flags.writeable:
            array.setflags(write=False)  # shared by later exposures: never modified in place
    FRAME_CACHE[key] = entry
    FRAME_CACHE.move_to_end(key)
    while len(FRAME_CACHE) > 1 and sum(e.nbytes for e in FRAME_CACHE.values()) > FRAME_CACHE_BYTES:
        FRAME_CACHE.popitem(last=False)


def channel_frame(parts, channel: int) -> ChannelFrame:
    """The channel's pixels and detector-frame geometry, from the caches when the model is known.

    Looked up in this process's :data:`FRAME_CACHE`, then in the frame files that the processes
    of the machine share (:mod:`mrsdask.instrument.frame_files`); computed and kept in both
    when neither has it. An exposure whose gwcs has no content key is always computed.

    Parameters
    ----------
    parts : mrsdask.io.mrs_wcs.MrsWcsParts
        The exposure's split gwcs.
    channel : int
        1 to 4.
    """
    key = (parts.instrument_key, channel)
    if parts.instrument_key is None:
        return _compute_frame(parts, channel)
    if key in FRAME_CACHE:
        FRAME_CACHE.move_to_end(key)
        return FRAME_CACHE[key]
    stored = frame_files.load_frame(parts.instrument_key, channel)
    if stored is not None:
        geometry = DetectorFrameGeometry(**{name: stored[name] for name in frame_files.GEOMETRY_ARRAYS})
        entry = ChannelFrame(stored["ys"], stored["xs"], geometry, float(stored["dbeta"]))
    else:
        entry = _compute_frame(parts, channel)
        frame_files.save_frame(parts.instrument_key, channel, entry.ys, entry.xs, vars(entry.frame), entry.dbeta)
    cache_frame(key, entry)
    return entry


def _compute_frame(parts, channel: int) -> ChannelFrame:
    """Evaluate the exposure's detector step on the channel's pixels."""
    det2ab = parts.detector_to_alpha_beta
    smap = slice_map_of(det2ab)
    ys, xs = np.nonzero(channel_mask(smap, CHANNEL_INFO[channel]))
    return ChannelFrame(ys, xs, detector_frame_geometry(det2ab, xs, ys), slice_width(det2ab, smap, channel))


#: Slice maps of recently seen instrument models (by content key), as :data:`FRAME_CACHE`.
SLICE_MAPS: OrderedDict[str, np.ndarray] = OrderedDict()


def slice_map_for(parts) -> np.ndarray:
    """The slice map (int16, ``100 * channel + slice``, 0 off-slice) of an exposure's split gwcs,
    read-only and kept per instrument model, so that a known model's detector step is not read."""
    key = parts.instrument_key
    if key is not None and key in SLICE_MAPS:
        SLICE_MAPS.move_to_end(key)
        return SLICE_MAPS[key]
    smap = np.asarray(slice_map_of(parts.detector_to_alpha_beta), dtype=np.int16)
    smap.setflags(write=False)
    if key is not None:
        SLICE_MAPS[key] = smap
        while len(SLICE_MAPS) > 8:
            SLICE_MAPS.popitem(last=False)
    return smap


def channel_mask(smap: np.ndarray, info) -> np.ndarray:
    """Pixels of a channel's slices within its x range (the official cube_build's mapping)."""
    mask = (smap >= info.first_slice) & (smap <= info.last_slice)
    x = np.arange(smap.shape[1])
    # The official cube_build maps x in [xstart, xend) of the channel.
    mask &= ((x >= info.x_range[0]) & (x < info.x_range[1]))[None, :]
    return mask
