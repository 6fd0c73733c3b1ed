"""The fringe flat: divide detector frames by the FRINGE reference of their detector and band.

This is the official ``fringe`` step (``jwst/fringe/fringe.py``): SCI and ERR are divided by
the flat, NaN in the flat counts as 1, DQ is not changed. The Dask layer is one elementwise
operation per block of rows (:func:`mrsdask.dispatch.map_exposures`); the flats are read once
per file, lazily.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.dispatch import map_exposures
from mrsdask.errors import ParameterError
from mrsdask.fringe.reference import FringeFlatInfo, read_fringe_flat, read_fringe_flat_info


def clean_flat(flat: np.ndarray) -> np.ndarray:
    """The divisor used for a fringe flat: NaN (and ±inf, and 0) replaced by 1.

    The official step replaces NaN only; an infinite or zero flat value would make the
    pixel infinite or NaN, so those are treated the same way here.
    """
    flat = np.asarray(flat, dtype=np.float32)
    return np.where(np.isfinite(flat) & (flat != 0), flat, np.float32(1.0))


def divide_by_fringe_flat(sci: np.ndarray, err: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide SCI and ERR by a fringe flat (pure numpy; any matching shapes).

    Parameters
    ----------
    sci, err : ndarray
        Pixel values and 1-σ errors.
    flat : ndarray
        The fringe flat, broadcastable to ``sci``; NaN means "no correction" (1).

    Returns
    -------
    sci, err : ndarray
        Divided copies, in the input dtype.
    """
    divisor = clean_flat(flat)
    return (np.asarray(sci) / divisor).astype(np.asarray(sci).dtype, copy=False), \
        (np.asarray(err) / divisor).astype(np.asarray(err).dtype, copy=False)


def _as_paths(fringe_path) -> list[str]:
    if isinstance(fringe_path, (str, os.PathLike)):
        return [str(fringe_path)]
    if isinstance(fringe_path, Sequence):
        return [str(p) for p in fringe_path]
    raise ParameterError(f"fringe_path must be a path or a list of paths, not {type(fringe_path).__name__}")


def match_fringe_flats(detectors, bands, fringe_path) -> list[FringeFlatInfo]:
    """The fringe flat of each exposure, by DETECTOR and BAND.

    Parameters
    ----------
    detectors, bands : sequence of str
        Per exposure.
    fringe_path : str, path-like or sequence of them
        FRINGE reference files (one per detector and band that occurs).

    Raises
    ------
    ParameterError
        If an exposure has no matching flat, or more than one.
    """
    infos = [read_fringe_flat_info(p) for p in _as_paths(fringe_path)]
    if not infos:
        raise ParameterError("no fringe flat given")
    out = []
    for i, (det, band) in enumerate(zip(detectors, bands)):
        det = str(det).strip().upper()
        band = str(band).strip().upper()
        hits = [f for f in infos if f.matches(det, band)]
        if not hits:
            have = "; ".join(f"{f.path} ({f.detector} {f.band})" for f in infos)
            raise ParameterError(
                f"exposure {i} is {det} {band}, but no fringe flat matches it: {have}. "
                "Give the FRINGE reference file of that detector and band"
            )
        if len(hits) > 1:
            raise ParameterError(
                f"exposure {i} ({det} {band}) matches several fringe flats: {', '.join(f.path for f in hits)}"
            )
        out.append(hits[0])
    return out


def apply_fringe_flat(ds: xr.Dataset, fringe_path) -> xr.Dataset:
    """Divide ``sci`` and ``err`` of a detector Dataset by the matching fringe flats, lazily.

    Parameters
    ----------
    ds : xarray.Dataset
        Detector stack (:mod:`mrsdask.datamodel.detector`): needs ``sci``, ``err``
        (exposure, y, x) and the per-exposure coordinates ``detector`` and ``band``.
    fringe_path : str, path-like or sequence of them
        Official FRINGE reference files; each exposure uses the one whose DETECTOR and BAND
        keywords match its own.

    Returns
    -------
    xarray.Dataset
        A new Dataset with ``sci`` and ``err`` divided (Dask-backed, same chunks as ``sci``);
        ``attrs["fringe_flat"]`` lists the flat used by each exposure. Write it with
        :func:`mrsdask.io.detector_store.write_detector_store` before building cubes from it.

    Raises
    ------
    ParameterError
        If an exposure has no matching flat (wrong detector or band) or a flat has the
        wrong shape.
    """
    for name in ("sci", "err"):
        if name not in ds:
            raise ParameterError(f"dataset has no {name!r} variable")
    for name in ("detector", "band"):
        if name not in ds.coords:
            raise ParameterError(f"dataset has no per-exposure {name!r} coordinate")
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    flats = match_fringe_flats(ds["detector"].values, ds["band"].values, fringe_path)
    for f in flats:
        if f.shape != (ny, nx):
            raise ParameterError(f"{f.path}: fringe flat has shape {f.shape}, the data ({ny}, {nx})")
    lazy_flats: dict[str, da.Array] = {}  # one read per file, shared by its exposures
    for f in flats:
        if f.path not in lazy_flats:
            delayed = dask.delayed(read_fringe_flat, pure=True)(f.path, dask_key_name=f"fringe-flat-{f.path}")
            lazy_flats[f.path] = da.from_delayed(delayed, shape=(ny, nx), dtype=np.float32)
    divided = map_exposures(divide_by_fringe_flat, ds, {name: ds[name].dtype for name in ("sci", "err")},
                            inputs=("sci", "err"), planes={"flat": [lazy_flats[f.path] for f in flats]},
                            label="fringe flat")
    out = ds.copy()
    for name in ("sci", "err"):
        out[name] = ds[name].copy(data=divided[name])
    out.attrs["fringe_flat"] = [f.path for f in flats]
    return out
