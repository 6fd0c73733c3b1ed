"""The ``mrsdask`` argument parser: one subparser per command, options from the request declarations."""

from __future__ import annotations

import argparse

def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    """The cluster options, declared by :class:`mrsdask.scheduling.Scheduling`."""
    from mrsdask.options import add_arguments
    from mrsdask.scheduling import Scheduling

    add_arguments(p.add_argument_group("cluster"), Scheduling)


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
    add_json_summary(p)
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
    add_json_summary(p)
    p.add_argument("store", nargs="+", metavar="STORE_OR_S3D",
                   help="a cube store, or s3d cube files (official CubeBuildStep output, e.g. from MAST)")
    p.add_argument("--x1d", required=True, metavar="DIR", help="output folder for the *_x1d.fits files")
    p.add_argument("--cube", nargs="+", default=None, help="cubes to extract (default: every complete cube)")
    p.add_argument("--prefix", default=None, help="start of the file names (default: the cubes' product name, "
                   "e.g. the association's)")
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
    add_json_summary(p)
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
    p.add_argument("--prefix", default=None, help="start of the file names (default: the cubes' product name, "
                   "e.g. the association's)")
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
    from mrsdask.bench import background as bench_background

    b = bsub.add_parser("background", help="pixel background: official BackgroundStep vs mrsdask background, "
                                           "same association")
    bench_background.add_arguments(b)
    return parser


# --------------------------------------------------------------------------- commands


def add_json_summary(p) -> None:
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write a machine-readable summary (outputs, products, seconds, parameters, software "
                        "versions) to FILE ('-': standard output)")
