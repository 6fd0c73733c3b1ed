"""Run a checked pipeline in a run folder, resuming what an earlier run already finished.

The run folder holds each step's output and ``pipeline-run.json``, the run's record: for every
step its parameters, a fingerprint, its status, output, products and time. A step's
fingerprint covers its parameters, the files its parameters name and the fingerprint of what
it reads (the inputs' paths, sizes and modification times for the first step). Running the
same pipeline again skips each step whose fingerprint is unchanged and whose output is still
complete; a cube step left unfinished resumes its slabs; anything else runs again, and so does
everything that reads from it.

A step with ``skip: true``, or whose ``when`` conditions do not hold for the inputs
(:func:`input_facts`), is recorded as ``skipped`` with the reason and writes nothing: the next
step reads what it would have read, and the export steps after a skipped cube step are skipped
too (no cubes), as the official ``Spec3Pipeline`` skips ``extract_1d`` when no cube was built.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from mrsdask.errors import InputError, ParameterError
from mrsdask.io import paths
from mrsdask.pipeline.definition import CONDITIONS, Pipeline, StepSpec
from mrsdask.pipeline.steps import CUBE, DETECTOR, EXPORT, StepContext, StepResult

log = logging.getLogger(__name__)

#: The run record's file name inside the run folder.
MANIFEST = "pipeline-run.json"
MANIFEST_FORMAT = 1


@dataclass
class StepOutcome:
    """What happened to one step in this run: ``ran``, ``resumed``, ``up to date`` or ``skipped``."""

    step: StepSpec
    state: str
    result: StepResult
    seconds: float


# --------------------------------------------------------------------------- fingerprints
def _file_stamp(path: str) -> dict[str, Any]:
    return {"path": str(path), "stamp": paths.stamp(path)}


def input_stamps(inputs: list[str]) -> tuple[list[dict[str, Any]], str]:
    """Stamps (path, role, ``size:modified``) of the inputs, and their product name.

    The product name (the start of exported file names) is the association's when the input is
    one association, else the first science file's name without its suffix.

    Raises
    ------
    InputError
        If an input cannot be found or is not a recognised kind.
    """
    from mrsdask.io.inputs import inputs_product_name, resolve_inputs

    members, stores = resolve_inputs(inputs)
    stamps = []
    for member in members:
        stamp = _file_stamp(member.path)
        if not stamp["stamp"]:  # one stat a file: empty when it cannot be reached
            raise InputError(f"{member.path}: no such file (or it cannot be read); check the path")
        stamps.append({**stamp, "role": member.exptype or "from header"})
    for store in stores:
        stamps.append({**_file_stamp(store.rstrip("/") + "/zarr.json"), "role": "detector store"})
    if members:  # an association's product name, as the official spec3; else the first science file's
        product = inputs_product_name(inputs, members)
    else:
        product = os.path.basename(stores[0].rstrip("/")).removesuffix(".zarr")
    return stamps, product


def _primary_header(path: str):
    from astropy.io import fits

    with paths.open_file(path) as fobj:
        return fits.getheader(fobj, 0)


def input_facts(inputs: list[str]) -> dict[str, bool]:
    """What the ``when`` conditions of :data:`~mrsdask.pipeline.definition.CONDITIONS` ask of the inputs.

    ``backgrounds_linked``: an association member (cal or x1d) of exptype ``background``, a
    file given on its own with ``BKGDTARG = T``, or a detector store holding background
    exposures (the official ``Spec3Pipeline`` runs ``master_background`` when its association
    has background members). ``moving_target``: a science exposure with ``TARGTYPE = MOVING``
    (it runs ``assign_mtwcs`` when the first exposure is one). Only primary headers are read.
    """
    from mrsdask.io.inputs import resolve_inputs

    members, stores = resolve_inputs(inputs)
    backgrounds, moving = False, False
    for member in members:
        role = member.exptype
        header = None
        if role is None or (role == "science" and not moving):
            header = _primary_header(member.path)
        if role is None:
            role = "background" if header.get("BKGDTARG") is True else "science"
        backgrounds = backgrounds or role == "background"
        if role == "science" and header is not None:
            moving = moving or str(header.get("TARGTYPE", "")).strip().upper() == "MOVING"
    for store in stores:
        from mrsdask.io.detector_store import open_detector_store

        ds = open_detector_store(store)
        exptype = [str(v) for v in ds["exptype"].values]
        targets = [str(v).upper() for v in ds["target_type"].values]
        backgrounds = backgrounds or "background" in exptype
        moving = moving or any(e == "science" and t == "MOVING" for e, t in zip(exptype, targets))
    return {"backgrounds_linked": backgrounds, "moving_target": moving}


def skip_reason(step: StepSpec, facts: dict[str, bool]) -> str | None:
    """Why a step does not run (``skip``, or none of its ``when`` conditions holds), or None if it runs."""
    if step.skip:
        return f"skip: true (--set {step.id}.skip=false runs it)"
    if not step.when:
        return None
    held = {"user_background": step.params.get("user_background") is not None, **facts}
    if any(held[name] for name in step.when):
        return None
    return "when: none of its conditions holds: " + "; ".join(f"not {name} ({CONDITIONS[name]})" for name in step.when)


def _referenced_files(step: StepSpec) -> list[dict[str, Any]]:
    """Stamps of the input files a step's parameters name (flats, references, user spectra)."""
    found = []
    for param in step.type.params:
        value = step.params.get(param.name)
        if not param.input_file or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            found.append(_file_stamp(str(item)))
    return found


def step_fingerprint(step: StepSpec, upstream: str) -> str:
    """Hash of what decides a step's output: its type, parameters, named files and its input."""
    text = json.dumps({"step": step.name, "params": step.params, "files": _referenced_files(step),
                       "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- the run folder
def _join(folder: str, path: str) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return folder.rstrip("/") + "/" + path


def read_manifest(run_folder: str) -> dict[str, Any] | None:
    """The run record of a run folder, or None if it has none."""
    path = _join(run_folder, MANIFEST)
    if not paths.exists(path):
        return None
    try:
        with paths.open_file(path, "rt") as fobj:
            data = json.load(fobj)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable run record ({exc}); remove it or choose a new run folder") from exc
    if data.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{path}: run record of another format; choose a new run folder")
    return data


def _write_manifest(run_folder: str, data: dict[str, Any]) -> None:
    path = _join(run_folder, MANIFEST)
    from mrsdask.io.outputs import staged_file

    text = json.dumps(data, indent=2, default=str)
    with staged_file(path) as tmp, open(tmp, "w") as fobj:
        fobj.write(text)


def update_manifest(run_folder: str, **fields: Any) -> dict[str, Any]:
    """Set fields of a run folder's record (creating a minimal one); the record as written."""
    data = read_manifest(run_folder) or {"format": MANIFEST_FORMAT, "steps": []}
    data.update(fields)
    _write_manifest(run_folder, data)
    return data


def prepare_run_folder(run_folder: str, pipeline: str | None = None, overwrite: bool = False,
                       announce: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Create the run folder, or check that an existing one is a run folder; its record if any.

    A run folder belongs to one pipeline: one holding a run of another pipeline is refused,
    or with ``overwrite`` emptied of that run's outputs first (:func:`remove_run_outputs`).

    Parameters
    ----------
    run_folder : str
        Path or URL.
    pipeline : str, optional
        Name of the pipeline about to run in it (None: any).
    overwrite : bool
        Remove another pipeline's run instead of refusing.
    announce : callable
        Told what was removed.

    Raises
    ------
    InputError
        If the path is a file, or a non-empty folder without a run record (mrsdask does not
        write into folders it did not create).
    ParameterError
        If it holds a run of another pipeline and ``overwrite`` is false.
    """
    from mrsdask.io import outputs

    text = str(run_folder).rstrip("/")
    fs = paths.filesystem(text)
    body = paths.fs_path(text)
    if fs.exists(body) and not fs.isdir(body):
        raise InputError(f"{run_folder}: a file is there; give a folder for the run")
    outputs.check_output_folder(text, "run folder")
    record = read_manifest(text)
    if record is None and fs.exists(body) and fs.ls(body, detail=False):
        raise InputError(f"{run_folder}: an existing folder that is not a pipeline run folder (no {MANIFEST}); "
                         "choose a new or empty folder")
    other = (record or {}).get("pipeline")
    if pipeline is not None and other and other != pipeline:
        if not overwrite:
            raise ParameterError(f"{run_folder}: holds a run of pipeline {other!r}, not {pipeline!r}; choose "
                                 f"another run folder, or pass --overwrite to remove the {other!r} run's outputs")
        removed = remove_run_outputs(text, record)
        announce(f"removed the outputs of the {other!r} run in {run_folder}: {', '.join(removed) or 'none left'}")
        record = {k: v for k, v in record.items() if k in ("format", "demo")}  # the demo inputs are kept
        record.update(pipeline=pipeline, steps=[])
        _write_manifest(text, record)
    if not paths.is_remote(text):
        outputs.make_folder(text)
    return record


def remove_run_outputs(run_folder: str, record: dict[str, Any]) -> list[str]:
    """Remove what the steps of a recorded run wrote: their stores, their files, and their folders if empty.

    Only outputs recorded in ``record`` are removed; an output outside the run folder is
    removed only if it is a file a step listed as its product, or a store a step wrote.

    Returns
    -------
    list of str
        What was removed.
    """
    removed = []
    for step in record.get("steps", []):
        output = str(step.get("output", ""))
        products = [str(p) for p in step.get("products", [])]
        if not output:
            continue
        fs = paths.filesystem(output)
        body = paths.fs_path(output)
        if fs.exists(body.rstrip("/") + "/zarr.json"):  # a store the step wrote (detector or cubes)
            fs.rm(body, recursive=True)
            removed.append(output)
            continue
        for product in products:  # files (s3d, x1d)
            pfs = paths.filesystem(product)
            if pfs.isfile(paths.fs_path(product)):
                pfs.rm(paths.fs_path(product))
                removed.append(product)
        with contextlib.suppress(OSError):
            if fs.isdir(body) and not fs.ls(body, detail=False):
                fs.rmdir(body)
    return removed


def _output_complete(step: StepSpec, output: str, record: dict[str, Any]) -> bool:
    """Whether a step's recorded output is still all there and finished."""
    kind = step.type.kind
    try:
        if kind == DETECTOR:
            from mrsdask.io.detector_store import open_detector_store

            open_detector_store(output)  # raises unless complete and valid
            return True
        if kind == CUBE:
            from mrsdask.cube.builder import open_cube

            for name in record.get("products", []):
                open_cube(output, name)  # raises unless complete and whole (no chunk missing)
            return True
        return all(os.path.isfile(path) for path in record.get("products", []))
    except Exception:  # anything unreadable is not complete: run the step again
        return False


def _remove_stale_products(kind: str, output: str, before: list[str], now: list[str], announce) -> None:
    """Remove cubes or s3d files an earlier run of a step made and this run did not.

    (Other settings, e.g. ``output_type`` changed from band to multi, would otherwise leave the
    old cubes in the store beside the new ones.)
    """
    stale = [p for p in before if p not in now]
    if not stale or kind == DETECTOR:
        return
    if kind == CUBE:
        from mrsdask.cube import store as cube_store

        group = cube_store.open_group(output, mode="a")
        for name in stale:
            if name in group:
                del group[name]
    else:
        for path in stale:
            if os.path.isfile(path):
                os.remove(path)
    announce(f"  removed what an earlier run of this step made and this one did not: {', '.join(stale)}")


# --------------------------------------------------------------------------- running
def run_pipeline(
    pipeline: Pipeline,
    inputs: list[str],
    run_folder: str,
    *,
    overwrite: bool = False,
    progress: bool = True,
    announce: Callable[[str], None] = print,
    extra: dict[str, Any] | None = None,
) -> list[StepOutcome]:
    """Run the steps of a pipeline on its inputs, in the run folder.

    Parameters
    ----------
    pipeline : Pipeline
        A checked definition (:func:`~mrsdask.pipeline.definition.load_pipeline`).
    inputs : list of str
        cal files, globs, association JSON files or one detector store.
    run_folder : str
        Folder (path or URL) for the step outputs and the run record; created if needed. An
        existing one must be a run folder (it has ``pipeline-run.json``).
    overwrite : bool
        Run every step again, even those that are up to date.
    progress : bool
        Progress bars of the steps.
    announce : callable
        Prints one line per event.
    extra : dict, optional
        Kept in the run record (e.g. how the demo inputs were simulated).

    Returns
    -------
    list of StepOutcome

    Raises
    ------
    MrsdaskError
        From a step; the run record marks that step failed and nothing after it runs.
    """
    if paths.is_remote(run_folder):
        local_only = [s.id for s in pipeline.steps if s.type.kind == EXPORT and "://" not in s.output
                      and not os.path.isabs(s.output)]
        if local_only:
            raise ParameterError(f"steps {', '.join(local_only)} write local FITS files, and the run folder "
                                 f"{run_folder} is remote; give them an absolute local folder, e.g. "
                                 f"--set {local_only[0]}.folder=/data/out")
    record = prepare_run_folder(run_folder, pipeline.name, overwrite, announce)
    previous = {s["id"]: s for s in (record or {}).get("steps", [])}
    stamps, product = input_stamps(inputs)
    from mrsdask import __version__

    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT, "pipeline": pipeline.name, "definition": pipeline.source,
        "mrsdask_version": __version__, "inputs": stamps, "started": _now(), **(extra or {}),
    }
    # Records of steps not reached yet stay as they were (a run that stops early keeps them).
    entries = {s.id: previous[s.id] for s in pipeline.steps if s.id in previous}

    def save() -> None:
        manifest["steps"] = [entries[s.id] for s in pipeline.steps if s.id in entries]
        _write_manifest(run_folder, manifest)

    detector_fp = hashlib.sha256(json.dumps(stamps, sort_keys=True).encode()).hexdigest()
    detector_inputs = list(inputs)
    cube_fp, cube_store, cubes = "", None, []
    cube_skipped: str | None = None
    facts = input_facts(inputs) if any(s.when for s in pipeline.steps) else {}
    outcomes = []
    total = len(pipeline.steps)
    for index, step in enumerate(pipeline.steps, 1):
        kind = step.type.kind
        output = _join(run_folder, step.output)
        fingerprint = step_fingerprint(step, cube_fp if kind == EXPORT else detector_fp)
        old = previous.get(step.id)
        same = old is not None and old.get("fingerprint") == fingerprint
        label = f"step {index}/{total} {step.id}"
        entry = {"id": step.id, "step": step.name, "params": step.params, "fingerprint": fingerprint,
                 "output": output}
        reason = skip_reason(step, facts)
        if reason is None and kind == EXPORT and cube_skipped:
            reason = cube_skipped
        if reason is not None:
            announce(f"{label}: skipped ({reason})")
            if old is not None and old.get("output") == output and old.get("products"):
                _remove_stale_products(kind, output, old["products"], [], announce)
            entry.update(status="skipped", reason=reason, passthrough=True, products=[], finished=_now())
            entries[step.id] = entry
            save()
            if kind == CUBE:
                cube_skipped = f"no cubes: the cube step {step.id} was skipped"
                cube_fp, cube_store, cubes = fingerprint, None, []
            outcomes.append(StepOutcome(step, "skipped", StepResult(output, reason, [], passthrough=True), 0.0))
            continue
        if kind == CUBE:
            cube_skipped = None
        if same and not overwrite and old.get("status") == "complete" and (
                old.get("passthrough") or _output_complete(step, output, old)):  # a skipped step wrote nothing
            result = StepResult(output, old.get("summary", ""), list(old.get("products", [])),
                                passthrough=bool(old.get("passthrough")))
            announce(f"{label}: up to date (finished {old.get('finished', '?')}); {output}")
            entry.update({k: old[k] for k in ("status", "summary", "products", "seconds", "finished", "passthrough")
                          if k in old})
            outcomes.append(StepOutcome(step, "up to date", result, 0.0))
        else:
            resume = kind == CUBE and same and not overwrite
            announce(f"{label}: {'resuming' if resume else 'running'} {step.name} -> {output}")
            entry["status"] = "running"
            entries[step.id] = entry
            save()
            ctx = StepContext(inputs=[] if kind == EXPORT else detector_inputs, output=output,
                              run_folder=run_folder, resume=resume, cube_store=cube_store, cubes=cubes,
                              product=product, progress=progress, announce=announce)
            t0 = time.perf_counter()
            try:
                result = step.type.run(ctx, step.params)
            except BaseException as exc:
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}", finished=_now())
                save()
                raise
            seconds = time.perf_counter() - t0
            if old is not None and old.get("output") == output:
                _remove_stale_products(kind, output, old.get("products", []), result.products, announce)
            entry.update(status="complete", summary=result.summary, products=result.products,
                         seconds=round(seconds, 2), finished=_now())
            if result.passthrough:
                entry["passthrough"] = True
            for line in result.summary.splitlines():
                announce(f"  {line}")
            announce(f"{label}: done in {seconds:.1f} s")
            release_step_memory()
            outcomes.append(StepOutcome(step, "resumed" if resume else "ran", result, seconds))
        entries[step.id] = entry
        save()
        if kind == DETECTOR:
            detector_fp = fingerprint
            detector_inputs = detector_inputs if result.passthrough else [output]  # a skipped step wrote nothing
        elif kind == CUBE:
            cube_fp, cube_store, cubes = fingerprint, output, list(result.products)
    manifest["finished"] = _now()
    save()
    return outcomes


def release_step_memory() -> None:
    """After a step: the workers (or this process, for in-process runs) drop what only that step needed.

    The next step starts from the workers' own footprint rather than from the peak of this
    one (:mod:`mrsdask.release`: garbage and glibc's free heap; on workers also the per-process
    caches, whose unmanaged memory would count towards Dask's pause threshold). In process
    there is no such threshold, and the caches (bounded: a few detector frames and slice maps)
    hold the geometry that the next step of the same exposures needs again, so they are kept.
    Logged, not announced.
    """
    from mrsdask.cluster import current_client
    from mrsdask.release import describe_release, release_process_memory, release_worker_memory

    client = current_client()
    if client is None:
        done = release_process_memory(caches=False)
        log.info("memory released: %.0f -> %.0f MB", done["rss_before"] / 1e6,
                                         done["rss_after"] / 1e6)
        return
    results = release_worker_memory(client)
    if results:
        log.info(describe_release(results))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
