"""Pipelines: ready sequences of steps (background, fringe, cube, export) run as one job.

* :mod:`~mrsdask.pipeline.definition` — YAML definitions (the repository's ``pipelines/``
  folder holds ready ones), run-time overrides, and the checks made before any work;
* :mod:`~mrsdask.pipeline.steps` — the steps, their parameters and what each writes;
* :mod:`~mrsdask.pipeline.runner` — runs a definition in a run folder and resumes it, keeping a
  record of each step (``pipeline-run.json``).

From the command line: ``mrsdask run NAME_OR_FILE INPUTS… -o RUN_FOLDER``; from Python:
:func:`run` (:mod:`~mrsdask.pipeline.api`)::

    import mrsdask.pipeline

    outcomes = mrsdask.pipeline.run("fringe-cubes", "obs_asn.json", "runs/obs1",
                                    overrides={"cube.output_type": "multi"})
"""

from mrsdask.pipeline.api import run
from mrsdask.pipeline.definition import Pipeline, StepSpec, load_pipeline, parse_pipeline, shipped_pipelines
from mrsdask.pipeline.runner import MANIFEST, StepOutcome, read_manifest, run_pipeline
from mrsdask.pipeline.steps import STEP_TYPES

__all__ = [
    "MANIFEST",
    "STEP_TYPES",
    "Pipeline",
    "StepOutcome",
    "StepSpec",
    "load_pipeline",
    "parse_pipeline",
    "read_manifest",
    "run",
    "run_pipeline",
    "shipped_pipelines",
]
