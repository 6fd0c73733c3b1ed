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
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()


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


def run_ours(files, request=None, chunk_rows=256):
    """:func:`mrsdask.outlier.detect` on the FITS files; (sci, err, dq), summary, seconds."""
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        ds = detect(open_cal([str(f) for f in files], chunk_rows=chunk_rows), request)
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
    # other blocks of rows (not a divisor of 1024): the same
    assert_same_planes(official, run_ours(files, chunk_rows=300)[0])


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


@pytest.mark.slow
def test_command_and_pipeline_write_the_official_flags_to_detector_stores(hot_1a, official_1a, tmp_path):
    """``mrsdask outlier FILES -o STORE`` and the ``cubes`` pipeline's outlier step."""
    from mrsdask.io.detector_store import open_detector_store
    from mrsdask.pipeline import load_pipeline, read_manifest, run_pipeline
    from tests.conftest import run_cli

    files, _ = hot_1a
    official, _, _ = official_1a
    store = str(tmp_path / "flagged.zarr")
    proc = run_cli("outlier", *files, "-o", store, "--kernel-size", "7", "7", "--threshold-percent", "99.8",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_official = int(((official[0][2] & OUTLIER) > 0).sum())
    assert f"MIRIFUSHORT: {n_official} pixels flagged in each of 2 exposures" in proc.stdout
    ds = open_detector_store(store)
    assert_same_planes(official, (ds["sci"].values, ds["err"].values, ds["dq"].values))
    (outcome,) = outlier_summary(ds).detectors
    assert outcome.flagged == n_official

    # From that store to another, skipped: the data as they were, the skip recorded.
    again = str(tmp_path / "again.zarr")
    proc = run_cli("outlier", store, "-o", again, "--skip", "--no-progress")
    assert proc.returncode == 0 and "skipped" in proc.stdout, proc.stderr[-3000:]
    assert outlier_summary(open_detector_store(again)).skipped
    np.testing.assert_array_equal(open_detector_store(again)["dq"].values, ds["dq"].values)

    # The ready 'cubes' pipeline runs it before the cube, and the cube is built from its store.
    folder = str(tmp_path / "run")
    with dask.config.set(scheduler="threads"):
        run_pipeline(load_pipeline("cubes", ["cube.channels=[1]"]), list(files), folder, progress=False,
                     announce=lambda line: None)
    record = read_manifest(folder)
    assert [s["step"] for s in record["steps"]] == ["outlier", "cube", "export", "extract"]
    assert "pixels flagged in each of 2 exposures" in record["steps"][0]["summary"]
    step_store = open_detector_store(record["steps"][0]["output"])
    np.testing.assert_array_equal(step_store["dq"].values, ds["dq"].values)


@pytest.fixture(scope="module")
def sim_two_detectors(tmp_path_factory):
    """Bands 1A, 1B (MIRIFUSHORT) and 3A (MIRIFULONG), two dithers each, with noise."""
    from mrsdask.sim import simulate
    from tests.conftest import build_once

    config = {
        "bands": ["1A", "1B", "3A"], "n_dithers": 2, "noise": True, "seed": 21, "prefix": "o2d",
        "sources": [{"type": "point", "ra_offset": 0.2, "dec_offset": 0.1, "continuum_mjy": 80.0, "slope": 1.0}],
    }
    return build_once(tmp_path_factory, "outlier_two_detectors", lambda folder: simulate(config, folder))


@pytest.mark.slow
@pytest.mark.parametrize("second_check", [False, True])
def test_two_detectors_and_two_bands_equal_the_official_step(sim_two_detectors, tmp_path, second_check):
    """Exposures grouped by detector whatever their band (1A with 1B), both detectors flagged
    exactly as the official step flags them, with and without the second check."""
    files, hot = with_hot_pixels(sim_two_detectors.cal_files, str(tmp_path), seed=9, amplitude=300.0)
    official, status, t_official = run_official(files, ifu_second_check=second_check)
    ours, summary, t_ours = run_ours(files, OutlierRequest(ifu_second_check=second_check))
    print(f"\noutlier parity ({len(files)} exposures, 1A+1B+3A, second check {second_check}): "
          f"official {t_official:.1f} s, mrsdask {t_ours:.1f} s; flagged {summary.flagged}")
    assert status == "COMPLETE"
    assert [d.detector for d in summary.detectors] == ["MIRIFULONG", "MIRIFUSHORT"]
    assert [len(d.exposures) for d in summary.detectors] == [2, 4]
    assert_same_planes(official, ours)
