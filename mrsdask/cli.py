"""The ``mrsdask`` command.

Subcommands::

    mrsdask simulate  -o DIR [--bands 1A 2A] [--dithers 4] …     simulated cal files + association
    mrsdask ingest    INPUTS… -o STORE                            cal/rate files -> zarr detector store
    mrsdask cube      [INPUTS…] -o STORE [--output-type …] …      build cubes (the main job)
    mrsdask background INPUTS… -o STORE --method pixel|master      background-subtracted detector store
    mrsdask fringe    INPUTS… -o STORE [--flat F] [--residual]     fringe-corrected detector store
    mrsdask straylight INPUTS… -o STORE --override-mrsxartcorr F   stray light (cross-artifact) removed
    mrsdask outlier   INPUTS… -o STORE [--threshold-percent 99.8]  IFU outliers flagged (official ifu mode)
    mrsdask extract   STORE --x1d DIR [--ifu-set-srctype …]         1-D spectra of cubes -> official x1d FITS
    mrsdask run       PIPELINE [INPUTS…] -o RUN_FOLDER [--set …]   a ready pipeline (pipelines/*.yaml) or a file
    mrsdask info      STORE                                        list the cubes/exposures in a store
    mrsdask export    STORE --s3d DIR                              cubes -> official s3d FITS
    mrsdask bench     cube|extract|spec3 …                         side-by-side benchmark vs the official step

With no INPUTS, ``mrsdask cube`` simulates a default observation first (a small dithered
point source + extended emission, bands 1A and 2A) and builds its cubes: the embedded demo.
Errors in the input print one line naming the file and the fix, and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings

from mrsdask.errors import MrsdaskError

EXIT_BAD_INPUT = 2


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    g.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler, or 'threads'/'synchronous' to run in this process "
                        "(default $DASK_SCHEDULER_ADDRESS, else a local cluster; 'mrsdask cube' runs a small job "
                        "in this process)")
    g.add_argument("--n-workers", type=int, default=None,
                   help="local cluster: worker processes; threads: threads (default: cores)")
    g.add_argument("--memory-limit", default=None,
                   help="local cluster: memory limit per worker (default 2GB); in this process: the memory "
                        "the tasks are planned for (default none)")
    g.add_argument("--threads-per-worker", type=int, default=1, help="local cluster: threads per worker")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_simulate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulation")
    g.add_argument("--config", default=None, help="YAML/JSON file with a SimulationConfig mapping")
    g.add_argument("--bands", nargs="+", default=None, help="bands to observe, e.g. 1A 2A (default 1A 2A)")
    g.add_argument("--dithers", type=int, default=None, help="dither positions (1-4, default 4)")
    g.add_argument("--pattern", default=None, choices=["4-point", "2-point", "none"], help="dither pattern")
    g.add_argument("--mosaic", default=None, metavar="NXxNY@STEP",
                   help="mosaic of pointings, e.g. 2x1@5 (tiles 5 arcsec apart)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    g.add_argument("--fringes", type=float, default=None, help="inject fringes of this amplitude (0.05-0.15)")
    g.add_argument("--cosmic-rays", type=int, default=None, help="cosmic rays per exposure")
    g.add_argument("--background-exposures", type=int, default=None, help="dedicated background exposures per setting")


#: What the detector-step commands read.
DETECTOR_INPUTS_HELP = "cal files, globs, an association JSON or a detector store"


def _add_detector_step(sub, name: str, help: str, inputs_help: str, request: type, group: str) -> None:
    """A detector-step command: inputs, ``-o`` store, the step's options (declared in ``request``),
    ``--overwrite`` and the cluster options."""
    from mrsdask.options import add_arguments

    p = sub.add_parser(name, help=help)
    p.add_argument("inputs", nargs="+", help=inputs_help)
    p.add_argument("-o", "--output", required=True, help="output detector store (path or s3:// URL)")
    add_arguments(p.add_argument_group(group), request)
    p.add_argument("--overwrite", action="store_true", help="replace a complete store at the output")
    _add_cluster_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrsdask",
        description="Distributed, chunked processing of JWST MIRI MRS integral-field data: detector stores, "
                    "background and fringe correction, 3-D cubes as the official CubeBuildStep builds them, "
                    "1-D spectra, pipelines; on a Dask cluster or in this process. "
                    "'mrsdask COMMAND -h' describes each command.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="log progress details (INFO), with the warnings and logs of jwst, dask and astropy")
    loudness.add_argument("-q", "--quiet", action="store_true", help="log errors only; no warnings")
    parser.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"),
                        help="level of mrsdask's log (default warning; -v info, -q error)")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("simulate", help="write simulated MRS cal files on the real geometry")
    p.add_argument("-o", "--output", required=True, help="output folder")
    _add_simulate_options(p)

    p = sub.add_parser("ingest", help="cal/rate FITS (files, globs, association) -> zarr detector store")
    p.add_argument("inputs", nargs="+", help="cal/rate FITS files, globs or an association JSON")
    p.add_argument("-o", "--output", required=True, help="detector store (path or s3:// URL)")
    p.add_argument("--overwrite", action="store_true", help="replace a complete store at the output")
    _add_cluster_options(p)

    p = sub.add_parser("cube", help="build 3-D cubes (band, channel or multi) into a zarr store")
    _add_json_summary(p)
    p.add_argument("inputs", nargs="*", help="cal files, globs, association JSON or a detector store; none: simulate a demo")
    p.add_argument("-o", "--output", default="mrsdask-out/cubes.zarr", help="zarr cube store (path or s3:// URL)")
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.options import add_arguments

    add_arguments(p.add_argument_group("cube (official CubeBuildStep parameters)"), CubeRequest)
    p.add_argument("--cubepar", default=None, help="official CUBEPAR reference file (default: shipped FLT-9 values)")
    p.add_argument("--s3d", default=None, metavar="DIR", help="also write one *_s3d.fits per cube into DIR")
    p.add_argument("--overwrite", action="store_true", help="rebuild cubes already complete in the store")
    p.add_argument("--keep-scratch", action="store_true", help="keep the pixel tables after the build")
    _add_cluster_options(p)
    _add_simulate_options(p)

    from mrsdask.background.request import BackgroundRequest
    from mrsdask.fringe.request import FringeRequest
    from mrsdask.outlier.request import OutlierRequest

    _add_detector_step(sub, "background", "background-subtract detector data into a new detector store",
                       "cal files, globs, an association JSON (science + background members) or a detector store",
                       BackgroundRequest, "background (official BackgroundStep / MasterBackgroundStep names)")
    _add_detector_step(sub, "fringe", "fringe flat and/or residual-fringe correction into a new detector store",
                       DETECTOR_INPUTS_HELP, FringeRequest, "fringe (official FringeStep / ResidualFringeStep names)")
    from mrsdask.straylight.request import StraylightRequest

    _add_detector_step(sub, "straylight",
                       "remove stray light (official cross-artifact model) into a new detector store",
                       DETECTOR_INPUTS_HELP, StraylightRequest, "straylight (official StraylightStep parameters)")
    _add_detector_step(sub, "outlier",
                       "flag IFU outliers (official outlier_detection, mode ifu) into a new detector store",
                       DETECTOR_INPUTS_HELP, OutlierRequest,
                       "outlier detection (official OutlierDetectionStep parameters)")

    p = sub.add_parser("extract", help="1-D spectra of cubes (official extract_1d: aperture, annulus background) as x1d FITS")
    _add_json_summary(p)
    p.add_argument("store", nargs="+", metavar="STORE_OR_S3D",
                   help="a cube store, or s3d cube files (official CubeBuildStep output, e.g. from MAST)")
    p.add_argument("--x1d", required=True, metavar="DIR", help="output folder for the *_x1d.fits files")
    p.add_argument("--cube", nargs="+", default=None, help="cubes to extract (default: every complete cube)")
    p.add_argument("--prefix", default="mrsdask", help="start of the file names")
    p.add_argument("--overwrite", action="store_true", help="replace x1d files of the same names that mrsdask did not write")
    from mrsdask.extract.request import ExtractRequest

    add_arguments(p.add_argument_group("extraction (official Extract1dStep parameters)"), ExtractRequest)
    _add_cluster_options(p)

    p = sub.add_parser("plot", help="quick-look PNGs: each cube's image (aperture drawn) and the spectra")
    p.add_argument("inputs", nargs="+", metavar="STORE_OR_S3D", help="a cube store, or s3d cube files")
    p.add_argument("--png", required=True, metavar="DIR", help="output folder for the PNG files")
    p.add_argument("--cube", nargs="+", default=None, help="cubes of the store (default: every complete cube)")
    p.add_argument("--x1d", nargs="+", default=(), metavar="FILE",
                   help="x1d files: their spectra in spectra.png, their apertures on the images of their cubes")
    p.add_argument("--wavemin", type=float, default=None, metavar="UM", help="image over these wavelengths only")
    p.add_argument("--wavemax", type=float, default=None, metavar="UM", help="image over these wavelengths only")

    p = sub.add_parser("run", help="run a pipeline: background, fringe, cube and export steps in one job, resumable")
    _add_json_summary(p)
    p.add_argument("pipeline", nargs="?", help="name of a ready pipeline (mrsdask run --list) or a definition file")
    p.add_argument("inputs", nargs="*", help="cal files, globs, association JSON or a detector store; none: simulate a demo")
    p.add_argument("-o", "--output", default=None, help="run folder (default mrsdask-out/<pipeline name>)")
    p.add_argument("--set", action="append", default=[], metavar="ID.PARAM=VALUE",
                   help="change a step parameter, e.g. --set cube.output_type=multi; repeatable")
    p.add_argument("--overwrite", action="store_true", help="run every step again, even those up to date")
    p.add_argument("--list", action="store_true", help="list the ready pipelines and exit")
    p.add_argument("--describe", action="store_true", help="print the steps and parameters as they would run, and exit")
    _add_cluster_options(p)
    _add_simulate_options(p)

    p = sub.add_parser("info", help="describe a cube or detector store")
    p.add_argument("store", help="cube or detector store (path or s3:// URL)")

    p = sub.add_parser("export", help="write the cubes of a store as s3d FITS files")
    p.add_argument("store", help="cube store (path or s3:// URL)")
    p.add_argument("--s3d", required=True, metavar="DIR", help="output folder (or s3:// prefix) for the *_s3d.fits files")
    p.add_argument("--prefix", default="mrsdask", help="start of the file names (default mrsdask)")
    p.add_argument("--overwrite", action="store_true", help="replace s3d files of the same names that mrsdask did not write")

    p = sub.add_parser("bench", help="benchmarks side by side with the official pipeline")
    bsub = p.add_subparsers(dest="bench_command")
    b = bsub.add_parser("cube", help="cube building: official CubeBuildStep vs mrsdask, same inputs, same run")
    from mrsdask.bench import cube as bench_cube
    from mrsdask.bench import extract as bench_extract

    bench_cube.add_arguments(b)
    b = bsub.add_parser("extract", help="1-D extraction: official Extract1dStep vs mrsdask extract, same s3d files")
    bench_extract.add_arguments(b)
    from mrsdask.bench import spec3 as bench_spec3

    b = bsub.add_parser("spec3", help="level 3: official Spec3Pipeline vs 'mrsdask run spec3', same association")
    bench_spec3.add_arguments(b)
    return parser


# --------------------------------------------------------------------------- commands
def _simulation_config(args) -> dict:
    import json

    data: dict = {}
    if getattr(args, "config", None):
        with open(args.config) as fobj:
            text = fobj.read()
        if args.config.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    else:
        data = {
            "bands": ["1A", "2A"],
            "sources": [
                {"type": "point", "ra_offset": 0.2, "dec_offset": -0.1, "continuum_mjy": 50.0, "slope": 1.0,
                 "lines": [{"wavelength": 5.34, "fwhm": 0.002, "flux": 2e-17}]},
                {"type": "extended", "ra_offset": -0.5, "dec_offset": 0.5, "size": 1.5,
                 "continuum_mjysr": 20.0, "lines": [{"wavelength": 8.0, "fwhm": 0.004, "flux": 2e-9}]},
            ],
        }
    if args.bands:
        data["bands"] = args.bands
    if args.dithers is not None:
        data["n_dithers"] = args.dithers
    if args.pattern:
        data["dither_pattern"] = args.pattern
    if args.seed is not None:
        data["seed"] = args.seed
    if args.fringes is not None:
        data["fringes"] = args.fringes
    if args.cosmic_rays is not None:
        data["cosmic_rays"] = args.cosmic_rays
    if args.background_exposures is not None:
        data["n_background_exposures"] = args.background_exposures
    if args.mosaic:
        from mrsdask.sim.config import mosaic_pointings

        data["pointings"] = mosaic_pointings(args.mosaic)
    return data


def _add_json_summary(p) -> None:
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write a machine-readable summary (outputs, products, seconds, parameters, software "
                        "versions) to FILE ('-': standard output)")


def _write_summary(args, summary: dict) -> None:
    """The ``--json`` summary of a command, with its provenance (:mod:`mrsdask.provenance`)."""
    if not getattr(args, "json", None):
        return
    import json

    from mrsdask.provenance import provenance

    text = json.dumps({"command": args.command, **summary, "provenance": provenance()}, indent=2, default=str)
    if args.json == "-":
        print(text)
        return
    from mrsdask.io.outputs import staged_file

    with staged_file(args.json) as tmp:
        with open(tmp, "w") as fobj:
            fobj.write(text + "\n")


def cmd_simulate(args) -> int:
    from mrsdask.sim import simulate

    result = simulate(_simulation_config(args), args.output, verbose=True)
    print(f"wrote {len(result.cal_files)} science and {len(result.background_files)} background "
          f"cal files, association {result.association} ({result.seconds:.1f} s)")
    return 0


def cmd_ingest(args) -> int:
    from mrsdask.cluster import dask_client
    from mrsdask.io.detector_store import check_detector_output, open_cal, write_detector_store

    check_detector_output(args.output, args.overwrite)  # before any work
    ds = open_cal(args.inputs)
    scheduler = _small_job_scheduler(args, args.inputs, detector_job=True)
    with dask_client(scheduler, args.n_workers, args.memory_limit, args.threads_per_worker):
        t0 = time.perf_counter()
        write_detector_store(ds, args.output, overwrite=args.overwrite, progress=not args.no_progress)
    print(f"ingested {ds.sizes['exposure']} exposures into {args.output} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_cube(args) -> int:
    from mrsdask.cluster import check_cluster_options

    check_cluster_options(args.n_workers, args.threads_per_worker, args.memory_limit)
    request = _cube_request(args)  # a bad parameter is refused before the demo is simulated
    inputs = list(args.inputs)
    if args.s3d:
        from mrsdask.io.outputs import check_output_folder

        check_output_folder(args.s3d, "s3d folder")  # before the build, not after
    if not inputs:
        from mrsdask.sim.demo import demo_association

        folder = os.path.join(os.path.dirname(os.path.abspath(args.output)) or ".", "simulated")
        inputs = [demo_association(folder, _simulation_config(args))]

    # The library's entry point: every check that needs no cluster (request, inputs, output
    # store, task memory) runs before one starts, and a small job runs in this process.
    from mrsdask.cube.api import build, open_build_inputs

    pars, ds = open_build_inputs(inputs, args.cubepar)
    t0 = time.perf_counter()
    cubes = build(ds, args.output, request, cubepar=pars, overwrite=args.overwrite, keep_scratch=args.keep_scratch,
                  progress=not args.no_progress, scheduler=args.scheduler, n_workers=args.n_workers,
                  memory_limit=args.memory_limit, threads_per_worker=args.threads_per_worker, announce=print)
    elapsed = time.perf_counter() - t0
    for name, cube in cubes.items():
        print(f"  {name}: {cube.sizes['x']} x {cube.sizes['y']} x {cube.sizes['wavelength']} "
              f"({cube.attrs['wavelength_axis']} wavelength axis)")
    print(f"built {len(cubes)} cube(s) into {args.output} in {elapsed:.1f} s; "
          f"open with xarray.open_zarr({args.output!r}, group=NAME)")
    files = []
    if args.s3d:
        from mrsdask.cube.export import export_s3d, product_name

        files = export_s3d(args.output, list(cubes), args.s3d, product_name(ds["filename"].values),
                           overwrite=args.overwrite)
    from dataclasses import asdict

    _write_summary(args, {
        "output": args.output, "seconds": round(elapsed, 3), "request": asdict(request),
        "inputs": [str(f) for f in ds["filename"].values],
        "cubes": {name: {"shape": [cube.sizes["wavelength"], cube.sizes["y"], cube.sizes["x"]],
                         "wavelength_axis": cube.attrs["wavelength_axis"],
                         "wavelength_um": [float(cube["wavelength"][0]), float(cube["wavelength"][-1])],
                         "source_type": cube.attrs.get("source_type")} for name, cube in cubes.items()},
        "s3d": list(files or []),
    })
    return 0


def _small_job_scheduler(args, inputs: list[str], detector_job: bool = False,
                         fits_fringes: bool = False) -> str | None:
    """The library's choice (:func:`mrsdask.scheduling.choose_scheduler`) for a command's options."""
    from mrsdask.cube.plan import parse_channels
    from mrsdask.scheduling import choose_scheduler

    try:
        channels = parse_channels(getattr(args, "channel", ["all"]))  # 'run' builds what its cube steps ask
    except MrsdaskError:
        return None  # reported where the request is made
    return choose_scheduler(inputs, scheduler=args.scheduler, n_workers=args.n_workers, channels=channels,
                            detector_job=detector_job, fits_fringes=fits_fringes)


def _cube_request(args):
    """The checked :class:`~mrsdask.cube.plan.CubeRequest` of ``mrsdask cube``'s options."""
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.options import from_arguments

    return from_arguments(CubeRequest, args)


def cmd_background(args) -> int:
    from mrsdask.background.request import BackgroundRequest
    from mrsdask.background.run import run_background
    from mrsdask.cluster import dask_client
    from mrsdask.options import from_arguments

    request = from_arguments(BackgroundRequest, args)
    scheduler = _small_job_scheduler(args, args.inputs, detector_job=True)
    with dask_client(scheduler, args.n_workers, args.memory_limit, args.threads_per_worker):
        summary = run_background(args.inputs, args.output, **request.run_arguments(), overwrite=args.overwrite,
                                 progress=not args.no_progress)
    print(summary)
    return 0


def cmd_fringe(args) -> int:
    from mrsdask.cluster import dask_client
    from mrsdask.fringe.request import FringeRequest
    from mrsdask.fringe.run import open_fringe_inputs, run_fringe
    from mrsdask.io.detector_store import check_detector_output
    from mrsdask.options import from_arguments

    request = from_arguments(FringeRequest, args)
    if not request.override_fringe and not request.residual:
        from mrsdask.errors import ParameterError

        raise ParameterError("choose --flat FRINGE… and/or --residual")
    check_detector_output(args.output, args.overwrite)  # before the inputs are read and a cluster starts
    ds = open_fringe_inputs(args.inputs)
    scheduler = _small_job_scheduler(args, args.inputs, detector_job=True, fits_fringes=request.residual)
    with dask_client(scheduler, args.n_workers, args.memory_limit, args.threads_per_worker):
        summary = run_fringe(ds, args.output, request, overwrite=args.overwrite, progress=not args.no_progress)
    print(summary)
    print(f"wrote the fringe-corrected detector store {args.output}")
    return 0


def cmd_straylight(args) -> int:
    from mrsdask.cluster import dask_client
    from mrsdask.io.detector_store import check_detector_output
    from mrsdask.options import from_arguments
    from mrsdask.straylight.request import StraylightRequest
    from mrsdask.straylight.run import open_straylight_inputs, run_straylight

    request = from_arguments(StraylightRequest, args)
    request.check_runnable()
    check_detector_output(args.output, args.overwrite)  # before the inputs are read and a cluster starts
    ds = open_straylight_inputs(args.inputs)
    scheduler = _small_job_scheduler(args, args.inputs, detector_job=True)
    with dask_client(scheduler, args.n_workers, args.memory_limit, args.threads_per_worker):
        summary = run_straylight(ds, args.output, request, overwrite=args.overwrite, progress=not args.no_progress)
    print(summary)
    return 0


def cmd_outlier(args) -> int:
    from mrsdask.cluster import dask_client
    from mrsdask.options import from_arguments
    from mrsdask.outlier import OutlierRequest, run_outlier

    request = from_arguments(OutlierRequest, args)
    scheduler = _small_job_scheduler(args, args.inputs, detector_job=True)
    with dask_client(scheduler, args.n_workers, args.memory_limit, args.threads_per_worker):
        summary = run_outlier(args.inputs, args.output, request, overwrite=args.overwrite,
                              progress=not args.no_progress)
    print(summary)
    return 0


def cmd_extract(args) -> int:
    from mrsdask.cluster import dask_client
    from mrsdask.errors import InputError
    from mrsdask.extract import extract_cubes
    from mrsdask.extract.request import ExtractRequest
    from mrsdask.extract.run import check_extraction, complete_cubes
    from mrsdask.io import paths
    from mrsdask.options import from_arguments

    from mrsdask.io.s3d import is_s3d_path

    request = from_arguments(ExtractRequest, args)
    if all(is_s3d_path(p) for p in args.store):
        if args.cube:
            raise InputError("--cube names cubes of a store; s3d files are extracted whole")
        from mrsdask.extract.files import extract_s3d_files

        t0 = time.perf_counter()
        with dask_client(args.scheduler or "threads", args.n_workers, args.memory_limit, args.threads_per_worker):
            files = extract_s3d_files(list(args.store), args.x1d, request, overwrite=args.overwrite)
        print(f"extracted {len(files)} spectrum(s) in {time.perf_counter() - t0:.1f} s")
        from dataclasses import asdict

        _write_summary(args, {"s3d": list(args.store), "x1d": files, "seconds": round(time.perf_counter() - t0, 3),
                              "request": asdict(request)})
        return 0
    if len(args.store) != 1:
        raise InputError(f"give one cube store, or s3d files (*.fits): got {' '.join(args.store)}")
    args.store = args.store[0]
    paths.check_store_metadata(args.store, "build cubes with 'mrsdask cube' first")
    names = args.cube or complete_cubes(args.store)
    if not names:
        raise InputError(f"{args.store}: holds no complete cube")
    check_extraction(args.store, names, request)
    # A few cubes' planes: in this process unless a cluster is named.
    from mrsdask.cluster import configured_scheduler_address

    scheduler = args.scheduler or (None if configured_scheduler_address() else "threads")
    with dask_client(scheduler, args.n_workers, args.memory_limit, args.threads_per_worker):
        t0 = time.perf_counter()
        files = extract_cubes(args.store, names, args.x1d, args.prefix, request, overwrite=args.overwrite)
    elapsed = time.perf_counter() - t0
    print(f"extracted {len(files)} spectrum(s) in {elapsed:.1f} s")
    from dataclasses import asdict

    _write_summary(args, {"store": args.store, "cubes": names, "x1d": list(files), "seconds": round(elapsed, 3),
                          "request": asdict(request)})
    return 0


def cmd_run(args) -> int:
    from mrsdask.errors import ParameterError
    import mrsdask.pipeline
    from mrsdask.pipeline import load_pipeline, shipped_pipelines

    if args.list:
        for name, path in shipped_pipelines().items():
            print(f"  {name:28s} {_first_sentence(path)}")
        return 0
    if not args.pipeline:
        raise ParameterError("name a pipeline or a definition file (see 'mrsdask run --list')")
    pipeline = load_pipeline(args.pipeline, args.set)
    if args.describe:
        print(pipeline.describe())
        return 0
    run_folder = args.output or os.path.join("mrsdask-out", pipeline.name)
    inputs, extra = list(args.inputs), {}
    if not inputs:
        inputs, extra = _demo_inputs(args, pipeline, run_folder)
    t0 = time.perf_counter()
    outcomes = mrsdask.pipeline.run(
        pipeline, inputs, run_folder, overwrite=args.overwrite, progress=not args.no_progress, scheduler=args.scheduler,
        n_workers=args.n_workers, memory_limit=args.memory_limit, threads_per_worker=args.threads_per_worker,
        announce=print, extra=extra)
    states = [o.state for o in outcomes]
    counts = ", ".join(f"{states.count(s)} {s}" for s in ("ran", "resumed", "up to date", "skipped") if s in states)
    elapsed = time.perf_counter() - t0
    print(f"pipeline {pipeline.name}: {len(outcomes)} step(s) ({counts}) in {elapsed:.1f} s; "
          f"record in {run_folder.rstrip('/')}/pipeline-run.json")
    _write_summary(args, {
        "pipeline": pipeline.name, "run_folder": run_folder, "seconds": round(elapsed, 3),
        "steps": [{"id": o.step.id, "step": o.step.name, "state": o.state, "seconds": round(o.seconds, 3),
                   "output": o.result.output, "products": list(o.result.products),
                   "summary": o.result.summary, "parameters": o.step.params} for o in outcomes],
    })
    return 0


def _first_sentence(path) -> str:
    import yaml

    try:
        data = yaml.safe_load(open(path)) or {}
    except (OSError, yaml.YAMLError) as exc:
        return f"(unreadable: {exc})"
    text = " ".join(str(data.get("description", "")).split())
    return text.split(". ")[0].rstrip(".")


def _demo_inputs(args, pipeline, run_folder: str) -> tuple[list[str], dict]:
    """Simulate the demo observation into the run folder (once: reruns reuse it)."""
    import json

    from mrsdask.io import paths
    from mrsdask.pipeline.runner import prepare_run_folder, update_manifest
    from mrsdask.sim.demo import demo_association

    if paths.is_remote(run_folder):
        from mrsdask.errors import ParameterError

        raise ParameterError("the demo simulates into a local run folder; give inputs for a remote run folder")
    record = prepare_run_folder(run_folder, pipeline.name, args.overwrite) or {}
    config = json.loads(json.dumps(_simulation_config(args)))  # as it reads back from the run record
    names = {step.name for step in pipeline.steps}
    if "fringe" in names and args.fringes is None:
        config["fringes"] = 0.08  # something for the residual-fringe fit to remove
    if "background" in names and args.background_exposures is None:
        config["n_background_exposures"] = 1
    if not record:
        update_manifest(run_folder, demo={"config": config, "association": ""})  # the folder is a run folder now
    association = demo_association(os.path.join(run_folder, "simulated"), config)
    demo = {"config": config, "association": association}
    update_manifest(run_folder, demo=demo)
    return [association], {"demo": demo}


def cmd_plot(args) -> int:
    from mrsdask.query.plot import quick_looks

    if (args.wavemin is None) != (args.wavemax is None):
        from mrsdask.errors import ParameterError

        raise ParameterError("give both --wavemin and --wavemax, or neither")
    files = quick_looks(list(args.inputs), args.png, cubes=args.cube, x1d=list(args.x1d), wmin=args.wavemin,
                        wmax=args.wavemax)
    print(f"wrote {len(files)} PNG file(s) into {args.png}")
    return 0


def cmd_export(args) -> int:
    from mrsdask.cube.store import open_group
    from mrsdask.io import paths

    paths.check_store_metadata(args.store, "build cubes with 'mrsdask cube' first")
    group = open_group(args.store, mode="r")
    names = sorted(k for k in group.group_keys() if not k.startswith("_"))
    if not names:
        from mrsdask.errors import InputError

        raise InputError(f"{args.store}: holds no cube")
    from mrsdask.cube.export import export_s3d

    export_s3d(args.store, names, args.s3d, args.prefix, overwrite=args.overwrite)
    return 0


def cmd_info(args) -> int:
    from mrsdask.cube.store import COMPLETE_ATTR, describe_missing, missing_chunks, open_group
    from mrsdask.io import paths

    paths.check_store_metadata(args.store)
    group = open_group(args.store, mode="r")
    if group.attrs.get("convention", "").startswith("mrsdask-detector"):
        from mrsdask.io.detector_store import open_detector_store

        ds = open_detector_store(args.store)
        print(f"detector store with {ds.sizes['exposure']} exposures:")
        for i in range(ds.sizes["exposure"]):
            print(f"  {ds['filename'].values[i]}  {ds['setting'].values[i]}  {ds['exptype'].values[i]}")
        from mrsdask.outlier import outlier_summary

        if outlier_summary(ds) is not None:
            print(outlier_summary(ds))
        return 0
    damaged = []
    for name in sorted(group.group_keys()):
        if name.startswith("_"):
            continue
        sub = group[name]
        shape = sub["sci"].shape
        state = "complete" if sub.attrs.get(COMPLETE_ATTR) else "INCOMPLETE"
        absent = missing_chunks(args.store, name) if sub.attrs.get(COMPLETE_ATTR) else {}
        if absent:
            state = f"DAMAGED: chunks missing ({describe_missing(args.store, name, absent)})"
            damaged.append(name)
        print(f"  {name}: {shape[2]} x {shape[1]} x {shape[0]}  {sub.attrs.get('weighting')}  {state}")
    if damaged:
        from mrsdask.errors import DamagedStoreError

        raise DamagedStoreError(f"{args.store}: cube(s) {', '.join(damaged)} lost chunks; run the same "
                                "'mrsdask cube' command again to recompute them")
    return 0


def configure_logging(level: str, libraries: bool = False) -> None:
    """Log and warning levels of a command.

    mrsdask's log goes to standard error at ``level``; its own warnings (``warnings.warn`` in
    mrsdask modules) are shown unless the level is ``error``. The warnings and logs of the
    libraries underneath (jwst, stpipe, asdf, astropy, dask) are hidden unless ``libraries``
    (``-v``): they describe their internals, not the user's data.
    """
    numeric = getattr(logging, level.upper())
    logging.basicConfig(level=numeric, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mrsdask").setLevel(numeric)
    if libraries:
        return
    warnings.filterwarnings("ignore")
    if numeric < logging.ERROR:
        warnings.filterwarnings("default", module=r"mrsdask(\.|$)")  # added last: checked first
    import distributed  # noqa: F401  (it sets its loggers' levels on import)

    for noisy in ("stpipe", "jwst", "stdatamodels", "distributed", "asdf"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from mrsdask import __version__

        print(__version__)
        return 0
    configure_logging(args.log_level or ("info" if args.verbose else "error" if args.quiet else "warning"),
                      libraries=args.verbose)
    commands = {"simulate": cmd_simulate, "ingest": cmd_ingest, "cube": cmd_cube, "info": cmd_info,
                "export": cmd_export, "background": cmd_background, "fringe": cmd_fringe, "run": cmd_run,
                "extract": cmd_extract, "outlier": cmd_outlier, "plot": cmd_plot, "straylight": cmd_straylight}
    if args.command == "bench":
        if args.bench_command not in ("cube", "extract", "spec3"):
            parser.error("choose a benchmark: mrsdask bench cube|extract|spec3 …")
        from importlib import import_module

        commands["bench"] = import_module(f"mrsdask.bench.{args.bench_command}").run
    if args.command not in commands:
        parser.print_help()
        return EXIT_BAD_INPUT
    # Only what mrsdask refuses on purpose (mrsdask.errors) and the OS refusing to write an output
    # become a one-line message; anything else (a ValueError included) is a bug: its traceback shows.
    try:
        return commands[args.command](args)
    except MrsdaskError as exc:
        print(f"mrsdask: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a write refused by the OS (read-only, permission, disk full) not named deeper down
        from mrsdask.io.outputs import as_write_error, describe_write_error

        output = next((str(v) for v in (getattr(args, k, None) for k in ("output", "s3d", "x1d")) if v), "")
        refusal = as_write_error(exc, output)
        if refusal is None:
            raise
        print(f"mrsdask: error: {describe_write_error(refusal, output, 'what is unfinished stays marked incomplete')}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("mrsdask: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def run() -> None:
    """The console entry point: :func:`main`, then a fast exit with its status.

    By the time a command returns, its outputs are complete (stores written and closed, the
    cluster shut down). Python's own teardown of the ~1,500 modules a command loads (numba,
    astropy, dask, distributed…) then takes 0.3-0.9 s, as long as the whole of a small job; the
    process instead runs the ``atexit`` handlers, flushes its streams and logs, and leaves.
    """
    import atexit

    code = main()
    try:
        atexit._run_exitfuncs()  # what a normal exit runs first (Dask, zarr and logging clean-up)
        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    run()
