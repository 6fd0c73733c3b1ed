"""Shared fixtures and the ``--runslow`` switch.

CI runs the representative subset (``pytest``); ``pytest --runslow`` runs everything,
including the long side-by-side comparisons with the official pipeline.
"""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _quiet_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ValidationWarning.*")
    yield


@pytest.fixture(scope="session")
def sim_1a(tmp_path_factory):
    """Two dithers of setting 12A with a point source and extended emission (noiseless).

    Returns the simulator's result (``.cal_files``, ``.truth``, ``.association``).
    """
    from mrsdask.sim import simulate

    folder = tmp_path_factory.mktemp("sim_1a")
    config = {
        "bands": ["1A"],
        "n_dithers": 2,
        "noise": False,
        "sky_background": 0.0,
        "sources": [
            {"type": "point", "ra_offset": 0.1, "dec_offset": -0.15, "continuum_mjy": 40.0, "slope": 1.0},
            {"type": "extended", "ra_offset": -0.8, "dec_offset": 0.5, "size": 1.0, "continuum_mjysr": 20.0},
        ],
        "seed": 3,
        "prefix": "t1a",
    }
    return simulate(config, folder)


@pytest.fixture(scope="session")
def point_source_sim(tmp_path_factory):
    """Four dithers of setting 12A with one point source (25 mJy, noiseless, no sky)."""
    from mrsdask.sim import simulate

    config = {
        "bands": ["1A"],
        "n_dithers": 4,
        "noise": False,
        "sky_background": 0.0,
        "sources": [{"type": "point", "ra_offset": 0.15, "dec_offset": -0.1, "continuum_mjy": 25.0, "slope": 1.0}],
        "seed": 11,
        "prefix": "flux",
    }
    return simulate(config, tmp_path_factory.mktemp("flux"))


@pytest.fixture(scope="session")
def assign_wcs_34c(tmp_path_factory):
    """A 34C cal file whose gwcs the official ``assign_wcs`` wrote (with a velocity-aberration scale).

    Returns its path.
    """
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import IFUImageModel

    from mrsdask.instrument.reference import assign_wcs_offline, template_file

    with fits.open(template_file("34C")) as hdul:
        del hdul["ASDF"]
        model = IFUImageModel(hdul)
    model.meta.wcsinfo.ra_ref = 80.5
    model.meta.wcsinfo.dec_ref = -69.5
    model.meta.wcsinfo.roll_ref = 20.0
    model.meta.velocity_aberration.scale_factor = 1.000037  # a DVA step of Scale & Shift models
    model = assign_wcs_offline(model, "34C")
    path = str(tmp_path_factory.mktemp("w34c") / "w34c_cal.fits")
    model.save(path)
    return path


@pytest.fixture(scope="session")
def official_cubepar():
    """Path of the shipped CUBEPAR file (what the official step is given in comparisons)."""
    from mrsdask.cube.cubepars import DEFAULT_CUBEPAR_FILE

    return str(DEFAULT_CUBEPAR_FILE)


def run_official_cube_build(files, cubepar, **kwargs):
    """Run the official CubeBuildStep offline; returns its list of IFUCubeModel."""
    import logging

    from mrsdask.instrument.reference import _disable_crds_context_lookup

    _disable_crds_context_lookup()
    from jwst.cube_build import CubeBuildStep

    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CubeBuildStep(override_cubepar=cubepar, **kwargs).run([str(f) for f in files])


def run_cli(*args, cwd=None, timeout=900):
    """Run ``python -m mrsdask.cli ARGS`` as a user would (no scheduler from the environment)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "mrsdask.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def cube_1a(sim_1a, tmp_path_factory):
    """A cube store holding the channel-1 band cube of ``sim_1a`` (built in process); (store, name).

    Shared: tests that change the store work on a copy.
    """
    import dask

    from mrsdask.cube.build import build_cubes
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal

    store = str(tmp_path_factory.mktemp("cube_1a") / "cubes.zarr")
    with dask.config.set(scheduler="threads"):
        (name,) = build_cubes(open_cal([str(p) for p in sim_1a.cal_files]), store, CubeRequest(channels=(1,)),
                              progress=False)
    return store, name
