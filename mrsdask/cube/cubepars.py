"""MIRI MRS cube-building parameters: the CUBEPAR reference file and per-cube choices.

The official ``cube_build`` step takes every default that shapes a cube (spaxel size,
wavelength range and step, regions of interest, weighting parameters and the non-linear
"multi" wavelength grid) from one reference file, CUBEPAR (``MiriIFUCubeParsModel``).
This module holds those numbers in an immutable :class:`CubePars`, reads and writes the
official file format, ships a default file built from the FLT-9 reference files carried by
mrsdask (so no CRDS access is needed), and reproduces the official per-cube parameter
choice (``IFUCubeData.determine_cube_parameters``) in :func:`cube_parameters`.

Public API
----------
:class:`CubePars`, :class:`BandPars`, :class:`MSMPars`, :class:`EMSMPars`, :class:`MultiTable`
    The parameter set.
:func:`default_cubepars`
    The shipped defaults (``data/jwst_miri_cubepar_mrsdask.fits``), read once and cached.
:func:`read_cubepar`, :func:`write_cubepar`
    Any official MIRI CUBEPAR file (for example one from CRDS) in and out. A written file
    given to ``CubeBuildStep(override_cubepar=...)`` makes the official step use exactly
    the same numbers as mrsdask.
:func:`multi_wavelength_grid`
    The non-linear "multi" wavelength grid.
:func:`cube_parameters`, :class:`CubeParameters`
    What the official step decides for one cube from a parameter set and the step options.
:func:`build_default_cubepars`
    The default recipe, given the measured per-band wavelength ranges (the generator script
    ``mrsdask/cube/make_cubepar.py`` measures them and writes the shipped file).

Numbers and precision
---------------------
The official file stores every number as float32 and the pipeline computes with those
float32 values widened to float64. :class:`CubePars` therefore rounds every number it holds
to the nearest float32 and keeps it as a Python float / float64 array. A parameter set built
in memory, written, read back and used by the official step all give bit-identical numbers,
and cube shapes computed here match the official ones exactly.

Where the defaults come from
----------------------------
The recipe follows ``miri3d/cubepar/make_cubepar.py`` (STScI-MIRI/miri3d, the generator of
the CRDS MIRI CUBEPAR files; revision "21-Oct-2022 Adjust to flight spectral resolution and
4C cutoff", header "Nov 3 2022"), as summarised in ``docs/jwst-mrs-algorithms.md`` §2.3.
Constants that the brief rounds (the MSM multichannel ROI end points, the EMSM ROISPECTRAL
end point 28.4186 µm, the 8 µm FWHM floor, the band-centre wavelengths, the cross-dichroic
row assignments) are the values of that script. The only difference: that script measured
WAVEMIN/WAVEMAX on the most permissive (10 % throughput) slice mask of the ground
distortion files, which mrsdask does not carry; mrsdask uses the shipped slice map (the
regions plane used by ``assign_wcs``). See ``make_cubepar.py`` for the measurement.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import numpy as np

from mrsdask.errors import InputError, ParameterError
from mrsdask.instrument.bands import BAND_NAMES, SUBBAND_KEYWORD, Band, band_from_name

__all__ = [
    "DEFAULT_CUBEPAR_FILE",
    "WEIGHTINGS",
    "BandPars",
    "CubeParameterError",
    "CubePars",
    "CubeParameters",
    "CubeparFileError",
    "EMSMPars",
    "MSMPars",
    "MultiTable",
    "build_default_cubepars",
    "cross_dichroic_bands",
    "cube_parameters",
    "default_cubepars",
    "emsm_fwhm",
    "multi_wavelength_grid",
    "read_cubepar",
    "resolving_power",
    "round_wave_range",
    "write_cubepar",
]

DATA_DIR = Path(str(resources.files("mrsdask.cube") / "data"))
#: The CUBEPAR file shipped with mrsdask (made by ``python -m mrsdask.cube.make_cubepar``).
DEFAULT_CUBEPAR_FILE = DATA_DIR / "jwst_miri_cubepar_mrsdask.fits"

#: Weighting schemes of the official step (its ``weighting`` option).
WEIGHTINGS = ("drizzle", "msm", "emsm")

# ---------------------------------------------------------------------------------------
# The default recipe (docs §2.3; constants as in miri3d make_cubepar.py, Nov 2022).
# ---------------------------------------------------------------------------------------

#: SPAXELSIZE per channel [arcsec].
SPAXELSIZE = MappingProxyType({1: 0.13, 2: 0.17, 3: 0.20, 4: 0.35})
#: SPECTRALSTEP per channel [µm].
SPECTRALSTEP = MappingProxyType({1: 0.0008, 2: 0.0013, 3: 0.0025, 4: 0.006})
#: CUBEPAR_MSM ROISPATIAL per channel [arcsec].
MSM_ROISPATIAL = MappingProxyType({1: 0.10, 2: 0.15, 3: 0.20, 4: 0.40})
#: CUBEPAR_MSM ROISPECTRAL per channel [µm].
MSM_ROISPECTRAL = MappingProxyType({1: 0.001, 2: 0.002, 3: 0.003, 4: 0.006})
#: MSM weighting power (all bands, all wavelengths).
MSM_POWER = 2.0
#: MSM softening radius [arcsec] (all bands, all wavelengths).
MSM_SOFTRAD = 0.01
#: CUBEPAR_EMSM ROISPECTRAL per channel [µm].
EMSM_ROISPECTRAL = MappingProxyType({1: 0.0025, 2: 0.005, 3: 0.007, 4: 0.014})
#: Rough band centres [µm] used for the EMSM FWHM (values of make_cubepar.py).
EMSM_BAND_CENTRE = MappingProxyType(
    {
        "1A": 5.3, "1B": 6.1, "1C": 7.1,
        "2A": 8.2, "2B": 9.4, "2C": 10.8,
        "3A": 12.5, "3B": 14.5, "3C": 16.75,
        "4A": 19.1, "4B": 22.5, "4C": 26.0,
    }
)  # fmt: skip
#: PSF FWHM [arcsec] at :data:`FWHM_REFERENCE_WAVE`; FWHM scales as λ below that floor.
FWHM_REFERENCE = 0.31
#: Wavelength [µm] at which the diffraction FWHM equals :data:`FWHM_REFERENCE`.
FWHM_REFERENCE_WAVE = 8.0
#: Band ranges fixed by hand instead of measured (make_cubepar.py "Manual overrides for 4C").
FIXED_WAVE_RANGE = MappingProxyType({"4C": (24.4, 28.7)})
#: Detector rows on which the per-slice wavelength limits are measured (4th from each edge;
#: the three outer rows are DO_NOT_USE in real data).
WAVE_RANGE_ROWS = (3, -4)
#: (λ [µm], R) points of the quadratic resolving-power model of the multi grid.
RESOLVING_POWER_POINTS = ((5.0, 4000.0), (10.0, 3400.0), (12.0, 3000.0), (17.0, 2500.0), (27.0, 1400.0))
#: First wavelength of the multi grid [µm].
MULTI_WAVE_START = 4.90
#: The multi grid holds every generated wavelength up to and including this one [µm].
MULTI_WAVE_STOP = 27.9
#: MULTICHANNEL_MSM ROISPATIAL: linear through these two (λ [µm], value [arcsec]) points.
MULTI_MSM_ROISPATIAL = ((4.89, 0.076412330), (28.4186, 0.47762609))
#: MULTICHANNEL_MSM ROISPECTRAL: linear through these two (λ, value [µm]) points.
MULTI_MSM_ROISPECTRAL = ((4.89, 0.00067999235), (28.4186, 0.0082460508))
#: MULTICHANNEL_EMSM ROISPECTRAL: linear through these two (λ, value [µm]) points.
MULTI_EMSM_ROISPECTRAL = ((4.90, 0.0025), (28.4186, 0.014))

_SUBBAND_ORDER = ("SHORT", "MEDIUM", "LONG")


class CubeparFileError(InputError, ValueError):
    """A file is not a usable MIRI CUBEPAR reference file (the message names it)."""


class CubeParameterError(ParameterError, ValueError):
    """The parameters asked for cannot make a cube (the official step would fail too)."""


def _f32(value) -> float:
    """``value`` rounded to float32 and widened back to a Python float."""
    return float(np.float32(value))


def _f32_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)
    arr.setflags(write=False)
    return arr


# ---------------------------------------------------------------------------------------
# Data structure
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BandPars:
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

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _f32(getattr(self, f.name)))


@dataclass(frozen=True)
class MSMPars:
    """CUBEPAR_MSM row of one band (modified Shepard, 1/r^p weighting).

    Attributes
    ----------
    roispatial : float
        Spatial region of interest [arcsec].
    roispectral : float
        Spectral region of interest [µm].
    power : float
        Weighting power p.
    softrad : float
        Softening radius [arcsec].
    """

    roispatial: float
    roispectral: float
    power: float
    softrad: float

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _f32(getattr(self, f.name)))


@dataclass(frozen=True)
class EMSMPars:
    """CUBEPAR_EMSM row of one band (exponential modified Shepard weighting).

    Attributes
    ----------
    roispatial : float
        Spatial region of interest [arcsec].
    roispectral : float
        Spectral region of interest [µm].
    scalerad : float
        Exponential scale radius [arcsec].
    """

    roispatial: float
    roispectral: float
    scalerad: float

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _f32(getattr(self, f.name)))


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
        wave = _f32_array(self.wavelength)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError("a multichannel table needs a non-empty 1-D wavelength column")
        object.__setattr__(self, "wavelength", wave)
        for name in _MULTI_COLUMNS:
            col = getattr(self, name)
            if col is None:
                continue
            col = _f32_array(col)
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
        weighting = _check_weighting(weighting)
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


# ---------------------------------------------------------------------------------------
# The default recipe
# ---------------------------------------------------------------------------------------


def resolving_power(wavelength) -> np.ndarray | float:
    """Resolving power R(λ) of the multi-grid model: quadratic least-squares fit through
    :data:`RESOLVING_POWER_POINTS` (≈ 0.92491 λ² − 147.94 λ + 4722.6)."""
    pts = np.asarray(RESOLVING_POWER_POINTS)
    coeffs = np.polyfit(pts[:, 0], pts[:, 1], 2)
    return np.polyval(coeffs, wavelength)


def multi_wavelength_grid(start: float = MULTI_WAVE_START, stop: float = MULTI_WAVE_STOP) -> np.ndarray:
    """The non-linear "multi" wavelength grid [µm], float64 (before float32 storage).

    Nyquist sampling of the resolution element: λ₀ = ``start``, λᵢ₊₁ = λᵢ + λᵢ / (2 R(λᵢ))
    with R from :func:`resolving_power`; every generated λ ≤ ``stop`` is kept (generation
    stops at the first λ above ``stop``). With the defaults this gives 10,324 wavelengths
    from 4.900 to 27.899 µm.
    """
    pts = np.asarray(RESOLVING_POWER_POINTS)
    coeffs = np.polyfit(pts[:, 0], pts[:, 1], 2)
    out = []
    lam = float(start)
    while lam <= stop:
        out.append(lam)
        lam = lam + lam / (2.0 * float(np.polyval(coeffs, lam)))
    return np.asarray(out, dtype=np.float64)


def _linear(points, x):
    (x0, y0), (x1, y1) = points
    return ((y1 - y0) / (x1 - x0)) * (np.asarray(x, dtype=np.float64) - x0) + y0


def emsm_fwhm(wavelength) -> np.ndarray:
    """Rough PSF FWHM [arcsec] used for EMSM parameters: λ/8·0.31, and 0.31 below 8 µm.

    Below 8 µm the MRS PSF is not diffraction limited (non-circular), so make_cubepar.py
    holds it at 0.31″; mrsdask applies the same floor per wavelength in the
    MULTICHANNEL_EMSM table (the brief leaves this open; this is the generator's choice).
    """
    wave = np.asarray(wavelength, dtype=np.float64)
    fwhm = wave / FWHM_REFERENCE_WAVE * FWHM_REFERENCE
    return np.where(wave < FWHM_REFERENCE_WAVE, FWHM_REFERENCE, fwhm)


def round_wave_range(lmin: float, lmax: float) -> tuple[float, float]:
    """Measured band limits → CUBEPAR WAVEMIN/WAVEMAX: round to 0.01 µm (``np.round``),
    then pull each end in by 0.01 µm."""
    return float(np.round(lmin, 2) + 0.01), float(np.round(lmax, 2) - 0.01)


def cross_dichroic_bands(band: str | Band) -> tuple[str, str]:
    """The two cross-dichroic BAND values whose CUBEPAR rows copy ``band``'s values.

    Channels 1 and 4 are set by the DGAA wheel (first name of a cross-dichroic BAND) and
    channels 2 and 3 by the DGAB wheel (second name), as make_cubepar.py states; e.g.
    1A → (``SHORT-MEDIUM``, ``SHORT-LONG``), 2A → (``LONG-SHORT``, ``MEDIUM-SHORT``).
    The first value goes to rows 13–24, the second to rows 25–36 of an official file.
    """
    b = band if isinstance(band, Band) else band_from_name(band)
    own = SUBBAND_KEYWORD[b.subband]
    i = _SUBBAND_ORDER.index(own)
    nxt, prv = _SUBBAND_ORDER[(i + 1) % 3], _SUBBAND_ORDER[(i - 1) % 3]
    if b.channel in (1, 4):
        return f"{own}-{nxt}", f"{own}-{prv}"
    return f"{prv}-{own}", f"{nxt}-{own}"


def build_default_cubepars(
    measured_ranges: Mapping[str, tuple[float, float]], source: str = "mrsdask default recipe"
) -> CubePars:
    """The default parameter set from measured per-band wavelength limits.

    Parameters
    ----------
    measured_ranges : mapping
        Band name → (largest per-slice minimum, smallest per-slice maximum) wavelength [µm]
        measured on detector rows 3 and −4 (see ``make_cubepar.measure_band_wave_ranges``).
        Bands in :data:`FIXED_WAVE_RANGE` (4C) may be missing; their fixed range is used.
    source : str
        Stored as :attr:`CubePars.source`.
    """
    ranges = {band_from_name(k).name: v for k, v in measured_ranges.items()}
    bands, msm, emsm = {}, {}, {}
    for name in BAND_NAMES:
        ch = int(name[0])
        if name in FIXED_WAVE_RANGE:
            wmin, wmax = FIXED_WAVE_RANGE[name]
        else:
            if name not in ranges:
                raise ValueError(f"no measured wavelength range for band {name}")
            wmin, wmax = round_wave_range(*ranges[name])
        bands[name] = BandPars(wmin, wmax, SPAXELSIZE[ch], SPECTRALSTEP[ch])
        msm[name] = MSMPars(MSM_ROISPATIAL[ch], MSM_ROISPECTRAL[ch], MSM_POWER, MSM_SOFTRAD)
        # Channel 1 keeps FWHM = 0.31" (non-circular PSF); others λ_c/8 * 0.31".
        fwhm = FWHM_REFERENCE if ch == 1 else EMSM_BAND_CENTRE[name] / FWHM_REFERENCE_WAVE * FWHM_REFERENCE
        emsm[name] = EMSMPars(fwhm, EMSM_ROISPECTRAL[ch], fwhm / 3.0)
    wave = multi_wavelength_grid()
    n = wave.size
    fwhm = emsm_fwhm(wave)
    multi_msm = MultiTable(
        wave,
        roispatial=_linear(MULTI_MSM_ROISPATIAL, wave),
        roispectral=_linear(MULTI_MSM_ROISPECTRAL, wave),
        power=np.full(n, MSM_POWER),
        softrad=np.full(n, MSM_SOFTRAD),
    )
    multi_emsm = MultiTable(
        wave,
        roispatial=fwhm,
        roispectral=_linear(MULTI_EMSM_ROISPECTRAL, wave),
        scalerad=fwhm / 3.0,
    )
    return CubePars(bands, msm, emsm, MultiTable(wave), multi_msm, multi_emsm, source=source)


# ---------------------------------------------------------------------------------------
# Reading and writing the official format
# ---------------------------------------------------------------------------------------

#: Tables of a MIRI CUBEPAR file and the columns the official reader uses.
CUBEPAR_TABLES = MappingProxyType(
    {
        "CUBEPAR": ("CHANNEL", "BAND", "SPAXELSIZE", "SPECTRALSTEP", "WAVEMIN", "WAVEMAX"),
        "CUBEPAR_MSM": ("CHANNEL", "BAND", "ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"),
        "MULTICHANNEL_MSM": ("WAVELENGTH", "ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"),
        "CUBEPAR_EMSM": ("CHANNEL", "BAND", "ROISPATIAL", "ROISPECTRAL", "SCALERAD"),
        "MULTICHANNEL_EMSM": ("WAVELENGTH", "ROISPATIAL", "ROISPECTRAL", "SCALERAD"),
        "MULTICHANNEL_DRIZ": ("WAVELENGTH",),
    }
)
_UNITS = {
    "WAVEMIN": "micron", "WAVEMAX": "micron", "SPAXELSIZE": "arcsec", "SPECTRALSTEP": "micron",
    "ROISPATIAL": "arcsec", "ROISPECTRAL": "micron", "SOFTRAD": "arcsec", "SCALERAD": "arcsec",
    "WAVELENGTH": "micron",
}  # fmt: skip


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _band_rows(path, ext, data, columns) -> dict[str, tuple]:
    """Rows of a per-band table for the 12 ordinary bands (last matching row wins, as in
    the official reader's loop)."""
    channel = [_text(c) for c in data["CHANNEL"]]
    band = [_text(b).upper() for b in data["BAND"]]
    cols = [np.asarray(data[c]) for c in columns]
    rows = {}
    for i, (ch, bd) in enumerate(zip(channel, band, strict=True)):
        if ch in ("1", "2", "3", "4") and bd in _SUBBAND_ORDER:
            rows[band_from_name(ch + bd).name] = tuple(c[i] for c in cols)
    missing = [b for b in BAND_NAMES if b not in rows]
    if missing:
        raise CubeparFileError(f"{path}: table {ext} has no row for bands {', '.join(missing)}")
    return rows


def read_cubepar(path: str | os.PathLike) -> CubePars:
    """Read an official MIRI CUBEPAR reference file (e.g. one from CRDS).

    Numbers are read as the official reader sees them (float32, file order). The 24
    cross-dichroic rows are ignored; for a band with several rows the last one wins, as in
    the official reader.

    Raises
    ------
    CubeparFileError
        (a ``ValueError`` and an :class:`mrsdask.errors.InputError`) naming the file, when
        it is missing, not FITS, not a MIRI CUBEPAR file, or lacks a table, a column or a
        band row that the official step may use.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise CubeparFileError(f"{path}: no such CUBEPAR file")
    try:
        hdul = fits.open(path, memmap=False)
        _ = hdul[0].header
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, ...
        raise CubeparFileError(f"{path} is not a readable FITS file ({exc})") from exc
    with hdul:
        header = hdul[0].header
        instrument = _text(header.get("INSTRUME", "")).upper()
        reftype = _text(header.get("REFTYPE", "")).upper()
        if instrument != "MIRI" or reftype != "CUBEPAR":
            raise CubeparFileError(
                f"{path} is not a MIRI CUBEPAR reference file "
                f"(INSTRUME={instrument or 'missing'!s}, REFTYPE={reftype or 'missing'!s})"
            )
        present = {h.name.upper(): h for h in hdul[1:]}
        tables = {}
        for ext, columns in CUBEPAR_TABLES.items():
            hdu = present.get(ext)
            if hdu is None or not isinstance(hdu, fits.BinTableHDU):
                raise CubeparFileError(f"{path}: MIRI CUBEPAR file lacks the {ext} table")
            names = {n.upper() for n in hdu.columns.names}
            lacking = [c for c in columns if c not in names]
            if lacking:
                raise CubeparFileError(
                    f"{path}: table {ext} lacks column(s) {', '.join(lacking)}"
                )
            if hdu.data is None or len(hdu.data) == 0:
                raise CubeparFileError(f"{path}: table {ext} is empty")
            tables[ext] = hdu.data
        try:
            def per_band(ext, kind, columns):
                rows = _band_rows(path, ext, tables[ext], columns)
                return {b: kind(*r) for b, r in rows.items()}

            bands = per_band("CUBEPAR", BandPars, ("WAVEMIN", "WAVEMAX", "SPAXELSIZE", "SPECTRALSTEP"))
            msm = per_band("CUBEPAR_MSM", MSMPars, ("ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"))
            emsm = per_band("CUBEPAR_EMSM", EMSMPars, ("ROISPATIAL", "ROISPECTRAL", "SCALERAD"))

            def multi(ext):
                data = tables[ext]
                cols = {c.lower(): np.asarray(data[c]) for c in CUBEPAR_TABLES[ext]}
                return MultiTable(**cols)

            return CubePars(
                bands, msm, emsm,
                multi("MULTICHANNEL_DRIZ"), multi("MULTICHANNEL_MSM"), multi("MULTICHANNEL_EMSM"),
                source=str(path),
            )  # fmt: skip
        except CubeparFileError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise CubeparFileError(f"{path}: unusable CUBEPAR values ({exc})") from exc


def _band_table(pars: CubePars, names: tuple[str, ...], values) -> np.ndarray:
    """Structured array of a per-band table: 12 ordinary rows, then the two blocks of
    cross-dichroic rows copying their matching band (make_cubepar.py row order)."""
    dtype = [("CHANNEL", "S3"), ("BAND", "S12")] + [(n, "f4") for n in names]
    rows = []
    for block in range(3):
        for name in BAND_NAMES:
            b = band_from_name(name)
            keyword = SUBBAND_KEYWORD[b.subband] if block == 0 else cross_dichroic_bands(b)[block - 1]
            rows.append((str(b.channel), keyword) + tuple(values(name)))
    return np.array(rows, dtype=dtype)


def write_cubepar(
    pars: CubePars,
    path: str | os.PathLike,
    *,
    description: str | None = None,
    author: str = "mrsdask",
    pedigree: str = "INFLIGHT 2022-06-08 2022-06-08",
    useafter: str = "2022-05-01T00:00:00",
    history: Iterable[str] = (),
    overwrite: bool = True,
) -> Path:
    """Write ``pars`` as an official MIRI CUBEPAR reference file.

    The file is made with ``MiriIFUCubeParsModel`` (all six tables, 36 rows in the
    per-band tables: the 12 bands then 24 cross-dichroic rows copying their matching band)
    and then given the upper-case column names and units of the CRDS files. Passing it as
    ``CubeBuildStep(override_cubepar=path)`` makes the official step use exactly these
    numbers.

    Parameters
    ----------
    pars : CubePars
        The parameters.
    path : path-like
        Output FITS file.
    description, author, pedigree, useafter : str
        Reference-file metadata (DESCRIP, AUTHOR, PEDIGREE, USEAFTER). The default pedigree
        and use-after date are those of the FLT-9 distortion/wavelength files the shipped
        defaults were derived from.
    history : iterable of str
        HISTORY lines to add.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import MiriIFUCubeParsModel

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")

    def multi(table: MultiTable, ext: str) -> np.ndarray:
        cols = [c.lower() for c in CUBEPAR_TABLES[ext]]
        arr = np.zeros(len(table), dtype=[(c.upper(), "f4") for c in cols])
        for c in cols:
            arr[c.upper()] = getattr(table, c)
        return arr

    model = MiriIFUCubeParsModel()
    try:
        model.ifucubepars_table = _band_table(
            pars, ("SPAXELSIZE", "SPECTRALSTEP", "WAVEMIN", "WAVEMAX"),
            lambda b: (pars.bands[b].spaxelsize, pars.bands[b].spectralstep,
                       pars.bands[b].wavemin, pars.bands[b].wavemax),
        )  # fmt: skip
        model.ifucubepars_msm_table = _band_table(
            pars, ("ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"),
            lambda b: (pars.msm[b].roispatial, pars.msm[b].roispectral,
                       pars.msm[b].power, pars.msm[b].softrad),
        )  # fmt: skip
        model.ifucubepars_emsm_table = _band_table(
            pars, ("ROISPATIAL", "ROISPECTRAL", "SCALERAD"),
            lambda b: (pars.emsm[b].roispatial, pars.emsm[b].roispectral, pars.emsm[b].scalerad),
        )
        model.ifucubepars_multichannel_msm_wavetable = multi(pars.multi_msm, "MULTICHANNEL_MSM")
        model.ifucubepars_multichannel_emsm_wavetable = multi(pars.multi_emsm, "MULTICHANNEL_EMSM")
        model.ifucubepars_multichannel_driz_wavetable = multi(pars.multi_driz, "MULTICHANNEL_DRIZ")
        meta = model.meta
        meta.reftype = "CUBEPAR"
        meta.telescope = "JWST"
        meta.instrument.name = "MIRI"
        meta.instrument.detector = "N/A"
        meta.exposure.type = "MIR_MRS"
        meta.author = author
        meta.pedigree = pedigree
        meta.useafter = useafter
        meta.description = description or f"MIRI MRS cube parameters written by mrsdask from {pars.source}"
        for line in history:
            model.add_history_entry(str(line))
        model.validate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".fits")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            model.save(tmp, overwrite=True)
            # The datamodel writes the schema's lower-case column names; CRDS files (and the
            # official reader's lookups) use upper case. FITS names are case-insensitive, so
            # this changes nothing for the datamodel, only the look of the file.
            with fits.open(tmp, mode="update") as hdul:
                hdul[0].header["FILENAME"] = path.name
                for hdu in hdul[1:]:
                    if not isinstance(hdu, fits.BinTableHDU):
                        continue
                    for i, name in enumerate(hdu.columns.names, start=1):
                        hdu.header[f"TTYPE{i}"] = name.upper()
                        unit = _UNITS.get(name.upper())
                        if unit:
                            hdu.header[f"TUNIT{i}"] = unit
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    finally:
        model.close()
    return path


@functools.lru_cache(maxsize=1)
def default_cubepars() -> CubePars:
    """The parameters shipped with mrsdask (read once from :data:`DEFAULT_CUBEPAR_FILE`).

    Made by ``python -m mrsdask.cube.make_cubepar`` from the shipped FLT-9 reference files
    with the recipe of :func:`build_default_cubepars`. The result is immutable and shared.
    """
    return read_cubepar(DEFAULT_CUBEPAR_FILE)


# ---------------------------------------------------------------------------------------
# Per-cube parameters (IFUCubeData.determine_cube_parameters)
# ---------------------------------------------------------------------------------------


def _check_weighting(weighting: str) -> str:
    w = str(weighting).strip().lower()
    if w not in WEIGHTINGS:
        raise CubeParameterError(f"unknown weighting {weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
    return w


@dataclass(frozen=True, eq=False)
class CubeParameters:
    """Parameters of one cube, as the official ``determine_cube_parameters`` sets them.

    ``NaN`` marks a value the reference file does not give for this weighting (the
    official step turns a missing table value into NaN the same way); ``None`` marks a value
    the official step leaves unset.

    Attributes
    ----------
    bands : tuple of str
        The cube's bands, in the order given.
    weighting : str
        ``drizzle``, ``msm`` or ``emsm``.
    linear : bool
        Linear wavelength axis (``False``: the multichannel table gives the planes).
    n_files : int
        Number of input files as the official step counts them (summed over bands).
    spatial_size : float
        Spaxel size [arcsec] (CDELT1 = CDELT2, in degrees in the cube header).
    wavemin, wavemax : float
        Wavelength range [µm] that sets the cube's spectral extent.
    spectral_size : float or None
        Linear step [µm] (CDELT3): ``scalew`` or the bands' common SPECTRALSTEP; ``None``
        when the bands' steps differ and ``scalew`` is 0.
    rois, roiw : float or None
        Spatial [arcsec] and spectral [µm] regions of interest used in the linear case.
    weight_power : float or None
        MSM power used in the linear case (``None`` when not defined).
    softrad, scalerad : float or None
        MSM softening radius and EMSM scale radius [arcsec] used in the linear case.
    wavelength_table, rois_table, roiw_table : ndarray or None
    softrad_table, weight_power_table, scalerad_table : ndarray or None
        Non-linear case only: the selected rows of the multichannel table. Pixels take
        their parameters from the nearest table wavelength; user ``rois``/``roiw``/
        ``weight_power`` do not change these tables.
    """

    bands: tuple[str, ...]
    weighting: str
    linear: bool
    n_files: int
    spatial_size: float
    wavemin: float
    wavemax: float
    spectral_size: float | None
    rois: float | None
    roiw: float | None
    weight_power: float | None
    softrad: float | None
    scalerad: float | None
    wavelength_table: np.ndarray | None = None
    rois_table: np.ndarray | None = None
    roiw_table: np.ndarray | None = None
    softrad_table: np.ndarray | None = None
    weight_power_table: np.ndarray | None = None
    scalerad_table: np.ndarray | None = None

    @property
    def interpolation(self) -> str:
        """``drizzle`` or ``pointcloud`` (msm/emsm), as the official step names it."""
        return "drizzle" if self.weighting == "drizzle" else "pointcloud"

    @property
    def naxis3(self) -> int:
        """Number of wavelength planes of the cube."""
        if self.linear:
            return int(math.ceil((self.wavemax - self.wavemin) / self.spectral_size))
        return int(self.wavelength_table.size)

    @property
    def crval3(self) -> float:
        """Wavelength of the first plane [µm] (CRPIX3 = 1)."""
        if self.linear:
            return self.wavemin + self.spectral_size / 2.0
        return float(self.wavelength_table[0])

    def plane_wavelengths(self) -> np.ndarray:
        """Centre wavelength of each plane [µm], computed as the official step does."""
        if not self.linear:
            return np.array(self.wavelength_table, dtype=np.float64)
        n = self.naxis3
        step = self.spectral_size
        top = self.wavemin + n * step
        return np.arange(self.wavemin + step / 2.0, top, step)[:n]


def _band_values(pars: CubePars, name: str, weighting: str):
    """(spaxelsize, step, wmin, wmax, rois, roiw, power, softrad, scalerad) for one band;
    NaN where the weighting's table does not give a value (official: None → NaN)."""
    b = pars.bands[name]
    nan = math.nan
    if weighting == "msm":
        m = pars.msm[name]
        extra = (m.roispatial, m.roispectral, m.power, m.softrad, nan)
    elif weighting == "emsm":
        e = pars.emsm[name]
        extra = (e.roispatial, e.roispectral, nan, nan, e.scalerad)
    else:
        extra = (nan, nan, nan, nan, nan)
    return (b.spaxelsize, b.spectralstep, b.wavemin, b.wavemax) + extra


def cube_parameters(
    pars: CubePars,
    bands: Iterable[str | Band],
    weighting: str,
    linear: bool,
    n_files: int,
    wavemin: float | None = None,
    wavemax: float | None = None,
    scalexy: float = 0,
    scalew: float = 0,
    rois: float = 0,
    roiw: float = 0,
    weight_power: float = 0,
) -> CubeParameters:
    """Parameters of one cube, reproducing the official ``determine_cube_parameters``.

    Parameters
    ----------
    pars : CubePars
        The reference parameters (e.g. :func:`default_cubepars`).
    bands : iterable of str or Band
        The cube's bands in the official step's order (the first one decides ties).
    weighting : str
        ``drizzle``, ``msm`` or ``emsm``.
    linear : bool
        The step's ``linear_wave`` (``False`` when ``output_type="multi"``).
    n_files : int
        Input files as the official step counts them: for each band of the cube, the number
        of exposures holding it, summed (an exposure counts once per band it gives).
    wavemin, wavemax : float, optional
        User wavelength limits [µm]; default min WAVEMIN / max WAVEMAX over the bands.
    scalexy : float
        User spaxel size [arcsec]; 0 = from the file (min SPAXELSIZE unless all equal).
    scalew : float
        User linear step [µm]; 0 = from the file. When set, roiw/power/softrad/scalerad are
        the minimum over the bands.
    rois, roiw : float
        User regions of interest; 0 = from the file. From the file, ``rois`` is that of the
        band with the smallest spaxel size and is multiplied by 1.5 when ``n_files < 4``
        and the weighting is not ``emsm``.
    weight_power : float
        User MSM power; 0 = from the file. Note the official step's own default is 2.0,
        not 0: pass ``weight_power=2.0`` to mimic a default ``CubeBuildStep``.

    Returns
    -------
    CubeParameters

    Raises
    ------
    CubeParameterError
        Unknown band or weighting; a linear cube of bands with different SPECTRALSTEP and
        no ``scalew`` (the official step fails there: its spectral step stays unset); an
        essential parameter that is NaN (the official ``IncorrectParameterError``).

    Notes
    -----
    Non-linear case: the rows of the weighting's multichannel table nearest to ``wavemin``
    and ``wavemax`` are found; the first is moved one row down when its wavelength is above
    ``wavemin`` and its index is above 1 (the official test is ``imin > 1``, so row 1 is
    never widened to row 0), the last one row up when below ``wavemax`` and not the last
    row. ``rois_table`` is multiplied by 1.5 when ``n_files < 4`` whatever the weighting.
    """
    weighting = _check_weighting(weighting)
    try:
        names = tuple(b.name if isinstance(b, Band) else band_from_name(b).name for b in bands)
    except ValueError as exc:
        raise CubeParameterError(str(exc)) from exc
    if not names:
        raise CubeParameterError("a cube needs at least one band")
    linear = bool(linear)
    n_files = int(n_files)

    vals = np.array([_band_values(pars, n, weighting) for n in names], dtype=np.float64)
    spaxel, step, minw, maxw, b_rois, b_roiw, b_power, b_softrad, b_scalerad = vals.T

    if np.all(spaxel == spaxel[0]):
        spatial_size = float(spaxel[0])
        spatial_roi = float(b_rois[0])
    else:
        k = int(np.argmin(spaxel))
        spatial_size = float(spaxel[k])
        spatial_roi = float(b_rois[k])

    wmin = float(np.amin(minw)) if wavemin is None else float(np.float64(wavemin))
    wmax = float(np.amax(maxw)) if wavemax is None else float(np.float64(wavemax))

    spectral_size = wave_roi = table_power = softrad = scalerad = None
    if scalew != 0:
        spectral_size = scalew
        wave_roi = float(np.amin(b_roiw))
        table_power = float(np.amin(b_power))
        softrad = float(np.amin(b_softrad))
        scalerad = float(np.amin(b_scalerad))
    elif np.all(step == step[0]):
        spectral_size = float(step[0])
        wave_roi = float(b_roiw[0])
        table_power = float(b_power[0])
        softrad = float(b_softrad[0])
        scalerad = float(b_scalerad[0])

    tables = {}
    if not linear:
        table = pars.multi_table(weighting)
        n_rows = len(table)
        # Same arithmetic as the official code: float32 table values minus a float64 limit.
        # (np.float64 limits: a Python float would be compared in float32 under NEP 50.)
        wave32 = table.wavelength.astype(np.float32)
        lo, hi = np.float64(wmin), np.float64(wmax)
        imin = int(np.abs(wave32 - lo).argmin())
        imax = int(np.abs(wave32 - hi).argmin())
        if imin > 1 and wave32[imin] > lo:
            imin -= 1
        if imax < n_rows - 1 and hi > wave32[imax]:
            imax += 1
        sel = slice(imin, imax + 1)
        nsel = max(imax - imin + 1, 0)

        def column(name):
            col = getattr(table, name)
            arr = np.full(nsel, np.nan) if col is None else np.array(col[sel], dtype=np.float64)
            arr.setflags(write=False)
            return arr

        rois_table = column("roispatial")
        if n_files < 4:
            rois_table = rois_table * 1.5
            rois_table.setflags(write=False)
        tables = dict(
            wavelength_table=column("wavelength"),
            rois_table=rois_table,
            roiw_table=column("roispectral"),
            softrad_table=column("softrad"),
            weight_power_table=column("power"),
            scalerad_table=column("scalerad"),
        )

    if rois == 0.0:
        out_rois = spatial_roi
        if n_files < 4 and weighting != "emsm":
            out_rois = out_rois * 1.5
    else:
        out_rois = float(rois)
    out_roiw = wave_roi if roiw == 0 else float(roiw)
    out_power = table_power if weight_power == 0 else float(weight_power)
    if scalexy != 0:
        spatial_size = float(scalexy)

    problems = []

    def isnan(x):
        return x is None or bool(np.isnan(x))

    if linear:
        if spectral_size is None:
            raise CubeParameterError(
                f"bands {', '.join(names)} have different SPECTRALSTEP values "
                f"({', '.join(f'{s:g}' for s in step)}): a linear wavelength axis needs "
                "scalew (--scalew), or a tabular axis (linear_wave=False, --no-linear-wave); "
                "the official step fails with these settings"
            )
        if weighting != "drizzle":
            if isnan(out_rois):
                problems.append("spatial roi")
            if isnan(out_roiw):
                problems.append("spectral roi")
        if weighting == "msm":
            if isnan(out_power):
                problems.append("weight power")
            if isnan(softrad):
                problems.append("soft rad")
        if weighting == "emsm" and isnan(scalerad):
            problems.append("scalerad")
    else:
        def all_nan(name):
            return bool(np.isnan(tables[name]).all())

        if all_nan("wavelength_table"):
            problems.append("wavelength table")
        if weighting != "drizzle":
            if all_nan("rois_table"):
                problems.append("spatial roi table")
            if all_nan("roiw_table"):
                problems.append("spectral roi table")
        if weighting == "msm":
            if all_nan("softrad_table"):
                problems.append("soft rad table")
            if all_nan("weight_power_table"):
                problems.append("weight power table")
        if weighting == "emsm" and all_nan("scalerad_table"):
            problems.append("scalerad table")
    if problems:
        raise CubeParameterError(
            f"essential cube parameter(s) are NaN ({', '.join(problems)}) for bands "
            f"{', '.join(names)} with weighting {weighting}; check the CUBEPAR file {pars.source}"
        )
    if out_power is not None and np.isnan(out_power):
        out_power = None

    return CubeParameters(
        bands=names,
        weighting=weighting,
        linear=linear,
        n_files=n_files,
        spatial_size=spatial_size,
        wavemin=wmin,
        wavemax=wmax,
        spectral_size=spectral_size,
        rois=out_rois,
        roiw=out_roiw,
        weight_power=out_power,
        softrad=softrad,
        scalerad=scalerad,
        **tables,
    )
