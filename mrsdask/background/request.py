"""The options of background subtraction, declared once (``mrsdask background``, the pipeline step, Python).

Names are the official ones where an official step has the option: ``user_background``,
``median_kernel`` and ``force_subtract`` of ``MasterBackgroundStep``, ``sigma`` and ``maxiters``
of ``BackgroundStep``. The older ``force`` (pipeline key) and ``--force`` (flag) still work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from mrsdask.errors import ParameterError
from mrsdask.options import option

METHODS = ("pixel", "master")


@dataclass(frozen=True)
class BackgroundRequest:
    """What to subtract and what to keep (:func:`mrsdask.background.subtract`).

    Each field is declared once with :func:`mrsdask.options.option`: ``mrsdask background``'s
    flags, the pipeline ``background`` step's parameters and the keyword arguments of
    :func:`mrsdask.background.subtract` come from these declarations.

    Attributes
    ----------
    method : str
        ``pixel`` (spec2 ``bkg_subtract``) or ``master`` (spec3 ``master_background``).
    user_background : str or BackgroundSpectrum, optional
        Master method: the 1-D background to subtract (x1d FITS or two-column table).
    save_master : str, optional
        Master method: also write the 1-D master background there.
    save_2d : bool
        Keep the subtracted 2-D background as the ``background`` variable.
    median_kernel : int
        Master method: moving-median width of the combined spectrum (1 = off).
    sigma, maxiters : float, int or None
        Pixel method: clipping of the background exposures (official 3, None).
    combine_errors : bool
        Pixel method: add the background ERR in quadrature to the science ERR.
    keep_background : bool
        Keep the background exposures in the output.
    force_subtract : bool
        Subtract again from data already background-subtracted.
    """

    #: Official steps whose stpipe parameter files give this request (``--params``,
    #: :func:`mrsdask.options.request_from_step_file`): import path and the options they imply.
    OFFICIAL_STEPS: ClassVar[dict[str, tuple[str, dict]]] = {
        "BackgroundStep": ("jwst.background.BackgroundStep", {"method": "pixel"}),
        "MasterBackgroundStep": ("jwst.master_background.MasterBackgroundStep", {"method": "master"}),
    }

    method: str = option(
        "pixel", "pixel: per-pixel clipped mean of the background exposures (spec2); master: 1-D master "
        "background projected through each pixel's wavelength (spec3)", kind="choice", choices=METHODS)
    user_background: Any = option(
        None, "master: x1d FITS or two-column table (um, MJy/sr) to subtract instead of the background members",
        kind="str", input_file=True, metavar="FILE")
    save_master: str | None = option(
        None, "master: also write the 1-D master background here (pipelines: under the run folder)",
        kind="str", metavar="PATH")
    save_2d: bool = option(False, "keep the subtracted 2-D background as variable 'background'", kind="bool")
    median_kernel: int = option(1, "master: moving-median width of the spectrum (odd, 1 = off)", kind="int",
                                metavar="N")
    sigma: float = option(3.0, "pixel: clipping threshold of the background exposures (sigma)", kind="float",
                          metavar="SIGMA")
    maxiters: int | None = option(None, "pixel: clipping iterations (default: until none is clipped)", kind="int",
                                  metavar="N")
    combine_errors: bool = option(
        True, "pixel: add the background ERR in quadrature to the science ERR (the official step does not)",
        kind="bool")
    cubepar: str | None = option(
        None, "master: official CUBEPAR reference file of the cubes built from background exposures (default "
        "the shipped FLT-9 values)", kind="str", input_file=True, metavar="FILE")
    keep_background: bool = option(False, "keep the background exposures in the output", kind="bool")
    force_subtract: bool = option(False, "subtract again from data already background-subtracted", kind="bool",
                                  aliases=("force",), flag_aliases=("--force",))

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(f"background method {self.method!r}: choose pixel or master")
        if isinstance(self.median_kernel, bool) or not isinstance(self.median_kernel, int) or self.median_kernel < 1:
            raise ParameterError(f"median_kernel {self.median_kernel!r}: give a width of 1 or more (1 = off)")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ParameterError(f"sigma {self.sigma!r}: give a clipping threshold above 0")
        if self.maxiters is not None and (isinstance(self.maxiters, bool) or not isinstance(self.maxiters, int)
                                          or self.maxiters < 1):
            raise ParameterError(f"maxiters {self.maxiters!r}: give 1 or more iterations (or none: until converged)")
        if self.cubepar and self.method != "master":
            raise ParameterError("cubepar needs method='master' (the pixel method builds no cube)")
        if self.save_master and self.method != "master":
            raise ParameterError("save_master needs method='master' (the pixel method has no 1-D spectrum)")

    def run_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`mrsdask.background.run_background` for this request."""
        return {"method": self.method, "user_background": self.user_background, "save_master": self.save_master,
                "save_2d": self.save_2d, "median_kernel": self.median_kernel, "sigma": float(self.sigma),
                "maxiters": self.maxiters, "combine_errors": self.combine_errors,
                "keep_background": self.keep_background, "force": self.force_subtract, "cubepar": self.cubepar}
