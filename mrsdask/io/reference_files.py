"""Reference files that mrsdask writes in the official formats (fringe flats, FRINGEFREQ,
MRSXARTCORR, APCORR, MRSPTCORR, regions): what each says of itself, and its save.

Each writer fills its datamodel's tables; :func:`stamp_reference` sets the ``meta`` that every
one of them carries (MIRI, the reference type, mrsdask as author, pedigree, use-after date,
description) and :func:`save_reference` writes and closes it.
"""

from __future__ import annotations

import os
import warnings
from typing import Any


def stamp_reference(model: Any, reftype: str, description: str, *, useafter: str = "2000-01-01T00:00:00",
                    author: str = "mrsdask", pedigree: str = "DUMMY", exp_type: str | None = None,
                    **instrument: str) -> None:
    """Set the ``meta`` of a reference file that mrsdask writes.

    Parameters
    ----------
    model : stdatamodels.jwst.datamodels.DataModel
        The reference file's datamodel (``FringeModel``, ``MirMrsApcorrModel``…).
    reftype, description : str
        ``meta.reftype`` and ``meta.description``.
    useafter, author, pedigree : str
        ``meta.useafter``, ``meta.author`` and ``meta.pedigree`` (``DUMMY``: not CRDS values).
    exp_type : str, optional
        ``meta.exposure.type`` (e.g. ``MIR_MRS``), where the file names one.
    **instrument
        Other ``meta.instrument`` keywords (``detector``, ``channel``, ``band``); ``name`` is MIRI.
    """
    model.meta.instrument.name = "MIRI"
    for key, value in instrument.items():
        setattr(model.meta.instrument, key, value)
    if exp_type is not None:
        model.meta.exposure.type = exp_type
    model.meta.telescope = "JWST"
    model.meta.reftype = reftype
    model.meta.author = author
    model.meta.pedigree = pedigree
    model.meta.useafter = useafter
    model.meta.description = description


def save_reference(model: Any, path: str | os.PathLike, **save_options: Any) -> str:
    """Save ``model`` to ``path`` (the datamodel's warnings silenced) and close it; the path as a string."""
    path = str(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path, **save_options)
    model.close()
    return path
