"""Load what a later part of a command needs in a background thread, while the command works.

The official output formats cost a lot to write the first time in a process: the jwst data
models' schemas, asdf's extensions, the gwcs converters (~2-2.5 CPU-s each for an ``s3d`` cube
and an ``x1d`` spectrum, more than writing the data). A command that will write them starts
their loading first (:func:`in_background`), so that it overlaps the computation: on 2 cores
one core is mostly free during a small job. The writers do not wait for it: a module being
imported in the other thread is waited for by Python's import lock, and anything not loaded
yet is loaded by the writer itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def in_background(load: Callable[[], None], name: str) -> threading.Thread:
    """Run ``load`` in a daemon thread named ``name`` and return the thread.

    A failure is only logged (at debug level): the writer meets it again and reports it.
    """

    def run() -> None:
        try:
            load()
        except Exception as exc:
            log.debug("%s failed: %s", name, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
