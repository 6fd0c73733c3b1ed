"""What one cube is, before any pixel is read: its grid, parameters and wavelength slabs.

:func:`plan_cube_spec` turns a cube plan (:mod:`mrsdask.cube.plan`) into a :class:`CubeSpec`
on the client, from the exposure table, the pixel tables' footprints and the cube parameters,
exactly as the official step chooses them. A spec holds plain numbers and arrays only: it is
what every slab task (:mod:`mrsdask.cube.slabs`) is given.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from mrsdask.cube.cubepars import CubePars, cube_parameters
from mrsdask.cube.grid import (
    SpatialGrid,
    WavelengthGrid,
    linear_wavelength_grid,
    spatial_grid_from_corners,
    tabular_wavelength_grid,
)
from mrsdask.cube.memory import BYTES_PER_SLAB_VOXEL
from mrsdask.cube.plan import CubePlan, CubeRequest
from mrsdask.io.sources import ExposureSource

if TYPE_CHECKING:
    from mrsdask.cube.pixels import PixelTableInfo

log = logging.getLogger(__name__)

#: Working memory of one slab task when the slab size is chosen automatically.
DEFAULT_SLAB_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CubeSpec:
    """Everything a slab task needs about one cube: plain numbers and arrays only."""

    name: str
    plan: CubePlan
    grid: SpatialGrid
    wave: WavelengthGrid
    weighting: str
    params: dict
    window: tuple[float, float]
    slab_planes: int
    tables: tuple[PixelTableInfo, ...]
    offsets: dict = None  # table key -> (ΔRA, ΔDec) in degrees added to pixel positions
    spatial_chunks: int | None = None  # spaxels per zarr chunk along x and y (None: the whole field)

    @property
    def chunks(self) -> tuple[int, int, int]:
        """Zarr chunks of the cube arrays: a slab's planes by the spatial chunks."""
        side = self.spatial_chunks
        return (self.slab_planes, min(side, self.grid.ny) if side else self.grid.ny,
                min(side, self.grid.nx) if side else self.grid.nx)

    @property
    def n_slabs(self) -> int:
        """Number of wavelength slabs."""
        return -(-self.wave.nz // self.slab_planes)

    def slab_bounds(self, index: int) -> tuple[int, int]:
        """Plane range ``[z0, z1)`` of a slab."""
        z0 = index * self.slab_planes
        return z0, min(self.wave.nz, z0 + self.slab_planes)


# --------------------------------------------------------------------------- moving targets
def moving_target_offsets(rows: list[dict]) -> dict[int, tuple[float, float]]:
    """Per-exposure (ΔRA, ΔDec) in degrees that put a moving target where it is on average.

    As the official ``assign_mtwcs``: for exposures of a MOVING target with ``MT_RA``/``MT_DEC``,
    pixel positions are shifted by (mean MT_RA − MT_RA, mean MT_DEC − MT_DEC), so the cube is
    built in the target's frame. Other exposures get no shift.
    """
    moving = [r for r in rows if r["exptype"] == "science" and r["target_type"] == "MOVING"
              and np.isfinite(r["mt_ra"]) and np.isfinite(r["mt_dec"])]
    if not moving:
        return {}
    mean_ra = float(np.mean([r["mt_ra"] for r in moving]))
    mean_dec = float(np.mean([r["mt_dec"] for r in moving]))
    return {r["index"]: (mean_ra - r["mt_ra"], mean_dec - r["mt_dec"]) for r in moving}


# --------------------------------------------------------------------------- grid
def parse_s_region(text: str) -> np.ndarray | None:
    """The four corners ``[[ra...], [dec...]]`` of an ``S_REGION`` POLYGON, or None."""
    numbers = [float(v) for v in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", text or "")]
    if not text or not text.upper().startswith("POLYGON") or len(numbers) < 8:
        return None
    return np.array([numbers[0:8:2], numbers[1:8:2]])


def _ifu_rotation(source: ExposureSource, channel: int) -> float:
    """Rotation between the IFU and the sky (official ``ifualign``), from one exposure."""
    from mrsdask.instrument.bands import CHANNEL_INFO

    wcs = source.load_wcs()
    info = CHANNEL_INFO[channel]
    y, x = np.mgrid[:1024, info.x_range[0]:info.x_range[1]]
    det2ab = wcs.get_transform(wcs.available_frames[0], "alpha_beta")
    _, _, lam = det2ab(x, y)
    lam_med = float(np.nanmedian(lam))
    ab2w = wcs.get_transform("alpha_beta", wcs.output_frame.name)
    ra1, dec1, _ = ab2w(0, 0, lam_med)
    ra2, dec2, _ = ab2w(2, 0, lam_med)
    dra = (ra2 - ra1) * math.cos(math.radians(dec1))
    ddec = dec2 - dec1
    return 90.0 + math.degrees(math.atan2(dra, ddec))


def linear_axis(request: CubeRequest, plan: CubePlan, pars: CubePars) -> bool:
    """Whether a cube gets a linear wavelength axis (the official ``linear_wave``).

    ``multi`` cubes are tabular, as officially. An explicit ``request.linear_wave`` is kept;
    by default (``None``) a cube whose bands share one CUBEPAR spectral step, or with a
    ``scalew``, is linear, and one whose bands' steps differ (e.g. ``--channel 1 2``) gets
    the tabular axis instead of the official step's failure.
    """
    if request.output_type == "multi":
        return False
    if request.linear_wave is not None:
        return bool(request.linear_wave)
    steps = {pars.bands[b.name].spectralstep for b in plan.bands}
    linear = request.scalew > 0 or len(steps) == 1
    if not linear:
        log.info("cube %s: bands with spectral steps %s get a tabular wavelength axis "
                 "(pass linear_wave=True with scalew for a linear one)", plan.name, sorted(steps))
    return linear


def cube_window(wave: WavelengthGrid, weighting: str, params: dict, dwavelength_max: float) -> tuple[float, float]:
    """The λ window of the pixels a cube reads: the official pre-selection over the whole cube.

    Drizzle on a linear axis pads the cube's ends by CDELT3 plus ``dwavelength_max``, the
    largest λ extent of its pixels (NaN, from tables not written yet, counts as 0: a slab
    task recomputes the window from its tables, see :func:`mrsdask.cube.slabs.build_slab`).
    """
    if weighting == "drizzle":
        if wave.linear:
            dmax = float(dwavelength_max) if np.isfinite(dwavelength_max) else 0.0
            pad_lo = pad_hi = wave.cdelt3 + dmax
        else:
            pad_lo, pad_hi = wave.zwidth[0], wave.zwidth[-1]
    else:
        pad = params["roiw"] if wave.linear else float(np.max(params["roiw_table"]))
        pad_lo = pad_hi = pad
    return float(wave.zcoord[0] - pad_lo), float(wave.zcoord[-1] + pad_hi)


def _header_footprint(plan: CubePlan, request: CubeRequest, row: dict) -> np.ndarray | None:
    """An input's footprint from its ``S_REGION`` where the official step takes it from there
    (sky-aligned ``multi`` cubes, and cubes of channels 2 and 4 only), else None (the pixels')."""
    official_type = request.output_type
    if request.channels != (1, 2, 3, 4) or request.subbands != ("A", "B", "C"):
        official_type = "user"
    world = request.coord_system in ("skyalign", "world") and request.cube_pa is None
    has_ch1_or_3 = any(b.channel in (1, 3) for b in plan.bands)
    if world and (official_type == "multi" or not has_ch1_or_3) and row["target_type"] != "MOVING":
        return parse_s_region(row["s_region"])
    return None


def needs_table_summaries(plan: CubePlan, request: CubeRequest, rows: list[dict]) -> bool:
    """Whether :func:`plan_cube_spec` needs the pixel tables' footprints for this cube's grid,
    or only the exposures' headers.

    A cube that needs none can be planned before its pixel tables exist, and its slabs can run
    as soon as the tables they read are written (:func:`mrsdask.cube.builder.build_cubes`).
    """
    return any(_header_footprint(plan, request, rows[index]) is None for index, _ in plan.inputs)


def plan_cube_spec(
    plan: CubePlan,
    request: CubeRequest,
    rows: list[dict],
    tables: dict[tuple[int, int], PixelTableInfo],
    sources: list[ExposureSource],
    pars: CubePars,
    n_workers: int = 2,
    offsets: dict[int, tuple[float, float]] | None = None,
) -> CubeSpec:
    """Compute the grid, parameters and slabs of one cube (client side, cheap)."""
    linear = linear_axis(request, plan, pars)
    params = cube_parameters(
        pars, [b.name for b in plan.bands], request.weighting, linear, len(plan.inputs),
        wavemin=request.wavemin, wavemax=request.wavemax, scalexy=request.scalexy,
        scalew=request.scalew, rois=request.rois, roiw=request.roiw, weight_power=request.weight_power,
    )
    # Rotation.
    rotation = None
    if request.coord_system == "ifualign":
        first_index, first_band = plan.inputs[0]
        rotation = _ifu_rotation(sources[first_index], first_band.channel)
    elif request.cube_pa is not None:
        rotation = float(request.cube_pa)
    corner_ra, corner_dec = [], []
    for index, band in plan.inputs:
        poly = _header_footprint(plan, request, rows[index])
        if poly is None:
            poly = tables[(index, band.channel)].footprint
        dra, ddec = (offsets or {}).get(index, (0.0, 0.0))
        corner_ra.extend(np.asarray(poly[0]) + dra)
        corner_dec.extend(np.asarray(poly[1]) + ddec)
    grid = spatial_grid_from_corners(
        np.array(corner_ra), np.array(corner_dec), params.spatial_size, rotation,
        request.ra_center, request.dec_center, request.nspax_x, request.nspax_y,
    )
    if linear:
        wave = linear_wavelength_grid(params.wavemin, params.wavemax, params.spectral_size)
    else:
        wave = tabular_wavelength_grid(params.wavelength_table)
    dmax = max((d for d in (tables[(i, b.channel)].dwavelength_max for i, b in plan.inputs) if np.isfinite(d)),
               default=0.0)
    window = cube_window(wave, request.weighting, asdict(params), dmax)
    slab_planes = request.slab_planes or auto_slab_planes(grid.nx, grid.ny, wave.nz, n_workers)
    used = tuple(sorted({tables[(i, b.channel)].key: tables[(i, b.channel)] for i, b in plan.inputs}.values(),
                        key=lambda t: t.key))
    table_offsets = {t.key: (offsets or {}).get(t.exposure, (0.0, 0.0)) for t in used}
    return CubeSpec(plan.name, plan, grid, wave, request.weighting, asdict(params), window,
                    int(slab_planes), used, table_offsets, request.spatial_chunks)


def auto_slab_planes(nx: int, ny: int, nz: int, n_workers: int, slab_bytes: int = DEFAULT_SLAB_BYTES) -> int:
    """Planes per slab: within ``slab_bytes`` of working memory and ≥ 4 slabs per worker."""
    by_memory = max(1, slab_bytes // (BYTES_PER_SLAB_VOXEL * nx * ny))
    by_parallelism = max(8, -(-nz // (4 * max(1, n_workers))))
    return int(max(1, min(nz, by_memory, by_parallelism, 1024)))


