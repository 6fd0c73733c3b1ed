"""The options of the fringe corrections, declared once (``mrsdask fringe``, the pipeline step, Python).

The official pipeline has two steps: ``fringe`` (divide by the FRINGE reference, given with
``override_fringe``) and ``residual_fringe`` (skipped by default; FRINGEFREQ reference through
``override_fringefreq``, wavelengths left out with ``ignore_region_min``/``ignore_region_max``).
mrsdask runs them as one step: ``override_fringe`` and ``override_fringefreq`` are the official
names (the older ``flat`` and ``fringefreq`` still work, as pipeline keys and as flags);
``residual`` is the opposite of the official ``skip``; ``ignore_regions`` gives the official
``ignore_region_min``/``ignore_region_max`` as ``[min, max]`` pairs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from mrsdask.errors import ParameterError
from mrsdask.options import option


def _paths(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    return tuple(str(v) for v in items) or None


def _ranges(value: Any) -> tuple[tuple[float, float], ...] | None:
    if value is None:
        return None
    out = []
    for region in value:
        pair = tuple(region)
        if (len(pair) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
                or not all(math.isfinite(v) for v in pair) or not pair[0] < pair[1]):
            raise ParameterError(f"ignore region {list(region)!r} is not [min, max] in um with min < max")
        out.append((float(pair[0]), float(pair[1])))
    return tuple(out) or None


@dataclass(frozen=True)
class FringeRequest:
    """Which fringe corrections to make (:func:`mrsdask.fringe.correct`).

    Each field is declared once with :func:`mrsdask.options.option`: ``mrsdask fringe``'s flags,
    the pipeline ``fringe`` step's parameters and the keyword arguments of
    :func:`mrsdask.fringe.correct` come from these declarations.

    Attributes
    ----------
    override_fringe : tuple of str, optional
        Official FRINGE reference files: divide each exposure by the one of its detector and
        band.
    residual : bool
        Fit and remove residual fringes per slice column.
    override_fringefreq : str or FringeFreqReference, optional
        Official FRINGEFREQ reference (default: the documented values).
    ignore_regions : tuple of (float, float), optional
        Wavelength ranges (µm) left out of the residual-fringe fits.
    """

    #: Official steps whose stpipe parameter files give this request (``--params``,
    #: :func:`mrsdask.options.request_from_step_file`): import path and the options they imply.
    OFFICIAL_STEPS: ClassVar[dict[str, tuple[str, dict]]] = {
        "FringeStep": ("jwst.fringe.FringeStep", {}),
        "ResidualFringeStep": ("jwst.residual_fringe.ResidualFringeStep", {"residual": True}),
    }

    @staticmethod
    def from_official_parameters(values: dict[str, Any], where: str) -> dict[str, Any]:
        """``ResidualFringeStep``'s ``ignore_region_min``/``ignore_region_max`` lists as ``ignore_regions``."""
        values = dict(values)
        lows = values.pop("ignore_region_min", None)
        highs = values.pop("ignore_region_max", None)
        if lows is None and highs is None:
            return values
        lows, highs = list(lows or []), list(highs or [])
        if len(lows) != len(highs):
            raise ParameterError(f"{where}: ignore_region_min has {len(lows)} values and ignore_region_max "
                                 f"{len(highs)}; give one of each per region")
        values["ignore_regions"] = [[float(lo), float(hi)] for lo, hi in zip(lows, highs)]
        return values

    override_fringe: tuple[str, ...] | None = option(
        None, "official FRINGE reference file(s): divide by the matching fringe flat", kind="str_list",
        aliases=("flat",), flag_aliases=("--flat",), input_file=True, metavar="FRINGE", parse=_paths)
    residual: bool = option(False, "fit and remove residual fringes per slice column (the official "
                            "residual_fringe step with skip = false)", kind="bool")
    override_fringefreq: Any = option(
        None, "official FRINGEFREQ reference (default: documented values)", kind="str",
        aliases=("fringefreq",), flag_aliases=("--fringefreq",), input_file=True, metavar="FRINGEFREQ")
    ignore_regions: tuple[tuple[float, float], ...] | None = option(
        None, "wavelength ranges (um) left out of the residual-fringe fits (the official "
        "ignore_region_min/max); flag repeatable, pipelines [[min, max], ...]", kind="ranges",
        flag="--ignore-region", metavar=("MIN", "MAX"), parse=_ranges)

    def __post_init__(self) -> None:
        object.__setattr__(self, "override_fringe", _paths(self.override_fringe))
        object.__setattr__(self, "ignore_regions", _ranges(self.ignore_regions))
        if not isinstance(self.residual, bool):
            raise ParameterError(f"residual {self.residual!r}: give true or false")
        if self.ignore_regions and not self.residual:
            raise ParameterError("ignore_regions applies to the residual-fringe fit: set residual too")
