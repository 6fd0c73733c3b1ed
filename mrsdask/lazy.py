"""Lazy exports of a package: public names imported from their modules on first use.

A package's ``__init__`` that re-exports its heavy modules (Dask layers, numba kernels) would
make every import of a light sibling (its options, for the command-line flags) pay for them.
With :func:`lazy_exports` the package names what it exports and where each name lives::

    __getattr__, __dir__ = lazy_exports(__name__, {"subtract": "api", "BackgroundRequest": "request"})
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for ``exports`` (name → submodule).

    A name is imported from ``package.<submodule>`` when first read, then kept in the package.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(f"{package}.{exports[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
