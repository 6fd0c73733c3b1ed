"""Turn what a user passes (files, globs, association JSON, a detector store) into members."""

from __future__ import annotations

import os

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
        FITS files with their association role, in the order given; a file given on its own
        has role ``None``: its header decides (``BKGDTARG``).
    stores : list of str
        Detector stores.

    Raises
    ------
    InputError
        If nothing is given, a glob matches nothing, an input is not usable, or the same file
        (or store) is given twice, e.g. by name and by a glob, which would count its pixels twice.
    """
    if not inputs:
        raise InputError("no input given: pass cal files, a glob, an association JSON or a detector store")
    members: list[Member] = []
    stores: list[str] = []
    seen: dict[str, str] = {}  # file -> the input that gave it

    def once(path: str, given: str, member_of: str | None = None) -> bool:
        key = _identity(path)
        if member_of is not None and seen.get(key) == member_of:
            return False  # an association listing a member in several products
        if key in seen:
            how = "twice" if seen[key] == given else f"by {seen[key]!r} and by {given!r}"
            raise InputError(f"{path}: given {how}; give each input once (its pixels would count twice)")
        seen[key] = given
        return True

    for given, item in _expand_each(inputs):
        if is_detector_store(item):
            once(item.rstrip("/"), given)
            stores.append(item.rstrip("/"))
            continue
        if item.lower().endswith(".json"):
            once(item, given)
            _, asn_members = read_association(item)
            members.extend(m for m in asn_members if once(m.path, item, member_of=item))
            continue
        if item.lower().endswith((".fits", ".fits.gz", ".fit")):
            new = [Member(item, None)]
        else:
            if not paths.exists(item):
                raise InputError(f"{item}: no such file or store")
            raise InputError(
                f"{item}: unrecognised input; expected *.fits (cal/rate), an association *.json "
                "or a detector store *.zarr"
            )
        members.extend(m for m in new if once(m.path, given))
    return members, stores


def _expand_each(inputs: list[str]) -> list[tuple[str, str]]:
    """(what the user gave, file) for every file the inputs name, globs expanded."""
    return [(str(given), item) for given in inputs for item in paths.expand([str(given)])]


def _identity(path: str) -> str:
    """One name per file: the real absolute path of a local file, the URL of a remote one."""
    text = str(path).rstrip("/")
    return text if paths.is_remote(text) else os.path.realpath(os.path.expanduser(text))


def product_name(filenames) -> str:
    """Product name of a set of exposures: the first file name without its suffix (``_cal``…)."""
    first = os.path.basename(str(next(iter(filenames), "mrsdask")))
    return first.rsplit("_", 1)[0] if "_" in first else "mrsdask"


def inputs_product_name(inputs, members: list[Member]) -> str:
    """The name that outputs of these inputs start with, as the official pipeline names them.

    The association's product name when the inputs are one association file (what
    ``Spec3Pipeline`` names its s3d/x1d files after); otherwise the first science file's name
    without its suffix (:func:`product_name`).
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if len(items) == 1 and str(items[0]).lower().endswith(".json") and members and members[0].product:
        return members[0].product  # read by resolve_inputs: the association is not read again
    return product_name(m.path for m in members if m.exptype != "background")
