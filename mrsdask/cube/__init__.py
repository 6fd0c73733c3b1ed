"""Cube building: parameters, geometry and weighting kernels for MRS spectral cubes.

The entry point is :func:`mrsdask.cube.build` (:func:`mrsdask.cube.api.build`): inputs or a
detector Dataset → cubes written to a zarr store, returned opened lazily; its options are
:class:`~mrsdask.cube.plan.CubeRequest`::

    import mrsdask.cube

    cubes = mrsdask.cube.build("obs_asn.json", "cubes.zarr", output_type="multi")

``mrsdask.cube.build`` is also the name of the module that builds the cubes
(``from mrsdask.cube.build import build_cubes`` keeps working): the module is callable, and
calling it calls :func:`mrsdask.cube.api.build`. Nothing heavy is imported with this package;
the builder and its numba kernels load on first use.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module

__all__ = ["build"]


class _BuildModule(types.ModuleType):
    """The module ``mrsdask.cube.build``, callable as the entry point :func:`mrsdask.cube.api.build`."""

    def __call__(self, *args, **kwargs):
        from mrsdask.cube.api import build

        return build(*args, **kwargs)


class _Package(types.ModuleType):
    """This package: the ``build`` submodule, when the import system binds it here, becomes callable."""

    def __setattr__(self, name, value):
        if name == "build" and isinstance(value, types.ModuleType) and not isinstance(value, _BuildModule):
            value.__class__ = _BuildModule
        super().__setattr__(name, value)


def __getattr__(name: str):
    if name == "build":  # first use: import the module (bound here, and made callable, by the import system)
        import_module(f"{__name__}.build")
        return sys.modules[__name__].__dict__["build"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
