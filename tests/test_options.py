"""One declaration per option (mrsdask.options): the CLI flags and pipeline parameters come from it."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from mrsdask.errors import ParameterError
from mrsdask.options import (
    add_arguments,
    check_parameters,
    declared_options,
    from_arguments,
    from_parameters,
    option,
    pipeline_params,
)


@dataclass(frozen=True)
class Toy:
    width: float = option(1.5, "aperture width", kind="float", unit="arcsec")
    mode: str = option("fast", "how", kind="choice", choices=("fast", "exact"))
    parts: tuple[int, ...] = option((1, 2), "parts or all", kind="str_list", official="part", aliases=("parts",),
                                    parse=lambda v: (1, 2) if v == ["all"] else tuple(int(x) for x in v),
                                    user_default=["all"])
    flag: bool | None = option(None, "switch", kind="bool")


def parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser, Toy)
    return from_arguments(Toy, parser.parse_args(argv)), parser


def test_one_declaration_makes_the_flags_their_help_and_the_defaults():
    toy, parser = parse([])
    assert toy == Toy()
    assert parse(["--width", "2", "--mode", "exact", "--part", "3", "4", "--no-flag"])[0] == Toy(2.0, "exact", (3, 4), False)
    text = parser.format_help()
    assert "--width ARCSEC" in text and "aperture width; in arcsec; default 1.5" in text
    assert "--part" in text and "default all" in text and "--flag, --no-flag" in text


def test_one_declaration_makes_the_pipeline_parameters_with_their_checks_and_older_names():
    params = {p.name: p for p in pipeline_params(Toy)}
    assert list(params) == ["width", "mode", "part", "flag"] and params["part"].default == ["all"]
    checked = check_parameters({"parts": ["3"], "mode": "exact"}, tuple(params.values()), "step toy")
    assert from_parameters(Toy, checked) == Toy(1.5, "exact", (3,), None)
    with pytest.raises(ParameterError, match="choose one of fast, exact"):
        check_parameters({"mode": "slow"}, tuple(params.values()), "step toy")
    with pytest.raises(ParameterError, match="did you mean 'width'"):
        check_parameters({"widht": 2.0}, tuple(params.values()), "step toy")
    with pytest.raises(ParameterError, match="not both"):
        check_parameters({"part": ["1"], "parts": ["2"]}, tuple(params.values()), "step toy")


def test_every_cube_option_reaches_the_command_and_the_pipeline_step():
    """CubeRequest's fields are declared once; 'mrsdask cube -h' and the pipeline cube step both list them."""
    from mrsdask.cli import build_parser
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.pipeline.steps import STEP_TYPES

    declared = list(declared_options(CubeRequest))
    assert [o.name for o in declared] == [f.name for f in dataclasses.fields(CubeRequest)]
    cube_help = build_parser()._subparsers._group_actions[0].choices["cube"].format_help()
    step_params = {p.name for p in STEP_TYPES["cube"].params}
    for opt in declared:
        assert opt.flag in cube_help, opt.flag
        assert opt.key in step_params, opt.key


# --------------------------------------------------------------------------- official parameter files
@pytest.fixture(scope="module")
def official_steps():
    import os

    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")
    from jwst.cube_build import CubeBuildStep
    from jwst.extract_1d import Extract1dStep
    from jwst.master_background import MasterBackgroundStep
    from jwst.outlier_detection import OutlierDetectionStep
    from jwst.residual_fringe import ResidualFringeStep

    return {"cube": CubeBuildStep, "extract": Extract1dStep, "master": MasterBackgroundStep,
            "outlier": OutlierDetectionStep, "residual": ResidualFringeStep}


def test_official_parameter_files_written_by_stpipe_give_the_requests(official_steps, tmp_path):
    """Files written by the official ``Step.export_config`` (every parameter of the step in them)."""
    from mrsdask.background.request import BackgroundRequest
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.extract.request import ExtractRequest
    from mrsdask.fringe.request import FringeRequest
    from mrsdask.options import request_from_step_file
    from mrsdask.outlier.request import OutlierRequest

    def exported(kind, **pars):
        path = str(tmp_path / f"{kind}_{len(list(tmp_path.iterdir()))}.asdf")
        official_steps[kind](**pars).export_config(path)
        return path

    cube = request_from_step_file(CubeRequest, exported("cube", weighting="emsm", scalexy=0.2, channel="1",
                                                        band="medium", output_type="channel"))
    assert (cube.weighting, cube.scalexy, cube.channels, cube.subbands, cube.output_type) == (
        "emsm", 0.2, (1,), ("B",), "channel")
    assert request_from_step_file(CubeRequest, exported("cube", weighting="emsm"), weighting="msm").weighting == "msm"
    extract = request_from_step_file(ExtractRequest, exported("extract", ifu_autocen=True, ifu_rscale=1.5,
                                                              ifu_rfcorr=False))
    assert (extract.ifu_autocen, extract.ifu_rscale, extract.ifu_rfcorr, extract.apply_apcorr) == (True, 1.5, False, True)
    master = request_from_step_file(BackgroundRequest, exported("master", median_kernel=5))
    assert (master.method, master.median_kernel) == ("master", 5)
    outlier = request_from_step_file(OutlierRequest, exported("outlier", threshold_percent=99.5, kernel_size="5 5"))
    assert (outlier.threshold_percent, outlier.kernel_size) == (99.5, (5, 5))
    fringe = request_from_step_file(FringeRequest, exported("residual", skip=False, ignore_region_min=[5.0, 6.0],
                                                            ignore_region_max=[5.2, 6.1]))
    assert fringe.residual is True and fringe.ignore_regions == ((5.0, 5.2), (6.0, 6.1))

    refusals = [
        (CubeRequest, exported("cube", debug_spaxel="1 2 3"), "'debug_spaxel' = '1 2 3' is not implemented"),
        (ExtractRequest, exported("cube"), "parameters of CubeBuildStep, not of Extract1dStep"),
        (FringeRequest, exported("residual"), "skip = True .the official default"),
        (OutlierRequest, exported("outlier", maskpt=0.5), "'maskpt' = 0.5 is not implemented"),
    ]
    cfg = tmp_path / "cube_build.cfg"  # the older ConfigObj layout, values typed by the official spec
    cfg.write_text('name = "cube_build"\nclass = "jwst.cube_build.CubeBuildStep"\nscalexy = 0.3\nchanel = 1\n')
    refusals.append((CubeRequest, str(cfg), "unknown parameter 'chanel'; did you mean 'channel'"))
    bad = tmp_path / "bad.cfg"
    bad.write_text('class = "jwst.cube_build.CubeBuildStep"\nscalexy = big\n')
    refusals.append((CubeRequest, str(bad), "scalexy"))
    for cls, path, message in refusals:
        with pytest.raises(ParameterError, match=message):
            request_from_step_file(cls, path)
    cfg.write_text('name = "cube_build"\nclass = "jwst.cube_build.CubeBuildStep"\nscalexy = 0.3\nweighting = msm\n')
    assert request_from_step_file(CubeRequest, str(cfg)).scalexy == 0.3


def test_a_params_file_changes_the_build_and_flags_override_it(official_steps, sim_1a, tmp_path, capsys):
    import xarray as xr

    from mrsdask.cli import main

    params = str(tmp_path / "cube_build.asdf")
    official_steps["cube"](weighting="emsm", scalexy=0.3, channel="1", band="short").export_config(params)
    window = ["--wavemin", "5.0", "--wavemax", "5.05", "--no-progress"]
    assert main(["cube", str(sim_1a.association), "-o", str(tmp_path / "a.zarr"), "--params", params, *window]) == 0
    assert main(["cube", str(sim_1a.association), "-o", str(tmp_path / "b.zarr"), "--params", params,
                 "--scalexy", "0.25", *window]) == 0
    a = xr.open_zarr(str(tmp_path / "a.zarr"), group="ch1-short", consolidated=False)
    b = xr.open_zarr(str(tmp_path / "b.zarr"), group="ch1-short", consolidated=False)
    assert a.attrs["weighting"] == b.attrs["weighting"] == "emsm"
    assert a.attrs["cdelt1"] * 3600 == pytest.approx(0.3) and b.attrs["cdelt1"] * 3600 == pytest.approx(0.25)
    capsys.readouterr()
    official_steps["cube"](weighting="emsm", skip_dqflagging=True).export_config(params)
    assert main(["cube", str(sim_1a.association), "-o", str(tmp_path / "c.zarr"), "--params", params, *window]) == 2
    assert "'skip_dqflagging' = True is not implemented" in capsys.readouterr().err
    assert not (tmp_path / "c.zarr").exists()
