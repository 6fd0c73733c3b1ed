"""Configuration of a simulated MRS observation: the scene, the pointings and the detector.

Everything the simulator does is decided by one :class:`SimulationConfig`. It is a plain
dataclass tree that round-trips through ``dict``/JSON/YAML (:meth:`SimulationConfig.to_dict`,
:meth:`SimulationConfig.from_dict`, :meth:`SimulationConfig.from_yaml`), so that a scene can be
written by hand, stored next to the data it produced and rebuilt by the tests.

Conventions
-----------
* Positions on the sky are **tangent-plane offsets in arcsec** from the target
  (``target_ra``, ``target_dec``): ``ra_offset`` points east (it is ΔRA·cos δ, not ΔRA) and
  ``dec_offset`` north. Mosaic pointings use the same convention.
* Wavelengths are in µm (vacuum, as the MRS wavelength solution).
* Point-source continua are flux densities ``F_ν`` in **mJy at 10 µm** with a power law
  ``F_ν(λ) = F_10 · (λ / 10 µm) ** slope``; point-source emission lines carry their integrated
  flux in **W m⁻²**.
* Extended-source continua are surface brightnesses in **MJy sr⁻¹ at 10 µm** (central value
  for a Gaussian, uniform value for a disc) with the same power law; their emission lines carry
  an integrated surface brightness in **W m⁻² sr⁻¹** (central value).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mrsdask.errors import ParameterError
from mrsdask.instrument.bands import BAND_NAMES, band_from_name

#: Dither patterns the simulator knows (see :mod:`mrsdask.sim.observation`).
DITHER_PATTERNS: tuple[str, ...] = ("4-point", "2-point", "none")
#: Largest number of positions of each pattern.
MAX_DITHERS: dict[str, int] = {"4-point": 4, "2-point": 2, "none": 1}
#: Extended-source profiles.
EXTENDED_PROFILES: tuple[str, ...] = ("gaussian", "disc")
#: Values accepted for ``SimulationConfig.source_type``.
SOURCE_TYPES: tuple[str, ...] = ("POINT", "EXTENDED")


class SimulationConfigError(ParameterError, ValueError):
    """A simulation configuration value is invalid (the message names it and the valid range)."""


def mosaic_pointings(text: str) -> list[tuple[float, float]]:
    """Pointing offsets (arcsec) of an ``NXxNY@STEP`` mosaic (``--mosaic 2x2@5``), centred on the target."""
    try:
        shape, step = text.lower().split("@")
        nx, ny = (int(v) for v in shape.split("x"))
        step = float(step)
    except ValueError as exc:
        raise ParameterError(f"--mosaic {text!r}: use NXxNY@STEP, e.g. 2x2@5") from exc
    return [((i - (nx - 1) / 2) * step, (j - (ny - 1) / 2) * step) for j in range(ny) for i in range(nx)]

def _finite(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SimulationConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise SimulationConfigError(f"{name} must be finite, got {value!r}")
    return out


def _non_negative(value: Any, name: str) -> float:
    out = _finite(value, name)
    if out < 0:
        raise SimulationConfigError(f"{name} must be >= 0, got {value!r}")
    return out


def _positive(value: Any, name: str) -> float:
    out = _finite(value, name)
    if out <= 0:
        raise SimulationConfigError(f"{name} must be > 0, got {value!r}")
    return out


def _offset_pair(value: Any, name: str) -> tuple[float, float]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise SimulationConfigError(f"{name} must be a pair (dRA, dDec) in arcsec, got {value!r}") from None
    return (_finite(a, f"{name}[0]"), _finite(b, f"{name}[1]"))


@dataclass
class EmissionLine:
    """A Gaussian emission line.

    Parameters
    ----------
    wavelength : float
        Central (vacuum) wavelength in µm.
    fwhm : float
        Intrinsic full width at half maximum in µm. The simulator does not convolve with the
        MRS line-spread function: give at least λ/3500 for a realistic, resolved line.
    flux : float
        Integrated line flux: W m⁻² for a :class:`PointSource`, W m⁻² sr⁻¹ (at the source
        centre) for an :class:`ExtendedSource`. Must be >= 0 (no absorption lines).
    """

    wavelength: float
    fwhm: float
    flux: float

    def validate(self, name: str = "line") -> None:
        """Check the values; raise ``ValueError`` naming the bad parameter."""
        self.wavelength = _positive(self.wavelength, f"{name}.wavelength")
        self.fwhm = _positive(self.fwhm, f"{name}.fwhm")
        self.flux = _non_negative(self.flux, f"{name}.flux")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | EmissionLine) -> EmissionLine:
        """Build from a mapping with keys ``wavelength``, ``fwhm``, ``flux``."""
        if isinstance(data, EmissionLine):
            return data
        if isinstance(data, (list, tuple)):
            return cls(*data)
        return cls(**_known_keys(cls, data, "line"))


@dataclass
class PointSource:
    """An unresolved source, imaged through a Gaussian PSF.

    The PSF FWHM is ``0.033 * λ/µm + 0.106`` arcsec (Law et al. 2023), evaluated at each
    pixel's wavelength.

    Parameters
    ----------
    ra_offset, dec_offset : float
        Tangent-plane offset from the target, arcsec (east, north).
    continuum_mjy : float
        Continuum flux density at 10 µm, mJy (>= 0).
    slope : float
        Power-law index of ``F_ν`` with wavelength: ``F_ν ∝ λ ** slope``.
    lines : list of EmissionLine
        Emission lines; integrated fluxes in W m⁻².
    name : str
        Label used in the truth file.
    """

    ra_offset: float = 0.0
    dec_offset: float = 0.0
    continuum_mjy: float = 10.0
    slope: float = 0.0
    lines: list[EmissionLine] = field(default_factory=list)
    name: str = ""

    kind = "point"

    def validate(self, name: str = "source") -> None:
        """Check the values; raise ``ValueError`` naming the bad parameter."""
        self.ra_offset = _finite(self.ra_offset, f"{name}.ra_offset")
        self.dec_offset = _finite(self.dec_offset, f"{name}.dec_offset")
        self.continuum_mjy = _non_negative(self.continuum_mjy, f"{name}.continuum_mjy")
        self.slope = _finite(self.slope, f"{name}.slope")
        self.lines = [EmissionLine.from_dict(x) for x in self.lines]
        for i, line in enumerate(self.lines):
            line.validate(f"{name}.lines[{i}]")


@dataclass
class ExtendedSource:
    """A resolved source: an elliptical Gaussian or a uniform elliptical disc.

    Parameters
    ----------
    ra_offset, dec_offset : float
        Tangent-plane offset of the centre from the target, arcsec (east, north).
    profile : {"gaussian", "disc"}
        Spatial profile.
    size : float
        Gaussian: FWHM along the major axis, arcsec. Disc: radius along the major axis, arcsec.
    axis_ratio : float
        Minor/major axis ratio, in (0, 1].
    position_angle : float
        Position angle of the major axis, degrees east of north.
    continuum_mjysr : float
        Continuum surface brightness at 10 µm, MJy sr⁻¹ (central value of a Gaussian, the
        value inside a disc), >= 0.
    slope : float
        Power-law index: ``I_ν ∝ λ ** slope``.
    lines : list of EmissionLine
        Emission lines; integrated surface brightness at the centre in W m⁻² sr⁻¹.
    psf_convolved : bool
        Gaussian only: convolve the profile analytically with the (Gaussian) PSF, which keeps
        the total flux and lowers the central surface brightness. A disc is never convolved:
        its surface brightness is exactly the given value inside its edge.
    name : str
        Label used in the truth file.
    """

    ra_offset: float = 0.0
    dec_offset: float = 0.0
    profile: str = "gaussian"
    size: float = 1.0
    axis_ratio: float = 1.0
    position_angle: float = 0.0
    continuum_mjysr: float = 100.0
    slope: float = 0.0
    lines: list[EmissionLine] = field(default_factory=list)
    psf_convolved: bool = True
    name: str = ""

    kind = "extended"

    def validate(self, name: str = "source") -> None:
        """Check the values; raise ``ValueError`` naming the bad parameter."""
        self.ra_offset = _finite(self.ra_offset, f"{name}.ra_offset")
        self.dec_offset = _finite(self.dec_offset, f"{name}.dec_offset")
        profile = str(self.profile).strip().lower()
        if profile in ("disk", "uniform"):
            profile = "disc"
        if profile not in EXTENDED_PROFILES:
            raise SimulationConfigError(
                f"{name}.profile must be one of {', '.join(EXTENDED_PROFILES)}, got {self.profile!r}"
            )
        self.profile = profile
        self.size = _positive(self.size, f"{name}.size")
        self.axis_ratio = _positive(self.axis_ratio, f"{name}.axis_ratio")
        if self.axis_ratio > 1:
            raise SimulationConfigError(f"{name}.axis_ratio must be in (0, 1], got {self.axis_ratio!r}")
        self.position_angle = _finite(self.position_angle, f"{name}.position_angle")
        self.continuum_mjysr = _non_negative(self.continuum_mjysr, f"{name}.continuum_mjysr")
        self.slope = _finite(self.slope, f"{name}.slope")
        self.psf_convolved = bool(self.psf_convolved)
        self.lines = [EmissionLine.from_dict(x) for x in self.lines]
        for i, line in enumerate(self.lines):
            line.validate(f"{name}.lines[{i}]")


Source = PointSource | ExtendedSource


def _known_keys(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SimulationConfigError(f"unknown {what} parameter(s) {', '.join(unknown)}; expected {sorted(names)}")
    return dict(data)


def source_from_dict(data: dict[str, Any] | Source) -> Source:
    """Build a source from a mapping whose ``type`` is ``"point"`` or ``"extended"``."""
    if isinstance(data, (PointSource, ExtendedSource)):
        return data
    data = dict(data)
    kind = str(data.pop("type", "point")).strip().lower()
    if kind == "point":
        cls: type = PointSource
    elif kind == "extended":
        cls = ExtendedSource
    else:
        raise SimulationConfigError(f"sources: source type must be 'point' or 'extended', got {kind!r}")
    data = _known_keys(cls, data, f"{kind} source")
    data["lines"] = [EmissionLine.from_dict(x) for x in data.get("lines", [])]
    return cls(**data)


def source_to_dict(source: Source) -> dict[str, Any]:
    """Mapping of a source with its ``type`` key (inverse of :func:`source_from_dict`)."""
    out = {"type": source.kind}
    out.update(asdict(source))
    return out


@dataclass
class SimulationConfig:
    """Everything that defines one simulated MRS observation.

    Parameters
    ----------
    bands : list of str
        MRS bands to observe, ``"1A"`` … ``"4C"``. A band implies its detector setting: ``"1A"``
        and ``"2A"`` are both recorded in the same ``12A`` exposure, so one ``cal`` file is
        written per *setting*, pointing and dither position.
    target_ra, target_dec : float
        Target (proposer) position, degrees. Default: a field in the LMC.
    roll : float
        Position angle of the telescope V3 axis (``PA_V3``), degrees east of north.
    dither_pattern : {"4-point", "2-point", "none"}
        ``"4-point"``: the point-source pattern of PRDOPSSOC-M-025, positions 1–4 of the
        channel; ``"2-point"``: the first two of that channel's last four (half-slice,
        extended-source) positions; ``"none"``: the channel's field centre (mean of its eight
        point-source positions). See :mod:`mrsdask.sim.observation`.
    n_dithers : int or None
        Number of positions to use, 1 … 4 (4-point), 1 … 2 (2-point), 1 (none). ``None``: all.
    dither_channel : int or None
        Channel whose dither positions are used. ``None``: the lowest channel of each
        setting (1 for ``12x``, 3 for ``34x``); give a channel to use the same telescope
        pointings for all settings, as APT does.
    pointings : list of (float, float)
        Mosaic tile centres, tangent-plane offsets (east, north) in arcsec from the target.
    sources : list of PointSource or ExtendedSource
        The astronomical scene.
    sky_background : float
        Scale of the built-in sky+telescope background curve (:func:`mrsdask.sim.scene.sky_spectrum`,
        about 0.6 MJy/sr at 5 µm, 17 at 10 µm, 47 at 20 µm, 175 at 25 µm, 430 at 28 µm for
        1.0); 0 disables it. The sky is in every exposure, science and background.
    noise : bool
        Add Gaussian noise drawn from the variance model below. When ``False`` the science
        plane is noiseless but ERR/VAR_* still hold the nominal variance model.
    read_noise : float
        Read-noise standard deviation per pixel, MJy/sr (``VAR_RNOISE = read_noise**2``).
    poisson_factor : float
        Poisson-like variance per unit signal, MJy/sr: ``VAR_POISSON = poisson_factor * signal``.
    flat_error : float
        Fractional flat-field uncertainty: ``VAR_FLAT = (flat_error * signal)**2``. It is a
        systematic error: recorded in VAR_FLAT/ERR, not added to the data.
    fringes : float or None
        Amplitude (0.05–0.15 is realistic) of multiplicative detector fringes
        ``1 + A sin(2π ν D + φ)`` with ν = 10⁴/λ in cm⁻¹; ``None`` or 0: no fringes, and the
        files say the fringe step was done (``S_FRINGE = COMPLETE``; ``SKIPPED`` otherwise).
    fringe_period : float
        Fringe period in wavenumber, cm⁻¹ (``D = 1 / fringe_period`` cm). The main MRS
        fringe, from the detector substrate, has a period of about 2.9 cm⁻¹ (often quoted
        as its "frequency").
    cosmic_rays : int
        Number of cosmic-ray hits per exposure: random on-slice pixels given large positive
        values. They are **not** flagged in DQ, so that outlier detection has work to do.
    cosmic_ray_amplitude : float
        Typical cosmic-ray value, MJy/sr (each hit is this times 10**U(-0.5, 0.5)).
    n_background_exposures : int
        Dedicated background exposures per setting: same settings, pointed at
        ``background_offset`` from the target, sky only (no sources). Their association
        ``exptype`` is ``"background"``.
    background_offset : (float, float)
        Offset (east, north) of the background field, arcsec.
    source_type : {"POINT", "EXTENDED"} or None
        ``SRCTYPE`` written to the files. ``None``: POINT if the scene has a point source,
        else EXTENDED.
    ngroups, nints : int
        Readout: FASTR1 groups per integration and integrations (exposure times follow).
    date : str
        ISO start time of the first exposure.
    prefix : str
        Start of every file name and the association product name.
    seed : int
        Random seed: the same configuration and seed give bit-identical data arrays.
    """

    bands: list[str] = field(default_factory=lambda: ["1A"])
    target_ra: float = 80.49
    target_dec: float = -69.50
    roll: float = 0.0
    dither_pattern: str = "4-point"
    n_dithers: int | None = None
    dither_channel: int | None = None
    pointings: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 0.0)])
    sources: list[Source] = field(default_factory=list)
    sky_background: float = 1.0
    noise: bool = True
    read_noise: float = 0.5
    poisson_factor: float = 0.01
    flat_error: float = 0.002
    fringes: float | None = None
    fringe_period: float = 2.9
    cosmic_rays: int = 0
    cosmic_ray_amplitude: float = 2000.0
    n_background_exposures: int = 0
    background_offset: tuple[float, float] = (0.0, 60.0)
    source_type: str | None = None
    ngroups: int = 50
    nints: int = 1
    date: str = "2024-01-15T00:00:00"
    prefix: str = "mrssim"
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check and normalise every parameter; raise ``ValueError`` naming the bad one."""
        if isinstance(self.bands, str):
            self.bands = [self.bands]
        if not self.bands:
            raise SimulationConfigError("bands must name at least one MRS band")
        names = []
        for b in self.bands:
            try:
                names.append(band_from_name(b).name)
            except ValueError:
                raise SimulationConfigError(
                    f"bands: unknown MRS band {b!r}; expected one of {', '.join(BAND_NAMES)}"
                ) from None
        self.bands = list(dict.fromkeys(names))

        self.target_ra = _finite(self.target_ra, "target_ra") % 360.0
        self.target_dec = _finite(self.target_dec, "target_dec")
        if abs(self.target_dec) > 89.0:
            raise SimulationConfigError(f"target_dec must be within ±89 deg, got {self.target_dec!r}")
        self.roll = _finite(self.roll, "roll") % 360.0

        pattern = str(self.dither_pattern).strip().lower().replace("_", "-")
        pattern = {"4point": "4-point", "2point": "2-point", "4": "4-point", "2": "2-point"}.get(
            pattern, pattern
        )
        if pattern not in DITHER_PATTERNS:
            raise SimulationConfigError(
                f"dither_pattern must be one of {', '.join(DITHER_PATTERNS)}, got {self.dither_pattern!r}"
            )
        self.dither_pattern = pattern
        if self.n_dithers is None:
            self.n_dithers = MAX_DITHERS[pattern]
        if isinstance(self.n_dithers, bool) or int(self.n_dithers) != self.n_dithers:
            raise SimulationConfigError(f"n_dithers must be an integer, got {self.n_dithers!r}")
        self.n_dithers = int(self.n_dithers)
        if not 1 <= self.n_dithers <= MAX_DITHERS[pattern]:
            raise SimulationConfigError(
                f"n_dithers must be between 1 and {MAX_DITHERS[pattern]} for the "
                f"{pattern!r} dither pattern, got {self.n_dithers}"
            )
        if self.dither_channel is not None:
            if int(self.dither_channel) not in (1, 2, 3, 4):
                raise SimulationConfigError(f"dither_channel must be 1, 2, 3, 4 or None, got {self.dither_channel!r}")
            self.dither_channel = int(self.dither_channel)

        if not self.pointings:
            raise SimulationConfigError("pointings must hold at least one (dRA, dDec) offset")
        self.pointings = [_offset_pair(p, f"pointings[{i}]") for i, p in enumerate(self.pointings)]

        self.sources = [source_from_dict(s) for s in self.sources]
        for i, src in enumerate(self.sources):
            src.validate(f"sources[{i}]")

        self.sky_background = _non_negative(self.sky_background, "sky_background")
        self.noise = bool(self.noise)
        self.read_noise = _non_negative(self.read_noise, "read_noise")
        self.poisson_factor = _non_negative(self.poisson_factor, "poisson_factor")
        self.flat_error = _non_negative(self.flat_error, "flat_error")
        if self.fringes is not None:
            self.fringes = _non_negative(self.fringes, "fringes")
            if self.fringes >= 1:
                raise SimulationConfigError(f"fringes amplitude must be < 1 (0.05-0.15 is realistic), got {self.fringes!r}")
            if self.fringes == 0:
                self.fringes = None
        self.fringe_period = _positive(self.fringe_period, "fringe_period")
        self.cosmic_rays = self._count(self.cosmic_rays, "cosmic_rays")
        self.cosmic_ray_amplitude = _positive(self.cosmic_ray_amplitude, "cosmic_ray_amplitude")
        self.n_background_exposures = self._count(self.n_background_exposures, "n_background_exposures")
        self.background_offset = _offset_pair(self.background_offset, "background_offset")
        if self.source_type is not None:
            st = str(self.source_type).strip().upper()
            if st not in SOURCE_TYPES:
                raise SimulationConfigError(f"source_type must be POINT, EXTENDED or None, got {self.source_type!r}")
            self.source_type = st
        self.ngroups = self._count(self.ngroups, "ngroups")
        if self.ngroups < 2:
            raise SimulationConfigError(f"ngroups must be >= 2, got {self.ngroups}")
        self.nints = self._count(self.nints, "nints")
        if self.nints < 1:
            raise SimulationConfigError(f"nints must be >= 1, got {self.nints}")
        from astropy.time import Time

        try:
            Time(self.date, format="isot", scale="utc")
        except ValueError:
            raise SimulationConfigError(f"date must be an ISO time such as 2024-01-15T00:00:00, got {self.date!r}") from None
        self.prefix = str(self.prefix)
        if not self.prefix or any(c in self.prefix for c in "/\\ "):
            raise SimulationConfigError(f"prefix must be a non-empty file-name stem, got {self.prefix!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or int(self.seed) < 0:
            raise SimulationConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        self.seed = int(self.seed)

    @staticmethod
    def _count(value: Any, name: str) -> int:
        if isinstance(value, bool):
            raise SimulationConfigError(f"{name} must be a non-negative integer, got {value!r}")
        try:
            out = int(value)
        except (TypeError, ValueError):
            raise SimulationConfigError(f"{name} must be a non-negative integer, got {value!r}") from None
        if out != value or out < 0:
            raise SimulationConfigError(f"{name} must be a non-negative integer, got {value!r}")
        return out

    # ------------------------------------------------------------------ derived values
    @property
    def settings(self) -> list[str]:
        """Detector settings (``"12A"`` …) implied by :attr:`bands`, in a fixed order."""
        from mrsdask.instrument.bands import SETTINGS

        wanted = {band_from_name(b).setting for b in self.bands}
        return [s for s in SETTINGS if s in wanted]

    @property
    def resolved_source_type(self) -> str:
        """``SRCTYPE`` written to the science files."""
        if self.source_type is not None:
            return self.source_type
        return "POINT" if any(isinstance(s, PointSource) for s in self.sources) else "EXTENDED"

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "sources":
                value = [source_to_dict(s) for s in value]
            elif f.name == "pointings":
                value = [list(p) for p in value]
            elif f.name == "background_offset":
                value = list(value)
            elif f.name == "bands":
                value = list(value)
            out[f.name] = value
        return out

    def to_json(self, **kwargs: Any) -> str:
        """The configuration as a JSON string."""
        kwargs.setdefault("indent", 1)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        """Build from a mapping such as a parsed YAML or JSON file.

        Sources are mappings with ``type: point`` or ``type: extended`` and the fields of
        :class:`PointSource` / :class:`ExtendedSource`; lines are mappings with
        ``wavelength``, ``fwhm``, ``flux``. Unknown keys are an error.
        """
        if not isinstance(data, dict):
            raise SimulationConfigError(f"simulation configuration must be a mapping, got {type(data).__name__}")
        data = _known_keys(cls, data, "simulation")
        data["sources"] = [source_from_dict(s) for s in data.get("sources", []) or []]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SimulationConfig:
        """Build from a JSON string."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SimulationConfig:
        """Build from a YAML (or JSON) file holding the mapping of :meth:`from_dict`."""
        import yaml

        with open(path) as fh:
            data = yaml.safe_load(fh)
        if data is None:
            data = {}
        return cls.from_dict(data)
