"""Pixel-by-pixel background subtraction (spec2 ``bkg_subtract``) on a lazy detector Dataset.

For every detector setting (``12A`` … ``34C``, which also fixes the detector) the background
exposures of that setting are averaged pixel by pixel with a sigma-clipped mean
(:func:`mrsdask.background.kernels.average_background`), one block of rows at a time: a task
holds the background exposures' rows of one block only, never a whole exposure stack. Each
science exposure of the setting then has that average subtracted, block by block
(:func:`mrsdask.background.kernels.subtract_background`).

Nothing is computed here; the result is a lazy Dataset whose blocks are computed when it is
written (:func:`mrsdask.background.run.write_background_store`) or loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.background import kernels
from mrsdask.dispatch import lazy_variable, map_exposures, merge_exposures
from mrsdask.errors import InputError

#: Outputs of :func:`mrsdask.background.kernels.average_background`.
AVERAGE_OUTPUTS = {"sci": np.float32, "err": np.float32, "dq": np.uint32, "n": np.int16}
#: Outputs of :func:`mrsdask.background.kernels.subtract_background`, in its order.
SUBTRACTED_OUTPUTS = {"sci": np.float32, "err": np.float32, "dq": np.uint32}

log = logging.getLogger("mrsdask.background")


@dataclass
class PixelPlan:
    """Which background exposures serve which science exposures.

    Attributes
    ----------
    backgrounds : dict
        Setting → indices of its background exposures.
    science : dict
        Setting → indices of its science exposures.
    unmatched : list of int
        Science exposures whose setting has no background exposure (left unchanged).
    """

    backgrounds: dict[str, list[int]] = field(default_factory=dict)
    science: dict[str, list[int]] = field(default_factory=dict)
    unmatched: list[int] = field(default_factory=list)


def exposure_roles(ds: xr.Dataset) -> tuple[list[int], list[int]]:
    """Indices of the science and of the background exposures (``exptype`` coordinate)."""
    roles = [str(v) for v in ds["exptype"].values]
    science = [i for i, r in enumerate(roles) if r == "science"]
    background = [i for i, r in enumerate(roles) if r == "background"]
    return science, background


def plan_pixel_background(ds: xr.Dataset) -> PixelPlan:
    """Group background and science exposures by detector setting."""
    science, background = exposure_roles(ds)
    settings = [str(v) for v in ds["setting"].values]
    detectors = [str(v) for v in ds["detector"].values]
    plan = PixelPlan()
    for i in background:
        plan.backgrounds.setdefault(settings[i], []).append(i)
    for i in science:
        if settings[i] in plan.backgrounds:
            # Setting fixes the detector; check anyway, a mislabelled file would be subtracted wrongly.
            bad = [j for j in plan.backgrounds[settings[i]] if detectors[j] != detectors[i]]
            if bad:
                raise InputError(f"exposure {i}: background exposure(s) {bad} of setting {settings[i]} are "
                                 "on another detector; check the DETECTOR/CHANNEL/BAND keywords")
            plan.science.setdefault(settings[i], []).append(i)
        else:
            plan.unmatched.append(i)
    return plan


def average_background_lazy(
    ds: xr.Dataset, indices: list[int], sigma: float = 3.0, maxiters: int | None = None
) -> dict[str, da.Array]:
    """Lazy sigma-clipped mean of exposures ``indices``: ``sci``, ``err``, ``dq``, ``n`` (y, x).

    One task per block of rows holds ``len(indices)`` × that block (the exposures stacked,
    :func:`mrsdask.dispatch.map_exposures` with one group).
    """
    out = map_exposures(kernels.average_background, ds, AVERAGE_OUTPUTS, groups=[indices],
                        shared={"sigma": sigma, "maxiters": maxiters}, label="pixel background (average)")
    return {name: arr[0] for name, arr in out.items()}


def subtract_pixel_background(
    ds: xr.Dataset,
    sigma: float = 3.0,
    maxiters: int | None = None,
    combine_errors: bool = True,
    keep_background: bool = False,
    save_2d: bool = False,
) -> tuple[xr.Dataset, PixelPlan]:
    """Subtract from each science exposure the clipped mean of its setting's background exposures.

    Parameters
    ----------
    ds : xarray.Dataset
        Detector Dataset (:mod:`mrsdask.datamodel.detector`) with science and background
        exposures (``exptype`` coordinate).
    sigma, maxiters : float, int or None
        Clipping of the background stack along the exposure axis (official defaults 3, None).
    combine_errors : bool
        Add the background's ERR (√(Σ err²)/N) to the science ERR in quadrature. The official
        step leaves ERR unchanged (``False`` reproduces it).
    keep_background : bool
        Keep the background exposures (unchanged) in the output; by default only science
        exposures are returned, as the official step returns the science model.
    save_2d : bool
        Add ``background`` and ``background_err`` (exposure, y, x) float32 variables: what
        was subtracted from each exposure (0 where nothing was).

    Returns
    -------
    (xarray.Dataset, PixelPlan)
        The lazy result and the grouping that was used.
    """
    plan = plan_pixel_background(ds)
    averages = {s: average_background_lazy(ds, idx, sigma, maxiters) for s, idx in plan.backgrounds.items()}
    setting_of = {i: s for s, idx in plan.science.items() for i in idx}
    science, background = exposure_roles(ds)
    keep = sorted(science + (background if keep_background else []))
    subtracted = [i for i in keep if i in setting_of]
    planes = {"bkg": [averages[setting_of[i]]["sci"] for i in subtracted],
              "bkg_err": [averages[setting_of[i]]["err"] if combine_errors else None for i in subtracted],
              "bkg_dq": [averages[setting_of[i]]["dq"] for i in subtracted]}
    done = map_exposures(kernels.subtract_background, ds, SUBTRACTED_OUTPUTS, exposures=subtracted,
                         planes=planes, label="pixel background (subtract)")
    out = ds.isel(exposure=keep)
    dims = ("exposure", "y", "x")
    for name in ("sci", "err", "dq"):
        merged = merge_exposures(lazy_variable(ds, name), subtracted, done[name], keep)
        out[name] = xr.Variable(dims, merged, attrs=ds[name].attrs)
    if save_2d:
        zeros = da.zeros_like(lazy_variable(ds, "sci"), dtype=np.float32)
        bkg, bkg_err = ([averages[setting_of[i]][name] for i in subtracted] for name in ("sci", "err"))
        out["background"] = xr.Variable(dims, merge_exposures(zeros, subtracted, bkg, keep), attrs={
            "units": "MJy / sr", "long_name": "background subtracted (sigma-clipped mean of background exposures)"})
        out["background_err"] = xr.Variable(dims, merge_exposures(zeros, subtracted, bkg_err, keep), attrs={
            "units": "MJy / sr", "long_name": "1-sigma uncertainty of the subtracted background"})
    return out, plan
