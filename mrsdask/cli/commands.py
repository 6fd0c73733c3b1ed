"""The ``mrsdask`` commands: each turns parsed arguments into calls of the library (``cmd_NAME``)."""

from __future__ import annotations

import os
import time

from mrsdask.errors import MrsdaskError
from mrsdask.scheduling import Scheduling, choose_scheduler, job_scheduler, scheduler_block


def simulation_config(args) -> dict:
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

    result = simulate(simulation_config(args), args.output, verbose=True)
    print(f"wrote {len(result.cal_files)} science and {len(result.background_files)} background "
          f"cal files, association {result.association} ({result.seconds:.1f} s)")
    return 0


def cmd_ingest(args) -> int:
    from mrsdask.io.detector_store import check_detector_output, open_cal, write_detector_store

    check_detector_output(args.output, args.overwrite)  # before any work
    ds = open_cal(args.inputs)
    scheduling = Scheduling.from_arguments(args)
    with job_scheduler(args.inputs, scheduling, detector_job=True, announce=print):
        t0 = time.perf_counter()
        write_detector_store(ds, args.output, overwrite=args.overwrite, progress=scheduling.progress)
    print(f"ingested {ds.sizes['exposure']} exposures into {args.output} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_cube(args) -> int:
    from mrsdask.phases import startup

    startup()
    scheduling = Scheduling.from_arguments(args)  # checked, before anything else
    request = _cube_request(args)  # a bad parameter is refused before the demo is simulated
    inputs = list(args.inputs)
    if not args.s3d:
        return _cube_job(args, scheduling, request, inputs)
    from mrsdask.io import writer_process
    from mrsdask.io.outputs import check_output_folder

    check_output_folder(args.s3d, "s3d folder")  # before the build, not after
    # The s3d writer's first-time loading (~2.5 CPU-s of Python) runs in a second process from
    # here on, beside this one's imports and the build: mrsdask.io.writer_process.
    with writer_process.started("s3d"):
        return _cube_job(args, scheduling, request, inputs)


def _cube_job(args, scheduling: Scheduling, request, inputs: list[str]) -> int:
    """The work of ``mrsdask cube`` once its arguments are checked."""
    from mrsdask.phases import phase

    if not inputs:
        from mrsdask.sim.demo import demo_association

        folder = os.path.join(os.path.dirname(os.path.abspath(args.output)) or ".", "simulated")
        inputs = [demo_association(folder, simulation_config(args))]

    # The library's entry point: every check that needs no cluster (request, inputs, output
    # store, task memory) runs before one starts, and a small job runs in this process.
    from mrsdask.cube.api import build, open_build_inputs

    with phase("open inputs"):
        pars, ds = open_build_inputs(inputs, args.cubepar)
    t0 = time.perf_counter()
    cubes = build(ds, args.output, request, cubepar=pars, overwrite=args.overwrite, keep_scratch=args.keep_scratch,
                  scheduling=scheduling, announce=print, s3d=args.s3d)
    elapsed = time.perf_counter() - t0
    for name, cube in cubes.items():
        print(f"  {name}: {cube.sizes['x']} x {cube.sizes['y']} x {cube.sizes['wavelength']} "
              f"({cube.attrs['wavelength_axis']} wavelength axis)")
    print(f"built {len(cubes)} cube(s) into {args.output} in {elapsed:.1f} s; "
          f"open with xarray.open_zarr({args.output!r}, group=NAME)")
    files = []
    if args.s3d:  # written by the build, beside its store
        from mrsdask.cube.export import output_prefix, s3d_path

        prefix = output_prefix(args.output, list(cubes), first=next(iter(cubes.values()), None))
        files = [s3d_path(args.s3d, prefix, name) for name in cubes]
        for path in files:
            print(f"  wrote {path}")
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


def small_job_scheduler(args, inputs: list[str], detector_job: bool = False,
                         fits_fringes: bool = False) -> str | None:
    """The library's choice (:func:`mrsdask.scheduling.choose_scheduler`) for a command's options."""
    from mrsdask.cube.plan import parse_channels

    try:
        channels = parse_channels(getattr(args, "channel", ["all"]))  # 'run' builds what its cube steps ask
    except MrsdaskError:
        return None  # reported where the request is made
    return choose_scheduler(inputs, Scheduling.from_arguments(args), channels=channels, detector_job=detector_job,
                            fits_fringes=fits_fringes)


def _cube_request(args):
    """The checked :class:`~mrsdask.cube.plan.CubeRequest` of ``mrsdask cube``'s options."""
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.options import from_arguments

    return from_arguments(CubeRequest, args)


def cmd_background(args) -> int:
    from mrsdask.background.request import BackgroundRequest
    from mrsdask.background.run import run_background
    from mrsdask.options import from_arguments

    request = from_arguments(BackgroundRequest, args)
    scheduling = Scheduling.from_arguments(args)
    with job_scheduler(args.inputs, scheduling, detector_job=True, announce=print):
        summary = run_background(args.inputs, args.output, **request.run_arguments(), overwrite=args.overwrite,
                                 progress=scheduling.progress)
    print(summary)
    return 0


def cmd_fringe(args) -> int:
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
    scheduling = Scheduling.from_arguments(args)
    with job_scheduler(args.inputs, scheduling, detector_job=True, fits_fringes=request.residual, announce=print):
        summary = run_fringe(ds, args.output, request, overwrite=args.overwrite, progress=scheduling.progress)
    print(summary)
    print(f"wrote the fringe-corrected detector store {args.output}")
    return 0


def cmd_straylight(args) -> int:
    from mrsdask.io.detector_store import check_detector_output
    from mrsdask.options import from_arguments
    from mrsdask.straylight.request import StraylightRequest
    from mrsdask.straylight.run import open_straylight_inputs, run_straylight

    request = from_arguments(StraylightRequest, args)
    request.check_runnable()
    check_detector_output(args.output, args.overwrite)  # before the inputs are read and a cluster starts
    ds = open_straylight_inputs(args.inputs)
    scheduling = Scheduling.from_arguments(args)
    with job_scheduler(args.inputs, scheduling, detector_job=True, announce=print):
        summary = run_straylight(ds, args.output, request, overwrite=args.overwrite, progress=scheduling.progress)
    print(summary)
    return 0


def cmd_outlier(args) -> int:
    from mrsdask.options import from_arguments
    from mrsdask.outlier import OutlierRequest, run_outlier

    request = from_arguments(OutlierRequest, args)
    scheduling = Scheduling.from_arguments(args)
    with job_scheduler(args.inputs, scheduling, detector_job=True, announce=print):
        summary = run_outlier(args.inputs, args.output, request, overwrite=args.overwrite,
                              progress=scheduling.progress)
    print(summary)
    return 0


def _extract_scheduler(scheduling: Scheduling) -> str | None:
    """Where ``mrsdask extract`` computes: a few cubes' planes, in this process unless a cluster is named."""
    from mrsdask.cluster import configured_scheduler_address

    return scheduling.scheduler or (None if configured_scheduler_address() else "threads")


def cmd_extract(args) -> int:
    from mrsdask.extract.request import ExtractRequest
    from mrsdask.io import writer_process
    from mrsdask.options import from_arguments
    from mrsdask.phases import startup

    startup()
    request = from_arguments(ExtractRequest, args)
    scheduling = Scheduling.from_arguments(args)
    if _extract_scheduler(scheduling) not in ("threads", "synchronous"):
        # What the job and the x1d writer both import (astropy's FITS and WCS, and with the WCS
        # astropy's coordinates, tables and asdf: ~0.35 CPU-s), imported once, before the fork;
        # a direct extraction (mrsdask.extract.stored) needs neither here.
        import astropy.io.fits  # noqa: F401
        import astropy.wcs  # noqa: F401

    # The x1d writer's first-time loading (~1.1 CPU-s of Python) runs in a second process from
    # here on, beside this one's imports and the extraction: mrsdask.io.writer_process.
    with writer_process.started("x1d"):
        return _extract_job(args, request, scheduling)


def _extract_job(args, request, scheduling: Scheduling) -> int:
    """The work of ``mrsdask extract`` once its options are read."""
    from mrsdask.errors import InputError
    from mrsdask.extract import extract_cubes
    from mrsdask.extract.run import check_extraction, complete_cubes
    from mrsdask.io import paths
    from mrsdask.io.paths import is_s3d_path
    from mrsdask.phases import phase

    if all(is_s3d_path(p) for p in args.store):
        if args.cube:
            raise InputError("--cube names cubes of a store; s3d files are extracted whole")
        from mrsdask.extract.files import extract_s3d_files

        t0 = time.perf_counter()
        with scheduler_block(scheduling.scheduler or "threads", scheduling, announce=print):
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
    scheduler = _extract_scheduler(scheduling)
    with phase("open inputs"):  # opened once, for the extraction too; without xarray where it can be
        cubes = check_extraction(args.store, names, request, direct=scheduler in ("threads", "synchronous"))
    with scheduler_block(scheduler, scheduling, announce=print):
        t0 = time.perf_counter()
        files = extract_cubes(args.store, names, args.x1d, args.prefix, request, overwrite=args.overwrite,
                              cubes=cubes)
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
        pipeline, inputs, run_folder, overwrite=args.overwrite, scheduling=Scheduling.from_arguments(args),
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
    config = json.loads(json.dumps(simulation_config(args)))  # as it reads back from the run record
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
