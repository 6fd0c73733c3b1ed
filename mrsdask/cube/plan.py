"""Which cubes to build from which exposures: the official step's band/channel/multi logic."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from mrsdask.errors import ParameterError
from mrsdask.instrument.bands import BANDS, SUBBAND_KEYWORD, Band, bands_of_setting
from mrsdask.options import option

OUTPUT_TYPES = ("band", "channel", "multi")
WEIGHTINGS = ("drizzle", "emsm", "msm")
BAND_WORDS = {"short": "A", "medium": "B", "long": "C"}


@dataclass(frozen=True)
class CubeRequest:
    """What the user asked for (the official ``CubeBuildStep`` parameters).

    Each field is declared once with :func:`mrsdask.options.option`: ``mrsdask cube``'s flags
    and the pipeline ``cube`` step's parameters are made from these declarations.

    Attributes
    ----------
    output_type : str
        ``band`` (one cube per band), ``channel`` (one per channel) or ``multi`` (one cube).
    weighting : str
        ``drizzle``, ``emsm`` or ``msm``.
    channels : tuple of int
        Channels to use (default all).
    subbands : tuple of str
        Sub-band letters to use, ``A``/``B``/``C`` (``short``/``medium``/``long``; default all).
    linear_wave : bool or None
        The official ``linear_wave``: a linear wavelength axis (True) or the tabular
        multichannel axis (False). ``None`` (default) is linear unless the output is
        ``multi`` or the cube's bands have different spectral steps and no ``scalew`` is
        given — where the official default (True) fails.
    """

    #: Official steps whose stpipe parameter files give this request (``--params``,
    #: :func:`mrsdask.options.request_from_step_file`): import path and the options they imply.
    OFFICIAL_STEPS: ClassVar[dict[str, tuple[str, dict]]] = {
        "CubeBuildStep": ("jwst.cube_build.CubeBuildStep", {}),
    }

    output_type: str = option(
        "band", "one cube per band, per channel, or one multi-channel cube with a tabular wavelength axis "
        "(a channel/band selection makes one cube)", kind="choice", choices=OUTPUT_TYPES)
    weighting: str = option("drizzle", "voxel weighting: 3-D drizzle, EMSM or MSM point cloud",
                            kind="choice", choices=WEIGHTINGS)
    channels: tuple[int, ...] = option(
        (1, 2, 3, 4), "channels: 1 2 3 4 or all", kind="str_list", choices=("1", "2", "3", "4", "all"),
        official="channel", aliases=("channels",), metavar="CH", parse=lambda v: parse_channels(v), user_default=["all"])
    subbands: tuple[str, ...] = option(
        ("A", "B", "C"), "bands: short medium long or all", kind="str_list",
        choices=("short", "medium", "long", "all"), official="band", aliases=("bands",), metavar="BAND",
        parse=lambda v: parse_subbands(v), user_default=["all"])
    scalexy: float = option(0.0, "spaxel size (0 = from the cube parameters)", kind="float", unit="arcsec")
    scalew: float = option(0.0, "linear wavelength step (0 = from the cube parameters)", kind="float", unit="um")
    wavemin: float | None = option(None, "shortest wavelength (default: the bands')", kind="float", unit="um")
    wavemax: float | None = option(None, "longest wavelength (default: the bands')", kind="float", unit="um")
    ra_center: float | None = option(None, "cube centre right ascension, ICRS (default: centre of the inputs)",
                                     kind="float", unit="deg")
    dec_center: float | None = option(None, "cube centre declination, ICRS (default: centre of the inputs)",
                                      kind="float", unit="deg")
    cube_pa: float | None = option(None, "cube position angle (default: north up)", kind="float", unit="deg")
    coord_system: str = option("skyalign", "cube axes along RA/Dec (skyalign) or the IFU's alpha/beta (ifualign)",
                               kind="choice", choices=("skyalign", "ifualign"))
    nspax_x: int | None = option(None, "spaxels along x (odd; default: to cover the inputs)", kind="int",
                                 metavar="N")
    nspax_y: int | None = option(None, "spaxels along y (odd; default: to cover the inputs)", kind="int",
                                 metavar="N")
    rois: float = option(0.0, "emsm/msm: spatial region of interest (0 = from the cube parameters)",
                         kind="float", unit="arcsec")
    roiw: float = option(0.0, "emsm/msm: spectral region of interest (0 = from the cube parameters)",
                         kind="float", unit="um")
    weight_power: float = option(2.0, "msm: power of the distance weighting", kind="float", metavar="P")
    linear_wave: bool | None = option(
        None, "linear wavelength axis (default: linear unless multi, or the bands' spectral steps differ "
        "and no scalew is given)", kind="bool")
    slab_planes: int | None = option(None, "wavelength planes per task (default: automatic)", kind="int",
                                     metavar="N")
    spatial_chunks: int | None = option(
        None, "spaxels per zarr chunk along x and y (default: the whole field, best to export or extract "
        "whole cubes; e.g. 16 for spaxel-by-spaxel queries, which then read a fraction of the chunks)",
        kind="int", metavar="N")

    def __post_init__(self) -> None:
        if self.spatial_chunks is not None and self.spatial_chunks < 1:
            raise ParameterError(f"spatial_chunks {self.spatial_chunks!r}: give a positive number of spaxels")
        if self.output_type not in OUTPUT_TYPES:
            raise ParameterError(f"output_type {self.output_type!r}: choose one of {', '.join(OUTPUT_TYPES)}")
        if self.weighting not in WEIGHTINGS:
            raise ParameterError(f"weighting {self.weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
        if self.coord_system not in ("skyalign", "world", "ifualign"):
            raise ParameterError(f"coord_system {self.coord_system!r}: choose skyalign or ifualign")
        bad = [c for c in self.channels if c not in (1, 2, 3, 4)]
        if bad:
            raise ParameterError(f"channel {bad[0]!r}: choose from 1 2 3 4")
        bad = [s for s in self.subbands if s not in SUBBAND_KEYWORD]
        if bad:
            raise ParameterError(f"band {bad[0]!r}: choose from short medium long")
        if self.scalexy < 0 or self.scalew < 0:
            raise ParameterError("scalexy and scalew must be positive (0 = from the cube parameters)")
        if self.wavemin is not None and self.wavemax is not None and self.wavemin >= self.wavemax:
            raise ParameterError(f"wavemin {self.wavemin} must be below wavemax {self.wavemax}")
        for name, value in (("wavemin", self.wavemin), ("wavemax", self.wavemax)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ParameterError(f"{name} {value}: give a wavelength in um (MRS: 4.9-27.9)")
        if self.ra_center is not None and not (math.isfinite(self.ra_center) and 0.0 <= self.ra_center <= 360.0):
            raise ParameterError(f"ra_center {self.ra_center}: right ascension is 0-360 deg (--ra-center)")
        if self.dec_center is not None and not (math.isfinite(self.dec_center) and -90.0 < self.dec_center < 90.0):
            raise ParameterError(f"dec_center {self.dec_center}: declination is -90 to 90 deg, poles excluded (--dec-center)")
        for name in ("nspax_x", "nspax_y", "slab_planes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParameterError(f"{name} {value}: must be at least 1 (--{name.replace('_', '-')})")
        for name in ("scalexy", "scalew", "rois", "roiw", "weight_power"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ParameterError(f"{name} {getattr(self, name)}: must be a finite number, 0 or more "
                                     f"(--{name.replace('_', '-')}; 0 = from the cube parameters)")


def parse_channels(values) -> tuple[int, ...]:
    """``["1", "2"]``, ``["all"]`` or ``["12"]`` → channel numbers."""
    if not values or [str(v).lower() for v in values] == ["all"]:
        return (1, 2, 3, 4)
    out: list[int] = []
    for v in values:
        for ch in str(v).replace(",", " ").split():
            for digit in ch:
                if digit not in "1234":
                    raise ParameterError(f"channel {v!r}: choose from 1 2 3 4 or all")
                if int(digit) not in out:
                    out.append(int(digit))
    return tuple(sorted(out))


def parse_subbands(values) -> tuple[str, ...]:
    """``["short", "long"]``, ``["all"]`` or ``["A"]`` → sub-band letters."""
    if not values or [str(v).lower() for v in values] == ["all"]:
        return ("A", "B", "C")
    out: list[str] = []
    for v in values:
        for word in str(v).replace(",", " ").replace("-", " ").split():
            letter = BAND_WORDS.get(word.lower(), word.upper())
            if letter not in SUBBAND_KEYWORD:
                raise ParameterError(f"band {v!r}: choose from short medium long or all")
            if letter not in out:
                out.append(letter)
    return tuple(sorted(out))


@dataclass(frozen=True)
class CubePlan:
    """One cube to build: its name, bands, and the (exposure, band) inputs."""

    name: str
    bands: tuple[Band, ...]
    inputs: tuple[tuple[int, Band], ...] = field(default_factory=tuple)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels in the cube, sorted."""
        return tuple(sorted({b.channel for b in self.bands}))

    @property
    def exposures(self) -> tuple[int, ...]:
        """Exposure indices used, sorted."""
        return tuple(sorted({i for i, _ in self.inputs}))


def cube_name(bands: tuple[Band, ...]) -> str:
    """Official-style suffix: ``ch1-short``, ``ch1-2-shortmedium``, …"""
    channels = sorted({b.channel for b in bands})
    words = [SUBBAND_KEYWORD[s].lower() for s in ("A", "B", "C") if any(b.subband == s for b in bands)]
    return "ch" + "-".join(str(c) for c in channels) + "-" + "".join(words)


def plan_cubes(exposures: list[dict], request: CubeRequest) -> list[CubePlan]:
    """Decide the cubes (official ``determine_band_coverage``/``number_cubes`` logic).

    Parameters
    ----------
    exposures : list of dict
        Per-exposure metadata (``channel``, ``band``, ``exptype``), as
        :func:`mrsdask.datamodel.detector.exposure_table` gives.
    request : CubeRequest

    Returns
    -------
    list of CubePlan
        In band order (1A, 1B, … 4C). Background exposures never enter cubes.

    Raises
    ------
    ParameterError
        If no science exposure holds any selected band.
    """
    present: dict[str, list[int]] = {}
    for row in exposures:
        if row["exptype"] != "science":
            continue
        for band in bands_of_setting(row["channel"], row["band"]):
            if band.channel in request.channels and band.subband in request.subbands:
                present.setdefault(band.name, []).append(row["index"])
    bands = [b for b in BANDS if b.name in present]
    if not bands:
        raise ParameterError(
            "no science exposure holds the selected channel(s) "
            f"{list(request.channels)} and band(s) {[SUBBAND_KEYWORD[s].lower() for s in request.subbands]}"
        )
    user_selection = request.channels != (1, 2, 3, 4) or request.subbands != ("A", "B", "C")
    if request.output_type == "band" and not user_selection:
        groups = [(b,) for b in bands]
    elif request.output_type == "channel" and not user_selection:
        groups = [tuple(b for b in bands if b.channel == ch) for ch in sorted({b.channel for b in bands})]
    else:
        # 'multi', or a user selection of channels/bands: one cube with everything selected
        # (the official step's internal output type 'user').
        groups = [tuple(bands)]
    plans = []
    for group in groups:
        inputs = tuple((i, b) for b in group for i in present[b.name])
        plans.append(CubePlan(cube_name(group), group, inputs))
    return plans
