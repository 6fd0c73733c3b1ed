"""MIRI MRS instrument knowledge: bands, channels, slices and reference-file geometry."""

from mrsdask.instrument.bands import (
    BAND_NAMES,
    BANDS,
    CHANNEL_INFO,
    Band,
    band_from_name,
    bands_of_setting,
    setting_of,
)

__all__ = [
    "BAND_NAMES",
    "BANDS",
    "CHANNEL_INFO",
    "Band",
    "band_from_name",
    "bands_of_setting",
    "setting_of",
]
