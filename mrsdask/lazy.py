"""Lazy exports of a package: public names imported from their modules on first use.

A package's ``__init__`` that re-exports its heavy modules (Dask layers, numba kernels) would
make every import of a light sibling (its options, for the command-line flags) pay for them.
With :func:`lazy_exports` the package names what it exports, by the submodule each name lives in::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"api": ("subtract",), "request": ("BackgroundRequest",)})
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The module ``__getattr__``, ``__dir__`` and ``__all__`` of ``package`` for ``exports``
    (submodule → the public names it defines).

    A name is imported from ``package.<submodule>`` when first read, then kept in the package.
    """
    exports = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(f"{package}.{exports[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, sorted(exports)
