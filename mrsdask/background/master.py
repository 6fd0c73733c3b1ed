"""Master background (spec3 ``master_background``) on a lazy detector Dataset.

Three ways to a 1-D master background spectrum (:class:`~mrsdask.background.spectrum.
BackgroundSpectrum`):

* a user-supplied spectrum (:func:`mrsdask.background.spectrum.read_spectrum`);
* the ``x1d`` files of the dedicated background exposures
  (:func:`mrsdask.background.spectrum.read_background_x1d`), combined;
* cubes of the dedicated background exposures, built here with the cube builder
  (:func:`cube_background_spectra`), each reduced to its extended-source BACKGROUND column
  (:func:`extract_background`: a 3σ-clipped, 5-iteration mean per plane), combined.

Combination (:func:`mrsdask.background.spectrum.combine`) follows ``combine_1d``: output
wavelengths from clumping the union of the input wavelengths, exposure-time weights, no
clipping; then an optional moving median.

The spectrum is then projected onto every detector pixel through the pixel's own λ and
subtracted, one block of rows of one exposure per task (:func:`subtract_master_background`).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.background import kernels
from mrsdask.background.pixel import exposure_roles
from mrsdask.background.spectrum import BackgroundSpectrum
from mrsdask.dispatch import lazy_variable, map_exposures, map_slabs, merge_exposures
from mrsdask.errors import InputError, ParameterError

log = logging.getLogger("mrsdask.background")

#: Megajansky per jansky, for flux = Σ SB · Ω.
MJY = 1e6
#: Outputs of :func:`mrsdask.background.kernels.subtract_projected`.
PROJECTED_OUTPUTS = {"sci": np.float32, "background": np.float32}
#: Outputs of :func:`mrsdask.background.kernels.extended_plane_background`, one value per plane.
PLANE_OUTPUTS = {"background": np.float64, "background_error": np.float64, "npixels_bkg": np.float64,
                 "sum": np.float64, "npixels": np.float64, "sum_var": np.float64, "dq": np.uint32}


# --------------------------------------------------------------------------- 1-D → 2-D
#: File in :func:`mrsdask.instrument.reference.cache_dir` keeping :func:`nominal_wavelength_range`
#: of each setting, by the name, size and time of its reference file.
RANGES_CACHE = "nominal_wavelength_ranges.json"


@functools.lru_cache(maxsize=6)
def nominal_wavelength_range(setting: str) -> tuple[float, float]:
    """(min, max) pixel wavelength (µm) of a detector setting, from the shipped reference models.

    Only the wavelength model of each slice is evaluated (what
    :func:`~mrsdask.instrument.geometry.reference_geometry` gives as ``wavelength``, the same
    numbers), and the result is kept in the cache folder (:data:`RANGES_CACHE`): opening the
    models cost ~3 s a setting (1 s for the wavelength model alone), paid on the client before
    any task of the step could start.
    """
    import json

    from mrsdask.instrument import reference

    path = reference.specwcs_file(setting)
    info = path.stat()
    key = f"{setting}:{path.name}:{info.st_size}:{info.st_mtime_ns}"
    cache = reference.cache_dir() / RANGES_CACHE
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return float(known[key][0]), float(known[key][1])
    found = _wavelength_range(setting, str(path))
    known[key] = list(found)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:  # another process may write it too: each writes whole, the last one stays
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, cache)
    except OSError as exc:
        log.debug("cannot keep the wavelength ranges in %s: %s", cache, exc)
    return found


def _wavelength_range(setting: str, specwcs: str) -> tuple[float, float]:
    """(min, max) of the wavelength models of a specwcs file over their slices' pixels."""
    from stdatamodels.jwst.datamodels import SpecwcsModel

    from mrsdask.instrument import reference

    smap = reference.slice_map(setting)
    lo, hi = np.inf, -np.inf
    with SpecwcsModel(specwcs) as spec:
        for i, number in enumerate(spec.slices):
            ys, xs = np.nonzero(smap == number)
            if ys.size:  # the specwcs model of a slice takes (y, x), as reference_geometry wires it
                lam = spec.model[i](ys.astype(np.float64), xs.astype(np.float64))
                lo, hi = min(lo, float(np.nanmin(lam))), max(hi, float(np.nanmax(lam)))
    return lo, hi


def check_coverage(ds: xr.Dataset, spectrum: BackgroundSpectrum, indices: list[int]) -> list[str]:
    """Report science settings that the spectrum does not fully cover (logged; also returned).

    Pixels beyond the table get no background (as in the official step). Below 95 %
    coverage this is a warning; the few edge pixels that a spectrum extracted from cubes
    never covers are only noted (INFO).
    """
    lo, hi = spectrum.wavelength_range
    messages = []
    for setting in sorted({str(ds["setting"].values[i]) for i in indices}):
        try:
            s_lo, s_hi = nominal_wavelength_range(setting)
        except Exception:  # unknown setting or reference files unavailable: nothing to check
            continue
        if lo > s_lo or hi < s_hi:
            covered = max(0.0, min(hi, s_hi) - max(lo, s_lo)) / (s_hi - s_lo)
            messages.append(
                f"master background covers {lo:.3f}-{hi:.3f} um but setting {setting} spans "
                f"{s_lo:.3f}-{s_hi:.3f} um ({100 * covered:.0f}% covered): pixels outside get no background")
            log.log(logging.WARNING if covered < 0.95 else logging.INFO, messages[-1])
    return messages


def subtract_master_background(
    ds: xr.Dataset,
    spectrum: BackgroundSpectrum,
    keep_background: bool = False,
    save_2d: bool = False,
) -> xr.Dataset:
    """Subtract the projected master background from every science exposure (lazy).

    Parameters
    ----------
    ds : xarray.Dataset
        Detector Dataset; background exposures (``exptype``) are dropped unless
        ``keep_background`` (then they are kept unchanged).
    spectrum : BackgroundSpectrum
        The 1-D master background.
    keep_background : bool
        Keep the background exposures, unchanged.
    save_2d : bool
        Add a ``background`` (exposure, y, x) float32 variable: the projected background
        (0 for exposures that were not changed).

    Returns
    -------
    xarray.Dataset
        SCI replaced; ERR and DQ unchanged, as the official step leaves them (its DQ update
        ORs in the science DQ itself).
    """
    table_wave, table_sb = spectrum.table()
    science, background = exposure_roles(ds)
    keep = sorted(science + (background if keep_background else []))
    done = map_exposures(kernels.subtract_projected, ds, PROJECTED_OUTPUTS, inputs=("sci", "wavelength"),
                         exposures=science, shared={"table_wavelength": table_wave, "table_sb": table_sb},
                         label="master background")
    sci_all = lazy_variable(ds, "sci")
    out = ds.isel(exposure=keep)
    dims = ("exposure", "y", "x")
    out["sci"] = xr.Variable(dims, merge_exposures(sci_all, science, done["sci"], keep), attrs=ds["sci"].attrs)
    if save_2d:
        out["background"] = xr.Variable(dims, merge_exposures(da.zeros_like(sci_all, dtype=np.float32), science,
                                                                done["background"], keep), attrs={
            "units": "MJy / sr", "long_name": "master background projected through each pixel's wavelength"})
    return out


# --------------------------------------------------------------------------- cubes → 1-D
def extract_background(cube: xr.Dataset, sigma: float = 3.0, maxiters: int = 5, weight: float = 1.0,
                       name: str = "") -> BackgroundSpectrum:
    """The extended-source BACKGROUND column of a cube, one wavelength slab per task.

    Parameters
    ----------
    cube : xarray.Dataset
        A cube (:mod:`mrsdask.datamodel.cube`), e.g. from :func:`mrsdask.cube.builder.open_cube`.
    sigma, maxiters
        ``sigma_clipped_stats`` parameters (official ``bkg_sigma_clip`` = 3, 5 iterations).
    weight : float
        Weight of the spectrum when combined (the exposure time).
    name : str
        Label for the log.

    Returns
    -------
    BackgroundSpectrum
        ``surf_bright`` = clipped mean per plane (MJy/sr), ``sb_error``, ``dq`` (DO_NOT_USE on
        empty planes), ``flux`` = Σ SCI · Ω over the covered spaxels (Jy).
    """
    lazy = map_slabs(kernels.extended_plane_background, [cube[var].data for var in ("sci", "err", "wmap")],
                     PLANE_OUTPUTS, shared={"sigma": sigma, "maxiters": maxiters}, label=f"background of cube {name}")
    (planes,) = dask.compute(lazy)
    omega = float(cube.attrs.get("pixelarea_steradians", np.nan))
    flux = planes["sum"] * omega * MJY
    flux_error = np.sqrt(planes["sum_var"]) * omega * MJY
    return BackgroundSpectrum(
        np.asarray(cube["wavelength"].values, dtype=np.float64),
        planes["background"], sb_error=planes["background_error"], dq=planes["dq"],
        flux=flux, flux_error=flux_error, weight=float(weight), source=name,
    )


def cube_background_spectra(
    ds: xr.Dataset,
    workdir: str | None = None,
    request=None,
    per_exposure: bool = True,
    sigma: float = 3.0,
    maxiters: int = 5,
    progress: bool = False,
    cubepar: str | None = None,
) -> list[BackgroundSpectrum]:
    """Build cubes of the background exposures and extract their BACKGROUND spectra.

    Parameters
    ----------
    ds : xarray.Dataset
        Detector Dataset holding background exposures (``exptype == "background"``).
    workdir : str, optional
        Where the cube stores go (kept); default a temporary folder, removed afterwards.
    request : mrsdask.cube.plan.CubeRequest, optional
        Cube parameters; default one drizzle cube per band.
    per_exposure : bool
        One set of cubes per background exposure, combined afterwards by exposure time (as
        the official per-exposure x1d files are); False puts all background exposures into
        the same cubes.
    sigma, maxiters
        Clipping of each plane.
    progress : bool
        Progress bars of the cube builder.
    cubepar : str, optional
        Official CUBEPAR reference file of the cubes (default the shipped FLT-9 values).

    Returns
    -------
    list of BackgroundSpectrum
        One per cube, weighted by the exposure time of its exposure(s).
    """
    from mrsdask.cube.builder import build_cubes, open_cube
    from mrsdask.cube.cubepars import read_cubepar
    from mrsdask.cube.plan import CubeRequest

    _, background = exposure_roles(ds)
    if not background:
        raise InputError("no background exposure in the input (association exptype 'background'); "
                         "give background x1d files or a user background spectrum instead")
    request = request or CubeRequest(output_type="band")
    cubepars = read_cubepar(str(cubepar)) if cubepar else None  # read (and checked) once, before any build
    names = [str(v) for v in ds["filename"].values]
    exptime = np.asarray(ds["exptime"].values, dtype=np.float64)
    groups = [[j] for j in background] if per_exposure else [background]
    temporary = workdir is None
    root_dir = tempfile.mkdtemp(prefix="mrsdask-bkgcubes-") if temporary else str(workdir)
    os.makedirs(root_dir, exist_ok=True)
    spectra: list[BackgroundSpectrum] = []
    try:
        for group in groups:
            labels = np.array(["science" if i in group else "unused" for i in range(ds.sizes["exposure"])])
            relabelled = ds.assign_coords(exptype=("exposure", labels))
            stem = names[group[0]].rsplit(".fits", 1)[0] if len(group) == 1 else "background"
            root = os.path.join(root_dir, f"{stem}_bkgcubes.zarr")
            try:
                cubes = build_cubes(relabelled, root, request, cubepars, progress=progress, overwrite=True)
            except ParameterError as exc:
                log.warning("background exposure(s) %s: no cube (%s)", [names[i] for i in group], exc)
                continue
            weight = float(exptime[group].sum())
            for cube_name in cubes:
                label = f"{stem}:{cube_name}"
                spec = extract_background(open_cube(root, cube_name), sigma, maxiters, weight, label)
                spec.members = [names[i] for i in group]
                log.info("background spectrum %s: %d planes, %.4g-%.4g um, median %.4g MJy/sr",
                         label, len(spec), *spec.wavelength_range, float(np.nanmedian(spec.surf_bright)))
                spectra.append(spec)
    finally:
        if temporary:
            shutil.rmtree(root_dir, ignore_errors=True)
    if not spectra:
        raise InputError("no background cube could be built from the background exposures")
    return spectra
