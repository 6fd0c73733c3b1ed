"""What made an output: software versions and the date, for zarr attributes and FITS headers.

Every store and file mrsdask writes carries :func:`provenance` (zarr attribute
``mrsdask_provenance``) or its FITS form (:func:`fits_cards`: ``CAL_VER`` = the mrsdask version,
``CAL_VCS`` = "mrsdask", ``DATE`` of the write, and HISTORY cards naming the versions of the
libraries that computed it), beside the parameters and input stamps each output records itself
(cube ``mrsdask_request``/``inputs``/``input_stamps``, x1d extraction keywords).
"""

from __future__ import annotations

import functools
import platform
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

#: Packages whose versions decide the numbers (WCS, data models, scheduling, storage).
PACKAGES = ("mrsdask", "jwst", "stdatamodels", "gwcs", "astropy", "numpy", "numba", "dask", "distributed",
            "xarray", "zarr")


@functools.lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` and of Python (``"not installed"`` where absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def utc_now() -> str:
    """The current time, ISO 8601 UTC to the millisecond (as the official ``DATE``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def provenance(**extra: Any) -> dict[str, Any]:
    """``{"software": versions, "date": now (UTC), **extra}``: the zarr attribute of an output."""
    return {"software": dict(software_versions()), "date": utc_now(), **extra}


def fits_cards(record: dict[str, Any] | None = None) -> list[tuple[str, Any, str]]:
    """Primary-header cards of an output: ``CAL_VER``, ``CAL_VCS``, ``DATE`` and HISTORY.

    Parameters
    ----------
    record : dict, optional
        A :func:`provenance` record (default: a new one); its ``date`` becomes ``DATE``.
    """
    record = record or provenance()
    versions = record.get("software") or software_versions()
    cards: list[tuple[str, Any, str]] = [
        ("CAL_VER", str(versions.get("mrsdask", "")), "mrsdask version that wrote this file"),
        ("CAL_VCS", "mrsdask", "software that wrote this file"),
        ("DATE", str(record.get("date") or utc_now()), "[yyyy-mm-ddThh:mm:ss.ss] UTC date file created"),
    ]
    libraries = ", ".join(f"{name} {version}" for name, version in versions.items() if name != "mrsdask")
    cards.append(("HISTORY", f"written by mrsdask {versions.get('mrsdask', '')} with {libraries}", ""))
    return cards
