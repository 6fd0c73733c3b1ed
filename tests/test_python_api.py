"""The Python API, as a notebook uses it: no argparse, no command line; the same results as the CLI.

One test walks the whole chain through the entry points alone (``mrsdask.cube.build``,
``mrsdask.background.subtract``, ``mrsdask.fringe.correct``, ``mrsdask.pipeline.run``) and
runs the matching ``mrsdask`` commands on the same inputs: every store must be equal, array
for array, and cubes built from a lazy (in-memory) background-subtracted Dataset equal those
of its store (~2 min on 2 busy cores, most of it the commands' own start-up). The inputs are
the session's ``sim_1a`` files (two dithers of 12A); for the pixel background, an association names the second dither as the background exposure (a real
subtraction of real files, not a physical background). Residual fringes are fitted on 40
detector columns of the subtracted store (a whole detector takes minutes here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import mrsdask.background
import mrsdask.cube
import mrsdask.fringe
import mrsdask.pipeline
from mrsdask.errors import ParameterError
from tests.cluster import dask_procs
from tests.conftest import run_cli_here

DETECTOR_VARS = ("sci", "err", "dq")
CUBE_VARS = ("sci", "err", "dq", "wmap")


def _roles_association(sim, folder) -> str:
    """An association of ``sim``'s two dithers: the first science, the second background."""
    first, second = (os.path.abspath(str(p)) for p in sim.cal_files)
    path = os.path.join(folder, "roles_asn.json")
    with open(path, "w") as fobj:
        json.dump({"asn_type": "spec3", "products": [{"name": "roles", "members": [
            {"expname": first, "exptype": "science"}, {"expname": second, "exptype": "background"}]}]}, fobj)
    return path


#: The stretch of band 1A the cubes are built over: that of the session's ``reference`` cube.
WINDOW = {"wavemin": dask_procs.WAVEMIN, "wavemax": dask_procs.WAVEMAX}


def _cli(capsys, *args):
    """The command in this process (the same ``main`` as ``mrsdask``; its process is tested elsewhere)."""
    proc = run_cli_here(capsys, *args, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _same_cubes(api: dict, cli_store: str) -> None:
    for name, cube in api.items():
        other = xr.open_zarr(cli_store, group=name, consolidated=False)
        for var in CUBE_VARS:
            np.testing.assert_array_equal(cube[var].values, other[var].values, err_msg=f"{name} {var}")


def _same_detector(api: xr.Dataset, cli_store: str, variables=DETECTOR_VARS) -> None:
    other = xr.open_zarr(cli_store, consolidated=False)
    for var in variables:
        np.testing.assert_array_equal(api[var].values, other[var].values, err_msg=var)


def test_notebook_chain_through_the_python_api_equals_the_cli(sim_1a, reference, tmp_path, capsys):
    out = str(tmp_path)
    association = str(sim_1a.association)

    # 1. Cubes from the association: written, returned opened lazily; the session's reference
    # cube of the same files (built by the builder itself).
    cubes = mrsdask.cube.build(association, f"{out}/cubes.zarr", channels=(1,), subbands=("A",), **WINDOW)
    assert list(cubes) == ["ch1-short"] and isinstance(cubes["ch1-short"]["sci"].data, da.Array)
    for var in CUBE_VARS:
        np.testing.assert_array_equal(cubes["ch1-short"][var].values, reference[var], err_msg=var)

    # 2. Pixel background: to a store (opened back), or lazily.
    roles = _roles_association(sim_1a, out)
    subtracted = mrsdask.background.subtract(roles, output=f"{out}/bkg.zarr", method="pixel")
    assert subtracted.sizes["exposure"] == 1 and json.loads(subtracted.attrs["mrsdask_background"])["method"] == "pixel"
    _cli(capsys, "background", roles, "-o", f"{out}/cli_bkg.zarr", "--method", "pixel")
    _same_detector(subtracted, f"{out}/cli_bkg.zarr")
    lazy = mrsdask.background.subtract(roles, method="pixel")
    assert isinstance(lazy["sci"].data, da.Array)
    np.testing.assert_array_equal(lazy["sci"][:, 500:520].values, subtracted["sci"][:, 500:520].values)

    # 3. Background -> cube, through the store and in memory: the lazy Dataset's exposures are
    # computed from its own arrays by the cube's tasks. Both equal the CLI's cubes of its store.
    bkg_cubes = mrsdask.cube.build(subtracted, f"{out}/bkg_cubes.zarr", channels=(1,), **WINDOW)
    _cli(capsys, "cube", f"{out}/cli_bkg.zarr", "-o", f"{out}/cli_bkg_cubes.zarr", "--channel", "1",
         "--wavemin", str(WINDOW["wavemin"]), "--wavemax", str(WINDOW["wavemax"]))
    _same_cubes(bkg_cubes, f"{out}/cli_bkg_cubes.zarr")
    assert not np.array_equal(bkg_cubes["ch1-short"]["sci"].values, reference["sci"], equal_nan=True)
    memory_cubes = mrsdask.cube.build(lazy, f"{out}/from_memory.zarr", channels=(1,), **WINDOW)
    _same_cubes(memory_cubes, f"{out}/cli_bkg_cubes.zarr")

    # 4. Residual fringes on 40 columns of the subtracted store: to a store, and lazily (the
    # command given the same in-process scheduler: starting worker processes costs more here).
    from mrsdask.io.detector_store import write_detector_store

    columns = f"{out}/columns.zarr"
    write_detector_store(subtracted.isel(x=slice(160, 200)), columns)
    corrected = mrsdask.fringe.correct(columns, output=f"{out}/fringe.zarr", residual=True, scheduler="threads")
    stdout = _cli(capsys, "fringe", columns, "-o", f"{out}/cli_fringe.zarr", "--residual", "--scheduler", "threads")
    assert "slice columns" in stdout and "wrote the fringe-corrected detector store" in stdout
    rf_vars = DETECTOR_VARS + ("rf_factor", "rf_flag", "rf_status", "rf_period")
    _same_detector(corrected, f"{out}/cli_fringe.zarr", rf_vars)
    summary = mrsdask.fringe.residual_fringe_summary(corrected)
    assert summary[0]["columns"] > 30 and summary[0]["fit_failed"] == 0
    lazy_fringes = mrsdask.fringe.correct(xr.open_zarr(columns, consolidated=False), residual=True)
    assert isinstance(lazy_fringes["sci"].data, da.Array)
    computed = lazy_fringes[["sci", "rf_status"]].compute(scheduler="threads")
    np.testing.assert_array_equal(computed["sci"].values, corrected["sci"].values)
    np.testing.assert_array_equal(computed["rf_status"].values, corrected["rf_status"].values)

    # 5. The same step as a pipeline: the same store; run again, it is up to date.
    definition = tmp_path / "rf.yaml"
    definition.write_text("name: rf\nsteps:\n  - step: fringe\n    residual: false\n")
    outcomes = mrsdask.pipeline.run(str(definition), columns, f"{out}/run", overrides={"fringe.residual": True},
                                    scheduler="threads")
    assert [o.state for o in outcomes] == ["ran"] and " corrected, " in outcomes[0].result.summary
    _same_detector(corrected, f"{out}/run/01-fringe.zarr", rf_vars)
    again = mrsdask.pipeline.run(str(definition), columns, f"{out}/run", overrides=["fringe.residual=true"],
                                 scheduler="threads")
    assert [o.state for o in again] == ["up to date"]


def test_entry_points_take_the_request_or_keywords_and_name_the_closest_option(sim_1a, tmp_path):
    from mrsdask.background.request import BackgroundRequest
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.fringe.request import FringeRequest
    from mrsdask.options import request_from

    with pytest.raises(ParameterError, match="unknown option 'output_typ'; did you mean 'output_type'"):
        mrsdask.cube.build(sim_1a.association, str(tmp_path / "c.zarr"), output_typ="multi")
    with pytest.raises(ParameterError, match="did you mean 'median_kernel'"):
        mrsdask.background.subtract(sim_1a.association, medain_kernel=3)
    with pytest.raises(ParameterError, match="did you mean 'residual'"):
        mrsdask.fringe.correct(sim_1a.association, resdual=True)
    with pytest.raises(ParameterError, match="nothing to correct"):
        mrsdask.fringe.correct(sim_1a.association)
    with pytest.raises(ParameterError, match="weighting 'fast'"):
        mrsdask.cube.build(sim_1a.association, str(tmp_path / "c.zarr"), weighting="fast")
    assert not os.path.exists(tmp_path / "c.zarr")
    # Field names take Python values; official and older names take what a pipeline file writes.
    assert request_from(CubeRequest, channel=["1", "2"], band=["short"]) == CubeRequest(channels=(1, 2), subbands=("A",))
    assert request_from(CubeRequest, CubeRequest(weighting="emsm"), channels=(3,)) == CubeRequest(weighting="emsm",
                                                                                                 channels=(3,))
    assert request_from(BackgroundRequest, force=True) == BackgroundRequest(force_subtract=True)
    assert request_from(FringeRequest, flat="F.fits", fringefreq="R.fits", residual=True) == FringeRequest(
        override_fringe=("F.fits",), override_fringefreq="R.fits", residual=True)
    with pytest.raises(ParameterError, match="given twice"):
        request_from(FringeRequest, flat="F.fits", override_fringe=["G.fits"])
    with pytest.raises(ParameterError, match="must be a FringeRequest"):
        mrsdask.fringe.correct(sim_1a.association, CubeRequest())


def test_the_scheduler_choice_is_the_librarys(sim_1a, monkeypatch):
    import dask

    from mrsdask.io.detector_store import open_cal
    from mrsdask.scheduling import Scheduling, choose_scheduler

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    files = [str(p) for p in sim_1a.cal_files]
    ds = open_cal(files)
    assert choose_scheduler(files) == choose_scheduler(ds) == "threads"  # 2 exposures x 2 channels
    assert choose_scheduler(ds, detector_job=True, fits_fringes=True) is None  # residual fringes: processes
    one = ds.isel(exposure=[0])  # ... but for one exposure, in process (worker start-up costs more)
    assert choose_scheduler(one, detector_job=True, fits_fringes=True) == "threads"
    assert choose_scheduler(ds, Scheduling(n_workers=2)) is None
    assert choose_scheduler(ds, Scheduling(scheduler="tcp://host:8786")) == "tcp://host:8786"
    big = xr.concat([ds] * 13, dim="exposure")  # 52 exposure-channels: a local cluster
    assert choose_scheduler(big, cube=True) is None and choose_scheduler(big, channels=(1,), cube=True) == "threads"
    mid = xr.concat([ds] * 5, dim="exposure")  # 20: a cube build in process, other jobs on a cluster
    assert choose_scheduler(mid, cube=True) == "threads" and choose_scheduler(mid) is None
    with dask.config.set(scheduler="synchronous"):  # the caller's in-process choice is kept
        assert choose_scheduler(big) == "synchronous"
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:1"}):  # a cluster named in Dask's config files
        assert choose_scheduler(ds) is None


def test_the_old_keywords_and_scheduling_give_the_same_scheduler(sim_1a, monkeypatch):
    """``n_workers=2`` (the keywords of earlier releases) is ``scheduling=Scheduling(n_workers=2)``:
    the same object reaches :func:`choose_scheduler`, and the rest of the keywords are the step's."""
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.options import request_from
    from mrsdask.scheduling import Scheduling, choose_scheduler

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    files = [str(p) for p in sim_1a.cal_files]
    cases = [({}, "threads"), ({"n_workers": 2}, None), ({"scheduler": "synchronous"}, "synchronous"),
             ({"scheduler": "tcp://host:8786", "memory_limit": "3GB", "threads_per_worker": 2, "progress": True},
              "tcp://host:8786")]
    for keywords, expected in cases:
        options = {**keywords, "channels": (1,)}
        old = Scheduling.pop_from(options, where="mrsdask.cube.build")
        assert options == {"channels": (1,)}  # what is left is the step's
        assert old == Scheduling(**keywords)
        chosen = choose_scheduler(files, old, channels=request_from(CubeRequest, **options).channels)
        assert chosen == choose_scheduler(files, Scheduling(**keywords), channels=(1,)) == expected
    # Both given: the keywords change the object's fields (as they change a request's).
    both = Scheduling.pop_from({"n_workers": 3}, Scheduling(scheduler="threads", n_workers=1))
    assert both == Scheduling(scheduler="threads", n_workers=3)
    # The command-line flags make the same object, and flags() writes it back.
    from mrsdask.cli import build_parser

    wanted = Scheduling(scheduler="threads", n_workers=2, memory_limit="3GB")
    args = build_parser().parse_args(["ingest", *files, "-o", "x.zarr", *wanted.flags()])
    assert Scheduling.from_arguments(args) == wanted
    assert Scheduling.from_arguments(build_parser().parse_args(["ingest", *files, "-o", "x.zarr"])).progress


@pytest.mark.parametrize("keywords, message", [
    ({"n_workers": "2"}, "'n_workers' must be an integer, not '2'"),
    ({"threads_per_worker": 1.5}, "'threads_per_worker' must be an integer"),
    ({"scheduler": 8786}, "'scheduler' must be a non-empty string"),
    ({"memory_limit": 2e9}, "'memory_limit' must be a non-empty string"),
    ({"progress": "yes"}, "'progress' must be true or false"),
    ({"n_workers": 0}, "at least 1"),
    ({"memory_limit": "lots"}, "use a size such as 2GB"),
])
def test_a_wrong_scheduling_value_is_a_parameter_error(sim_1a, tmp_path, keywords, message):
    from mrsdask.scheduling import Scheduling

    with pytest.raises(ParameterError, match=message):
        Scheduling(**keywords)
    with pytest.raises(ParameterError, match="mrsdask.cube.build: .*" + message):
        mrsdask.cube.build(sim_1a.association, str(tmp_path / "c.zarr"), **keywords)
    assert not os.path.exists(tmp_path / "c.zarr")
    with pytest.raises(ParameterError, match="scheduling must be a Scheduling, not dict"):
        mrsdask.fringe.correct(sim_1a.association, residual=True, scheduling=keywords)
    with pytest.raises(ParameterError, match="unknown keyword 'nworkers'"):
        mrsdask.pipeline.run("cubes", sim_1a.association, str(tmp_path / "run"), nworkers=2)


def test_adding_an_option_is_one_field(monkeypatch):
    """A new option is one field: the command-line flag, the pipeline parameter (checked, in
    ``--describe``) and the Python keyword all come from it."""
    from mrsdask.options import add_arguments, check_parameters, from_arguments, from_parameters, option, \
        pipeline_params, request_from
    from mrsdask.pipeline.definition import parse_pipeline
    from mrsdask.pipeline.steps import DETECTOR, STEP_TYPES, StepType

    @dataclass(frozen=True)
    class Toy:
        box_width: float = option(1.5, "box width", kind="float", unit="arcsec", official="width",
                                  aliases=("box",))
        mode: str = option("fast", "how", kind="choice", choices=("fast", "exact"))

    parser = argparse.ArgumentParser()
    add_arguments(parser, Toy)
    assert "--width ARCSEC" in parser.format_help() and "box width; in arcsec; default 1.5" in parser.format_help()
    from_cli = from_arguments(Toy, parser.parse_args(["--width", "2", "--mode", "exact"]))
    params = pipeline_params(Toy)
    from_pipeline = from_parameters(Toy, check_parameters({"box": 2.0, "mode": "exact"}, params, "step toy"))
    from_python = request_from(Toy, box_width=2.0, mode="exact")
    assert from_cli == from_pipeline == from_python == Toy(2.0, "exact")

    monkeypatch.setitem(STEP_TYPES, "toy", StepType("toy", DETECTOR, params, lambda ctx, p: None, "throwaway"))
    described = parse_pipeline({"steps": [{"step": "toy", "width": 3.0}]}, "toy.yaml").describe()
    assert "width: 3.0" in described and "mode: fast" in described


@pytest.mark.parametrize("command, step, request_path", [
    ("background", "background", "mrsdask.background.request.BackgroundRequest"),
    ("fringe", "fringe", "mrsdask.fringe.request.FringeRequest"),
    ("cube", "cube", "mrsdask.cube.plan.CubeRequest"),
])
def test_every_declared_option_reaches_the_command_the_step_and_python(command, step, request_path):
    import importlib

    from mrsdask.cli import build_parser
    from mrsdask.options import declared_options
    from mrsdask.pipeline.steps import STEP_TYPES

    module, name = request_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    declared = list(declared_options(cls))
    assert [o.name for o in declared] == [f.name for f in dataclasses.fields(cls)]
    text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    params = {p.name: p for p in STEP_TYPES[step].params}
    for opt in declared:
        assert opt.flag in text and all(flag in text for flag in opt.spec.flag_aliases), opt.flag
        assert opt.key in params and params[opt.key].aliases == opt.spec.aliases, opt.key
