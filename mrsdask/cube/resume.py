"""Resuming a cube build: what an earlier build left in the store, and what may be kept.

Before any work, :func:`check_output` refuses to replace, without ``overwrite``, a complete cube
built by another request or from other inputs. Per cube, :func:`prepare_cube` creates the
group, resumes an unfinished one (the slabs already written are kept) or repairs a complete one
whose store lost chunks (only the damaged slabs are recomputed).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from mrsdask.cube import store as cube_store
from mrsdask.cube.headers import cube_identity, empty_cube_dataset, identity_difference
from mrsdask.cube.plan import CubePlan, CubeRequest
from mrsdask.cube.spec import CubeSpec
from mrsdask.errors import ParameterError
from mrsdask.io.zarr_store import COMPLETE_ATTR

log = logging.getLogger(__name__)


def check_output(root: str, plans: list[CubePlan], rows: list[dict], request: CubeRequest,
                 sources: list, overwrite: bool = False) -> None:
    """Refuse to write cubes where they would replace something without ``overwrite``.

    Cheap (metadata only) and run before any work: the store must be a cube store (or new),
    and a complete cube of the same name must have been built by the same request from the
    same inputs; an unfinished one is resumed or, if it differs, replaced.

    Raises
    ------
    ParameterError
        Naming the store or cube, what differs, and the two ways out.
    """
    kind = cube_store.store_kind(root)
    if kind == "detector":
        raise ParameterError(f"{root}: is a detector store (from 'mrsdask ingest', background or fringe), "
                             "not a cube store; give 'mrsdask cube -o' a new path or a cube store")
    if kind == "other":
        raise ParameterError(f"{root}: a zarr store that mrsdask did not write as a cube store; "
                             "give 'mrsdask cube -o' a new path or a cube store")
    if overwrite:
        return
    for plan in plans:
        if not cube_store.cube_exists(root, plan.name):
            continue
        old = dict(cube_store.open_group(cube_store.group_path(root, plan.name)).attrs)
        if not old.get(COMPLETE_ATTR):
            continue
        what = identity_difference(old, cube_identity(plan, rows, request, sources))
        if what:
            raise ParameterError(
                f"{cube_store.group_path(root, plan.name)}: a complete cube built differently is there "
                f"({what}); pass --overwrite to replace it, or write to another store (-o)")


def prepare_cube(root: str, spec: CubeSpec, attrs: dict, overwrite: bool) -> tuple[CubeSpec, np.ndarray | None]:
    """Create, resume or repair the group of one cube; the spec and the slabs already done.

    Returns ``done=None`` for a cube that is complete and whole. A complete cube whose store
    lost chunks is repaired: its damaged slabs are marked not done (and recomputed), the rest kept.
    """
    name = spec.name
    if overwrite or not cube_store.cube_exists(root, name):
        return create_cube(root, spec, attrs)
    group = cube_store.open_group(cube_store.group_path(root, name))
    old = dict(group.attrs)
    complete = bool(old.get(COMPLETE_ATTR))
    same_grid = (identity_difference(old, attrs) is None and old.get("wcs_header") == attrs["wcs_header"]
                 and "sci" in group and tuple(group["sci"].shape) == (spec.wave.nz, spec.grid.ny, spec.grid.nx))
    if complete and not same_grid:
        raise ParameterError(
            f"{cube_store.group_path(root, name)}: a complete cube with another grid is there (other cube "
            "parameters, e.g. --cubepar); pass --overwrite to replace it, or write to another store (-o)")
    if not same_grid:
        return create_cube(root, spec, attrs)  # an unfinished cube of another build: nothing finished is lost
    stored = tuple(int(c) for c in group["sci"].chunks)
    if stored != spec.chunks:
        if not complete:
            return create_cube(root, spec, attrs)  # unfinished, in slabs or chunks of another size
        whole = stored[1:] == (spec.grid.ny, spec.grid.nx)  # a finished cube keeps its slabs and chunks
        spec = dataclasses.replace(spec, slab_planes=stored[0], spatial_chunks=None if whole else max(stored[1:]))
    if complete:
        absent = cube_store.missing_chunks(root, name)
        if not absent:
            log.info("cube %s is already complete in %s", name, root)
            return spec, None
        if any(key not in ("sci", "err", "dq", "wmap") for key in absent):
            log.warning("cube %s: lost %s; rebuilding it", name, cube_store.describe_missing(root, name, absent))
            return create_cube(root, spec, attrs)
        log.warning("cube %s: chunks missing in %s (%s); recomputing those slabs",
                    name, root, cube_store.describe_missing(root, name, absent))
        cube_store.set_complete(root, name, False)
    on_disk = cube_store.slabs_on_disk(root, name, spec.n_slabs)
    done = cube_store.slabs_done(root, name)
    lost = np.nonzero(done & ~on_disk)[0]
    if lost.size:
        cube_store.mark_slabs(root, name, lost, False)
    return spec, done & on_disk


def create_cube(root: str, spec: CubeSpec, attrs: dict) -> tuple[CubeSpec, np.ndarray]:
    """Write the metadata of an empty cube group (replacing any); no slab is done yet."""
    cube_store.create_cube_group(root, spec.name, empty_cube_dataset(spec, attrs), spec.chunks)
    return spec, np.zeros(spec.n_slabs, dtype=bool)


def restore_tear_counts(root: str, spec: CubeSpec, ngood: np.ndarray, recomputed: set[int]) -> None:
    """Put back the counts of tear planes blanked by an earlier finish in slabs not recomputed now."""
    attrs = cube_store.open_group(cube_store.group_path(root, spec.name)).attrs
    for z, count in zip(attrs.get("spectral_tear_planes", []), attrs.get("spectral_tear_counts", [])):
        if int(z) < ngood.size and int(z) // spec.slab_planes not in recomputed:
            ngood[int(z)] = int(count)


def remove_group(root: str, name: str) -> None:
    """Delete a child group of the store (e.g. the scratch pixel tables), if there."""
    group = cube_store.open_group(root, mode="a")
    if name in group:
        del group[name]

