"""MIRI MRS cube-building parameters: the CUBEPAR reference file and per-cube choices.

The official ``cube_build`` step takes every default that shapes a cube (spaxel size,
wavelength range and step, regions of interest, weighting parameters and the non-linear
"multi" wavelength grid) from one reference file, CUBEPAR (``MiriIFUCubeParsModel``).
This module holds those numbers in an immutable :class:`CubePars`, reads and writes the
official file format, ships a default file built from the FLT-9 reference files carried by
mrsdask (so no CRDS access is needed), and reproduces the official per-cube parameter
choice (``IFUCubeData.determine_cube_parameters``) in :func:`cube_parameters`.

Modules
-------
:mod:`~mrsdask.cube.cubepars.model` (the parameter set), :mod:`~mrsdask.cube.cubepars.recipe`
(the default recipe and its constants), :mod:`~mrsdask.cube.cubepars.cubepar_file` (the
official file format and the shipped file), :mod:`~mrsdask.cube.cubepars.choice` (the
parameters of one cube). Everything public is importable from this package.

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

from mrsdask.cube.cubepars.choice import (
    CubeParameters,
    cube_parameters,
)
from mrsdask.cube.cubepars.cubepar_file import (
    CUBEPAR_TABLES,
    DATA_DIR,
    DEFAULT_CUBEPAR_FILE,
    default_cubepars,
    read_cubepar,
    write_cubepar,
)
from mrsdask.cube.cubepars.model import (
    WEIGHTINGS,
    BandPars,
    CubeParameterError,
    CubePars,
    CubeparFileError,
    EMSMPars,
    MSMPars,
    MultiTable,
    as_float32,
    as_float32_array,
    check_weighting,
)
from mrsdask.cube.cubepars.recipe import (
    EMSM_BAND_CENTRE,
    EMSM_ROISPECTRAL,
    FIXED_WAVE_RANGE,
    FWHM_REFERENCE,
    FWHM_REFERENCE_WAVE,
    MSM_POWER,
    MSM_ROISPATIAL,
    MSM_ROISPECTRAL,
    MSM_SOFTRAD,
    MULTI_EMSM_ROISPECTRAL,
    MULTI_MSM_ROISPATIAL,
    MULTI_MSM_ROISPECTRAL,
    MULTI_WAVE_START,
    MULTI_WAVE_STOP,
    RESOLVING_POWER_POINTS,
    SPAXELSIZE,
    SPECTRALSTEP,
    SUBBAND_ORDER,
    WAVE_RANGE_ROWS,
    build_default_cubepars,
    cross_dichroic_bands,
    emsm_fwhm,
    multi_wavelength_grid,
    resolving_power,
    round_wave_range,
)

__all__ = [
    "CUBEPAR_TABLES",
    "DATA_DIR",
    "DEFAULT_CUBEPAR_FILE",
    "EMSM_BAND_CENTRE",
    "EMSM_ROISPECTRAL",
    "FIXED_WAVE_RANGE",
    "FWHM_REFERENCE",
    "FWHM_REFERENCE_WAVE",
    "MSM_POWER",
    "MSM_ROISPATIAL",
    "MSM_ROISPECTRAL",
    "MSM_SOFTRAD",
    "MULTI_EMSM_ROISPECTRAL",
    "MULTI_MSM_ROISPATIAL",
    "MULTI_MSM_ROISPECTRAL",
    "MULTI_WAVE_START",
    "MULTI_WAVE_STOP",
    "RESOLVING_POWER_POINTS",
    "SPAXELSIZE",
    "SPECTRALSTEP",
    "SUBBAND_ORDER",
    "WAVE_RANGE_ROWS",
    "WEIGHTINGS",
    "BandPars",
    "CubeParameterError",
    "CubeParameters",
    "CubePars",
    "CubeparFileError",
    "EMSMPars",
    "MSMPars",
    "MultiTable",
    "as_float32",
    "as_float32_array",
    "build_default_cubepars",
    "check_weighting",
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
