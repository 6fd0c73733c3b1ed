"""``run_background``: inputs → background-subtracted detector store (the CLI's entry point).

::

    from mrsdask.background import run_background

    summary = run_background(["obs_spec3_asn.json"], "sub.zarr", method="master")
    print(summary)

Inputs are what :func:`mrsdask.io.detector_store.open_cal` takes (cal files, globs,
association JSON), or one detector store, or a detector Dataset. Background members are
those with ``exptype == "background"`` in the association; an association (or a file list)
may also hold background **x1d** files, which the master method then uses as the official
``master_background`` does.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import xarray as xr

from mrsdask.background import spectrum as bspec
from mrsdask.background.master import check_coverage, cube_background_spectra, subtract_master_background
from mrsdask.background.pixel import exposure_roles, subtract_pixel_background
from mrsdask.background.request import METHODS
from mrsdask.errors import InputError, ParameterError

log = logging.getLogger("mrsdask.background")

#: Dataset/store attribute recording the background subtraction (JSON of the summary).
DONE_ATTR = "mrsdask_background"


@dataclass
class BackgroundSummary:
    """What :func:`run_background` did.

    Attributes
    ----------
    method : str
        ``pixel`` or ``master``.
    source : str
        Where the background came from, in words.
    science : list of str
        Science exposures that had a background subtracted.
    background : list of str
        Background members used (exposures or x1d files; the user file for a user spectrum).
    per_setting : dict
        Pixel method: setting → background exposures averaged for it.
    unchanged : list of str
        Science exposures left as they were (no background for their setting).
    spectrum_points, spectrum_range
        Master method: length and wavelength range (µm) of the 1-D master background.
    output_store, master_path : str or None
        What was written.
    saved_2d : bool
        Whether the subtracted 2-D background is in the output store (``background``).
    notes : list of str
        Caveats found on the way (e.g. wavelengths the master background does not cover).
    seconds : float
        Wall time.
    """

    method: str
    source: str
    science: list[str] = field(default_factory=list)
    background: list[str] = field(default_factory=list)
    per_setting: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    spectrum_points: int = 0
    spectrum_range: tuple[float, float] | None = None
    output_store: str | None = None
    master_path: str | None = None
    saved_2d: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain JSON-able dictionary."""
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable report, one line per item."""
        out = [f"background method: {self.method} — {self.source}"]
        if self.per_setting:
            for setting, members in sorted(self.per_setting.items()):
                out.append(f"  setting {setting}: clipped mean of {len(members)} background exposure(s): "
                           + ", ".join(members))
        elif self.background:
            out.append(f"  background members ({len(self.background)}): " + ", ".join(self.background))
        if self.spectrum_range:
            out.append(f"  master background: {self.spectrum_points} points, "
                       f"{self.spectrum_range[0]:.4f}-{self.spectrum_range[1]:.4f} um")
        out.append(f"  subtracted from {len(self.science)} science exposure(s): " + ", ".join(self.science))
        if self.unchanged:
            out.append("  NOT subtracted (no background of their setting): " + ", ".join(self.unchanged))
        out.extend(f"  note: {note}" for note in self.notes)
        if self.output_store:
            out.append(f"  wrote {self.output_store}" + (" (with the 2-D background)" if self.saved_2d else ""))
        if self.master_path:
            out.append(f"  wrote the 1-D master background to {self.master_path}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --------------------------------------------------------------------------- inputs
def open_inputs(inputs: list[str]) -> tuple[xr.Dataset, list[str]]:
    """Open inputs as a lazy detector Dataset; x1d background members are returned apart.

    Parameters
    ----------
    inputs : list of str
        cal files, globs, association JSON files, or one detector store. Association members
        keep their role (``exptype``); plain cal files are science unless their header says
        ``BKGDTARG = T`` (a dedicated background observation); x1d files (an association's
        background members, or given directly) are returned as the second item.

    Returns
    -------
    (xarray.Dataset, list of str)
        The detector Dataset and the x1d paths.
    """
    import numpy as np

    from mrsdask.io import paths
    from mrsdask.io.association import Member, read_association
    from mrsdask.io.detector_store import open_cal, open_detector_store
    from mrsdask.io.inputs import is_detector_store

    stores, members, x1d = [], [], []
    for item in paths.expand([str(i) for i in inputs]):
        if is_detector_store(item):
            stores.append(item.rstrip("/"))
        elif item.lower().endswith(".json"):
            for m in read_association(item)[1]:
                if bspec.is_x1d(m.path):
                    x1d.append(m.path)
                else:
                    members.append(m)
        elif bspec.is_x1d(item):
            x1d.append(item)
        else:
            members.append(Member(item, None))
    if stores and members:
        raise InputError("give either FITS inputs or one detector store, not both")
    if len(stores) > 1:
        raise InputError("give one detector store (ingest all exposures into one store)")
    if stores:
        return open_detector_store(stores[0]), x1d
    if not members:
        raise InputError("no cal file among the inputs")
    role: dict[str, str] = {}
    for m in members:
        role.setdefault(m.path, m.exptype)
    ds = open_cal(list(role))
    exptype = np.array([role[str(p)] or header for p, header in zip(ds["path"].values, ds["exptype"].values)])
    return ds.assign_coords(exptype=("exposure", exptype)), x1d


def _names(ds: xr.Dataset, indices) -> list[str]:
    return [str(ds["filename"].values[i]) for i in indices]


# --------------------------------------------------------------------------- writing
def write_background_store(ds: xr.Dataset, store: str, overwrite: bool = False, progress: bool = False) -> str:
    """Write a (lazy) background-subtracted detector Dataset to a zarr detector store.

    Blocks are computed and written in parallel on the current Dask scheduler; the store is
    marked complete (``mrsdask_complete``) only at the end
    (:func:`mrsdask.io.detector_store.write_detector_store`). The input store itself is never
    the output.
    """
    from mrsdask.io import paths
    from mrsdask.io.detector_store import write_detector_store

    store = str(store).rstrip("/")
    if paths.exists(store) and not paths.exists(store + "/zarr.json"):
        raise InputError(f"{store}: exists and is not a zarr store; it is never overwritten — choose another path")
    source = ds.attrs.get("mrsdask_store")
    if source and os.path.abspath(str(source).rstrip("/")) == os.path.abspath(store):
        raise InputError(f"{store}: is the input store; write the subtracted data to another store")
    return write_detector_store(ds, store, overwrite=overwrite, progress=progress)


# --------------------------------------------------------------------------- entry point
def subtract_background(
    ds: xr.Dataset,
    method: str = "pixel",
    *,
    user_background: str | bspec.BackgroundSpectrum | None = None,
    background_x1d: list[str] | None = None,
    median_kernel: int = 1,
    sigma: float = 3.0,
    maxiters: int | None = None,
    combine_errors: bool = True,
    keep_background: bool = False,
    save_2d: bool = False,
    cube_request=None,
    cube_workdir: str | None = None,
    cubepar: str | None = None,
    per_exposure: bool = True,
    force: bool = False,
    progress: bool = False,
) -> tuple[xr.Dataset, BackgroundSummary, bspec.BackgroundSpectrum | None]:
    """Background-subtract a detector Dataset (lazy result; only a master spectrum is computed).

    Parameters are those of :func:`run_background` (except the outputs).

    Returns
    -------
    (xarray.Dataset, BackgroundSummary, BackgroundSpectrum or None)
        The lazy subtracted Dataset, the summary, and the 1-D master background (master
        method).
    """
    if method not in METHODS:
        raise ParameterError(f"background method {method!r}: choose pixel or master")
    if ds.attrs.get(DONE_ATTR) and not force:
        raise ParameterError("the input is already background-subtracted "
                             f"({json.loads(ds.attrs[DONE_ATTR]).get('method')}); pass force=True to subtract again")
    science, background = exposure_roles(ds)
    if not science:
        raise InputError("no science exposure in the input (association exptype 'science')")
    summary = BackgroundSummary(method=method, source="")
    master = None
    if method == "pixel":
        if user_background is not None or background_x1d:
            raise ParameterError("the pixel method uses background exposures; a background spectrum "
                                 "(user_background / x1d) needs method='master'")
        if not background:
            raise InputError("the pixel method needs background exposures (association exptype 'background')")
        out, plan = subtract_pixel_background(ds, sigma, maxiters, combine_errors, keep_background, save_2d)
        summary.source = (f"pixel-by-pixel {sigma:g}-sigma-clipped mean (maxiters={maxiters}) of the background "
                          "exposures of each detector setting")
        summary.per_setting = {s: _names(ds, idx) for s, idx in plan.backgrounds.items()}
        summary.background = _names(ds, sorted(i for idx in plan.backgrounds.values() for i in idx))
        summary.science = _names(ds, sorted(i for idx in plan.science.values() for i in idx))
        summary.unchanged = _names(ds, plan.unmatched)
        for s, idx in sorted(plan.backgrounds.items()):
            log.info("pixel background: setting %s, %d background exposure(s) (%s) for science %s",
                     s, len(idx), ", ".join(_names(ds, idx)), ", ".join(_names(ds, plan.science.get(s, []))))
        for name in summary.unchanged:
            log.warning("pixel background: %s has no background exposure of its setting; left unchanged", name)
    else:
        if cubepar and (user_background is not None or background_x1d):
            log.warning("master background: cubepar %s is not used: no background cube is built from a %s",
                        cubepar, "user spectrum" if user_background is not None else "background x1d file")
        if user_background is not None:
            master = (user_background if isinstance(user_background, bspec.BackgroundSpectrum)
                      else bspec.read_spectrum(str(user_background)))
            summary.source = f"user-supplied spectrum {master.source}"
            summary.background = [master.source]
            if background:
                log.info("master background: user spectrum given; the %d background exposure(s) are not used",
                         len(background))
        elif background_x1d:
            spectra = [s for path in background_x1d for s in bspec.read_background_x1d(path)]
            master = bspec.combine(spectra, median_kernel)
            summary.source = (f"combination of the BACKGROUND columns of {len(background_x1d)} background x1d "
                              "file(s), weighted by exposure time")
            summary.background = [os.path.basename(p) for p in background_x1d]
            if background:
                log.info("master background: %d background x1d file(s) given; the %d background exposure(s) "
                         "are not used", len(background_x1d), len(background))
        else:
            if not background:
                raise InputError("the master method needs background exposures, background x1d files or a "
                                 "user background spectrum")
            log.info("master background: building cubes of %d background exposure(s): %s",
                     len(background), ", ".join(_names(ds, background)))
            spectra = cube_background_spectra(ds, cube_workdir, cube_request, per_exposure, progress=progress,
                                              cubepar=cubepar)
            master = bspec.combine(spectra, median_kernel)
            summary.source = (f"extended-source extraction (3-sigma clipped mean per plane) of cubes of "
                              f"{len(background)} background exposure(s), combined by exposure time")
            summary.background = _names(ds, background)
        if median_kernel > 1 and user_background is None:
            summary.source += f", moving median of width {median_kernel - (1 - median_kernel % 2)}"
        summary.notes = check_coverage(ds, master, science)
        out = subtract_master_background(ds, master, keep_background, save_2d)
        summary.science = _names(ds, science)
        summary.spectrum_points = len(master)
        summary.spectrum_range = master.wavelength_range
        log.info("master background (%s): %d points, %.4f-%.4f um, subtracted from %s",
                 summary.source, len(master), *master.wavelength_range, ", ".join(summary.science))
    summary.saved_2d = bool(save_2d)
    out.attrs = dict(out.attrs)
    out.attrs[DONE_ATTR] = json.dumps({"method": method, "source": summary.source,
                                       "background": summary.background})
    return out, summary, master


def subtract_inputs(
    inputs_or_dataset,
    method: str = "pixel",
    *,
    user_background: str | bspec.BackgroundSpectrum | None = None,
    save_master: str | None = None,
    progress: bool = False,
    **options,
) -> tuple[xr.Dataset, BackgroundSummary, bspec.BackgroundSpectrum | None]:
    """Open the inputs and background-subtract them, lazily; write the master spectrum if asked.

    What :func:`run_background` does before it writes the store: the inputs are those of
    :func:`run_background`, ``options`` those of :func:`subtract_background`.

    Returns
    -------
    (xarray.Dataset, BackgroundSummary, BackgroundSpectrum or None)
    """
    x1d: list[str] = []
    if isinstance(inputs_or_dataset, xr.Dataset):
        ds = inputs_or_dataset
    else:
        items = [inputs_or_dataset] if isinstance(inputs_or_dataset, (str, os.PathLike)) else list(inputs_or_dataset)
        ds, x1d = open_inputs([str(i) for i in items])
    if x1d and method == "pixel":
        raise ParameterError(f"{len(x1d)} x1d file(s) among the inputs: x1d background members need "
                             "method='master'")
    if save_master and method != "master":
        raise ParameterError("save_master needs method='master' (the pixel method has no 1-D spectrum)")
    out, summary, master = subtract_background(
        ds, method, user_background=user_background, background_x1d=x1d or None, progress=progress, **options)
    if save_master:
        summary.master_path = bspec.write_spectrum(master, save_master)
    return out, summary, master


def run_background(
    inputs_or_dataset,
    output_store: str | None,
    method: str = "pixel",
    *,
    user_background: str | None = None,
    save_master: str | None = None,
    save_2d: bool = False,
    median_kernel: int = 1,
    sigma: float = 3.0,
    maxiters: int | None = None,
    combine_errors: bool = True,
    keep_background: bool = False,
    cube_request=None,
    cube_workdir: str | None = None,
    cubepar: str | None = None,
    per_exposure: bool = True,
    force: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> BackgroundSummary:
    """Background-subtract detector data and write a detector store.

    Parameters
    ----------
    inputs_or_dataset : list of str, str or xarray.Dataset
        cal files, globs, association JSON (science + background members; background
        members may be cal or x1d files), one detector store, or a detector Dataset.
    output_store : str or None
        Output zarr detector store (path or URL); None computes nothing and writes nothing
        but the master spectrum (if asked).
    method : {"pixel", "master"}
        ``pixel``: per-pixel clipped mean of the background exposures of the same setting
        (spec2 ``bkg_subtract``). ``master``: a 1-D master background projected through each
        pixel's λ (spec3 ``master_background``).
    user_background : str, optional
        Master method: a user spectrum (x1d FITS or two-column text table) to use instead of
        the background members.
    save_master : str, optional
        Master method: write the 1-D master background here (``.fits`` → x1d-like
        ``MultiCombinedSpecModel``; else a text table).
    save_2d : bool
        Store the subtracted 2-D background as the ``background`` variable (pixel method
        also ``background_err``).
    median_kernel : int
        Master method: moving-median width applied to the combined spectrum (1 = off).
    sigma, maxiters : float, int or None
        Pixel method: clipping along the exposure axis (official 3, None).
    combine_errors : bool
        Pixel method: add the background ERR in quadrature to the science ERR (the official
        step does not; False reproduces it).
    keep_background : bool
        Keep the background exposures (unchanged) in the output store.
    cube_request : mrsdask.cube.plan.CubeRequest, optional
        Master method from background exposures: parameters of their cubes (default band
        cubes, drizzle).
    cube_workdir : str, optional
        Keep those cubes there (default: a temporary folder, removed).
    cubepar : str, optional
        Master method from background exposures: the official CUBEPAR reference file their
        cubes are built with (default the shipped FLT-9 values), as ``mrsdask cube --cubepar``.
    per_exposure : bool
        Master method: one cube set per background exposure (default), else one for all.
    force : bool
        Subtract again from data already background-subtracted by mrsdask.
    overwrite : bool
        Replace an existing output store.
    progress : bool
        Progress bars of the cube builder.

    Returns
    -------
    BackgroundSummary
        Also logged (logger ``mrsdask.background``).
    """
    t0 = time.perf_counter()
    if output_store is not None:
        from mrsdask.io.detector_store import check_detector_output

        check_detector_output(str(output_store).rstrip("/"), overwrite)  # before any work
    out, summary, master = subtract_inputs(
        inputs_or_dataset, method, user_background=user_background, save_master=save_master,
        median_kernel=median_kernel, sigma=sigma, maxiters=maxiters, combine_errors=combine_errors,
        keep_background=keep_background, save_2d=save_2d, cube_request=cube_request,
        cube_workdir=cube_workdir, cubepar=cubepar, per_exposure=per_exposure, force=force, progress=progress,
    )
    if output_store is not None:
        write_background_store(out, output_store, overwrite=overwrite, progress=progress)
        summary.output_store = str(output_store)
    summary.seconds = time.perf_counter() - t0
    for line in summary.lines():
        log.info(line)
    return summary


__all__ = ["BackgroundSummary", "run_background", "subtract_background", "subtract_inputs", "write_background_store",
           "open_inputs", "METHODS"]
