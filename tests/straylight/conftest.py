"""Fixtures of the stray-light tests: an MRSXARTCORR file and cal files with a detector pedestal.

The CRDS MRSXARTCORR files are not available here, so the tests write one in the official
format (``MirMrsXArtCorrModel``) with per-row parameters of the kind the real files hold
(Lorentzian FWHM of tens of pixels and amplitudes of a few 1e-3 per pixel; Gaussian pairs in
channel 1 only, zero amplitude in channel 4) and give the same file to mrsdask and to the
official step.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")

#: Per channel: Lorentzian amplitude, Gaussian amplitudes (inner, outer pair).
AMPLITUDES = {"1": (0.004, 0.0012, 0.0005), "2": (0.003, 0.0, 0.0), "3": (0.002, 0.0, 0.0), "4": (0.0, 0.0, 0.0)}
PEDESTAL, NOISE = 0.4, 0.02


def xart_tables() -> dict[str, np.ndarray]:
    """Plausible per-row parameters (6, 1024) for the twelve band tables."""
    from mrsdask.straylight.reference import TABLES

    rows = np.arange(1024)
    out = {}
    for k, name in enumerate(TABLES):
        lor, g1, g2 = AMPLITUDES[name[2]]
        vary = 1 + 0.2 * np.sin(rows / 150.0 + k)
        out[name] = np.vstack([25.0 * vary, lor * vary, np.full(1024, 3.5), np.full(1024, 9.0 + 0.2 * k),
                               g1 * vary, g2 * vary])
    return out


@pytest.fixture(scope="session")
def xart_file(tmp_path_factory):
    from mrsdask.straylight.reference import write_xartcorr

    from tests.conftest import build_once

    return build_once(tmp_path_factory, "xartcorr",
                      lambda folder: write_xartcorr(folder / "test_mrsxartcorr.fits", xart_tables(),
                                                    "mrsdask test parameters (not the CRDS values)"))


def with_pedestal(path: str, out: str, band: str | None = None, seed: int = 7) -> str:
    """A copy of cal file ``path`` as rate data look: a pedestal with noise on every pixel.

    The simulator leaves the pixels between the slices NaN; real detector frames have a dark
    level there, which the step measures. Pixels between the slices keep DQ NON_SCIENCE.
    ``band`` changes BAND (e.g. a cross-dichroic ``SHORT-MEDIUM``).
    """
    from stdatamodels.jwst.datamodels import IFUImageModel

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = IFUImageModel(path)
        data = np.where(np.isfinite(model.data), model.data, 0.0)
        model.data = (data + PEDESTAL + rng.normal(0.0, NOISE, data.shape)).astype(np.float32)
        model.data[700, 300] = np.nan  # a NaN pixel and a flagged one on a slice
        model.dq[400, 260] |= 1
        if band:
            model.meta.instrument.band = band
        model.meta.cal_step.straylight = "SKIPPED"  # not corrected yet (the simulator says COMPLETE)
        model.save(out)
    return out


@pytest.fixture(scope="session")
def stray_cal(sim_1a, tmp_path_factory):
    """(cal file with a pedestal, the same as cross-dichroic SHORT-MEDIUM) from the first of ``sim_1a``."""
    from tests.conftest import build_once

    source = str(sim_1a.cal_files[0])

    def build(folder):
        return (with_pedestal(source, str(folder / "sl_12A_cal.fits")),
                with_pedestal(source, str(folder / "sl_12xd_cal.fits"), band="SHORT-MEDIUM"))

    return build_once(tmp_path_factory, "stray_cal", build)
