"""Observation planning: dither positions, pointings, exposure list and file names.

Dither positions
----------------
The positions come from the MRS dither table ``mrsdither-PRDOPSSOC-M-025.txt`` shipped in
:data:`mrsdask.instrument.reference.DITHER_DIR` (columns ``dpos band alpha1a beta1a v2 v3
dxidl dyidl``). The table lists, per channel (band names ``1A`` … ``4A``; the sub-band does
not matter, the patterns are defined per channel), eight point-source positions (two 4-point
patterns: positive 1–4, negative 5–8) followed by the extended-source positions. The
simulator uses, for the channel chosen (by default the lowest channel of the setting, 1 for
``12x`` and 3 for ``34x``):

* ``"4-point"``: the first four point-source positions of the channel (table rows 1–4 for
  channel 1, 9–12 for channel 2, 17–20 for channel 3, 25–28 for channel 4);
* ``"2-point"``: the first two of the channel's last four rows (the half-slice,
  half-pixel extended-source pair: rows 37–38, 41–42, 45–46, 49–50);
* ``"none"``: the channel's field centre, the mean V2/V3 of its eight point-source positions.

Pointing
--------
For each exposure the target (or a mosaic tile centre) is put on the dither position: the
reference point of the WCS is ``V2_REF, V3_REF`` = the position's V2/V3 and ``RA_REF,
DEC_REF`` = the tile centre. ``PA_V3`` is the configured roll; ``ROLL_REF`` is the local
roll at the reference point (``jwst.lib.set_telescope_pointing.compute_local_roll``) and
``RA_V1, DEC_V1`` are where the resulting attitude puts V2 = V3 = 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mrsdask.instrument.reference import DITHER_DIR
from mrsdask.sim.config import SimulationConfig, SimulationConfigError
from mrsdask.sim.scene import offsets_to_radec

#: The dither table the simulator uses.
DITHER_TABLE = DITHER_DIR / "mrsdither-PRDOPSSOC-M-025.txt"
#: APT names of the patterns, for ``PATTTYPE``.
PATTERN_KEYWORD = {"4-point": "4-POINT", "2-point": "2-POINT", "none": "NONE"}
#: FASTR1 frame time, s.
FRAME_TIME = 2.775


@dataclass(frozen=True)
class DitherPosition:
    """One row of the dither table.

    Attributes
    ----------
    index : int
        Row number (``dpos``) in the table; 0 for the synthetic field centre.
    channel : int
        Channel the position is optimised for.
    alpha, beta : float
        Offset in the channel-1A (α, β) frame, arcsec.
    v2, v3 : float
        Telescope V2/V3 of the position, arcsec.
    dx_ideal, dy_ideal : float
        Offset in the MRS ideal frame, arcsec.
    """

    index: int
    channel: int
    alpha: float
    beta: float
    v2: float
    v3: float
    dx_ideal: float
    dy_ideal: float


@functools.lru_cache(maxsize=1)
def dither_table() -> tuple[DitherPosition, ...]:
    """All rows of :data:`DITHER_TABLE`."""
    rows = []
    with open(DITHER_TABLE) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 8 or not parts[0].isdigit():
                continue
            rows.append(
                DitherPosition(
                    index=int(parts[0]),
                    channel=int(parts[1][0]),
                    alpha=float(parts[2]),
                    beta=float(parts[3]),
                    v2=float(parts[4]),
                    v3=float(parts[5]),
                    dx_ideal=float(parts[6]),
                    dy_ideal=float(parts[7]),
                )
            )
    return tuple(rows)


def dither_positions(pattern: str, channel: int, n: int | None = None) -> list[DitherPosition]:
    """Dither positions of a pattern optimised for a channel (see the module notes).

    Parameters
    ----------
    pattern : {"4-point", "2-point", "none"}
        The pattern.
    channel : int
        1 to 4.
    n : int, optional
        Number of positions to return (default: all of the pattern).
    """
    if channel not in (1, 2, 3, 4):
        raise SimulationConfigError(f"dither channel must be 1, 2, 3 or 4, got {channel!r}")
    rows = [r for r in dither_table() if r.channel == channel]
    point, extended = rows[:8], rows[8:]
    if pattern == "4-point":
        out = point[:4]
    elif pattern == "2-point":
        out = extended[-4:][:2]
    elif pattern == "none":
        v2 = float(np.mean([r.v2 for r in point]))
        v3 = float(np.mean([r.v3 for r in point]))
        out = [DitherPosition(0, channel, 0.0, 0.0, v2, v3, 0.0, 0.0)]
    else:
        raise SimulationConfigError(f"dither_pattern must be 4-point, 2-point or none, got {pattern!r}")
    if n is not None:
        if not 1 <= n <= len(out):
            raise SimulationConfigError(f"n_dithers must be between 1 and {len(out)} for {pattern!r}, got {n}")
        out = out[:n]
    return list(out)


@dataclass(frozen=True)
class ExposurePlan:
    """Everything that identifies one simulated exposure (one ``cal`` file).

    Attributes
    ----------
    setting : str
        ``"12A"`` … ``"34C"``.
    kind : {"science", "background"}
        Association exposure type.
    pointing : int
        Mosaic tile, 1-based (0 for background exposures).
    dither : int
        Position within the dither pattern, 1-based.
    n_dither : int
        Number of positions in the pattern as used.
    position : DitherPosition
        The dither table row.
    ra_ref, dec_ref : float
        Sky position put on the dither position, degrees.
    exposure_index : int
        0-based running number of the exposure in the simulation (sets times and seeds).
    filename : str
        File name (no folder).
    """

    setting: str
    kind: str
    pointing: int
    dither: int
    n_dither: int
    position: DitherPosition
    ra_ref: float
    dec_ref: float
    exposure_index: int
    filename: str

    @property
    def is_background(self) -> bool:
        """True for a dedicated background exposure."""
        return self.kind == "background"


def exposure_filename(prefix: str, setting: str, pointing: int, dither: int, background: bool = False) -> str:
    """``<prefix>_<setting>_p<pointing>_d<dither>_cal.fits``; background: ``<prefix>_<setting>_bkg_d<n>_cal.fits``."""
    if background:
        return f"{prefix}_{setting}_bkg_d{dither}_cal.fits"
    return f"{prefix}_{setting}_p{pointing}_d{dither}_cal.fits"


def plan_exposures(config: SimulationConfig) -> list[ExposurePlan]:
    """The exposures of a simulation, in a fixed order.

    Science exposures loop over settings, then pointings, then dither positions; the
    ``n_background_exposures`` background exposures per setting follow, cycling through the
    dither positions, at ``background_offset`` from the target.
    """
    plans: list[ExposurePlan] = []
    index = 0
    for setting in config.settings:
        channel = config.dither_channel or int(setting[0])
        positions = dither_positions(config.dither_pattern, channel, config.n_dithers)
        for p, (de, dn) in enumerate(config.pointings, start=1):
            ra, dec = offsets_to_radec(de, dn, config.target_ra, config.target_dec)
            for d, pos in enumerate(positions, start=1):
                plans.append(
                    ExposurePlan(
                        setting, "science", p, d, len(positions), pos, float(ra), float(dec), index,
                        exposure_filename(config.prefix, setting, p, d),
                    )
                )
                index += 1
    for setting in config.settings:
        channel = config.dither_channel or int(setting[0])
        positions = dither_positions(config.dither_pattern, channel, config.n_dithers)
        be, bn = config.background_offset
        ra, dec = offsets_to_radec(be, bn, config.target_ra, config.target_dec)
        for k in range(config.n_background_exposures):
            pos = positions[k % len(positions)]
            plans.append(
                ExposurePlan(
                    setting, "background", 0, k + 1, len(positions), pos, float(ra), float(dec), index,
                    exposure_filename(config.prefix, setting, 0, k + 1, background=True),
                )
            )
            index += 1
    return plans


def attitude(v2_ref: float, v3_ref: float, ra_ref: float, dec_ref: float, pa_v3: float) -> dict[str, float]:
    """Consistent pointing keywords for a reference point and a V3 position angle.

    Returns
    -------
    dict
        ``roll_ref`` (local roll at the reference point, deg) and ``ra_v1``, ``dec_v1`` (sky
        position of V2 = V3 = 0, deg), as the pipeline's own pointing code relates them.
    """
    from jwst.assign_wcs.pointing import _v23tosky
    from jwst.lib.set_telescope_pointing import compute_local_roll

    roll_ref = float(compute_local_roll(pa_v3, ra_ref, dec_ref, v2_ref, v3_ref)) % 360.0
    model = _v23tosky(
        v2_ref=v2_ref / 3600.0,
        v3_ref=v3_ref / 3600.0,
        roll_ref=roll_ref,
        ra_ref=ra_ref,
        dec_ref=dec_ref,
    )
    ra_v1, dec_v1 = model(0.0, 0.0)
    return {"roll_ref": roll_ref, "ra_v1": float(ra_v1) % 360.0, "dec_v1": float(dec_v1)}


def exposure_times(config: SimulationConfig) -> dict[str, float]:
    """Readout timing of every exposure (FASTR1): frame/group/integration/exposure times, s."""
    tgroup = FRAME_TIME
    integ = (config.ngroups - 1) * tgroup
    effexp = integ * config.nints
    duration = (config.ngroups + 1) * tgroup * config.nints  # with the reset frame
    return {
        "frame_time": FRAME_TIME,
        "group_time": tgroup,
        "integration_time": integ,
        "effective_exposure_time": effexp,
        "exposure_time": effexp,
        "duration": duration,
    }
