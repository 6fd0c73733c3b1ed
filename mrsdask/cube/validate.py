"""Checks of a cube request against the data, made from the headers before any work starts.

A request the data cannot satisfy must fail at once with the numbers and the fix, not after a
cluster has started and pixel tables have been computed: a wavelength range outside every
band of the data (it would give cubes of nothing but NaN), a tangent point far from every
input footprint, or a grid so large that it cannot be written. The sizes are estimated from
the exposures' ``S_REGION`` footprints (the same corners the official step uses for most
cubes; the actual grid may differ by a spaxel or two) and the cube parameters.
"""

from __future__ import annotations

import math

import numpy as np

from mrsdask.cube.cubepars import CubePars, cube_parameters
from mrsdask.cube.plan import CubePlan, CubeRequest
from mrsdask.errors import ParameterError

#: Largest cube mrsdask builds: 2e10 voxels is a 320 GB store (16 bytes a voxel for SCI, ERR,
#: DQ and WMAP); the largest measured job (3 pointings 40" apart, multi) has 1.5e9.
MAX_CUBE_VOXELS = 2 * 10**10
#: Largest plane (spaxels): the per-spaxel RA/Dec coordinates alone are 16 bytes each.
MAX_CUBE_SPAXELS = 10**7
#: Farthest a user tangent point (--ra-center/--dec-center) may lie from every input footprint.
MAX_CENTRE_OFFSET_ARCMIN = 10.0


def check_request(rows: list[dict], plans: list[CubePlan], request: CubeRequest, pars: CubePars) -> None:
    """Refuse a request that the data cannot satisfy (headers only, cheap).

    Parameters
    ----------
    rows : list of dict
        Exposure table (:func:`mrsdask.datamodel.detector.exposure_table`).
    plans : list of CubePlan
        The cubes to build (:func:`mrsdask.cube.plan.plan_cubes`).
    request : CubeRequest
    pars : CubePars

    Raises
    ------
    ParameterError
        If the wavelength range misses the data, the centre is far from every footprint, or a
        cube would be larger than :data:`MAX_CUBE_VOXELS` / :data:`MAX_CUBE_SPAXELS`.
    """
    for plan in plans:
        _check_wavelengths(plan, request, pars)
        _check_size(plan, request, pars, rows)


def _check_wavelengths(plan: CubePlan, request: CubeRequest, pars: CubePars) -> None:
    names = [b.name for b in plan.bands]
    lo = min(pars.bands[n].wavemin for n in names)
    hi = max(pars.bands[n].wavemax for n in names)
    wmin = request.wavemin if request.wavemin is not None else lo
    wmax = request.wavemax if request.wavemax is not None else hi
    if wmax <= lo or wmin >= hi:
        raise ParameterError(
            f"cube {plan.name}: the wavelength range {wmin:g}-{wmax:g} um asked (--wavemin/--wavemax) misses the "
            f"data, whose band(s) {' '.join(names)} cover {lo:g}-{hi:g} um; give a range that overlaps it")


def _footprint_corners(plan: CubePlan, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """S_REGION corners of the plan's exposures (target positions where there is none)."""
    from mrsdask.cube.spec import parse_s_region

    ra, dec = [], []
    for index in plan.exposures:
        row = rows[index]
        poly = parse_s_region(str(row.get("s_region") or ""))
        if poly is not None and np.isfinite(poly).all():
            ra.extend(poly[0])
            dec.extend(poly[1])
        elif np.isfinite([row.get("targ_ra", np.nan), row.get("targ_dec", np.nan)]).all():
            ra.append(float(row["targ_ra"]))
            dec.append(float(row["targ_dec"]))
    return np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)


def _separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def _check_size(plan: CubePlan, request: CubeRequest, pars: CubePars, rows: list[dict]) -> None:
    from mrsdask.cube.grid import circular_mean_deg, spatial_grid_from_corners, wrap_ra

    from mrsdask.cube.spec import linear_axis

    ra, dec = _footprint_corners(plan, rows)
    linear = linear_axis(request, plan, pars)
    params = cube_parameters(
        pars, [b.name for b in plan.bands], request.weighting, linear, len(plan.inputs),
        wavemin=request.wavemin, wavemax=request.wavemax, scalexy=request.scalexy, scalew=request.scalew,
        rois=request.rois, roiw=request.roiw, weight_power=request.weight_power)
    if linear:
        nz = int(math.ceil((params.wavemax - params.wavemin) / params.spectral_size)) + 1
    else:
        nz = len(params.wavelength_table)
    if ra.size:
        wrapped = wrap_ra(ra)
        ra0 = circular_mean_deg([np.min(wrapped), np.max(wrapped)]) if request.ra_center is None else request.ra_center
        dec0 = (np.min(dec) + np.max(dec)) / 2.0 if request.dec_center is None else request.dec_center
        if request.ra_center is not None or request.dec_center is not None:
            offset = float(np.min(_separation_deg(ra0, dec0, ra, dec))) * 60.0
            if offset > MAX_CENTRE_OFFSET_ARCMIN:
                raise ParameterError(
                    f"cube {plan.name}: the centre RA {ra0:g}, Dec {dec0:g} (--ra-center/--dec-center) is "
                    f"{_arcmin(offset)} from every input footprint (nearest corner RA {_nearest(ra0, dec0, ra, dec)}); "
                    f"give a centre within {MAX_CENTRE_OFFSET_ARCMIN:g} arcmin of the data, or leave it out")
        if abs(dec0) < 90.0:
            grid = spatial_grid_from_corners(ra, dec, params.spatial_size, None, ra0, dec0,
                                             request.nspax_x, request.nspax_y)
            nx, ny = grid.nx, grid.ny
        else:
            nx = ny = 1
    else:
        nx = 2 * (int(request.nspax_x or 1) // 2) + 1
        ny = 2 * (int(request.nspax_y or 1) // 2) + 1
    spaxels, voxels = nx * ny, nx * ny * nz
    if spaxels > MAX_CUBE_SPAXELS or voxels > MAX_CUBE_VOXELS:
        raise ParameterError(
            f"cube {plan.name}: {nx} x {ny} spaxels x {nz} planes ({voxels:.3g} voxels, {16 * voxels / 1e9:,.0f} GB) is "
            f"larger than mrsdask builds ({MAX_CUBE_SPAXELS:.0e} spaxels, {MAX_CUBE_VOXELS:.0e} voxels); "
            "narrow it with --nspax-x/--nspax-y, --wavemin/--wavemax, a larger --scalexy/--scalew, "
            "or a --ra-center/--dec-center on the data")


def _arcmin(value: float) -> str:
    return f"{value:.1f} arcmin" if value < 120 else f"{value / 60.0:.1f} deg"


def _nearest(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> str:
    k = int(np.argmin(_separation_deg(ra0, dec0, ra, dec)))
    return f"{ra[k]:.5f}, Dec {dec[k]:.5f}"
