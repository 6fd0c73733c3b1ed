"""Run the official ``CubeBuildStep`` offline on level-2 files (a benchmark subprocess).

Usage: ``python -m mrsdask.bench.official OUTDIR CUBEPAR OUTPUT_TYPE WEIGHTING CHANNEL BAND FILE…``

Writes each cube as ``OUTDIR/official_<suffix>_s3d.fits``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings


def main(argv: list[str]) -> int:
    outdir, cubepar, output_type, weighting, channel, band, *files = argv
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    warnings.simplefilter("ignore")
    logging.disable(logging.INFO)
    from mrsdask.instrument.reference import _disable_crds_context_lookup

    _disable_crds_context_lookup()
    from jwst.cube_build import CubeBuildStep

    kwargs = {"override_cubepar": cubepar, "output_type": output_type, "weighting": weighting}
    if channel != "all":
        kwargs["channel"] = channel
    if band != "all":
        kwargs["band"] = band
    result = CubeBuildStep(**kwargs).run(files)
    os.makedirs(outdir, exist_ok=True)
    for model in result:
        name = model.meta.filename or "cube_s3d.fits"
        suffix = name.split("_ch", 1)[-1] if "_ch" in name else name
        model.save(os.path.join(outdir, f"official_ch{suffix}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
