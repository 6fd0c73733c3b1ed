"""``mrsdask``'s entry point: parse, set logging, run the command, turn refusals into exit status 2."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from mrsdask.cli.commands import (
    cmd_background,
    cmd_cube,
    cmd_export,
    cmd_extract,
    cmd_fringe,
    cmd_info,
    cmd_ingest,
    cmd_outlier,
    cmd_plot,
    cmd_run,
    cmd_simulate,
    cmd_straylight,
)
from mrsdask.cli.parser import build_parser
from mrsdask.errors import MrsdaskError

EXIT_BAD_INPUT = 2


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
    # distributed sets its loggers' levels from Dask's configuration when it is imported: a job
    # that needs no cluster does not import it (~0.2 s), so it is told the level beforehand.
    import dask.config

    dask.config.set({"logging.distributed": "error"})
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
        if args.bench_command not in ("cube", "extract", "spec3", "background"):
            parser.error("choose a benchmark: mrsdask bench cube|extract|spec3|background …")
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


def freeze_at_phases() -> None:
    """Make each phase of this process's command (:mod:`mrsdask.phases`) start with
    :func:`collect_and_freeze`."""
    from mrsdask import phases

    if collect_and_freeze not in phases.at_phase_start:
        phases.at_phase_start.append(collect_and_freeze)


def collect_and_freeze() -> None:
    """Collect the garbage, then move what is alive (the modules, the opened inputs and plans)
    to the collector's permanent generation (:func:`gc.freeze`), which its full collections skip.

    A command's set-up creates ~250,000 objects that live until it ends (modules, mostly); each
    full collection that its imports and header parsing trigger traversed them all again. With
    this at each phase's start the collections of the multi cube command (24 exposures) take
    0.20 CPU-s instead of 0.35, mostly in its serial set-up. The collection first: no garbage
    is frozen (a file in a garbage cycle is still closed); an object alive at a phase's start
    that becomes garbage in a cycle later is freed only at exit. For the console command's
    process only (:func:`run`): a session that calls :func:`main` again may outlive it.
    """
    import gc

    gc.collect()
    gc.freeze()


def run() -> None:
    """The console entry point: :func:`main`, then a fast exit with its status.

    By the time a command returns, its outputs are complete (stores written and closed, the
    cluster shut down). Python's own teardown of the ~1,500 modules a command loads (numba,
    astropy, dask, distributed…) then takes 0.3-0.9 s, as long as the whole of a small job; the
    process instead runs the ``atexit`` handlers, flushes its streams and logs, and leaves.
    """
    import atexit

    freeze_at_phases()
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
