"""The options of the stray-light step, declared once (``mrsdask straylight``, the pipeline step, Python).

Official ``StraylightStep`` names: ``override_mrsxartcorr`` (the MRSXARTCORR reference file,
required: mrsdask ships none), ``clean_showers`` and the ``shower_*`` parameters, and
``override_regions`` (the REGIONS reference whose plane ``shower_plane`` marks the slices, for
``clean_showers``). The official ``save_shower_model`` is accepted only at its default (False)
in ``--params`` files: mrsdask does not write the shower model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import ClassVar

from mrsdask.errors import ParameterError
from mrsdask.options import option


def _paths(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    return tuple(os.fspath(v) for v in items) or None


@dataclass(frozen=True)
class StraylightRequest:
    """What :func:`mrsdask.straylight.correct` does (official ``StraylightStep`` parameters).

    Attributes
    ----------
    override_mrsxartcorr : str, optional
        Official MRSXARTCORR reference file (``MirMrsXArtCorrModel``). Required to run.
    clean_showers : bool
        Also subtract a smooth model of residual cosmic-ray showers, made from the pixels
        between the slices.
    override_regions : tuple of str, optional
        Official REGIONS references (``RegionsModel``), one per detector and band of the
        exposures (matched by their CHANNEL and BAND), for ``clean_showers``.
    shower_plane : int
        Throughput plane (0–8) of the REGIONS reference that marks the slices.
    shower_x_stddev, shower_y_stddev : float
        σ in pixels of the Gaussian that smooths the shower model.
    shower_low_reject, shower_high_reject : float
        Percentiles outside which inter-slice pixels are left out of the shower model.
    """

    #: Official steps whose stpipe parameter files give this request (``--params``,
    #: :func:`mrsdask.options.request_from_step_file`): import path and the options they imply.
    OFFICIAL_STEPS: ClassVar[dict[str, tuple[str, dict]]] = {
        "StraylightStep": ("jwst.straylight.StraylightStep", {}),
    }

    override_mrsxartcorr: str | None = option(
        None, "official MRSXARTCORR reference file (cross-artifact parameters per band; required)",
        kind="str", input_file=True, metavar="MRSXARTCORR")
    clean_showers: bool = option(False, "also remove residual cosmic-ray showers (smooth model of the "
                                 "inter-slice pixels)", kind="bool")
    override_regions: tuple[str, ...] | None = option(
        None, "official REGIONS reference file(s), one per detector and band of the inputs (for --clean-showers)",
        kind="str_list", input_file=True, metavar="REGIONS", parse=_paths)
    shower_plane: int = option(3, "REGIONS throughput plane (0-8) that marks the slices", kind="int")
    shower_x_stddev: float = option(18.0, "x standard deviation of the shower model", kind="float", unit="pixel")
    shower_y_stddev: float = option(5.0, "y standard deviation of the shower model", kind="float", unit="pixel")
    shower_low_reject: float = option(0.1, "low percentile of inter-slice pixels rejected", kind="float",
                                      metavar="PERCENT")
    shower_high_reject: float = option(99.9, "high percentile of inter-slice pixels rejected", kind="float",
                                       metavar="PERCENT")

    def __post_init__(self) -> None:
        if self.override_mrsxartcorr is not None:
            object.__setattr__(self, "override_mrsxartcorr", os.fspath(self.override_mrsxartcorr))
        object.__setattr__(self, "override_regions", _paths(self.override_regions))
        if not isinstance(self.clean_showers, bool):
            raise ParameterError(f"straylight: clean_showers {self.clean_showers!r}: give true or false")
        if isinstance(self.shower_plane, bool) or not isinstance(self.shower_plane, int) \
                or not 0 <= self.shower_plane <= 8:
            raise ParameterError(f"straylight: shower_plane {self.shower_plane!r} must be an integer 0-8 "
                                 "(a REGIONS throughput plane)")
        for name in ("shower_x_stddev", "shower_y_stddev"):
            value = getattr(self, name)
            if isinstance(value, bool) or not math.isfinite(float(value)) or float(value) <= 0:
                raise ParameterError(f"straylight: {name} {value!r} must be a positive number of pixels")
            object.__setattr__(self, name, float(value))
        low, high = self.shower_low_reject, self.shower_high_reject
        if not 0.0 <= float(low) < float(high) <= 100.0:
            raise ParameterError(f"straylight: shower_low_reject {low!r} and shower_high_reject {high!r} must be "
                                 "percentiles with 0 <= low < high <= 100")
        object.__setattr__(self, "shower_low_reject", float(low))
        object.__setattr__(self, "shower_high_reject", float(high))

    def check_runnable(self) -> None:
        """Raise unless the reference files the request needs are given.

        Raises
        ------
        ParameterError
            Without ``override_mrsxartcorr``, or with ``clean_showers`` and no ``override_regions``.
        """
        if not self.override_mrsxartcorr:
            raise ParameterError("straylight: no MRSXARTCORR reference file; mrsdask ships none: give the CRDS "
                                 "mrsxartcorr file with override_mrsxartcorr (--override-mrsxartcorr FILE)")
        if self.clean_showers and not self.override_regions:
            raise ParameterError("straylight: clean_showers needs the REGIONS reference of the exposures' "
                                 "detector and band: give override_regions (--override-regions FILE…)")
