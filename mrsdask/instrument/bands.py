"""The twelve MRS bands, four channels and six detector settings.

Vocabulary (as in the official pipeline):

* a **band** is a channel and a sub-band, named ``"1A"`` … ``"4C"``;
* the sub-band letters map to the ``BAND`` keyword: A = ``SHORT``, B = ``MEDIUM``, C = ``LONG``;
* a **setting** is one exposure's detector and sub-band: ``"12A"`` is MIRIFUSHORT (channels 1
  and 2) in SHORT, ``"34C"`` is MIRIFULONG (channels 3 and 4) in LONG.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBBAND_KEYWORD = {"A": "SHORT", "B": "MEDIUM", "C": "LONG"}
SUBBAND_LETTER = {v: k for k, v in SUBBAND_KEYWORD.items()}


@dataclass(frozen=True)
class ChannelInfo:
    """Fixed geometry of one channel on its detector.

    Attributes
    ----------
    channel : int
        Channel number, 1 to 4.
    detector : str
        ``MIRIFUSHORT`` (channels 1, 2) or ``MIRIFULONG`` (3, 4).
    n_slices : int
        Number of slices.
    first_slice, last_slice : int
        Slice numbers as in the slice map (``100 * channel + slice``).
    x_range : tuple of int
        Inclusive detector column range used by the official cube_build for this channel.
    """

    channel: int
    detector: str
    n_slices: int
    first_slice: int
    last_slice: int
    x_range: tuple[int, int]


CHANNEL_INFO: dict[int, ChannelInfo] = {
    1: ChannelInfo(1, "MIRIFUSHORT", 21, 101, 121, (0, 512)),
    2: ChannelInfo(2, "MIRIFUSHORT", 17, 201, 217, (513, 1031)),
    3: ChannelInfo(3, "MIRIFULONG", 16, 301, 316, (513, 1031)),
    4: ChannelInfo(4, "MIRIFULONG", 12, 401, 412, (0, 512)),
}


@dataclass(frozen=True)
class Band:
    """One of the twelve MRS bands.

    Attributes
    ----------
    name : str
        ``"1A"`` … ``"4C"``.
    channel : int
        1 to 4.
    subband : str
        ``"A"``, ``"B"`` or ``"C"``.
    """

    name: str
    channel: int
    subband: str

    @property
    def band_keyword(self) -> str:
        """The FITS ``BAND`` keyword value: SHORT, MEDIUM or LONG."""
        return SUBBAND_KEYWORD[self.subband]

    @property
    def setting(self) -> str:
        """Detector setting holding this band: ``"12A"`` … ``"34C"``."""
        return setting_of(self.channel, self.subband)

    @property
    def detector(self) -> str:
        """``MIRIFUSHORT`` or ``MIRIFULONG``."""
        return CHANNEL_INFO[self.channel].detector

    @property
    def channel_info(self) -> ChannelInfo:
        """Fixed geometry of this band's channel."""
        return CHANNEL_INFO[self.channel]


BANDS: tuple[Band, ...] = tuple(
    Band(f"{ch}{sb}", ch, sb) for ch in (1, 2, 3, 4) for sb in ("A", "B", "C")
)
BAND_NAMES: tuple[str, ...] = tuple(b.name for b in BANDS)
SETTINGS: tuple[str, ...] = ("12A", "12B", "12C", "34A", "34B", "34C")


def band_from_name(name: str) -> Band:
    """Return the band called ``name`` (``"1A"``, ``"2c"``, ``"3MEDIUM"``, …).

    Raises
    ------
    ValueError
        If the name is not one of the twelve bands.
    """
    text = str(name).strip().upper()
    if len(text) > 2 and text[1:] in SUBBAND_LETTER:
        text = text[0] + SUBBAND_LETTER[text[1:]]
    for band in BANDS:
        if band.name == text:
            return band
    raise ValueError(f"unknown MRS band {name!r}; expected one of {', '.join(BAND_NAMES)}")


def setting_of(channel: int, subband: str) -> str:
    """Detector setting (``"12A"`` …) for a channel and sub-band letter or keyword."""
    letter = SUBBAND_LETTER.get(subband.upper(), subband.upper())
    if letter not in SUBBAND_KEYWORD:
        raise ValueError(f"unknown MRS sub-band {subband!r}; expected A/B/C or SHORT/MEDIUM/LONG")
    pair = "12" if channel in (1, 2) else "34"
    if channel not in CHANNEL_INFO:
        raise ValueError(f"unknown MRS channel {channel!r}; expected 1, 2, 3 or 4")
    return pair + letter


def bands_of_setting(channels: str, band_keyword: str) -> list[Band]:
    """Bands recorded by an exposure with ``CHANNEL=channels`` and ``BAND=band_keyword``.

    Parameters
    ----------
    channels : str
        The ``CHANNEL`` keyword, ``"12"`` or ``"34"`` (a single channel is accepted too).
    band_keyword : str
        ``SHORT``, ``MEDIUM`` or ``LONG``. Cross-dichroic values such as ``SHORT-MEDIUM``
        are rejected: mrsdask does not build cubes from them.
    """
    keyword = str(band_keyword).strip().upper()
    if keyword not in SUBBAND_LETTER:
        raise ValueError(
            f"MRS band keyword {band_keyword!r} is not SHORT, MEDIUM or LONG "
            "(cross-dichroic exposures are not supported)"
        )
    out = []
    for ch in str(channels).strip():
        if not ch.isdigit() or int(ch) not in CHANNEL_INFO:
            raise ValueError(f"MRS channel keyword {channels!r} is not '12' or '34'")
        out.append(band_from_name(f"{ch}{SUBBAND_LETTER[keyword]}"))
    return out
