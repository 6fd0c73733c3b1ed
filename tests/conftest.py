"""Shared fixtures and the ``--runslow`` switch.

CI runs the representative subset (``pytest``); ``pytest --runslow`` runs everything,
including the long side-by-side comparisons with the official pipeline.

The tests run on two pytest-xdist workers (``addopts`` in pyproject.toml; ``-n 0`` runs them
in one process). Session fixtures run once per worker, so the expensive ones (simulated
observations, reference cubes) are built through :func:`build_once`: the first worker builds,
the other waits for it and reuses the files. Tests that share a module-scoped fixture run on
the same worker (see :func:`pytest_collection_modifyitems`), so that fixture is built once too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import shutil
import warnings

import sys

import pytest

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")

# Byte code is written for this run and its child processes even where the environment says
# not to (PYTHONDONTWRITEBYTECODE, set in many container images): with it, and with the
# README's ``pip install --no-compile``, no .pyc ever exists and every process of the suite (two
# xdist workers, every command and Dask worker process) compiles each module it imports again,
# e.g. 14.5 instead of 5.9 CPU-s for the imports of a command that runs official steps.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = _module_fixture_owner(item)
        if module is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(module))
    if not config.getoption("--runslow"):
        skip = pytest.mark.skip(reason="slow end-to-end test: run with --runslow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
    used = set().union(*(item.fixturenames for item in items if not item.get_closest_marker("skip")))
    config.stash[_SIDE_BY_SIDE] = tuple(name for name in SIDE_BY_SIDE if name in used)


#: The largest simulations that tests of many files share, slowest first: with two or more xdist
#: workers each starts on one of them before its first test (see :func:`_shared_simulations`).
SIDE_BY_SIDE = ("sim_1a3a", "sim_1a")
_SIDE_BY_SIDE = pytest.StashKey[tuple]()


@pytest.fixture(scope="session", autouse=True)
def _shared_simulations(request):
    """Worker N builds the N-th of :data:`SIDE_BY_SIDE` first, when this run's tests use it.

    Each is built once per run (:func:`build_once`): by whichever worker first needs it, while a
    worker that needs it then waits. The workers all start with the background tests, which use
    both, so the second worker used to wait ~26 s for the first one's build. Started side by
    side at the beginning, neither waits for long. Without xdist nothing is built ahead.
    """
    wanted = request.config.stash.get(_SIDE_BY_SIDE, ())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if len(wanted) < 2 or not worker.startswith("gw"):
        return
    index = int(worker[2:])
    if index < len(wanted):
        request.getfixturevalue(wanted[index])


def _module_fixture_owner(item) -> str | None:
    """The test file of ``item`` if it uses a module-scoped fixture of the test suite, else None.

    With ``--dist loadgroup`` the tests of such a file go to one worker, which builds the
    fixture once (spread over two workers, each would build it).
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    for defs in info.name2fixturedefs.values():
        for fixturedef in defs:
            source = getattr(fixturedef.func, "__code__", None)
            if (fixturedef.scope == "module" and source is not None
                    and os.path.abspath(source.co_filename).startswith(tests_dir + os.sep)):
                return item.nodeid.split("::", 1)[0]
    return None


@contextlib.contextmanager
def _file_lock(path):
    """An exclusive ``flock`` on ``path`` for the ``with`` block (blocks until it is free)."""
    with open(path, "a") as fobj:
        fcntl.flock(fobj, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fobj, fcntl.LOCK_UN)


def build_once(tmp_path_factory, name, build):
    """``build(folder)``, run once per test run whatever the number of xdist workers.

    The folder lies in the run's temporary root that all workers share. The first caller
    builds under a file lock and pickles the result; the others wait for the lock and load it.
    A folder left by a build that failed is removed and built again. ``build``'s result must
    be picklable (paths, arrays, dataclasses of them) and its files must not be modified by
    the tests that use them.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # <run>/popen-gwN -> <run>, shared by the workers
    folder = root / f"shared-{name}"
    done = root / f"shared-{name}.pickle"
    with _file_lock(root / f"shared-{name}.lock"):
        if done.exists():
            with open(done, "rb") as fobj:
                return pickle.load(fobj)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        result = build(folder)
        with open(f"{done}.part", "wb") as fobj:
            pickle.dump(result, fobj)
        os.replace(f"{done}.part", done)
    return result


@pytest.fixture(scope="session", autouse=True)
def _quiet_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ValidationWarning.*")
    yield


@pytest.fixture(scope="session", autouse=True)
def _official_steps_offline():
    """Official steps run offline in every worker process (no CRDS context lookup).

    Simulating a file did this as a side effect; a worker that reuses another's simulation
    (:func:`build_once`) would not have it.
    """
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()


@pytest.fixture(scope="session")
def sim_1a(tmp_path_factory):
    """Two dithers of setting 12A with a point source and extended emission (noiseless).

    Returns the simulator's result (``.cal_files``, ``.truth``, ``.association``).
    """
    from mrsdask.sim import simulate

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
    return build_once(tmp_path_factory, "sim_1a", lambda folder: simulate(config, folder))


@pytest.fixture(scope="session")
def sim_1a3a(tmp_path_factory):
    """Simulated bands 1A and 3A: per setting one science and one background exposure
    (:data:`tests.background.bkg_helpers.SIM_CONFIG`, the background tests' scene)."""
    from mrsdask.sim import simulate
    from tests.background.bkg_helpers import SIM_CONFIG

    def build(folder):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return simulate(dict(SIM_CONFIG), folder)

    return build_once(tmp_path_factory, "sim_1a3a", build)


@pytest.fixture(scope="session")
def point_source_sim(tmp_path_factory):
    """Two dithers of setting 12A with one point source (25 mJy, noiseless, no sky)."""
    from mrsdask.sim import simulate

    config = {
        "bands": ["1A"],
        "n_dithers": 2,
        "noise": False,
        "sky_background": 0.0,
        "sources": [{"type": "point", "ra_offset": 0.15, "dec_offset": -0.1, "continuum_mjy": 25.0, "slope": 1.0}],
        "seed": 11,
        "prefix": "flux",
    }
    return build_once(tmp_path_factory, "flux", lambda folder: simulate(config, folder))


@pytest.fixture(scope="session")
def assign_wcs_34c(tmp_path_factory):
    """A 34C cal file whose gwcs the official ``assign_wcs`` wrote (with a velocity-aberration scale).

    Returns its path.
    """
    def build(folder):
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
        path = str(folder / "w34c_cal.fits")
        model.save(path)
        return path

    return build_once(tmp_path_factory, "w34c", build)


@pytest.fixture(scope="session")
def sim_1a_cube(sim_1a, tmp_path_factory):
    """The channel-1 short drizzle cube of ``sim_1a``, built once, undisturbed, in process.

    Returns ``(store, name)``. Tests read the store (or copy it), they never write into it.
    """
    from tests.cluster import dask_procs

    files = tuple(str(p) for p in sim_1a.cal_files)

    def build(folder):
        dask_procs.reference_cube(files, str(folder))
        return str(folder / "reference.zarr"), dask_procs.CUBE

    return build_once(tmp_path_factory, "sim_1a_cube", build)


@pytest.fixture(scope="session")
def window_cube_1a(sim_1a, tmp_path_factory):
    """The channel-1 short cube of ``sim_1a`` over ``dask_procs.WAVEMIN``–``WAVEMAX`` (570
    planes), built once, undisturbed, in process; ``(store, name)``, read-only for tests."""
    from tests.cluster import dask_procs

    files = tuple(str(p) for p in sim_1a.cal_files)

    def build(folder):
        dask_procs.reference_cube(files, str(folder), window=True)
        return str(folder / "reference.zarr"), dask_procs.CUBE

    return build_once(tmp_path_factory, "window_1a_cube", build)


@pytest.fixture(scope="session")
def reference(window_cube_1a):
    """Arrays of :func:`window_cube_1a`: what every distributed or remote build of the cluster
    and object-store tests (``dask_procs.SELECTION``) must equal."""
    from tests.cluster import dask_procs

    return dask_procs.cube_arrays(window_cube_1a[0])


@pytest.fixture(scope="session")
def official_cubepar():
    """Path of the shipped CUBEPAR file (what the official step is given in comparisons)."""
    from mrsdask.cube.cubepars import DEFAULT_CUBEPAR_FILE

    return str(DEFAULT_CUBEPAR_FILE)


def run_official_cube_build(files, cubepar, **kwargs):
    """Run the official CubeBuildStep offline on cal files (paths) or on a ``ModelContainer``;
    returns its list of IFUCubeModel."""
    import logging

    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()
    from jwst.cube_build import CubeBuildStep

    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = files if hasattr(files, "asn_table") else [str(f) for f in files]
        return CubeBuildStep(override_cubepar=cubepar, **kwargs).run(inputs)


def run_cli(*args, cwd=None, timeout=900):
    """Run ``python -m mrsdask.cli ARGS`` as a user would (no scheduler from the environment)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "mrsdask.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def run_cli_here(capsys, *args):
    """``mrsdask ARGS`` in this process (:func:`mrsdask.cli.main`, what the command runs), as a
    ``CompletedProcess`` (``returncode``, ``stdout``, ``stderr``).

    For tests of what a command does rather than of its process: a fresh interpreter costs 3-5
    CPU-seconds of imports. :func:`run_cli` keeps one real process where that is the point
    (entry point, exit status, a cluster started by the command).
    """
    import subprocess

    from mrsdask.cli import main

    capsys.readouterr()  # what the test printed before is not the command's
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse refuses a value outside an option's choices
        code = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["mrsdask", *map(str, args)], code, out, err)


@pytest.fixture(scope="session")
def cube_1a(window_cube_1a):
    """A cube store holding the channel-1 short cube of ``sim_1a`` over a stretch of the band;
    ``(store, name)``.

    The same store as :func:`window_cube_1a` (built once per run). Shared: tests that change
    the store work on a copy.
    """
    return window_cube_1a
