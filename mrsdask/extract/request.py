"""The options of 1-D extraction, declared once with the official ``Extract1dStep`` names.

:class:`ExtractRequest` makes the ``mrsdask extract`` flags (:func:`mrsdask.options.add_arguments`)
and the pipeline ``extract`` step's parameters (:func:`mrsdask.options.pipeline_params`). Keys
are the official step's (``center_xy``, ``ifu_rscale``, ``ifu_set_srctype``, ``ifu_rfcorr``,
``ifu_autocen``, ``apply_apcorr``, ``bkg_sigma_clip``, ``ifu_covar_scale``,
``subtract_background``) and its reference overrides (``override_extract1d``,
``override_apcorr``, and ``override_mrsptcorr`` of the official ``spectral_leak`` step); the
names of earlier mrsdask releases (``center``, ``rscale``, ``source_type``,
``residual_fringe``, ``extract1d``) are accepted as aliases in pipeline files. Two options
are mrsdask's own: ``proper_motion`` (the official step has none) and ``spectral_leak`` (the
official pipeline runs it as a step of its own after extraction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mrsdask.errors import ParameterError
from mrsdask.options import option

SOURCE_TYPES = ("POINT", "EXTENDED")


def _upper(value):
    return None if value is None else str(value).upper()


@dataclass(frozen=True)
class ExtractRequest:
    """What a user asks of :func:`mrsdask.extract.spectra` (official ``Extract1dStep`` defaults)."""

    #: Official steps whose stpipe parameter files give this request (``--params``,
    #: :func:`mrsdask.options.request_from_step_file`): import path and the options they imply.
    OFFICIAL_STEPS: ClassVar[dict[str, tuple[str, dict]]] = {
        "Extract1dStep": ("jwst.extract_1d.Extract1dStep", {}),
    }

    ifu_set_srctype: str | None = option(
        None, "source type: POINT or EXTENDED (default: the cube's, decided as the official srctype step)",
        kind="choice", choices=("POINT", "EXTENDED", "point", "extended"), aliases=("source_type",),
        flag_aliases=("--source-type",), parse=_upper, metavar="TYPE")
    center_xy: tuple[float, float] | None = option(
        None, "aperture centre [x, y] in 0-based spaxels (default: auto-centring or the target position)",
        kind="pair", aliases=("center",), flag_aliases=("--center",), metavar="X Y", parse=lambda v: (float(v[0]), float(v[1])))
    ifu_autocen: bool = option(
        False, "find the point source in the cube (median image below 26 um, brightest DAOStarFinder source)",
        kind="bool")
    ifu_rscale: float | None = option(
        None, "aperture radius in PSF FWHM (0.5-3; the reference radius is 2 FWHM)", kind="float",
        aliases=("rscale",), flag_aliases=("--rscale",), metavar="N")
    subtract_background: bool | None = option(
        None, "subtract the annulus background of point sources (default: the EXTRACT1D reference's; True)",
        kind="bool")
    bkg_sigma_clip: float = option(3.0, "background clipping threshold", kind="float", metavar="SIGMA")
    ifu_rfcorr: bool = option(
        True, "1-D residual-fringe correction of the spectra (RF_ columns; single-band cubes only, as the "
        "official step)", kind="bool", aliases=("residual_fringe",),
        flag_aliases=("--residual-fringe",))
    apply_apcorr: bool = option(True, "aperture correction of point sources (APCORR)", kind="bool")
    ifu_covar_scale: float = option(1.0, "factor on the errors for the covariance of cube spaxels", kind="float",
                                    metavar="F")
    proper_motion: bool = option(
        True, "move the target from MU_EPOCH to the exposures' mid-time with MU_RA/MU_DEC before placing the "
        "aperture (mrsdask only)", kind="bool")
    spectral_leak: bool = option(
        True, "remove the 1B second-order leak from 3A point-source spectra (official spectral_leak)", kind="bool")
    override_extract1d: str | None = option(
        None, "official EXTRACT1D (IFU) reference file (default: 2 FWHM apertures)", kind="str",
        flag="--extract1d", aliases=("extract1d",), input_file=True, metavar="FILE")
    override_apcorr: str | None = option(
        None, "official APCORR (MirMrsApcorrModel) reference file (default: the shipped Gaussian-PSF table)",
        kind="str", flag="--apcorr", input_file=True, metavar="FILE")
    override_mrsptcorr: str | None = option(
        None, "official MRSPTCORR (MirMrsPtCorrModel) reference file for the spectral leak (default: the "
        "shipped approximate table)", kind="str", flag="--mrsptcorr", input_file=True, metavar="FILE")

    def __post_init__(self) -> None:
        if self.ifu_set_srctype is not None and self.ifu_set_srctype not in SOURCE_TYPES:
            raise ParameterError(f"ifu_set_srctype {self.ifu_set_srctype!r}: choose POINT or EXTENDED")
        if self.ifu_rscale is not None and not (np.isfinite(self.ifu_rscale) and 0.5 <= self.ifu_rscale <= 3.0):
            raise ParameterError(f"ifu_rscale {self.ifu_rscale}: allowed 0.5-3 (the aperture radius is scaled by "
                                 "ifu_rscale/2)")
        if not (np.isfinite(self.bkg_sigma_clip) and self.bkg_sigma_clip > 0):
            raise ParameterError(f"bkg_sigma_clip {self.bkg_sigma_clip}: give a positive number of sigma")
        if not (np.isfinite(self.ifu_covar_scale) and self.ifu_covar_scale > 0):
            raise ParameterError(f"ifu_covar_scale {self.ifu_covar_scale}: give a positive factor")
        if self.center_xy is not None and self.ifu_autocen:
            raise ParameterError("center_xy and ifu_autocen both place the aperture: give one of them")
