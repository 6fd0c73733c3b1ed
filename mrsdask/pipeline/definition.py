"""Pipeline definitions: YAML files naming steps and their parameters, checked before any work.

A definition looks like this (the ready ones are in the repository's ``pipelines/`` folder)::

    name: fringe-cubes
    description: residual fringes removed on the detector, then one cube per channel
    steps:
      - step: fringe
        residual: true
      - step: cube
        output_type: channel
      - step: export

Each item has ``step`` (one of :data:`~mrsdask.pipeline.steps.STEP_TYPES`), an optional ``id``
(default: the step name; needed when a step appears twice) and the step's parameters. Any
parameter can be changed at run time: ``--set cube.output_type=multi`` (``ID.PARAM=VALUE``,
the value read as YAML).

Two keys every step takes, besides its own parameters:

* ``skip: true`` — the step does not run (recorded as skipped; the next step reads what this
  one would have read; with a cube step skipped, the export steps after it have no cubes and are
  skipped too);
* ``when: CONDITION`` (or a list: any of them) — the step runs only if the condition holds for
  the run's inputs, as the official ``Spec3Pipeline`` decides some of its steps; otherwise it is
  recorded as skipped with the reason. Conditions: :data:`CONDITIONS`.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mrsdask.errors import InputError, ParameterError
from mrsdask.options import check_parameters
from mrsdask.pipeline.steps import CUBE, DETECTOR, EXPORT, STEP_TYPES, StepType

#: Environment variable: extra folders (``os.pathsep``-separated) searched for named pipelines.
PIPELINES_ENV = "MRSDASK_PIPELINES"
_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


#: Conditions a step's ``when`` may name: what each asks of the run's inputs (or the step's parameters).
CONDITIONS: dict[str, str] = {
    "backgrounds_linked": "the inputs link background exposures or background x1d files (association exptype "
                          "'background', or BKGDTARG = T)",
    "user_background": "the step's user_background parameter names a spectrum",
    "moving_target": "a science exposure has TARGTYPE = MOVING",
}
#: Keys of a step item that are not step parameters (``skip`` only where the step has none of its own).
GENERIC_KEYS = ("when", "skip")


@dataclass(frozen=True)
class StepSpec:
    """One checked step of a pipeline: its id, type, parameters (defaults filled in) and output.

    ``when`` holds the conditions of which one must hold for the step to run (empty: always);
    ``skip`` skips it whatever they say.
    """

    id: str
    type: StepType
    params: dict[str, Any]
    output: str
    when: tuple[str, ...] = ()
    skip: bool = False

    @property
    def name(self) -> str:
        return self.type.name


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline definition.

    Attributes
    ----------
    name, description : str
    steps : tuple of StepSpec
        In the order they run.
    source : str
        The file it came from.
    """

    name: str
    description: str
    steps: tuple[StepSpec, ...]
    source: str

    def describe(self) -> str:
        """Several lines: the steps with their parameters, as they will run."""
        lines = [f"pipeline {self.name} ({self.source})"]
        if self.description:
            lines.append("  " + " ".join(self.description.split()))
        for i, step in enumerate(self.steps, 1):
            label = step.name if step.id == step.name else f"{step.id} ({step.name})"
            lines.append(f"  {i}. {label} -> {step.output}")
            if step.skip:
                lines.append("       skip: true")
            if step.when:
                lines.append(f"       when: {' or '.join(step.when)}")
            for key, value in step.params.items():
                if value is not None:
                    lines.append(f"       {key}: {value}")
        return "\n".join(lines)


def pipeline_folders() -> list[Path]:
    """Folders searched for named pipelines, first match wins.

    ``$MRSDASK_PIPELINES``, the ``pipelines/`` folder of a source checkout (editable installs),
    then ``<prefix>/share/mrsdask/pipelines`` (where ``pip install`` puts them).
    """
    folders = [Path(p) for p in os.environ.get(PIPELINES_ENV, "").split(os.pathsep) if p]
    folders.append(Path(__file__).resolve().parents[2] / "pipelines")
    folders.append(Path(sys.prefix) / "share" / "mrsdask" / "pipelines")
    return [f for f in folders if f.is_dir()]


def shipped_pipelines() -> dict[str, Path]:
    """Named pipelines found in :func:`pipeline_folders`: name → file."""
    found: dict[str, Path] = {}
    for folder in pipeline_folders():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_pipeline(name_or_path: str) -> Path:
    """The definition file of a pipeline given by path or by name (``cubes``, ``fringe-cubes`` …)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml", ".json") or os.sep in name_or_path:
        raise InputError(f"{name_or_path}: no such pipeline file")
    known = shipped_pipelines()
    if name_or_path not in known:
        listed = ", ".join(known) or "none found"
        raise InputError(f"{name_or_path}: no pipeline of that name (known: {listed}); "
                         "give a path to a definition file or one of the names")
    return known[name_or_path]


def load_pipeline(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Pipeline:
    """Read, override and check a pipeline definition.

    Parameters
    ----------
    name_or_path : str
        A definition file, or the name of a ready pipeline (see :func:`shipped_pipelines`).
    overrides : list of str
        ``ID.PARAM=VALUE`` items, applied before the checks.

    Raises
    ------
    InputError
        If the file cannot be found or read.
    ParameterError
        If the definition or an override is wrong (unknown step or parameter, bad value, steps
        in an order that cannot work).
    """
    path = find_pipeline(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the pipeline definition ({exc})") from exc
    return parse_pipeline(data, str(path), overrides)


def parse_pipeline(data: Any, source: str, overrides: list[str] | tuple[str, ...] = ()) -> Pipeline:
    """Check a definition already read from YAML; see :func:`load_pipeline`."""
    if not isinstance(data, dict):
        raise ParameterError(f"{source}: a pipeline definition is a mapping with 'name' and 'steps'")
    unknown = set(data) - {"name", "description", "steps"}
    if unknown:
        raise ParameterError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                             "a pipeline has name, description and steps")
    items = data.get("steps")
    if not isinstance(items, list) or not items:
        raise ParameterError(f"{source}: 'steps' must be a non-empty list")
    items = [_step_item(item, i, source) for i, item in enumerate(items, 1)]
    ids = [item["id"] for item in items]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ParameterError(f"{source}: step id {duplicated[0]!r} is used twice; give each such step an 'id'")
    _apply_overrides(items, overrides, source)
    steps = []
    for index, item in enumerate(items, 1):
        step_type = STEP_TYPES[item["step"]]
        where = f"{source}: step {index} ({item['id']})"
        params = dict(item["params"])
        when = _check_when(params.pop("when", None), where)
        own_skip = any(p.name == "skip" for p in step_type.params)
        skip = False if own_skip else params.pop("skip", False)
        if skip is None or not isinstance(skip, bool):
            raise ParameterError(f"{where}: 'skip' must be true or false, not {skip!r}")
        params = check_parameters(params, step_type.params, where)
        if own_skip:  # a step's own skip (outlier) is the same switch: the runner skips the step
            skip = bool(params.get("skip"))
        steps.append(StepSpec(item["id"], step_type, params, step_type.default_output(index, item["id"], params),
                              when, skip))
    _check_order(steps, source)
    name = data.get("name") or Path(source).stem
    return Pipeline(str(name), str(data.get("description") or ""), tuple(steps), source)


def _check_when(value: Any, where: str) -> tuple[str, ...]:
    """A step's ``when``: a condition name or a list of them (any of them must hold)."""
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ParameterError(f"{where}: 'when' must be a condition or a list of conditions "
                             f"({', '.join(CONDITIONS)}), not {value!r}")
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise ParameterError(f"{where}: unknown condition {unknown[0]!r} in 'when'; "
                             f"choose from {', '.join(CONDITIONS)}")
    return tuple(names)


def _step_item(item: Any, index: int, source: str) -> dict[str, Any]:
    if not isinstance(item, dict) or "step" not in item:
        raise ParameterError(f"{source}: step {index} must be a mapping with a 'step' key "
                             f"(one of {', '.join(STEP_TYPES)})")
    params = copy.deepcopy(item)
    name = params.pop("step")
    if name not in STEP_TYPES:
        raise ParameterError(f"{source}: step {index}: unknown step {name!r}; "
                             f"choose one of {', '.join(STEP_TYPES)}")
    step_id = params.pop("id", name)
    if not isinstance(step_id, str) or not _ID.match(step_id):
        raise ParameterError(f"{source}: step {index}: id {step_id!r} must be lower-case letters, "
                             "digits, '-' or '_', starting with a letter")
    return {"step": name, "id": step_id, "params": params}


def _apply_overrides(items: list[dict], overrides, source: str) -> None:
    by_id = {item["id"]: item for item in items}
    for text in overrides:
        key, sep, value = str(text).partition("=")
        step_id, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            raise ParameterError(f"--set {text!r}: use ID.PARAM=VALUE, e.g. cube.output_type=multi")
        if step_id not in by_id:
            raise ParameterError(f"--set {text!r}: {source} has no step {step_id!r} "
                                 f"(its steps: {', '.join(by_id)})")
        try:
            by_id[step_id]["params"][param] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise ParameterError(f"--set {text!r}: the value is not valid YAML ({exc})") from exc


def _check_order(steps: list[StepSpec], source: str) -> None:
    seen_cube = False
    outputs: dict[str, str] = {}
    for index, step in enumerate(steps, 1):
        kind = step.type.kind
        if kind == DETECTOR and seen_cube:
            raise ParameterError(f"{source}: step {index} ({step.id}) works on detector data but comes after a "
                                 "cube step; put the detector steps first")
        if kind == EXPORT and not seen_cube:
            raise ParameterError(f"{source}: step {index} ({step.id}) reads cubes, but no cube step comes before it")
        seen_cube = seen_cube or kind == CUBE
        if step.output in outputs:
            raise ParameterError(f"{source}: steps {outputs[step.output]} and {step.id} both write {step.output}; "
                                 "give one of them another store or folder")
        outputs[step.output] = step.id
