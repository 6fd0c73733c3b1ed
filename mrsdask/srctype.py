"""Source type (point or extended) of MRS exposures, decided as the official ``srctype`` step does.

The official ``SourceTypeStep`` (``jwst.srctype.srctype.set_source_type``) takes, for
``MIR_MRS``, the first of these rules that applies:

1. ``user``: the source type the user asked for;
2. ``background target``: a dedicated background observation (``BKGDTARG = T``) is EXTENDED;
3. ``TSO``: a time-series observation (``TSOVISIT = T`` with ``NINTS`` ≥ 2) is POINT;
4. ``APT``: the observer's choice in APT (``SRCTYAPT``; ``SRCTYPE`` for files without it)
   when it is POINT or EXTENDED;
5. ``dither pattern``: a pattern optimised for point sources (``DITHOPFR`` containing "NOD"
   or "POINT-SOURCE") is POINT;
6. ``default``: EXTENDED.

:func:`decide_source_type` applies them to a FITS primary header; the detector Dataset keeps
the result per exposure (``source_type``, with the rule in ``source_type_rule``), the cubes
carry it, and extraction uses it. :func:`override_source_type` is rule 1 on a Dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from mrsdask.errors import ParameterError

SOURCE_TYPES = ("POINT", "EXTENDED")
RULES = ("user", "background target", "TSO", "APT", "dither pattern", "default")


def header_flag(header: Mapping[str, Any], key: str) -> bool:
    """A FITS logical keyword (``T``/``F``; also a true/false string as some writers leave it)."""
    value = header.get(key, False)
    if isinstance(value, str):
        return value.strip().upper() in ("T", "TRUE", "1", "Y", "YES")
    return bool(value)


def _text(header: Mapping[str, Any], key: str) -> str | None:
    value = header.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def check_source_type(value: str | None) -> str | None:
    """``point``/``EXTENDED``… → ``POINT``/``EXTENDED`` (None stays None); anything else is refused."""
    if value is None:
        return None
    upper = str(value).strip().upper()
    if upper not in SOURCE_TYPES:
        raise ParameterError(f"source type {value!r}: choose point or extended")
    return upper


def decide_source_type(header: Mapping[str, Any], user: str | None = None) -> tuple[str, str]:
    """The source type of an MRS exposure and the rule that decided it.

    Parameters
    ----------
    header : mapping
        The exposure's FITS keywords: its primary header, which holds all of them but
        ``SRCTYPE``, and its SCI header, which holds that one in level-2 files (e.g.
        ``collections.ChainMap(primary, sci)``).
    user : str, optional
        The user's choice (rule 1), ``point`` or ``extended``.

    Returns
    -------
    (str, str)
        ``POINT`` or ``EXTENDED``, and the rule (one of :data:`RULES`).
    """
    user = check_source_type(user)
    if user is not None:
        return user, "user"
    if header_flag(header, "BKGDTARG"):
        return "EXTENDED", "background target"
    nints = header.get("NINTS")
    if header_flag(header, "TSOVISIT") and not (isinstance(nints, (int, float)) and nints < 2):
        return "POINT", "TSO"
    apt = _text(header, "SRCTYAPT")
    if apt is None:  # files older than the keyword: SRCTYPE holds the APT value (as officially)
        apt = _text(header, "SRCTYPE")
    if apt is not None and apt.upper() in SOURCE_TYPES:
        return apt.upper(), "APT"
    pattern = _text(header, "DITHOPFR")
    if pattern is not None and ("NOD" in pattern or "POINT-SOURCE" in pattern):
        return "POINT", "dither pattern"
    return "EXTENDED", "default"


def override_source_type(ds: xr.Dataset, source_type: str) -> xr.Dataset:
    """A detector Dataset whose exposures all have the user's source type (rule 1).

    As the official step given ``source_type``: every exposure, background ones included.
    """
    chosen = check_source_type(source_type)
    n = ds.sizes["exposure"]
    return ds.assign_coords(source_type=("exposure", [chosen] * n),
                            source_type_rule=("exposure", ["user"] * n))
