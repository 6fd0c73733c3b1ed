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
