"""The official formats' writers in a second process, loaded while a command works.

An ``s3d`` cube's gwcs and an ``x1d`` spectrum are written with jwst, stdatamodels, gwcs and
asdf, whose first use in a process loads ~2-2.5 CPU-s of modules, schemas and asdf extensions
(asdf loads every installed package's extensions, ndcube's and matplotlib with them), all of it
holding the GIL. Loaded in a thread beside the job, it took the GIL from the job's own Python
(the extraction of a multi cube: ~1.7 GIL-bound CPU-s against its ~1.7 s of compute). A second
process loads it on the other core from the command's first moment, while the command imports
its own modules, and takes nothing from the job; the command then hands it the small part of
the output that needs those modules, and it answers:

* ``cube_asdf_bytes`` — the ASDF extension of a cube's s3d file (its gwcs),
  :func:`mrsdask.cube.gwcs_document.cube_asdf_bytes`;
* ``write_x1d`` — a computed spectrum's x1d file, :func:`mrsdask.io.x1d.write_x1d`;
* ``write_spectrum`` — the same from the spectrum's columns, its sky position found there
  (:func:`mrsdask.extract.plan.write_spectrum`: the command then needs neither xarray nor
  astropy's WCS).

:func:`started` runs a command's work with such a process (not when this process has loaded
the writers already, e.g. a second command in one session: then it is quicker here);
:func:`run` calls a writer in that process if there is one, else here, and here as well when
the process has failed (it is then dropped). Requests and answers are pickled over a pipe.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import sys
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

#: What the process can be asked to run: name → ``module:function``.
CALLS = {
    "cube_asdf_bytes": "mrsdask.cube.gwcs_document:cube_asdf_bytes",
    "write_x1d": "mrsdask.io.x1d:write_x1d",
    "write_spectrum": "mrsdask.extract.plan:write_spectrum",
}
#: What it loads when it starts, by the format the command will write; and a module whose
#: presence says that this process has loaded it already.
LOADERS = {
    "s3d": ("mrsdask.cube.gwcs_document:load_writer", "jwst.assign_wcs.pointing"),
    "x1d": ("mrsdask.io.x1d:load_writer", "stdatamodels.jwst.datamodels"),
}
#: The command's writer process, while :func:`started` runs.
_CURRENT: WriterProcess | None = None


class WriterProcessError(RuntimeError):
    """The writer process stopped or answered nothing readable (the work is then done here)."""


def _function(name: str):
    module, function = CALLS[name].split(":") if name in CALLS else name.split(":")
    return getattr(importlib.import_module(module), function)


class WriterProcess:
    """A forked process that loads a format's writers and runs :data:`CALLS` on request.

    Forked, it has this process's modules already (numpy, xarray, astropy…: ~1 CPU-s that a
    fresh interpreter would import again); it is forked only while this process runs a single
    thread (:func:`started` checks), as a fork with other threads running may copy a held lock.

    Parameters
    ----------
    fmt : str
        ``"s3d"`` or ``"x1d"`` (:data:`LOADERS`): what it loads first.
    """

    def __init__(self, fmt: str):
        import multiprocessing

        self.fmt = fmt
        self._lock = threading.Lock()  # one request at a time on the pipe, whichever thread asks
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=serve, args=(fmt, child, self._conn), name=f"mrsdask-{fmt}-writer",
                                     daemon=True)
        self._proc.start()
        child.close()

    def call(self, name: str, *args, **kwargs) -> Any:
        """Run ``CALLS[name](*args, **kwargs)`` in the process and return its result.

        Raises
        ------
        WriterProcessError
            The process has stopped (or stops) before answering.
        Exception
            What the function raised there.
        """
        try:
            with self._lock:
                self._conn.send((name, args, kwargs))
                ok, value = self._conn.recv()
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise WriterProcessError(f"the {self.fmt} writer process stopped ({type(exc).__name__})") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End the process's input and wait for it to end; kill it if it does not."""
        self._conn.close()
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


@contextlib.contextmanager
def started(fmt: str) -> Iterator[WriterProcess | None]:
    """Run the enclosed work with a writer process for ``fmt``; None (the writers then run
    here) when this process has loaded them already (they are quicker here then), runs other
    threads, or cannot fork."""
    global _CURRENT
    if (sys.modules.get(LOADERS[fmt][1]) is not None or _CURRENT is not None or threading.active_count() > 1
            or not hasattr(os, "fork")):
        yield None
        return
    try:
        process = WriterProcess(fmt)
    except OSError as exc:
        log.debug("no %s writer process: %s", fmt, exc)
        yield None
        return
    _CURRENT = process
    try:
        yield process
    finally:
        _CURRENT = None
        process.close()


def run(name: str, *args, **kwargs) -> Any:
    """``CALLS[name](*args, **kwargs)`` in the command's writer process if there is one, else here.

    A writer process that has stopped is dropped and the call runs here: the same function,
    the same result.
    """
    global _CURRENT
    process = _CURRENT
    if process is not None:
        try:
            return process.call(name, *args, **kwargs)
        except WriterProcessError as exc:
            log.warning("%s; writing in this process instead", exc)
            _CURRENT = None
    return _function(name)(*args, **kwargs)


#: Installed packages whose asdf plugins (extensions, schemas) no file the writers write uses:
#: loading them is most of the first ``asdf`` use in a process (ndcube's imports matplotlib,
#: stpipe's, for its step-configuration schemas, crds; ~0.8 CPU-s together). Writing a file only
#: uses the converters of the types in its tree and the schemas of its models.
UNUSED_ASDF_PLUGINS = ("ndcube", "specutils", "stpipe")


def lighter_asdf(skip: tuple[str, ...] = UNUSED_ASDF_PLUGINS) -> bool:
    """Make this process's asdf load fewer plugins and read its extension manifests quicker, for
    writing only; True if done, False where asdf's internals differ (nothing changed: slower).

    Before asdf lists its plugins: the entry points of the ``skip`` packages are left out, and
    the YAML manifests of the extensions are read by libyaml (pyyaml's ``CSafeLoader``: the same
    documents, ~4× quicker than the pure-Python ``yaml.safe_load`` asdf uses for them, ~0.3 CPU-s).
    Call it only in a process that writes (the writer process): a file that holds a skipped
    package's tags would read there without them.
    """
    import yaml
    from asdf import _entry_points
    from asdf.extension import _manifest

    listed = getattr(_entry_points, "entry_points", None)
    if listed is None or getattr(_manifest, "yaml", None) is not yaml:
        return False

    def entry_points(group):
        return [e for e in listed(group=group) if e.dist.name not in skip]

    _entry_points.entry_points = entry_points
    if getattr(yaml, "CSafeLoader", None) is not None:
        _manifest.yaml = _LibYaml(yaml)
    return True


class _LibYaml:
    """pyyaml as :mod:`asdf.extension._manifest` uses it, ``safe_load`` by libyaml."""

    def __init__(self, yaml):
        self._yaml = yaml

    def safe_load(self, stream):
        return self._yaml.load(stream, Loader=self._yaml.CSafeLoader)

    def __getattr__(self, name):
        return getattr(self._yaml, name)


def serve(fmt: str, conn, commands_end) -> None:
    """The process's work: load ``fmt``'s writers, answer requests on ``conn`` until the command
    closes its end (``commands_end``, which the fork copied, is closed here first: else it
    would never end), then end without the module teardown (~0.7 s with asdf and jwst loaded)."""
    commands_end.close()
    try:
        lighter_asdf()  # this process only writes: the plugins no written file uses are left out
        _function(LOADERS[fmt][0])()
    except Exception as exc:  # the call that needs it meets the failure again and reports it
        log.debug("loading the %s writers failed: %s", fmt, exc)
    while True:
        try:
            name, args, kwargs = conn.recv()
        except EOFError:
            break
        try:
            answer = (True, _function(name)(*args, **kwargs))
        except Exception as exc:
            answer = (False, exc)
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an exception pickle cannot carry
            conn.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({exc})")))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
