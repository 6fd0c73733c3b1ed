"""Aperture correction of point-source spectra: the official MRS APCORR table and ``ApCorrRadial``.

The official APCORR reference for MIRI MRS (``MirMrsApcorrModel``, ASDF) holds, in
``apcorr_table``, a vector of wavelengths (µm) and two arrays ``radius`` and ``apcorr`` of
shape (n_radius, n_wavelength): at each wavelength, the correction factor for extraction
radii (arcsec, ``radius_units``). The official step (``jwst.extract_1d.apply_apcorr.ApCorrRadial``)

1. converts the radii to spaxels (the cube's spaxel size),
2. interpolates every radius row and correction row linearly onto the cube's wavelengths
   (extrapolating linearly beyond the table),
3. at each plane, interpolates (or extrapolates) the correction linearly against radius at
   the aperture radius actually used,
4. multiplies FLUX, FLUX_ERROR, SURF_BRIGHT, SB_ERROR, RF_FLUX and RF_SURF_BRIGHT by it (the
   background is not corrected).

:func:`apcorr_factors` does steps 1-3 here (numpy; :func:`apply_apcorr` step 4). The flight
table is a CRDS file that is not shipped: :func:`default_apcorr_file` is a table computed
from a Gaussian PSF (see :mod:`mrsdask.extract.reffiles` for the model and its limits);
pass the CRDS file (``--apcorr``) for flight data.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from mrsdask.errors import InputError

#: The shipped table (package data, built by :mod:`mrsdask.extract.reffiles`).
DEFAULT_APCORR = "mrsdask_mrs_apcorr_gaussian.asdf"
#: Columns the official step multiplies by the correction.
CORRECTED = ("flux", "flux_error", "surf_bright", "sb_error", "rf_flux", "rf_surf_bright")


def default_apcorr_file() -> str:
    """Path of the shipped APCORR table (Gaussian PSF with the MRS FWHM(λ) law)."""
    return str(resources.files("mrsdask.extract").joinpath("data", DEFAULT_APCORR))


@dataclass(frozen=True)
class ApcorrTable:
    """An MRS APCORR table as read from the official format.

    Attributes
    ----------
    wavelength : numpy.ndarray
        (n_wave,) µm.
    radius, apcorr : numpy.ndarray
        (n_radius, n_wave): radii (in ``radius_units``) and correction factors.
    radius_units : str
        ``arcsec`` (or ``pixels``).
    source : str
        File name, and the PSF model of a shipped table.
    """

    wavelength: np.ndarray
    radius: np.ndarray
    apcorr: np.ndarray
    radius_units: str
    source: str


def read_apcorr(path: str) -> ApcorrTable:
    """Read an official MRS APCORR reference file (``MirMrsApcorrModel``, ASDF) unchanged.

    Raises
    ------
    InputError
        If the file is not a readable MRS APCORR file with consistent arrays.
    """
    name = str(path).rsplit("/", 1)[-1]
    read = _read_apcorr_tree(path)
    if read is None:
        from stdatamodels.jwst.datamodels import MirMrsApcorrModel

        try:
            with MirMrsApcorrModel(path) as ref:
                table = ref.apcorr_table
                read = (table.wavelength, table.radius, table.apcorr, table.radius_units, ref.meta.description)
                read = _table_values(*read)
        except Exception as exc:  # any unreadable or foreign file
            raise InputError(f"{path}: not an MRS APCORR reference file (MirMrsApcorrModel, ASDF) ({exc}); "
                             "give the CRDS jwst_miri_apcorr_*.asdf file") from exc
    wave, radius, apcorr, units, pedigree = read
    if radius.ndim != 2 or radius.shape != apcorr.shape or radius.shape[1] != wave.size or wave.size < 2:
        raise InputError(f"{path}: APCORR radius {radius.shape} and apcorr {apcorr.shape} must both be "
                         f"(n_radius, n_wavelength={wave.size}) with at least 2 wavelengths")
    if not units.lower().startswith(("arcsec", "pix")):
        raise InputError(f"{path}: APCORR radius_units {units!r}: expected arcseconds or pixels")
    source = name + (f" ({pedigree})" if name == DEFAULT_APCORR and pedigree else "")
    return ApcorrTable(wave, radius, apcorr, units, source)


def _table_values(wavelength, radius, apcorr, radius_units, description) -> tuple:
    """The table's arrays and strings as :func:`read_apcorr` uses them (float32, as the schema)."""
    return (np.array(wavelength, dtype=np.float32).ravel(), np.array(radius, dtype=np.float32),
            np.array(apcorr, dtype=np.float32), str(radius_units or ""), str(description or ""))


def _read_apcorr_tree(path: str) -> tuple | None:
    """:func:`read_apcorr`'s values through the ASDF tree alone (libyaml and numpy), or None.

    Opening the file as a ``MirMrsApcorrModel`` costs ~2 CPU-s (stdatamodels, its schemas and
    asdf's extensions) for a few kB of numbers, serial before an extraction starts. A file whose
    ``meta.reftype`` is APCORR and whose ``apcorr_table`` holds plain numeric arrays (inline, in
    binary blocks, or zlib/bzp2-compressed ones) is read here; anything else returns None and
    the datamodel reads it, with its own validation and error message.
    """
    from mrsdask.io.asdf_tree import read_reference_tree

    tree = read_reference_tree(path, "APCORR")
    if tree is None:
        return None
    try:
        meta, table = tree["meta"], tree["apcorr_table"]
        arrays = [table[key] for key in ("wavelength", "radius", "apcorr")]
        units, description = table.get("radius_units"), meta.get("description")
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    if not all(isinstance(a, np.ndarray) and a.dtype.kind in "fiu" for a in arrays):
        return None
    if not all(v is None or type(v) is str for v in (units, description)):  # a tagged or structured value
        return None
    return _table_values(*arrays, units, description)


def _interp_extrapolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """scipy's ``interp1d(xp, fp, fill_value="extrapolate")(x)``: linear, linear beyond the ends."""
    order = np.argsort(xp, kind="stable")
    xp, fp = np.asarray(xp, dtype=np.float64)[order], np.asarray(fp, dtype=np.float64)[order]
    x = np.asarray(x, dtype=np.float64)
    # interp1d picks the interval whose right end is the first xp >= x (left end for x == xp[0])
    hi = np.clip(np.searchsorted(xp, x, side="left"), 1, len(xp) - 1)
    lo = hi - 1
    slope = (fp[hi] - fp[lo]) / (xp[hi] - xp[lo])
    return slope * (x - xp[lo]) + fp[lo]


def apcorr_factors(table: ApcorrTable, wavelength: np.ndarray, radius_px: np.ndarray,
                   spaxel_arcsec: float) -> np.ndarray:
    """Correction factor per cube plane, as ``ApCorrRadial`` (steps 1-3 of the module docstring).

    Parameters
    ----------
    table : ApcorrTable
    wavelength : numpy.ndarray
        Cube wavelengths (µm).
    radius_px : numpy.ndarray
        Aperture radius used at each plane, in spaxels.
    spaxel_arcsec : float
        Spaxel size (arcsec) that converts the table's radii to spaxels.
    """
    radius = table.radius
    if table.radius_units.lower().startswith("arcsec"):
        # the official divides its float32 array in place: the radii stay float32
        radius = (radius.astype(np.float64) / spaxel_arcsec).astype(np.float32)
    wave = np.asarray(wavelength, dtype=np.float64)
    size = np.stack([_interp_extrapolate(wave, table.wavelength, row) for row in radius])
    corr = np.stack([_interp_extrapolate(wave, table.wavelength, row) for row in table.apcorr])
    return _interp_extrapolate_columns(np.asarray(radius_px, dtype=np.float64), size, corr)


def _interp_extrapolate_columns(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """:func:`_interp_extrapolate` of ``x[k]`` in each column ``k`` of ``xp`` and ``fp``
    ((n, m) arrays, n >= 2), at once: the same arithmetic, element by element (one call per
    plane took ~0.5 s for a 10,000-plane cube)."""
    order = np.argsort(xp, axis=0, kind="stable")
    xp, fp = np.take_along_axis(xp, order, axis=0), np.take_along_axis(fp, order, axis=0)
    # searchsorted(side="left") in each column: how many of its xp are below x (NaN above all)
    below = np.where(np.isnan(x)[None, :], ~np.isnan(xp), xp < x[None, :])
    hi = np.clip(below.sum(axis=0), 1, xp.shape[0] - 1)
    lo = hi - 1
    columns = np.arange(xp.shape[1])
    x_lo, x_hi, f_lo, f_hi = xp[lo, columns], xp[hi, columns], fp[lo, columns], fp[hi, columns]
    slope = (f_hi - f_lo) / (x_hi - x_lo)
    return slope * (x - x_lo) + f_lo
