"""Parity with the official ``OutlierDetectionStep`` (mode ifu), run offline on the same cal files.

The simulated exposures of ``sim_1a`` (two dithers of 12A, a point source and extended
emission) get the same hot pixels in every exposure; both sides flag them, leave the point
source's PSF peaks alone, and give identical SCI, ERR and DQ planes.
"""

from __future__ import annotations

import os
import time
import warnings

import dask
import numpy as np
import pytest

from mrsdask.io.detector_store import open_cal
from mrsdask.outlier import OutlierRequest, detect, outlier_summary
from mrsdask.outlier.kernels import DO_NOT_USE, OUTLIER

pytestmark = pytest.mark.filterwarnings("ignore")
N_HOT = 50


def _official_env():
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    from mrsdask.instrument.reference import _disable_crds_context_lookup

    _disable_crds_context_lookup()


def with_hot_pixels(files, folder, n_hot=N_HOT, seed=5, amplitude=500.0):
    """Copies of ``files`` with the same ``n_hot`` on-slice pixels raised by ``amplitude`` (MJy/sr).

    Returns (paths, (ys, xs)) where the hot pixels are, per detector (same positions in each file).
    """
    from stdatamodels.jwst.datamodels import IFUImageModel

    rng = np.random.default_rng(seed)
    out, hot = [], {}
    for path in files:
        with IFUImageModel(str(path)) as model:
            detector = model.meta.instrument.detector
            if detector not in hot:
                good = np.argwhere(np.isfinite(model.data) & ((model.dq & DO_NOT_USE) == 0))
                pick = good[rng.choice(len(good), n_hot, replace=False)]
                hot[detector] = (pick[:, 0], pick[:, 1])
            model.data[hot[detector]] += np.float32(amplitude)
            target = os.path.join(folder, os.path.basename(str(path)))
            model.meta.filename = os.path.basename(target)
            model.save(target)
            out.append(target)
    return out, hot


def run_official(files, **params):
    """The official step (mode ifu) offline; (list of (sci, err, dq), status, seconds)."""
    import logging

    _official_env()
    from jwst.outlier_detection import OutlierDetectionStep

    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    step = OutlierDetectionStep(**params)
    step.mode = "ifu"  # as Spec3Pipeline sets it for IFU exposures
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = step.run([str(f) for f in files])
        seconds = time.perf_counter() - t0
    planes = [(m.data.copy(), m.err.copy(), m.dq.copy()) for m in result]
    status = result[0].meta.cal_step.outlier_detection
    return planes, status, seconds


def run_ours(files, request=None):
    """:func:`mrsdask.outlier.detect` on the FITS files; (sci, err, dq), summary, seconds."""
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        ds = detect(open_cal([str(f) for f in files]), request)
        planes = dask.compute(ds["sci"].data, ds["err"].data, ds["dq"].data)
    return planes, outlier_summary(ds), time.perf_counter() - t0


def assert_same_planes(official, ours):
    sci, err, dq = ours
    for i, (o_sci, o_err, o_dq) in enumerate(official):
        assert np.array_equal(o_dq, dq[i]), f"exposure {i}: DQ differs at {np.argwhere(o_dq != dq[i])[:5]}"
        assert np.array_equal(o_sci, sci[i], equal_nan=True)
        assert np.array_equal(o_err, err[i], equal_nan=True)


@pytest.fixture(scope="module")
def hot_1a(sim_1a, tmp_path_factory):
    folder = tmp_path_factory.mktemp("outlier_hot_1a")
    return with_hot_pixels(sim_1a.cal_files, str(folder))


@pytest.fixture(scope="module")
def official_1a(hot_1a):
    return run_official(hot_1a[0])


def test_flags_equal_the_official_step(sim_1a, hot_1a, official_1a):
    files, hot = hot_1a
    official, status, t_official = official_1a
    ours, summary, t_ours = run_ours(files)
    print(f"\noutlier parity (2 exposures, 12A): official {t_official:.1f} s, mrsdask {t_ours:.1f} s; "
          f"flagged {summary.flagged}")
    assert status == "COMPLETE"
    assert_same_planes(official, ours)
    (outcome,) = summary.detectors
    assert outcome.status == "flagged" and outcome.detector == "MIRIFUSHORT"
    assert outcome.flagged == int(((official[0][2] & OUTLIER) > 0).sum()) > N_HOT
    for i, dq in enumerate(ours[2]):
        assert ((dq[hot["MIRIFUSHORT"]] & (OUTLIER | DO_NOT_USE)) == OUTLIER | DO_NOT_USE).all()
        # the point source: its brightest pixels (the PSF peak along the spectrum) are kept
        from astropy.io import fits

        clean = fits.getdata(str(sim_1a.cal_files[i]), "SCI")
        peaks = np.argsort(np.nan_to_num(clean, nan=-np.inf).ravel())[::-1][:20]
        peaks = np.unravel_index(peaks, clean.shape)
        assert not (dq[peaks] & OUTLIER).any()
        assert not (official[i][2][peaks] & OUTLIER).any()


def test_one_exposure_is_skipped_and_passed_through(hot_1a):
    files, _ = hot_1a
    ds = open_cal(files[:1])
    flagged = detect(ds)
    summary = outlier_summary(flagged)
    (outcome,) = summary.detectors
    assert outcome.status == "skipped" and "needs at least 2" in outcome.reason
    assert "SKIPPED" in str(summary)
    for name in ("sci", "err", "dq"):  # the very same lazy arrays: nothing changed
        assert flagged[name].data.name == ds[name].data.name
    official, status, _ = run_official(files[:1])
    # the official step skips too (it logs "will be skipped" and records the step as FAILED)
    assert status == "FAILED"
    assert_same_planes(official, dask.compute(ds["sci"].data, ds["err"].data, ds["dq"].data))


def test_skip_passes_everything_through(hot_1a):
    ds = open_cal(hot_1a[0])
    flagged = detect(ds, OutlierRequest(skip=True))
    assert outlier_summary(flagged).skipped
    assert all(flagged[n].data.name == ds[n].data.name for n in ("sci", "err", "dq"))
