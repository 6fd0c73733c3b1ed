"""``mrsdask.pipeline.run``: the Python entry point of pipelines."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mrsdask.errors import ParameterError
from mrsdask.pipeline.definition import Pipeline, load_pipeline
from mrsdask.pipeline.runner import StepOutcome, run_pipeline
from mrsdask.scheduling import Scheduling, job_scheduler

log = logging.getLogger("mrsdask.pipeline")


def _override_items(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``{"cube.output_type": "multi"}`` or ``["cube.output_type=multi"]`` → ``ID.PARAM=VALUE`` items."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        # JSON is YAML: the value reads back as given (lists, numbers, strings, null).
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return [str(item) for item in overrides]


def run(pipeline: str | Pipeline, inputs: str | Sequence[str], run_folder: str, *,
        overrides: Mapping[str, Any] | Sequence[str] | None = None, overwrite: bool = False,
        scheduling: Scheduling | None = None, announce: Callable[[str], None] | None = None,
        extra: dict[str, Any] | None = None, **keywords: Any) -> list[StepOutcome]:
    """Run a pipeline in a run folder, as ``mrsdask run`` does; resumable.

    Parameters
    ----------
    pipeline : str or Pipeline
        The name of a ready pipeline (``cubes``, ``fringe-cubes``…;
        :func:`mrsdask.pipeline.shipped_pipelines`), a definition file, or a checked
        :class:`~mrsdask.pipeline.definition.Pipeline`.
    inputs : str, path or list of them
        cal files, globs, association JSON or one detector store.
    run_folder : str
        Folder for the step outputs and the record ``pipeline-run.json``.
    overrides : mapping or list of str, optional
        Step parameters to change: ``{"cube.output_type": "multi"}`` or
        ``["cube.output_type=multi"]`` (as ``--set``), applied before the checks.
    overwrite : bool
        Run every step again, even those that are up to date.
    scheduling : Scheduling, optional
        Where the work runs, and progress bars (:class:`~mrsdask.scheduling.Scheduling`; its fields also as keywords).
        By default a small job runs in this process, a pipeline that fits residual fringes on worker processes.
    announce : callable, optional
        Called with one line per event (default: logged on ``mrsdask.pipeline``).
    extra : dict, optional
        Kept in the run record.
    **keywords
        The fields of ``scheduling`` as keywords (``n_workers=2``).

    Returns
    -------
    list of StepOutcome
        One per step: its state (ran, resumed, up to date), output and summary.

    Raises
    ------
    ParameterError
        For an unknown step or parameter (naming the closest one), an unknown keyword or a bad
        value, before any work; overrides given with a Pipeline already checked.
    MrsdaskError
        From a step; the run record marks it failed.
    """
    scheduling = Scheduling.pop_from(keywords, scheduling, "mrsdask.pipeline.run")
    if keywords:
        raise ParameterError(f"mrsdask.pipeline.run: unknown keyword {next(iter(keywords))!r} (step parameters go "
                             "in overrides={'STEP.PARAM': value})")
    items = _override_items(overrides)
    if isinstance(pipeline, Pipeline):
        if items:
            raise ParameterError("overrides apply to a pipeline name or file; a Pipeline object is already checked")
    else:
        pipeline = load_pipeline(str(pipeline), items)
    inputs = [str(inputs)] if isinstance(inputs, (str, os.PathLike)) else [str(i) for i in inputs]
    say = announce or log.info
    fits_fringes = any(step.name == "fringe" and step.params.get("residual") for step in pipeline.steps)
    with job_scheduler(inputs, scheduling, fits_fringes=fits_fringes, announce=say):
        return run_pipeline(pipeline, inputs, run_folder, overwrite=overwrite, progress=scheduling.progress,
                            announce=say, extra=extra)
