"""The ``mrsdask`` command (``parser``: the arguments; ``commands``: what each does; ``entry``: ``main``).

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

from mrsdask.cli.commands import cmd_run, small_job_scheduler
from mrsdask.cli.entry import EXIT_BAD_INPUT, configure_logging, main, run
from mrsdask.cli.parser import build_parser

__all__ = ["EXIT_BAD_INPUT", "build_parser", "cmd_run", "configure_logging", "main", "run", "small_job_scheduler"]
