"""Run the official ``Extract1dStep`` offline on one s3d file (a benchmark subprocess).

Usage: ``python -m mrsdask.bench.official_extract S3D EXTRACT1D SOURCE_TYPE OUTPUT [ifu_autocen]``

No aperture correction and no 1-D residual-fringe fit (neither has an offline reference);
the source type is set on the cube as ``ifu_set_srctype`` would; ``ifu_autocen`` turns the
step's auto-centring on.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings


def main(argv: list[str]) -> int:
    s3d, extract1d, source_type, output, *options = argv
    unknown = set(options) - {"ifu_autocen"}
    if unknown:
        raise SystemExit(f"unknown options {sorted(unknown)}: the only one is ifu_autocen")
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    warnings.simplefilter("ignore")
    logging.disable(logging.INFO)
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()
    from jwst.extract_1d import Extract1dStep
    from stdatamodels.jwst.datamodels import IFUCubeModel

    model = IFUCubeModel(s3d)
    model.meta.target.source_type = source_type.upper()
    result = Extract1dStep(override_extract1d=extract1d, override_psf="N/A", apply_apcorr=False,
                           ifu_rfcorr=False, ifu_autocen="ifu_autocen" in options).run(model)
    result.save(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
