"""The simulator's record of the files it wrote in a folder (``mrsdask-simulate.json``).

``mrsdask simulate -o DIR`` replaces files only if it wrote them itself: each file it writes is
listed in ``DIR/mrsdask-simulate.json`` with its size and modification time
(:func:`mrsdask.io.paths.stamp`). A file of a name the simulation is about to write is
replaced only if the record lists it with the same stamp, i.e. it is the simulator's own
earlier output, untouched since; anything else (a user's file, a file edited or replaced
since) is refused, with the list of clashing files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mrsdask.io import outputs, paths

#: The record's file name inside the output folder.
RECORD = "mrsdask-simulate.json"
RECORD_FORMAT = 1


def read_record(folder: str | Path) -> dict[str, str] | None:
    """Files (name → stamp) the simulator wrote in ``folder``; None if the record is not one of ours."""
    path = Path(folder) / RECORD
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or not isinstance(data.get("files"), dict):
        return None
    return {str(k): str(v) for k, v in data["files"].items()}


def check_clashes(folder: str | Path, names: list[str]) -> dict[str, str]:
    """Refuse to write ``names`` into ``folder`` over files the simulator did not write; the record.

    Raises
    ------
    mrsdask.errors.OutputError
        Listing the clashing files.
    """
    folder = Path(folder)
    record = read_record(folder)
    own = record or {}

    def is_own(path: str) -> bool:
        name = os.path.basename(path)
        if name == RECORD:
            return record is not None
        return name in own and paths.stamp(path) == own[name]

    outputs.check_output_files([str(folder / n) for n in [*names, RECORD]], own=is_own,
                               fix="mrsdask simulate replaces only files it wrote itself (listed in "
                                   f"{RECORD}); move them away")
    return dict(own)


def remember(folder: str | Path, record: dict[str, str], path: str | Path) -> None:
    """Add a file just written to the record (the record is rewritten whole, under a temporary name)."""
    folder = Path(folder)
    record[Path(path).name] = paths.stamp(str(path))
    with outputs.staged_file(str(folder / RECORD)) as tmp:
        Path(tmp).write_text(json.dumps({"format": RECORD_FORMAT, "written_by": "mrsdask simulate",
                                         "files": record}, indent=1, sort_keys=True) + "\n")
