"""Official association JSON (``asn_type`` spec2/spec3): science and background members."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass

from mrsdask.errors import InputError
from mrsdask.io import paths

KNOWN_EXPTYPES = ("science", "background", "selfcal", "imprint", "sourceimage", "target_acquisition")


@dataclass(frozen=True)
class Member:
    """One input file: its path (resolved against an association's folder) and its role.

    ``exptype`` is the association's role (``science`` or ``background``), or ``None`` for a
    file given on its own: its role is then read from its header (``BKGDTARG``), as the
    official association rules decide it. ``product`` is the name of the association's product
    (what the official spec3 names its outputs after), ``None`` for a file given on its own.
    """

    path: str
    exptype: str | None
    product: str | None = None


def read_association(path: str) -> tuple[str, list[Member]]:
    """Read an association file; return the product name and its science/background members.

    Members of other roles (imprint, selfcal, …) are ignored: they do not enter cubes.

    Raises
    ------
    InputError
        If the file is not valid JSON or has no ``products[].members[]``.
    """
    try:
        with paths.open_file(path, "rb") as fobj:
            asn = json.loads(fobj.read().decode("utf-8"))
    except Exception as exc:
        raise InputError(f"{path}: not a readable association JSON ({exc})") from exc
    products = asn.get("products") if isinstance(asn, dict) else None
    if not products:
        raise InputError(f"{path}: association has no 'products'; expected official asn format")
    base = posixpath.dirname(str(path))
    members: list[Member] = []
    name = str(products[0].get("name", "mrsdask"))
    for product in products:
        for member in product.get("members", []):
            exptype = str(member.get("exptype", "science")).lower()
            expname = member.get("expname")
            if not expname:
                raise InputError(f"{path}: a member has no 'expname'")
            if exptype not in ("science", "background"):
                continue
            full = expname if (paths.is_remote(expname) or posixpath.isabs(expname)) else posixpath.join(base, expname)
            members.append(Member(full, exptype, name))
    if not members:
        raise InputError(f"{path}: association lists no science or background members")
    return name, members


def write_association(path: str, name: str, members: list[Member], asn_type: str = "spec3") -> None:
    """Write an official-format association listing ``members`` (paths stored relative to it)."""
    base = posixpath.dirname(str(path))
    rows = []
    for m in members:
        rel = posixpath.relpath(m.path, base) if base and not paths.is_remote(m.path) else m.path
        rows.append({"expname": rel, "exptype": m.exptype})
    asn = {
        "asn_type": asn_type,
        "asn_rule": "candidate_Asn_Lv3MIRMRS" if asn_type == "spec3" else "Asn_Lv2SpecSpecial",
        "asn_pool": "mrsdask",
        "asn_id": "o001",
        "program": "00000",
        "target": "1",
        "version_id": None,
        "code_version": "mrsdask",
        "degraded_status": "No known degraded exposures in association.",
        "constraints": "mrsdask",
        "products": [{"name": name, "members": rows}],
    }
    with paths.open_file(path, "w") as fobj:
        fobj.write(json.dumps(asn, indent=2))
