"""The steps a pipeline definition can name, their parameters, and how each one runs.

Each step reads what the step before it wrote (the first one reads the pipeline's inputs) and
writes one output under the run folder:

=============  ===========================================  =====================================
step           does                                         writes
=============  ===========================================  =====================================
``background``  pixel-by-pixel or master background          a detector store ``NN-<id>.zarr``
``straylight``  stray light (official cross-artifact model)  a detector store ``NN-<id>.zarr``
``fringe``      fringe flat and/or residual-fringe fitting   a detector store ``NN-<id>.zarr``
``outlier``     IFU outlier detection (official ifu mode)    a detector store ``NN-<id>.zarr``
``cube``        band, channel or multi cubes                 cubes into ``store`` (``cubes.zarr``)
``export``      the last cube step's cubes as ``s3d`` FITS   files in ``folder`` (``s3d``)
``extract``     1-D spectra of those cubes as ``x1d`` FITS   files in ``folder`` (``x1d``)
=============  ===========================================  =====================================

The steps call the same functions as the ``mrsdask`` subcommands of the same names
(:func:`mrsdask.background.run_background`, :func:`mrsdask.fringe.run.run_fringe`,
:func:`mrsdask.cube.builder.build_cubes`, :func:`mrsdask.cube.export.export_s3d`), and their
options are declared once, in the requests those take (``BackgroundRequest``,
``FringeRequest``, ``CubeRequest``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from mrsdask.background.request import BackgroundRequest
from mrsdask.cube.plan import CubeRequest
from mrsdask.extract.request import ExtractRequest
from mrsdask.fringe.request import FringeRequest
from mrsdask.options import Param, from_parameters, pipeline_params
from mrsdask.outlier.request import OutlierRequest
from mrsdask.straylight.request import StraylightRequest

#: Step kinds: what a step reads and writes.
DETECTOR, CUBE, EXPORT = "detector", "cube", "export"


@dataclass
class StepContext:
    """What a step is given to run.

    Attributes
    ----------
    inputs : list of str
        What it reads: the pipeline's inputs, or the previous detector store.
    output : str
        Where it writes (a store, or a folder for ``export``).
    run_folder : str
        The run's folder (relative paths in parameters are under it).
    resume : bool
        ``cube``: continue a build of the same cubes left unfinished in ``output``.
    cube_store : str or None
        ``export``: the store of the last cube step, and ``cubes`` its cube names.
    cubes : list of str
    product : str or None
        Product name for exported files (from the first input file names).
    progress : bool
        Show progress bars.
    announce : callable
        Prints one line.
    """

    inputs: list[str]
    output: str
    run_folder: str
    resume: bool = False
    cube_store: str | None = None
    cubes: list[str] = field(default_factory=list)
    product: str | None = None
    progress: bool = True
    announce: Callable[[str], None] = print


@dataclass
class StepResult:
    """What a step did: its output, a summary (one or more lines), and its products (cube names, files)."""

    output: str
    summary: str
    products: list[str] = field(default_factory=list)
    #: The step was skipped and wrote nothing: the next step reads what this one read.
    passthrough: bool = False


@dataclass(frozen=True)
class StepType:
    """A kind of step: its name, what it reads and writes, its parameters and its function."""

    name: str
    kind: str
    params: tuple[Param, ...]
    run: Callable[[StepContext, dict[str, Any]], StepResult]
    help: str = ""

    def default_output(self, index: int, step_id: str, params: dict[str, Any]) -> str:
        """Output path relative to the run folder."""
        if self.kind == DETECTOR:
            return f"{index:02d}-{step_id}.zarr"
        return params["store"] if self.kind == CUBE else params["folder"]


def _under(folder: str, path: str | None) -> str | None:
    """``path`` relative to the run folder, unless absolute or a URL."""
    if path is None or "://" in path or os.path.isabs(path):
        return path
    return os.path.join(folder, path)


# --------------------------------------------------------------------------- background
def run_background_step(ctx: StepContext, p: dict[str, Any]) -> StepResult:
    """``background``: :func:`mrsdask.background.run_background` into a new detector store."""
    from mrsdask.background import run_background

    request = from_parameters(BackgroundRequest, p)
    request = replace(request, save_master=_under(ctx.run_folder, request.save_master))
    summary = run_background(ctx.inputs, ctx.output, **request.run_arguments(), overwrite=True, progress=ctx.progress)
    products = [summary.master_path] if summary.master_path else []
    return StepResult(ctx.output, str(summary), products)


BACKGROUND_STEP = StepType("background", DETECTOR, pipeline_params(BackgroundRequest), run_background_step,
                           "background subtraction (pixel-by-pixel or master background)")


def detector_step(name: str, request: type, runner: str, help: str) -> StepType:
    """A detector step that is one call of ``runner(inputs, output, request, overwrite=True, progress=)``.

    ``runner`` (``"module:function"``, imported when the step runs) writes the step's new
    detector store from its inputs and returns the summary of the step's record; the step's
    parameters are the options of ``request``.
    """
    module, function = runner.split(":")

    def run_step(ctx: StepContext, p: dict[str, Any]) -> StepResult:
        run = getattr(importlib.import_module(module), function)
        summary = run(ctx.inputs, ctx.output, from_parameters(request, p), overwrite=True, progress=ctx.progress)
        return StepResult(ctx.output, str(summary))

    run_step.__doc__ = f"``{name}``: :func:`{module}.{function}` into a new detector store."
    return StepType(name, DETECTOR, pipeline_params(request), run_step, help)


# --------------------------------------------------------------------------- fringe
FRINGE_STEP = detector_step("fringe", FringeRequest, "mrsdask.fringe.run:run_fringe",
                            "fringe flat and residual-fringe correction")


# --------------------------------------------------------------------------- cube
def run_cube_step(ctx: StepContext, p: dict[str, Any]) -> StepResult:
    """``cube``: :func:`mrsdask.cube.builder.build_cubes` into the step's store."""
    from mrsdask.cube.builder import build_cubes, open_cube
    from mrsdask.cube.cubepars import default_cubepars, read_cubepar
    from mrsdask.io.detector_store import open_detector_inputs

    request = from_parameters(CubeRequest, p)
    pars = read_cubepar(p["cubepar"]) if p["cubepar"] else default_cubepars()
    ds = open_detector_inputs(ctx.inputs)
    names = build_cubes(ds, ctx.output, request, pars, progress=ctx.progress, overwrite=not ctx.resume,
                        keep_scratch=p["keep_scratch"], moving_target=p["assign_mtwcs"])
    shapes = []
    for name in names:
        cube = open_cube(ctx.output, name)
        shapes.append(f"{name} {cube.sizes['x']}x{cube.sizes['y']}x{cube.sizes['wavelength']}")
    summary = f"{len(names)} {p['weighting']} cube(s): " + ", ".join(shapes)
    moving = _moving_exposures(ds)
    if moving:
        summary += (f"\nmoving target: {moving} exposure(s) " + ("shifted to the target's frame (assign_mtwcs)"
                    if p["assign_mtwcs"] else "left in their own WCS (assign_mtwcs: false)"))
    return StepResult(ctx.output, summary, names)


def _moving_exposures(ds) -> int:
    """How many science exposures of ``ds`` are of a MOVING target with MT_RA/MT_DEC."""
    import math

    rows = zip(ds["exptype"].values, ds["target_type"].values, ds["mt_ra"].values, ds["mt_dec"].values)
    return sum(str(e) == "science" and str(t).upper() == "MOVING" and math.isfinite(float(ra))
               and math.isfinite(float(dec)) for e, t, ra, dec in rows)


CUBE_STEP = StepType("cube", CUBE, (
    Param("store", "str", "cubes.zarr", "cube store (under the run folder unless absolute or a URL)"),
    Param("cubepar", "str", None, "official CUBEPAR reference file (default: shipped FLT-9 values)", input_file=True),
    *pipeline_params(CubeRequest),  # the request's options, declared once in mrsdask.cube.plan
    Param("keep_scratch", "bool", False, "keep the pixel tables after the build"),
    Param("assign_mtwcs", "bool", True, "build the cubes of a MOVING target in its own frame, from MT_RA/MT_DEC "
          "(the official assign_mtwcs; no effect on fixed targets)"),
), run_cube_step, "3-D cubes (drizzle, EMSM or MSM)")


# --------------------------------------------------------------------------- export
def run_export_step(ctx: StepContext, p: dict[str, Any]) -> StepResult:
    """``export``: the cubes of the last cube step as ``s3d`` FITS files."""
    from mrsdask.cube.export import export_s3d

    files = export_s3d(ctx.cube_store, ctx.cubes, ctx.output, _prefix(ctx, p), announce=ctx.announce)
    return StepResult(ctx.output, f"{len(files)} s3d file(s) in {ctx.output}", files)


def _file_params(folder: str) -> tuple[Param, Param]:
    """The parameters of a step that writes FITS files: their folder and the start of their names."""
    return (Param("folder", "str", folder, "output folder (under the run folder unless absolute)"),
            Param("prefix", "str", None, "start of the file names (default: the product name of the inputs)"))


def _prefix(ctx: StepContext, p: dict[str, Any]) -> str:
    """The start of the names of the files a step writes (its ``prefix``, else the inputs' product name)."""
    return p["prefix"] or ctx.product or "mrsdask"


EXPORT_STEP = StepType("export", EXPORT, _file_params("s3d"), run_export_step,
                       "s3d FITS files of the cubes built by the cube step before it")

# --------------------------------------------------------------------------- extract
def run_extract_step(ctx: StepContext, p: dict[str, Any]) -> StepResult:
    """``extract``: spectra of the last cube step's cubes as ``x1d`` FITS files."""
    from mrsdask.extract import extract_cubes

    request = from_parameters(ExtractRequest, p)
    files = extract_cubes(ctx.cube_store, ctx.cubes, ctx.output, _prefix(ctx, p), request, announce=ctx.announce)
    done = "aperture correction " + ("on" if request.apply_apcorr else "off")
    return StepResult(ctx.output, f"{len(files)} x1d file(s) in {ctx.output} ({done})", files)


EXTRACT_STEP = StepType("extract", EXPORT, (
    *_file_params("x1d"),
    *pipeline_params(ExtractRequest),  # the request's options, declared once in mrsdask.extract.request
), run_extract_step, "1-D spectra (x1d FITS) of the cubes built by the cube step before it")

# --------------------------------------------------------------------------- outlier
def run_outlier_step(ctx: StepContext, p: dict[str, Any]) -> StepResult:
    """``outlier``: :func:`mrsdask.outlier.run_outlier` into a new detector store (``skip``: nothing)."""
    from mrsdask.outlier import run_outlier

    request = from_parameters(OutlierRequest, p)
    if request.skip:
        return StepResult(ctx.output, "outlier detection skipped (skip: true); the next step reads this step's input",
                          passthrough=True)
    summary = run_outlier(ctx.inputs, ctx.output, request, overwrite=True, progress=ctx.progress)
    return StepResult(ctx.output, str(summary))


OUTLIER_STEP = StepType("outlier", DETECTOR, pipeline_params(OutlierRequest), run_outlier_step,
                        "IFU outlier detection (official outlier_detection, mode ifu)")


# --------------------------------------------------------------------------- straylight
STRAYLIGHT_STEP = detector_step("straylight", StraylightRequest, "mrsdask.straylight.run:run_straylight",
                                "stray light: the official cross-artifact model (needs override_mrsxartcorr)")


#: All steps by name.
STEP_TYPES: dict[str, StepType] = {s.name: s for s in (BACKGROUND_STEP, STRAYLIGHT_STEP, FRINGE_STEP, OUTLIER_STEP,
                                                       CUBE_STEP, EXPORT_STEP, EXTRACT_STEP)}
