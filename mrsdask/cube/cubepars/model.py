"""The CUBEPAR parameter set as immutable objects: per band, per weighting, multichannel tables.

:class:`CubePars` holds what the MRS cube builder takes from a CUBEPAR reference file;
:class:`BandPars`, :class:`MSMPars` and :class:`EMSMPars` are its per-band rows and
:class:`MultiTable` its multichannel tables. Every number is rounded to float32 as the official
file stores it (see :mod:`mrsdask.cube.cubepars`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from mrsdask.errors import InputError, ParameterError
from mrsdask.instrument.bands import BAND_NAMES, Band, band_from_name

#: Weighting schemes of the official step (its ``weighting`` option).
WEIGHTINGS = ("drizzle", "msm", "emsm")


class CubeparFileError(InputError, ValueError):
    """A file is not a usable MIRI CUBEPAR reference file (the message names it)."""


class CubeParameterError(ParameterError, ValueError):
    """The parameters asked for cannot make a cube (the official step would fail too)."""


def as_float32(value) -> float:
    """``value`` rounded to float32 and widened back to a Python float."""
    return float(np.float32(value))


def as_float32_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)
    arr.setflags(write=False)
    return arr


def check_weighting(weighting: str) -> str:
    w = str(weighting).strip().lower()
    if w not in WEIGHTINGS:
        raise CubeParameterError(f"unknown weighting {weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
    return w


# ---------------------------------------------------------------------------------------
# Data structure
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Float32Row:
    """A CUBEPAR table row: every field a number, rounded to float32 as the file stores it."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, as_float32(getattr(self, f.name)))


@dataclass(frozen=True)
class BandPars(Float32Row):
    """CUBEPAR row of one band.

    Attributes
    ----------
    wavemin, wavemax : float
        Default wavelength range of a cube of this band [µm].
    spaxelsize : float
        Default spaxel size [arcsec] (square spaxels).
    spectralstep : float
        Default linear wavelength step [µm].
    """

    wavemin: float
    wavemax: float
    spaxelsize: float
    spectralstep: float


@dataclass(frozen=True)
class RegionOfInterest(Float32Row):
    """The regions of interest that start a Shepard-weighting row (CUBEPAR_MSM, CUBEPAR_EMSM).

    Attributes
    ----------
    roispatial : float
        Spatial region of interest [arcsec].
    roispectral : float
        Spectral region of interest [µm].
    """

    roispatial: float
    roispectral: float


@dataclass(frozen=True)
class MSMPars(RegionOfInterest):
    """CUBEPAR_MSM row of one band (modified Shepard, 1/r^p weighting): the regions of interest,
    then the weighting power ``power`` (p) and the softening radius ``softrad`` [arcsec]."""

    power: float
    softrad: float


@dataclass(frozen=True)
class EMSMPars(RegionOfInterest):
    """CUBEPAR_EMSM row of one band (exponential modified Shepard weighting): the regions of
    interest, then the exponential scale radius ``scalerad`` [arcsec]."""

    scalerad: float


_MULTI_COLUMNS = ("roispatial", "roispectral", "power", "softrad", "scalerad")


@dataclass(frozen=True, eq=False)
class MultiTable:
    """A multichannel table: the non-linear wavelength grid and per-wavelength parameters.

    Columns that a table does not have are ``None``: MULTICHANNEL_DRIZ has only
    ``wavelength``; MULTICHANNEL_MSM adds ``roispatial``, ``roispectral``, ``power`` and
    ``softrad``; MULTICHANNEL_EMSM adds ``roispatial``, ``roispectral`` and ``scalerad``.
    All arrays are read-only float64 arrays of float32 values, in file order.
    """

    wavelength: np.ndarray
    roispatial: np.ndarray | None = None
    roispectral: np.ndarray | None = None
    power: np.ndarray | None = None
    softrad: np.ndarray | None = None
    scalerad: np.ndarray | None = None

    def __post_init__(self):
        wave = as_float32_array(self.wavelength)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError("a multichannel table needs a non-empty 1-D wavelength column")
        object.__setattr__(self, "wavelength", wave)
        for name in _MULTI_COLUMNS:
            col = getattr(self, name)
            if col is None:
                continue
            col = as_float32_array(col)
            if col.shape != wave.shape:
                raise ValueError(
                    f"multichannel column {name} has shape {col.shape}, wavelength {wave.shape}"
                )
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return int(self.wavelength.size)

    def columns(self) -> tuple[str, ...]:
        """Names of the columns present, ``wavelength`` first."""
        return ("wavelength",) + tuple(n for n in _MULTI_COLUMNS if getattr(self, n) is not None)

    def __eq__(self, other) -> bool:
        if not isinstance(other, MultiTable):
            return NotImplemented
        for name in ("wavelength",) + _MULTI_COLUMNS:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return False
            if a is not None and not np.array_equal(a, b, equal_nan=True):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


def _band_mapping(values: Mapping, kind, what: str) -> Mapping[str, object]:
    out = {}
    for key, val in values.items():
        name = key.name if isinstance(key, Band) else band_from_name(key).name
        if not isinstance(val, kind):
            val = kind(**val) if isinstance(val, Mapping) else kind(*val)
        out[name] = val
    missing = [b for b in BAND_NAMES if b not in out]
    if missing:
        raise ValueError(f"{what} lacks bands {', '.join(missing)}")
    return MappingProxyType({b: out[b] for b in BAND_NAMES})


@dataclass(frozen=True, eq=False)
class CubePars:
    """Everything the MRS cube builder takes from the CUBEPAR reference file.

    Attributes
    ----------
    bands : Mapping[str, BandPars]
        CUBEPAR table: wavelength range, spaxel size and spectral step per band
        (``"1A"`` … ``"4C"``).
    msm : Mapping[str, MSMPars]
        CUBEPAR_MSM table per band.
    emsm : Mapping[str, EMSMPars]
        CUBEPAR_EMSM table per band.
    multi_driz : MultiTable
        MULTICHANNEL_DRIZ (wavelength only).
    multi_msm : MultiTable
        MULTICHANNEL_MSM (wavelength, roispatial, roispectral, power, softrad).
    multi_emsm : MultiTable
        MULTICHANNEL_EMSM (wavelength, roispatial, roispectral, scalerad).
    source : str
        Where the numbers came from (a file name or a short description); not compared
        by ``==``.

    Notes
    -----
    Only the twelve ordinary bands are held. The 24 cross-dichroic CUBEPAR rows of an
    official file (``SHORT-MEDIUM`` …) are ignored on reading (mrsdask does not build cubes
    from cross-dichroic exposures) and re-created on writing by copying their matching band
    (:func:`cross_dichroic_bands`). Every number is rounded to float32 as the official file
    stores it. Build a modified copy with :func:`dataclasses.replace`.
    """

    bands: Mapping[str, BandPars]
    msm: Mapping[str, MSMPars]
    emsm: Mapping[str, EMSMPars]
    multi_driz: MultiTable
    multi_msm: MultiTable
    multi_emsm: MultiTable
    source: str = "(in memory)"

    def __post_init__(self):
        object.__setattr__(self, "bands", _band_mapping(self.bands, BandPars, "CUBEPAR"))
        object.__setattr__(self, "msm", _band_mapping(self.msm, MSMPars, "CUBEPAR_MSM"))
        object.__setattr__(self, "emsm", _band_mapping(self.emsm, EMSMPars, "CUBEPAR_EMSM"))
        needs = {
            "multi_driz": (),
            "multi_msm": ("roispatial", "roispectral", "power", "softrad"),
            "multi_emsm": ("roispatial", "roispectral", "scalerad"),
        }
        for attr, cols in needs.items():
            table = getattr(self, attr)
            if not isinstance(table, MultiTable):
                raise TypeError(f"CubePars.{attr} must be a MultiTable, not {type(table).__name__}")
            lacking = [c for c in cols if getattr(table, c) is None]
            if lacking:
                raise ValueError(f"CubePars.{attr} lacks columns {', '.join(lacking)}")

    def band(self, name: str | Band) -> BandPars:
        """CUBEPAR row of a band (``"1A"``, ``"1SHORT"``, a :class:`Band` …)."""
        return self.bands[name.name if isinstance(name, Band) else band_from_name(name).name]

    def multi_table(self, weighting: str) -> MultiTable:
        """The multichannel table the official step reads for ``weighting``."""
        weighting = check_weighting(weighting)
        return {"drizzle": self.multi_driz, "msm": self.multi_msm, "emsm": self.multi_emsm}[
            weighting
        ]

    def __eq__(self, other) -> bool:
        if not isinstance(other, CubePars):
            return NotImplemented
        return (
            dict(self.bands) == dict(other.bands)
            and dict(self.msm) == dict(other.msm)
            and dict(self.emsm) == dict(other.emsm)
            and self.multi_driz == other.multi_driz
            and self.multi_msm == other.multi_msm
            and self.multi_emsm == other.multi_emsm
        )

    __hash__ = None  # type: ignore[assignment]
