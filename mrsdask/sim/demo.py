"""The embedded demo observation: simulated once into a folder, reused while unchanged.

``mrsdask cube`` and ``mrsdask run`` with no inputs build from a small simulated observation.
Simulating it takes about a minute on 2 cores; a second run finds it through a record
(:data:`RECORD`) of the configuration and of every file written (:func:`mrsdask.io.paths.stamp`: size and modification time),
and simulates again only if the configuration changed or a file was removed or rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from mrsdask.io import outputs, paths

#: Name of the record written beside the simulated files.
RECORD = "mrsdask-demo.json"


def cached_demo(folder: str, config: dict) -> str | None:
    """Association of a demo observation already in ``folder`` for ``config``, else None."""
    try:
        with open(os.path.join(folder, RECORD)) as fobj:
            record = json.load(fobj)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("config") != _normalised(config):
        return None
    files = record.get("files") or {}
    if not files or any(paths.stamp(path) != stamp for path, stamp in files.items()):
        return None
    association = record.get("association")
    return association if association in files else None


def demo_association(folder: str, config: dict, announce: Callable[[str], None] = print) -> str:
    """Path of the association of the demo observation ``config`` in ``folder``.

    Parameters
    ----------
    folder : str
        Local folder of the simulated files.
    config : dict
        :class:`~mrsdask.sim.config.SimulationConfig` mapping.
    announce : callable
        Called with one line saying whether the observation was simulated or reused.

    Returns
    -------
    str
        The association JSON, simulated now or found unchanged from an earlier call.
    """
    found = cached_demo(folder, config)
    if found is not None:
        announce(f"no input given: using the demo observation simulated before in {folder}")
        return found
    from mrsdask.sim import simulate

    announce(f"no input given: simulating a demo observation into {folder}")
    record_path = os.path.join(folder, RECORD)
    if os.path.exists(record_path):
        os.remove(record_path)  # no stale record while the files are rewritten
    result = simulate(config, folder, verbose=True)
    written = [*result.cal_files, *result.background_files, result.truth, result.association, result.scene]
    record = {"config": _normalised(config), "association": str(result.association),
              "files": {str(p): paths.stamp(str(p)) for p in written}}
    with outputs.staged_file(record_path) as tmp:
        with open(tmp, "w") as fobj:
            json.dump(record, fobj, indent=1)
    return str(result.association)


def _normalised(config: dict) -> dict:
    """The configuration as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(config))
