"""The detector-stack data model: level-2 MRS exposures as one chunked xarray Dataset.

Layout (``CONVENTION = "mrsdask-detector/1"``)::

    dims    exposure, y (1024), x (1032), corner (4)
    data    sci (exposure, y, x)  float32  surface brightness, attrs units = "MJy / sr"
            err (exposure, y, x)  float32  1-σ uncertainty, same units
            dq  (exposure, y, x)  uint32   jwst pixel bit flags (DO_NOT_USE = 1, NON_SCIENCE = 512 …)
    per-pixel geometry, each from the exposure's own WCS (lazy, chunk by chunk, when read
    from FITS; stored when read from a detector store):
            slice        (exposure, y, x)          int16    100·channel + slice, 0 off-slice
            ra, dec      (exposure, y, x)          float64  pixel centre (deg)
            wavelength   (exposure, y, x)          float64  pixel centre (µm)
            dwavelength  (exposure, y, x)          float64  λ extent of the pixel (µm)
            alpha, beta  (exposure, y, x)          float64  along/across-slice coordinates (arcsec)
            corner_ra, corner_dec (exposure, corner, y, x) float64  footprint corners (deg)
    per-exposure coordinates (dim exposure): filename, path, exptype (science/background),
            detector, channel ("12"/"34"), band (SHORT/MEDIUM/LONG), setting ("12A" …),
            exp_type, source_type (POINT/EXTENDED, decided as the official srctype step:
            :mod:`mrsdask.srctype`) and source_type_rule (the rule that decided it), target_type, targ_ra, targ_dec, ra_ref,
            dec_ref, v2_ref, v3_ref, roll_ref, exptime (s), s_region, bkgdtarg, mt_ra, mt_dec,
            mu_ra, mu_dec (arcsec/yr), mu_epoch, expmid (MJD; newer stores: the proper motion of
            the target and the exposure's mid-time, MU_RA/MU_DEC/MU_EPOCH/EXPMID), and, in a detector store, primary_header / sci_header (FITS header text) and
            wcs_asdf (the cal file's ASDF extension with its gwcs, zlib-compressed), for round trips to FITS.
    attrs   product_name: what outputs are named after (the association's product name, as
            ``Spec3Pipeline`` names its files, or the first science file's name without suffix).

Chunks: one exposure by a block of rows by all columns; geometry is computed per block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mrsdask.errors import InputError

if TYPE_CHECKING:
    import xarray as xr

CONVENTION = "mrsdask-detector/1"
#: Dataset attribute (also of cubes built from it): the start of output file names.
PRODUCT_ATTR = "product_name"
PLANES = ("sci", "err", "dq")
GEOMETRY_VARS = ("slice", "ra", "dec", "wavelength", "dwavelength", "alpha", "beta", "corner_ra", "corner_dec")
EXPOSURE_COORDS = (
    "filename", "path", "exptype", "detector", "channel", "band", "setting", "exp_type",
    "source_type", "target_type", "targ_ra", "targ_dec", "ra_ref", "dec_ref", "v2_ref", "v3_ref",
    "roll_ref", "exptime", "s_region", "bkgdtarg", "mt_ra", "mt_dec",
)
#: Per-exposure coordinates of newer stores: read when present (older stores lack them).
OPTIONAL_EXPOSURE_COORDS = ("source_type_rule", "mu_ra", "mu_dec", "mu_epoch", "expmid")
UNITS = {
    "sci": "MJy / sr", "err": "MJy / sr", "ra": "deg", "dec": "deg", "wavelength": "um",
    "dwavelength": "um", "alpha": "arcsec", "beta": "arcsec", "corner_ra": "deg", "corner_dec": "deg",
    "targ_ra": "deg", "targ_dec": "deg", "ra_ref": "deg", "dec_ref": "deg", "v2_ref": "arcsec",
    "v3_ref": "arcsec", "roll_ref": "deg", "exptime": "s", "mt_ra": "deg", "mt_dec": "deg",
    "mu_ra": "arcsec / yr", "mu_dec": "arcsec / yr", "expmid": "d",
}
DESCRIPTIONS = {
    "sci": "surface brightness", "err": "1-sigma uncertainty", "dq": "jwst pixel DQ bit flags",
    "slice": "slice number, 100*channel + slice; 0 off-slice",
    "ra": "right ascension of pixel centre", "dec": "declination of pixel centre",
    "wavelength": "wavelength of pixel centre", "dwavelength": "wavelength extent of pixel",
    "alpha": "along-slice coordinate", "beta": "across-slice coordinate",
    "corner_ra": "RA of pixel footprint corners", "corner_dec": "Dec of pixel footprint corners",
}


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Set units and descriptions on the variables of a detector Dataset (in place)."""
    for name, unit in UNITS.items():
        if name in ds.variables:
            ds[name].attrs["units"] = unit
    for name, text in DESCRIPTIONS.items():
        if name in ds.variables:
            ds[name].attrs["long_name"] = text
    ds.attrs["convention"] = CONVENTION
    return ds


def validate_detector_dataset(ds: xr.Dataset, source: str = "dataset") -> None:
    """Check that ``ds`` follows the detector-stack conventions.

    Raises
    ------
    InputError
        Naming what is missing or malformed.
    """
    if ds.attrs.get("convention") != CONVENTION:
        raise InputError(f"{source}: not an mrsdask detector store (convention={ds.attrs.get('convention')!r})")
    missing = [v for v in PLANES + GEOMETRY_VARS if v not in ds.variables]
    missing += [c for c in EXPOSURE_COORDS if c not in ds.coords]
    if missing:
        raise InputError(f"{source}: missing variables/coordinates {', '.join(missing)}")
    for name in PLANES + GEOMETRY_VARS:
        dims = ds[name].dims
        expected = ("exposure", "corner", "y", "x") if name.startswith("corner_") else ("exposure", "y", "x")
        if dims != expected:
            raise InputError(f"{source}: variable {name} has dims {dims}, expected {expected}")
    if ds.sizes.get("exposure", 0) == 0:
        raise InputError(f"{source}: holds no exposure")


def exposure_table(ds: xr.Dataset) -> list[dict]:
    """Per-exposure metadata as a list of plain dicts (one per exposure, in order)."""
    rows = []
    for i in range(ds.sizes["exposure"]):
        row = {}
        for name in EXPOSURE_COORDS + tuple(c for c in OPTIONAL_EXPOSURE_COORDS if c in ds.coords):
            value = ds[name].values[i]
            if isinstance(value, (bytes, np.bytes_)):
                value = value.decode()
            elif isinstance(value, np.generic):
                value = value.item()
            row[name] = value
        row["index"] = i
        rows.append(row)
    return rows
