"""Turn what a user passes (files, globs, association JSON, a detector store) into members."""

from __future__ import annotations

from mrsdask.errors import InputError
from mrsdask.io import paths
from mrsdask.io.association import Member, read_association


def is_detector_store(path: str) -> bool:
    """True if ``path`` is a zarr detector store written by mrsdask."""
    text = str(path).rstrip("/")
    if not (text.endswith(".zarr") or paths.exists(text + "/zarr.json")):
        return False
    return paths.exists(text + "/zarr.json")


def resolve_inputs(inputs: list[str]) -> tuple[list[Member], list[str]]:
    """Split inputs into level-2 file members and detector stores.

    Parameters
    ----------
    inputs : list of str
        Paths or URLs of ``cal``/``rate`` FITS files, globs, association JSON files or
        detector stores (``*.zarr``).

    Returns
    -------
    members : list of Member
        FITS files with their association role, in the order given, without duplicates; a
        file given on its own has role ``None``: its header decides (``BKGDTARG``).
    stores : list of str
        Detector stores.
    """
    if not inputs:
        raise InputError("no input given: pass cal files, a glob, an association JSON or a detector store")
    members: list[Member] = []
    stores: list[str] = []
    seen: set[str] = set()
    for item in paths.expand([str(i) for i in inputs]):
        if is_detector_store(item):
            stores.append(item.rstrip("/"))
            continue
        if item.lower().endswith(".json"):
            _, asn_members = read_association(item)
            new = asn_members
        elif item.lower().endswith((".fits", ".fits.gz", ".fit")):
            new = [Member(item, None)]
        else:
            if not paths.exists(item):
                raise InputError(f"{item}: no such file or store")
            raise InputError(
                f"{item}: unrecognised input; expected *.fits (cal/rate), an association *.json "
                "or a detector store *.zarr"
            )
        for m in new:
            if m.path not in seen:
                seen.add(m.path)
                members.append(m)
    return members, stores
