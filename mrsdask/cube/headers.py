"""Metadata of a cube group: its identity (what it is built from and how), WCS header and attrs.

:func:`cube_attrs` gives the attributes of :mod:`mrsdask.datamodel.cube`, including the
FITS header text of the cube's WCS; :func:`cube_identity` and :func:`identity_difference` tell
a cube of the same build (resumed or kept) from one built otherwise (refused or replaced);
:func:`empty_cube_dataset` is the lazy all-missing cube whose metadata is written first.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.cube.plan import CubePlan, CubeRequest
from mrsdask.cube.spec import CubeSpec
from mrsdask.datamodel import cube as cmodel
from mrsdask.datamodel.dq import NON_SCIENCE_HOLE
from mrsdask.io.zarr_store import COMPLETE_ATTR
from mrsdask.provenance import provenance


#: Request fields as the ``mrsdask cube`` options that set them.
_OPTION_OF = {"channels": "--channel", "subbands": "--band", "linear_wave": "linear wavelength axis"}


def cube_identity(plan: CubePlan, rows: list[dict], request: CubeRequest, sources: list | None = None) -> dict:
    """What a cube is built from and how: the request, the input file names and their stamps."""
    return {
        "mrsdask_request": json.dumps(asdict(request), sort_keys=True),
        "inputs": sorted({rows[i]["filename"] for i in plan.exposures}),
        "input_stamps": [str(sources[i].stamp) for i in plan.exposures] if sources else [],
    }


#: Request fields that change how a cube is stored or computed, not its values.
LAYOUT_OPTIONS = ("slab_planes", "spatial_chunks")


def identity_difference(old: dict, new: dict) -> str | None:
    """The first thing that differs between two cubes' identities, in words (None: the same).

    The slab size and the spatial chunks are left out (:data:`LAYOUT_OPTIONS`): they change how
    a cube is computed and stored, not its values.
    """
    try:
        before = json.loads(old.get("mrsdask_request") or "{}")
    except ValueError:
        before = {}
    after = json.loads(new["mrsdask_request"])
    for key in sorted(set(after) | set(before)):
        if key not in LAYOUT_OPTIONS and before.get(key) != after.get(key):
            option = _OPTION_OF.get(key, "--" + key.replace("_", "-"))
            return f"{option} {after.get(key)!r} here, {before.get(key)!r} in the store"
    if list(old.get("inputs", [])) != list(new["inputs"]):
        return "other input files"
    if list(old.get("input_stamps", [])) != list(new["input_stamps"]):
        return "input files rewritten since the cube was built"
    return None


def target_motion(first: dict, rows: list[dict]) -> dict:
    """The target's proper motion (MU_RA, MU_DEC in arcsec/yr, MU_EPOCH) and the mean exposure mid-time
    (EXPMID, MJD) of a cube's exposures, as cube attributes (NaN / "" where the inputs lack them)."""
    mids = [float(r.get("expmid", np.nan)) for r in rows]
    mids = [m for m in mids if np.isfinite(m)]
    return {"mu_ra": float(first.get("mu_ra", np.nan)), "mu_dec": float(first.get("mu_dec", np.nan)),
            "mu_epoch": str(first.get("mu_epoch", "") or ""), "expmid": float(np.mean(mids)) if mids else np.nan}


def cube_attrs(spec: CubeSpec, rows: list[dict], request: CubeRequest, sources: list | None = None) -> dict:
    """Attributes of a cube group (data model in :mod:`mrsdask.datamodel.cube`).

    ``sources`` (:func:`mrsdask.io.sources.exposure_sources`) adds ``input_stamps``, which tells a resumable
    build from one whose inputs were rewritten since.
    """
    from astropy.io import fits

    grid, wave = spec.grid, spec.wave
    pc = grid.pc_matrix
    header = fits.Header()
    header["WCSAXES"] = 3
    header["CRPIX1"], header["CRPIX2"] = grid.crpix1, grid.crpix2
    header["CRVAL1"], header["CRVAL2"] = grid.crval1, grid.crval2
    header["CDELT1"] = header["CDELT2"] = grid.cdelt / 3600.0
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = pc
    header["PC3_3"] = 1.0
    header["CUNIT3"] = "um"
    if wave.linear:
        header["CTYPE3"] = "WAVE"
        header["CRVAL3"] = float(wave.zcoord[0])
        header["CDELT3"] = wave.cdelt3
        header["CRPIX3"] = 1.0
    else:
        header["CTYPE3"] = "WAVE-TAB"
        header["PS3_0"] = "WCS-TABLE"
        header["PS3_1"] = "wavelength"
        header["CRVAL3"] = 1.0
        header["CRPIX3"] = 1.0
        header["CDELT3"] = 1.0
    header["RADESYS"] = "ICRS"
    first = rows[spec.plan.inputs[0][0]]
    params = spec.params
    drizzle = spec.weighting == "drizzle"
    area = grid.cdelt * grid.cdelt
    return {
        "convention": cmodel.CONVENTION,
        "wcs_header": header.tostring(sep="\n"),
        "crval1": grid.crval1, "crval2": grid.crval2, "crpix1": grid.crpix1, "crpix2": grid.crpix2,
        "cdelt1": grid.cdelt / 3600.0, "cdelt2": grid.cdelt / 3600.0, "pc": list(pc),
        "rotation": grid.rotation if grid.rotation is not None else 0.0,
        "wavelength_axis": "linear" if wave.linear else "tabular",
        "cdelt3": wave.cdelt3 if wave.linear else 0.0,
        "weighting": spec.weighting,
        "roi_spatial": 0.0 if drizzle or not wave.linear else float(params["rois"] or 0.0),
        "roi_wave": 0.0 if drizzle or not wave.linear else float(params["roiw"] or 0.0),
        "weight_power": 0.0 if drizzle or not wave.linear else float(params["weight_power"] or 0.0),
        "channel": "".join(str(c) for c in spec.plan.channels),
        "bands": [b.name for b in spec.plan.bands],
        "band": "MULTIPLE" if len({b.subband for b in spec.plan.bands}) > 1 else spec.plan.bands[0].band_keyword,
        "source_type": first["source_type"],
        "source_type_rule": first.get("source_type_rule", "unknown (older detector store)"),
        "targ_ra": first["targ_ra"], "targ_dec": first["targ_dec"],
        **target_motion(first, [rows[i] for i in spec.plan.exposures]),
        "pixelarea_arcsecsq": area, "pixelarea_steradians": area * cmodel.ARCSEC2_TO_SR,
        **cube_identity(spec.plan, rows, request, sources),
        "mrsdask_provenance": provenance(),
        "units": "MJy / sr",
        COMPLETE_ATTR: False,
    }


def empty_cube_dataset(spec: CubeSpec, attrs: dict) -> xr.Dataset:
    """A lazy all-missing cube Dataset with the right shape, coords and attrs (metadata only)."""
    grid, wave = spec.grid, spec.wave
    shape = (wave.nz, grid.ny, grid.nx)
    chunks = spec.chunks
    ra, dec = grid.spaxel_sky_coords()
    ds = xr.Dataset(
        {
            "sci": (("wavelength", "y", "x"), da.full(shape, np.nan, dtype=np.float32, chunks=chunks),
                    {"units": "MJy / sr", "long_name": "surface brightness"}),
            "err": (("wavelength", "y", "x"), da.full(shape, np.nan, dtype=np.float32, chunks=chunks),
                    {"units": "MJy / sr", "long_name": "1-sigma uncertainty"}),
            "dq": (("wavelength", "y", "x"), da.full(shape, NON_SCIENCE_HOLE, dtype=np.uint32, chunks=chunks),
                   {"long_name": "jwst DQ flags: 0 data, 513 no data"}),
            "wmap": (("wavelength", "y", "x"), da.zeros(shape, dtype=np.float32, chunks=chunks),
                     {"long_name": "number of contributing detector pixels"}),
        },
        coords={
            "wavelength": ("wavelength", wave.zcoord, {"units": "um"}),
            "ra": (("y", "x"), ra, {"units": "deg"}),
            "dec": (("y", "x"), dec, {"units": "deg"}),
        },
        attrs=attrs,
    )
    return ds

