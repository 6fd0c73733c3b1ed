"""The default CUBEPAR recipe: the constants and rules that make the shipped parameter set.

Constants as in ``miri3d/cubepar/make_cubepar.py`` (Nov 2022; docs §2.3);
:func:`build_default_cubepars` applies them to the measured per-band wavelength ranges, and
:func:`multi_wavelength_grid` gives the non-linear "multi" wavelength grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from mrsdask.cube.cubepars.model import BandPars, CubePars, EMSMPars, MSMPars, MultiTable
from mrsdask.instrument.bands import BAND_NAMES, SUBBAND_KEYWORD, Band, band_from_name


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

#: Subbands in the cyclic order that pairs them in the cross-dichroic CUBEPAR rows.
SUBBAND_ORDER = ("SHORT", "MEDIUM", "LONG")


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
    i = SUBBAND_ORDER.index(own)
    nxt, prv = SUBBAND_ORDER[(i + 1) % 3], SUBBAND_ORDER[(i - 1) % 3]
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
