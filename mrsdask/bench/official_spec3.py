"""The official ``Spec3Pipeline`` offline, and background x1d files as spec2 makes them (a benchmark subprocess).

Usage::

    python -m mrsdask.bench.official_spec3 run ASN OUTDIR REFS_JSON [STEP.PARAM=VALUE …]
    python -m mrsdask.bench.official_spec3 background-x1d OUTDIR REFS_JSON CAL …

``run``: ``calwebb_spec3`` on the association, every reference file named in ``REFS_JSON``
(``{"cubepar": …, "extract1d": …, "apcorr": …, "mrsptcorr": …}``) given as the ``override_*``
parameter of its step (``psf``: ``N/A``, the MRS does not use it), the products written to
``OUTDIR``; the remaining arguments set step parameters (``cube_build.wavemin=5.2``, values
read as YAML).

``background-x1d``: for each background cal file, what ``calwebb_spec2`` makes of it for the
association of a linked background: one cube of the exposure (``cube_build``, ``multi``) and its
extended-source spectrum (``extract_1d``), whose BACKGROUND column the spec3 master background
reads. Writes ``OUTDIR/<exposure>_x1d.fits``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings


def _offline() -> None:
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    warnings.simplefilter("ignore")
    logging.disable(logging.INFO)
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()


#: Official parameters that are strings even when they read as numbers (``channel = 1``).
STRING_PARAMS = ("channel", "band", "kernel_size")


def official_steps(refs: dict, settings: list[str]) -> dict:
    """The ``steps`` argument of ``Spec3Pipeline``: reference overrides, then ``STEP.PARAM=VALUE`` items."""
    import yaml

    steps: dict = {
        "cube_build": {"override_cubepar": refs["cubepar"]},
        "extract_1d": {"override_extract1d": refs["extract1d"], "override_apcorr": refs["apcorr"],
                       "override_psf": "N/A"},
        "spectral_leak": {"override_mrsptcorr": refs["mrsptcorr"]},
    }
    for item in settings:
        key, _, value = item.partition("=")
        step, _, param = key.partition(".")
        value = yaml.safe_load(value)
        steps.setdefault(step, {})[param] = str(value) if param in STRING_PARAMS else value
    return steps


def run_spec3(asn: str, outdir: str, refs: dict, settings: list[str]) -> None:
    """Run ``Spec3Pipeline`` on ``asn`` with the reference files ``refs``; products in ``outdir``."""
    from jwst.pipeline import Spec3Pipeline

    os.makedirs(outdir, exist_ok=True)
    pipeline = Spec3Pipeline(steps=official_steps(refs, settings), output_dir=outdir, save_results=True)
    # No CRDS: each step looks up only its own reference types when it runs (all given above);
    # the prefetch would ask for those of every step, run or not (photom, ...).
    pipeline.prefetch_references = False
    pipeline.run(asn)


def background_x1d(outdir: str, refs: dict, files: list[str]) -> list[str]:
    """Spec2's cube and extended-source spectrum of each background exposure; the x1d paths."""
    from jwst.cube_build import CubeBuildStep
    from jwst.extract_1d import Extract1dStep

    os.makedirs(outdir, exist_ok=True)
    out = []
    for path in files:
        (cube,) = CubeBuildStep(output_type="multi", override_cubepar=refs["cubepar"]).run(path)
        cube.meta.target.source_type = "EXTENDED"
        x1d = Extract1dStep(ifu_set_srctype="EXTENDED", ifu_rfcorr=False, apply_apcorr=False,
                            override_psf="N/A", override_apcorr="N/A",
                            override_extract1d=refs["extract1d"]).run(cube)
        name = os.path.basename(path).replace("_cal.fits", "_x1d.fits")
        x1d.save(os.path.join(outdir, name))
        out.append(os.path.join(outdir, name))
    return out


def main(argv: list[str]) -> int:
    _offline()
    command, *rest = argv
    if command == "run":
        asn, outdir, refs, *settings = rest
        with open(refs) as fobj:
            run_spec3(asn, outdir, json.load(fobj), settings)
    elif command == "background-x1d":
        outdir, refs, *files = rest
        with open(refs) as fobj:
            background_x1d(outdir, json.load(fobj), files)
    else:
        raise SystemExit(f"unknown command {command!r}: run or background-x1d")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
