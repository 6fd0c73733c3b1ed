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
from mrsdask.errors import InputError

#: Rows per block for a Dataset held in memory (stores and FITS inputs keep their own chunks).
DEFAULT_CHUNK_ROWS = 256

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


def lazy_plane(ds: xr.Dataset, name: str, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> da.Array:
    """A variable of ``ds`` as a Dask array (chunked by exposure and rows if it was in memory)."""
    arr = ds[name].data
    if isinstance(arr, da.Array):
        return arr
    return da.from_array(arr, chunks=(1,) * (arr.ndim - 2) + (chunk_rows, -1))


def average_background_lazy(
    ds: xr.Dataset, indices: list[int], sigma: float = 3.0, maxiters: int | None = None
) -> dict[str, da.Array]:
    """Lazy sigma-clipped mean of exposures ``indices``: ``sci``, ``err``, ``dq``, ``n`` (y, x).

    The exposures are gathered into one chunk along the exposure axis and kept in the row
    chunks of the Dataset, so a task holds ``len(indices)`` × one block of rows.
    """
    stacks = [lazy_plane(ds, name)[indices].rechunk({0: -1, 2: -1}) for name in ("sci", "err", "dq")]
    packed = da.map_blocks(
        kernels.average_background_block, *stacks, sigma=sigma, maxiters=maxiters,
        drop_axis=0, dtype=kernels.AVERAGE_DTYPE, meta=np.empty((0, 0), dtype=kernels.AVERAGE_DTYPE),
    )
    return {name: packed[name] for name in kernels.AVERAGE_DTYPE.names}


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
    sci, err, dq, bkg, bkg_err = [], [], [], [], []
    for i in keep:
        s_i, e_i, d_i = (lazy_plane(ds, name)[i] for name in ("sci", "err", "dq"))
        if i in setting_of:
            avg = averages[setting_of[i]]
            packed = da.map_blocks(
                kernels.subtract_background_block, s_i, e_i, d_i, avg["sci"],
                avg["err"] if combine_errors else None, avg["dq"],
                dtype=kernels.SUBTRACTED_DTYPE, meta=np.empty((0, 0), dtype=kernels.SUBTRACTED_DTYPE),
            )
            sci.append(packed["sci"])
            err.append(packed["err"])
            dq.append(packed["dq"])
            bkg.append(avg["sci"])
            bkg_err.append(avg["err"])
        else:
            sci.append(s_i)
            err.append(e_i)
            dq.append(d_i)
            bkg.append(da.zeros_like(s_i, dtype=np.float32))
            bkg_err.append(da.zeros_like(s_i, dtype=np.float32))
    out = ds.isel(exposure=keep)
    dims = ("exposure", "y", "x")
    for name, planes in (("sci", sci), ("err", err), ("dq", dq)):
        out[name] = xr.Variable(dims, da.stack(planes), attrs=ds[name].attrs)
    if save_2d:
        out["background"] = xr.Variable(dims, da.stack(bkg), attrs={
            "units": "MJy / sr", "long_name": "background subtracted (sigma-clipped mean of background exposures)"})
        out["background_err"] = xr.Variable(dims, da.stack(bkg_err), attrs={
            "units": "MJy / sr", "long_name": "1-sigma uncertainty of the subtracted background"})
    return out, plan
