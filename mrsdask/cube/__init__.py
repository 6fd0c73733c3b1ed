"""Cube building: parameters, geometry and weighting kernels for MRS spectral cubes.

The entry point is :func:`mrsdask.cube.build` (defined in :mod:`mrsdask.cube.api`): inputs or a
detector Dataset → cubes written to a zarr store, returned opened lazily; its options are
:class:`~mrsdask.cube.plan.CubeRequest`::

    import mrsdask.cube

    cubes = mrsdask.cube.build("obs_asn.json", "cubes.zarr", output_type="multi")

Where things are: the request and the plan of which cubes (:mod:`~mrsdask.cube.plan`), one
cube's grid and slabs (:mod:`~mrsdask.cube.spec`), the builder that runs the tasks
(:mod:`~mrsdask.cube.builder`), slab maths (:mod:`~mrsdask.cube.slabs`), the numba weighting
kernels (:mod:`~mrsdask.cube.kernels`), attributes and headers (:mod:`~mrsdask.cube.headers`),
the reader (:mod:`~mrsdask.cube.reader`). Importing this package loads none of them: ``build``
is imported on first use, so reading a cube does not pull in the numba kernels.
"""

from __future__ import annotations

__all__ = ["build"]


def __getattr__(name: str):
    if name == "build":
        from mrsdask.cube.api import build

        return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
