"""Background subtraction as pure functions of numpy arrays (no Dask, no xarray, no files).

Each function reproduces one piece of the official pipeline, on plain arrays, so that the
Dask layers (:mod:`mrsdask.background.pixel`, :mod:`mrsdask.background.master`) can call it on
one chunk at a time:

* :func:`sigma_clip_mask` / :func:`average_background` — ``jwst.background.background_sub.
  average_background``: a 3σ-clipped mean along the exposure axis (``astropy.stats.sigma_clip``
  semantics: median centre, population standard deviation, NaN rejected, iterate until nothing
  changes when ``maxiters`` is None), ERR = √(Σ err²)/N_unclipped, DQ ORed over all inputs.
* :func:`subtract_background` — SCI −= background (float32, as the official in-place
  subtraction), DQ |= background DQ, ERR optionally combined in quadrature.
* :func:`project_spectrum` — ``jwst.master_background.expand_to_2d.bkg_for_ifu_image`` (MIRI):
  linear interpolation of a 1-D table at every pixel's λ, 0 outside the table, NaN λ → 0.
* :func:`extended_plane_background` — the BACKGROUND column of ``extract_1d`` for an extended
  source in a cube (``jwst.extract_1d.ifu.extract_ifu`` with the full-cube rectangular
  aperture): per plane, ``sigma_clipped_stats(sigma=3, maxiters=5)`` over the covered spaxels,
  then the sum of the spaxels within mean ± 3σ divided by their (weight-map) count.
* :func:`output_wavelengths`, :func:`combine_spectra` — ``jwst.combine_1d.combine1d``: output
  wavelengths from clumping the union of the input wavelengths, each input element sent to the
  nearest output element, exposure-time weighted mean, errors in quadrature.
* :func:`median_filter` — the step's optional moving median (``scipy.signal.medfilt``).
"""

from __future__ import annotations

import warnings

import numpy as np

from mrsdask.datamodel.dq import DO_NOT_USE


# --------------------------------------------------------------------------- pixel-by-pixel
def sigma_clip_mask(stack: np.ndarray, sigma: float = 3.0, maxiters: int | None = None) -> np.ndarray:
    """Mask of the values that ``astropy.stats.sigma_clip(stack, axis=0)`` rejects.

    Parameters
    ----------
    stack : ndarray, shape (n, ...)
        Values along axis 0 (the exposures) are clipped independently for every position.
    sigma : float
        Lower and upper clipping limit, in standard deviations about the median.
    maxiters : int or None
        Clipping iterations; None iterates until no new value is rejected.

    Returns
    -------
    ndarray of bool, same shape as ``stack``
        True where the value is rejected or not finite.
    """
    from astropy.stats import sigma_clip
    from astropy.utils.exceptions import AstropyUserWarning

    # astropy's own clipping, as the official step calls it: the same mask as a median/std
    # loop written here, 2-6x faster (bottleneck or its partitioned median, one pass per
    # iteration over only the positions still changing).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # "input data contains invalid values"
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN positions
        clipped = sigma_clip(np.asarray(stack, dtype=np.float64), sigma=sigma, maxiters=maxiters, axis=0,
                             masked=True, copy=False)
    return np.ma.getmaskarray(clipped)


def average_background(
    data: np.ndarray,
    err: np.ndarray,
    dq: np.ndarray,
    sigma: float = 3.0,
    maxiters: int | None = None,
) -> dict[str, np.ndarray]:
    """Sigma-clipped mean of a stack of background exposures, pixel by pixel.

    Parameters
    ----------
    data, err : ndarray, shape (n, ...)
        SCI and ERR of the ``n`` background exposures (any float type).
    dq : ndarray, shape (n, ...)
        Their DQ flags.
    sigma, maxiters
        Clipping parameters (official defaults 3 and None).

    Returns
    -------
    dict
        ``sci`` (float32): mean of the unclipped values (0 where every value is rejected, as
        the official masked mean gives); ``err`` (float32): √(Σ err²) over the unclipped values
        divided by their number (0 where there is none, as the official); ``dq`` (uint32): OR of all ``dq``
        (clipped or not, as the official); ``n`` (int16): number of values used.
    """
    data = np.asarray(data)
    n_in = data.shape[0]
    values = data.astype(np.float64)
    # The official squares ERR in the input precision, then stores it as float64.
    err_in = np.asarray(err)
    variance = (err_in * err_in).astype(np.float64)
    mask = sigma_clip_mask(values, sigma, maxiters)
    used = ~mask
    n_used = used.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(used, values, 0.0).sum(axis=0) / n_used
        mean = np.where(n_used > 0, mean, 0.0)
        var_sum = np.where(used, variance, 0.0).sum(axis=0)
        error = np.sqrt(var_sum) / (n_in - mask.sum(axis=0))
        error = np.where(n_used > 0, error, 0.0)
    dq = np.asarray(dq, dtype=np.uint32)
    dq_or = np.bitwise_or.reduce(dq, axis=0) if n_in else np.zeros(data.shape[1:], np.uint32)
    return {
        "sci": mean.astype(np.float32),
        "err": error.astype(np.float32),
        "dq": dq_or.astype(np.uint32),
        "n": n_used.astype(np.int16),
    }


def subtract_background(
    sci: np.ndarray,
    err: np.ndarray,
    dq: np.ndarray,
    bkg: np.ndarray,
    bkg_err: np.ndarray | None = None,
    bkg_dq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCI − background, ERR ⊕ background ERR, DQ | background DQ.

    Parameters
    ----------
    sci, err, dq : ndarray
        Science planes (float32, float32, uint32).
    bkg : ndarray
        Background, cast to float32 before subtracting (the official stores its background
        in a float32 model and subtracts in place).
    bkg_err : ndarray, optional
        Background error; None leaves ERR unchanged (what the official steps do).
    bkg_dq : ndarray, optional
        Background DQ to OR in; None leaves DQ unchanged.
    """
    out_sci = np.asarray(sci, dtype=np.float32) - np.asarray(bkg, dtype=np.float32)
    if bkg_err is None:
        out_err = np.asarray(err, dtype=np.float32)
    else:
        e = np.asarray(err, dtype=np.float32)
        b = np.asarray(bkg_err, dtype=np.float32)
        out_err = np.sqrt(e * e + b * b).astype(np.float32)
    out_dq = np.asarray(dq, dtype=np.uint32)
    if bkg_dq is not None:
        out_dq = out_dq | np.asarray(bkg_dq, dtype=np.uint32)
    return out_sci, out_err, out_dq


# --------------------------------------------------------------------------- 1-D → 2-D
def sort_table(wavelength: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort a table by wavelength when it is not strictly increasing (as ``expand_to_2d``)."""
    wavelength = np.asarray(wavelength, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if wavelength.size > 1 and not np.all(np.diff(wavelength) > 0):
        order = np.argsort(wavelength)
        wavelength, values = wavelength[order], values[order]
    return wavelength, values


def project_spectrum(wavelength: np.ndarray, table_wavelength: np.ndarray, table_sb: np.ndarray) -> np.ndarray:
    """A 1-D surface-brightness table evaluated at every pixel's wavelength.

    Parameters
    ----------
    wavelength : ndarray
        Pixel wavelengths (µm), any shape; NaN off-slice.
    table_wavelength, table_sb : ndarray
        The 1-D background, strictly increasing in wavelength (see :func:`sort_table`).

    Returns
    -------
    ndarray of float32
        Linear interpolation; 0 outside the table's range and where λ is NaN.
    """
    lam = np.where(np.isnan(wavelength), -1.0, np.asarray(wavelength, dtype=np.float64))
    return np.interp(lam, table_wavelength, table_sb, left=0.0, right=0.0).astype(np.float32)


def subtract_projected(
    sci: np.ndarray, wavelength: np.ndarray, table_wavelength: np.ndarray, table_sb: np.ndarray
) -> dict[str, np.ndarray]:
    """SCI − projected background, and the projected background, for a block of pixels.

    Returns ``sci`` and ``background`` (float32). DQ is not changed: the official step ORs in
    the DQ of a copy of the science model itself.
    """
    bkg = project_spectrum(wavelength, table_wavelength, table_sb)
    return {"sci": np.asarray(sci, dtype=np.float32) - bkg, "background": bkg}


# --------------------------------------------------------------------------- cube extraction
def extended_plane_background(
    sci: np.ndarray,
    err: np.ndarray,
    wmap: np.ndarray,
    sigma: float = 3.0,
    maxiters: int = 5,
) -> dict[str, np.ndarray]:
    """Extended-source extraction of a block of cube planes (official ``extract_ifu``).

    For each plane, with ``w = min(wmap, 1)``: the clipping statistics are
    ``sigma_clipped_stats(sci[w == 1], sigma, maxiters)``; spaxels outside mean ± σ·std or
    with ``w == 0`` are masked; BACKGROUND = Σ sci / Σ w over the rest. The full-plane
    surface brightness and flux sums (no clipping) are returned as well.

    Parameters
    ----------
    sci, err, wmap : ndarray, shape (nz, ny, nx)
        Cube planes: surface brightness, its error and the weight map.

    Returns
    -------
    dict of ndarray, shape (nz,)
        ``background`` (MJy/sr), ``background_error``, ``npixels_bkg``, ``sum`` (Σ sci over
        covered spaxels), ``npixels`` (Σ w over covered spaxels), ``sum_var`` and ``dq``
        (DO_NOT_USE where the plane has no covered spaxel). A plane without any spaxel of
        weight ≥ 1 gets BACKGROUND 0 and ``npixels_bkg`` 0, as the official.
    """
    from astropy.stats import sigma_clipped_stats

    sci = np.asarray(sci, dtype=np.float64)
    var = np.asarray(err, dtype=np.float64) ** 2
    wmap = np.minimum(np.asarray(wmap, dtype=np.float64), 1.0)
    nz = sci.shape[0]
    out = {name: np.zeros(nz) for name in ("background", "background_error", "sum", "sum_var", "npixels_bkg")}
    out["npixels"] = np.ones(nz)
    out["dq"] = np.zeros(nz, dtype=np.uint32)
    for k in range(nz):
        plane, w, v = sci[k], wmap[k], var[k]
        bmask = w == 0
        covered = ~bmask
        area = float(w[covered].sum())
        if area == 0:
            # As the official: flagged, and the aperture's geometric area stands in.
            out["dq"][k] = DO_NOT_USE
            area = float(plane.size)
        out["npixels"][k] = area
        out["sum"][k] = float(plane[covered].sum())
        out["sum_var"][k] = float(v[covered].sum())
        stat = plane[w == 1]
        if stat.size == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, _, std = sigma_clipped_stats(stat, sigma=sigma, maxiters=maxiters)
        low, high = mean - sigma * std, mean + sigma * std
        with np.errstate(invalid="ignore"):
            keep = covered & ~((plane < low) | (plane > high))
        out["background"][k] = float(plane[keep].sum())
        out["npixels_bkg"][k] = float(w[keep].sum())
        out["background_error"][k] = float(v[keep].sum())
    n_bkg = np.where(out["npixels_bkg"] > 0, out["npixels_bkg"], 1.0)
    out["background"] = out["background"] / n_bkg
    out["background_error"] = np.sqrt(out["background_error"]) / n_bkg
    return out


# --------------------------------------------------------------------------- combine_1d
def _covers(wavelength: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """1 where ``grid`` lies within the half-pixel-extended range of ``wavelength``."""
    w = wavelength
    if w[1] > w[0]:
        lo = w[0] - 0.5 * (w[1] - w[0])
        hi = w[-1] + 0.5 * (w[-1] - w[-2])
    else:
        lo = w[-1] - 0.5 * (w[-2] - w[-1])
        hi = w[0] + 0.5 * (w[0] - w[1])
    return ((grid >= lo) & (grid < hi)).astype(np.int64)


def output_wavelengths(wavelengths: list[np.ndarray]) -> np.ndarray:
    """Output wavelengths of a combination (official ``count_input`` + ``compute_output_wl``).

    The union of the input wavelengths is sorted; where ``n`` spectra overlap, clumps of
    ``n`` nearly equal values (a standard deviation well below that of the neighbouring
    windows, or exactly 0) become one output wavelength, their mean; gaps between clumps are
    filled with means of ``n`` consecutive values.

    Parameters
    ----------
    wavelengths : list of ndarray
        Input wavelength arrays, each strictly monotonic; arrays of length < 2 are ignored.

    Returns
    -------
    ndarray
        Increasing output wavelengths.
    """
    usable = [np.asarray(w, dtype=np.float64) for w in wavelengths if len(w) > 1]
    if not usable:
        raise ValueError("no input spectrum has two or more wavelengths")
    wl = np.sort(np.concatenate(usable))
    nwl = wl.size
    n_over = np.zeros(nwl, dtype=np.int64)
    for w in usable:
        if w[1] == w[0]:
            continue
        n_over += _covers(w, wl)
    if np.any(n_over <= 0):
        raise ValueError("input wavelengths are inconsistent (a wavelength covered by no spectrum)")

    spread = np.full(nwl, 9999.0)
    mean = np.full(nwl, -99.0)
    out = np.full(nwl, -99.0)
    for k in range(nwl):
        n = int(n_over[k])
        if n == 1:
            spread[k] = 0.0
            mean[k] = out[k] = wl[k]
            continue
        k1 = k + n // 2 + 1
        k0 = k1 - n
        if k0 >= 0 and k1 <= nwl:
            window = wl[k0:k1]
            spread[k] = window.std()
            mean[k] = window.mean()
            if spread[k] == 0.0:
                out[k] = mean[k]
    cutoff = 0.8
    for k in range(nwl):
        if spread[k] <= 0.0:
            continue
        if k == 0:
            neighbours = spread[1] if nwl > 1 else np.inf
        elif k == nwl - 1:
            neighbours = spread[nwl - 2]
        else:
            neighbours = (spread[k - 1] + spread[k + 1]) / 2.0
        if spread[k] < cutoff * neighbours:
            out[k] = mean[k]
    # Fill the gaps between clumps with means of n consecutive input wavelengths.
    i = 0
    while i < nwl:
        n = int(n_over[i])
        middle = n // 2
        if i + middle < nwl:
            n = int(n_over[i + middle])
            if i + n < nwl:
                low = max(i - 1, 0)
                high = min(i + n + 1, nwl - 1)
                if out[low:high].max() <= 0.0:
                    out[i] = wl[i:i + n].mean()
        i += n
    return np.sort(out[out > 0.0])


def nearest_output_index(wavelength: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index of the output element of each input wavelength (official spectral-WCS inversion).

    Linear interpolation of the element number against the output wavelengths, rounded half
    to even; -1 outside the grid's range or for NaN.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    pixel = np.interp(wavelength, grid, np.arange(grid.size, dtype=np.float64))
    outside = ~np.isfinite(wavelength) | (wavelength < grid[0]) | (wavelength > grid[-1])
    index = np.rint(pixel)
    index[outside] = -1
    return index.astype(np.int64)


def combine_spectra(spectra: list[dict], grid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Weighted combination of 1-D spectra (official ``combine_1d``, without clipping).

    Parameters
    ----------
    spectra : list of dict
        Each with ``wavelength``, ``surf_bright``, ``sb_error``, ``dq`` arrays, a scalar
        ``weight`` (exposure time) and optionally ``flux`` and ``flux_error``. An element is
        used when it is not DO_NOT_USE and its flux (or, without flux, its surface brightness)
        is not NaN. Spectra with no finite flux or non-monotonic wavelengths are skipped.
    grid : ndarray, optional
        Output wavelengths; default :func:`output_wavelengths` of the inputs.

    Returns
    -------
    dict of ndarray
        ``wavelength``, ``surf_bright``, ``sb_error``, ``flux``, ``flux_error``, ``dq``,
        ``weight`` (Σ weights) and ``n_input`` (inputs per element); elements that received
        no input are dropped.
    """
    usable = []
    for spec in spectra:
        wave = np.asarray(spec["wavelength"], dtype=np.float64)
        sb = np.asarray(spec["surf_bright"], dtype=np.float64)
        flux = np.asarray(spec["flux"], dtype=np.float64) if spec.get("flux") is not None else sb
        if not np.any(np.isfinite(flux)):
            continue
        if wave.size > 1 and not (np.all(np.diff(wave) > 0) or np.all(np.diff(wave) < 0)):
            continue
        usable.append((spec, wave, sb, flux))
    if not usable:
        raise ValueError("no input spectrum has valid values")
    if grid is None:
        grid = output_wavelengths([u[1] for u in usable])
    nspec, nelem = len(usable), grid.size
    planes = {name: np.zeros((nspec, nelem)) for name in
              ("flux", "flux_error", "surf_bright", "sb_error", "weight", "count")}
    dq = np.zeros(nelem, dtype=np.uint32)
    for s, (spec, wave, sb, flux) in enumerate(usable):
        n = wave.size
        sb_err = np.asarray(spec.get("sb_error", np.zeros(n)), dtype=np.float64)
        flux_err = np.asarray(spec["flux_error"], dtype=np.float64) if spec.get("flux_error") is not None else sb_err
        in_dq = np.asarray(spec.get("dq", np.zeros(n)), dtype=np.uint32)
        k = nearest_output_index(wave, grid)
        good = ((in_dq & DO_NOT_USE) == 0) & ~np.isnan(flux) & (k >= 0) & (k < nelem)
        idx = np.nonzero(good)[0]
        kk = k[idx]
        np.bitwise_or.at(dq, kk, in_dq[idx])
        # Where several input elements fall on one output element, the last one wins.
        planes["flux"][s, kk] = flux[idx]
        planes["flux_error"][s, kk] = flux_err[idx]
        planes["surf_bright"][s, kk] = sb[idx]
        planes["sb_error"][s, kk] = sb_err[idx]
        planes["weight"][s, kk] = float(spec.get("weight", 1.0))
        planes["count"][s, kk] = 1.0
    weight = planes["weight"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = np.nansum(weight, axis=0)
        norm = np.where(total > 0.0, total, 1.0)
        result = {
            "wavelength": np.asarray(grid, dtype=np.float64),
            "flux": np.nansum(planes["flux"] * weight, axis=0) / norm,
            "flux_error": np.sqrt(np.nansum((planes["flux_error"] * weight) ** 2, axis=0)) / norm,
            "surf_bright": np.nansum(planes["surf_bright"] * weight, axis=0) / norm,
            "sb_error": np.sqrt(np.nansum((planes["sb_error"] * weight) ** 2, axis=0)) / norm,
            "dq": dq,
            "weight": total,
            "n_input": np.nansum(planes["count"], axis=0),
        }
    keep = result["n_input"] > 0
    return {name: value[keep] for name, value in result.items()}


def median_filter(values: np.ndarray, kernel: int) -> np.ndarray:
    """Moving median of odd width ``kernel`` (an even width is rounded down; ≤ 1: unchanged).

    ``scipy.signal.medfilt`` semantics (zero padding at the ends), as the official step.
    """
    from scipy.signal import medfilt

    kernel = int(kernel)
    if kernel % 2 == 0:
        kernel -= 1
    if kernel <= 1:
        return np.asarray(values, dtype=np.float64).copy()
    return medfilt(np.asarray(values, dtype=np.float64), kernel_size=[kernel])
