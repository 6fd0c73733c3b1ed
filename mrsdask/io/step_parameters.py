"""Official stpipe parameter files (``CubeBuildStep``, ``Extract1dStep`` …) read for mrsdask.

The official pipeline keeps a step's parameters in an ASDF file (``Step.export_config``, the
CRDS ``pars-*`` reference files) or, in older releases, a ConfigObj ``.cfg`` file; both name the
step's class. :func:`read_step_parameters` reads either with stpipe's own reader and types the
values with the official step's parameter specification, so that ``"0.2"`` in a ``.cfg`` file
is the number the official step would use. Which mrsdask options the values become is decided
by :func:`mrsdask.options.request_from_step_file`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from mrsdask.errors import InputError, ParameterError

#: stpipe's own parameters of every step: where and whether outputs are saved, hooks. They do
#: not change the results; ``skip`` does and is handled by the caller.
STPIPE_GENERIC = frozenset({
    "input_dir", "output_dir", "output_ext", "output_file", "output_use_index", "output_use_model",
    "post_hooks", "pre_hooks", "save_results", "search_output_file", "suffix",
})


@dataclass(frozen=True)
class StepParameters:
    """The parameters an official parameter file sets, typed as the official step types them.

    Attributes
    ----------
    path : str
        The file.
    step : str
        The official step class's name (``CubeBuildStep``).
    values : dict
        Parameter → value, only the keys the file sets (``class``/``name`` left out).
    defaults : dict
        The official step's default of every parameter in its specification.
    """

    path: str
    step: str
    values: dict[str, Any]
    defaults: dict[str, Any]


def read_step_parameters(path: str, official_steps: dict[str, str]) -> StepParameters:
    """Read an official stpipe parameter file for one of ``official_steps``.

    Parameters
    ----------
    path : str
        ASDF (``.asdf``) or ConfigObj (``.cfg``) parameter file, as ``Step.export_config``
        or CRDS ``pars-*`` files are.
    official_steps : dict of str to str
        Accepted step class names → their import path (``{"CubeBuildStep":
        "jwst.cube_build.CubeBuildStep"}``).

    Raises
    ------
    InputError
        The file is missing or not a parameter file.
    ParameterError
        It is the file of another step, or a value does not fit the official specification.
    """
    from stpipe import config_parser

    if not os.path.isfile(path):
        raise InputError(f"{path}: parameter file not found")
    try:
        config = config_parser.load_config_file(path)
    except Exception as exc:  # noqa: BLE001 - asdf, yaml and configobj each raise their own
        raise InputError(f"{path}: not an stpipe parameter file (ASDF or .cfg): {exc}") from exc
    class_path = str(config.get("class") or "")
    step = class_path.rsplit(".", 1)[-1] or str(config.get("name") or "")
    if step not in official_steps:
        raise ParameterError(
            f"{path}: parameters of {step or 'an unnamed step'}, not of {' or '.join(official_steps)}")
    if config.get("steps"):
        raise ParameterError(f"{path}: holds the parameters of a pipeline's steps; give the file of one step")
    module, _, name = official_steps[step].rpartition(".")
    step_class = getattr(importlib.import_module(module), name)
    spec = config_parser.load_spec_file(step_class)
    raw = {key: value for key, value in config.items() if key not in ("class", "name", "steps")}
    known = {key: value for key, value in raw.items() if key in spec}
    try:
        typed = dict(config_parser.config_from_dict(known, spec, allow_missing=True))
    except Exception as exc:  # noqa: BLE001 - stpipe's ValidationError lists the bad values
        raise ParameterError(f"{path}: {step}: {exc}") from exc
    values = {key: typed[key] for key in known}
    values.update({key: value for key, value in raw.items() if key not in spec})  # judged by the caller
    defaults = dict(config_parser.config_from_dict({}, spec, allow_missing=True))
    return StepParameters(path, step, values, defaults)
