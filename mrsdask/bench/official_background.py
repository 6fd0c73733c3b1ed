"""Run the official ``BackgroundStep`` offline on every science exposure of an association (a benchmark subprocess).

Usage: ``python -m mrsdask.bench.official_background ASSOCIATION OUTPUT_DIR``

As ``calwebb_spec2`` runs it: each science exposure on its own, with the association's
background exposures (``exptype`` background) as ``bkg_list``; no CRDS (``override_bkg`` and
``override_wavelengthrange`` are N/A: the MRS pixel method needs neither). Each result's SCI,
ERR and DQ are saved as ``OUTPUT_DIR/<science file stem>.npz`` for the comparison.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

import numpy as np


def main(argv: list[str]) -> int:
    association, output_dir = argv
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    warnings.simplefilter("ignore")
    logging.disable(logging.INFO)
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()
    from jwst.background import BackgroundStep

    folder = os.path.dirname(os.path.abspath(association))
    with open(association) as fobj:
        members = json.load(fobj)["products"][0]["members"]
    science = [os.path.join(folder, m["expname"]) for m in members if m["exptype"] == "science"]
    backgrounds = [os.path.join(folder, m["expname"]) for m in members if m["exptype"] == "background"]
    os.makedirs(output_dir, exist_ok=True)
    for path in science:
        result = BackgroundStep(override_bkg="N/A", override_wavelengthrange="N/A").run(path, backgrounds)
        stem = os.path.basename(path).removesuffix(".fits")
        np.savez(os.path.join(output_dir, f"{stem}.npz"), sci=result.data, err=result.err, dq=result.dq)
        result.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
