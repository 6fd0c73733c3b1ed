"""Which cubes to build from which exposures: the official step's band/channel/multi logic."""

from __future__ import annotations

from dataclasses import dataclass, field

from mrsdask.errors import ParameterError
from mrsdask.instrument.bands import BANDS, SUBBAND_KEYWORD, Band, bands_of_setting

OUTPUT_TYPES = ("band", "channel", "multi")
WEIGHTINGS = ("drizzle", "emsm", "msm")
BAND_WORDS = {"short": "A", "medium": "B", "long": "C"}


@dataclass(frozen=True)
class CubeRequest:
    """What the user asked for (the official ``CubeBuildStep`` parameters).

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

    output_type: str = "band"
    weighting: str = "drizzle"
    channels: tuple[int, ...] = (1, 2, 3, 4)
    subbands: tuple[str, ...] = ("A", "B", "C")
    scalexy: float = 0.0
    scalew: float = 0.0
    wavemin: float | None = None
    wavemax: float | None = None
    ra_center: float | None = None
    dec_center: float | None = None
    cube_pa: float | None = None
    coord_system: str = "skyalign"
    nspax_x: int | None = None
    nspax_y: int | None = None
    rois: float = 0.0
    roiw: float = 0.0
    weight_power: float = 2.0
    linear_wave: bool | None = None
    slab_planes: int | None = None

    def __post_init__(self) -> None:
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
