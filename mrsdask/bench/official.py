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
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()
    from jwst.cube_build import CubeBuildStep

    kwargs = {"override_cubepar": cubepar, "output_type": output_type, "weighting": weighting}
    if channel != "all":
        kwargs["channel"] = channel
    if band != "all":
        kwargs["band"] = band
    result = CubeBuildStep(**kwargs).run(files)
    os.makedirs(outdir, exist_ok=True)
    for model in result:
        # The step names its products <base>_ch<channels>-<bands>_s3d; keep the cube part.
        name = str(model.meta.filename or "")
        cube = name.rsplit("_ch", 1)[-1].split("_s3d")[0].split(".fits")[0] if "_ch" in name else "cube"
        model.save(os.path.join(outdir, f"official_ch{cube}_s3d.fits"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
