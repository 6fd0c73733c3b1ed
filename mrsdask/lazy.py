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


def when_imported(module: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(module)`` once ``module`` is imported: now if it is, else as soon as its
    first import has run (before that import returns).

    For what a package adds to another only when that one is used (mrsdask's ``.mrs`` xarray
    accessor): a command that never imports it does not pay for it.
    """
    if module in sys.modules:
        callback(sys.modules[module])
        return
    sys.meta_path.insert(0, _AfterImport(module, callback))


class _AfterImport:
    """A meta-path finder that lets the other finders find one module, then runs a callback after
    the module's code (its loader is the module's own again from the start of that code)."""

    def __init__(self, name: str, callback: Callable[[Any], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        from importlib.util import find_spec

        sys.meta_path.remove(self)
        spec = find_spec(fullname)  # by the finders after this one
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenCall(spec.loader, self.callback)
        return spec


class _ThenCall:
    """A module's loader that runs a callback after the module's code."""

    def __init__(self, loader, callback: Callable[[Any], None]):
        self._loader, self._callback = loader, callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)
