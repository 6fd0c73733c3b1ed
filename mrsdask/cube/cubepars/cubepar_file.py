"""The official CUBEPAR file format, read and written, and the file shipped with mrsdask.

:func:`read_cubepar` reads any official MIRI CUBEPAR file (for example one from CRDS),
:func:`write_cubepar` writes one that the official step reads with the same numbers, and
:func:`default_cubepars` is the shipped file (``data/jwst_miri_cubepar_mrsdask.fits``), read once.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import numpy as np

from mrsdask.cube.cubepars.model import (
    BandPars,
    CubeparFileError,
    CubePars,
    EMSMPars,
    MSMPars,
    MultiTable,
)
from mrsdask.cube.cubepars.recipe import SUBBAND_ORDER, cross_dichroic_bands
from mrsdask.instrument.bands import BAND_NAMES, SUBBAND_KEYWORD, band_from_name

DATA_DIR = Path(str(resources.files("mrsdask.cube") / "data"))
#: The CUBEPAR file shipped with mrsdask (made by ``python -m mrsdask.cube.make_cubepar``).
DEFAULT_CUBEPAR_FILE = DATA_DIR / "jwst_miri_cubepar_mrsdask.fits"


# ---------------------------------------------------------------------------------------
# Reading and writing the official format
# ---------------------------------------------------------------------------------------

#: Tables of a MIRI CUBEPAR file and the columns the official reader uses.
CUBEPAR_TABLES = MappingProxyType(
    {
        "CUBEPAR": ("CHANNEL", "BAND", "SPAXELSIZE", "SPECTRALSTEP", "WAVEMIN", "WAVEMAX"),
        "CUBEPAR_MSM": ("CHANNEL", "BAND", "ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"),
        "MULTICHANNEL_MSM": ("WAVELENGTH", "ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"),
        "CUBEPAR_EMSM": ("CHANNEL", "BAND", "ROISPATIAL", "ROISPECTRAL", "SCALERAD"),
        "MULTICHANNEL_EMSM": ("WAVELENGTH", "ROISPATIAL", "ROISPECTRAL", "SCALERAD"),
        "MULTICHANNEL_DRIZ": ("WAVELENGTH",),
    }
)
_UNITS = {
    "WAVEMIN": "micron", "WAVEMAX": "micron", "SPAXELSIZE": "arcsec", "SPECTRALSTEP": "micron",
    "ROISPATIAL": "arcsec", "ROISPECTRAL": "micron", "SOFTRAD": "arcsec", "SCALERAD": "arcsec",
    "WAVELENGTH": "micron",
}  # fmt: skip


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _band_rows(path, ext, data, columns) -> dict[str, tuple]:
    """Rows of a per-band table for the 12 ordinary bands (last matching row wins, as in
    the official reader's loop)."""
    channel = [_text(c) for c in data["CHANNEL"]]
    band = [_text(b).upper() for b in data["BAND"]]
    cols = [np.asarray(data[c]) for c in columns]
    rows = {}
    for i, (ch, bd) in enumerate(zip(channel, band, strict=True)):
        if ch in ("1", "2", "3", "4") and bd in SUBBAND_ORDER:
            rows[band_from_name(ch + bd).name] = tuple(c[i] for c in cols)
    missing = [b for b in BAND_NAMES if b not in rows]
    if missing:
        raise CubeparFileError(f"{path}: table {ext} has no row for bands {', '.join(missing)}")
    return rows


def read_cubepar(path: str | os.PathLike) -> CubePars:
    """Read an official MIRI CUBEPAR reference file (e.g. one from CRDS).

    Numbers are read as the official reader sees them (float32, file order). The 24
    cross-dichroic rows are ignored; for a band with several rows the last one wins, as in
    the official reader.

    Raises
    ------
    CubeparFileError
        (a ``ValueError`` and an :class:`mrsdask.errors.InputError`) naming the file, when
        it is missing, not FITS, not a MIRI CUBEPAR file, or lacks a table, a column or a
        band row that the official step may use.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise CubeparFileError(f"{path}: no such CUBEPAR file")
    try:
        hdul = fits.open(path, memmap=False)
        _ = hdul[0].header
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, ...
        raise CubeparFileError(f"{path} is not a readable FITS file ({exc})") from exc
    with hdul:
        header = hdul[0].header
        instrument = _text(header.get("INSTRUME", "")).upper()
        reftype = _text(header.get("REFTYPE", "")).upper()
        if instrument != "MIRI" or reftype != "CUBEPAR":
            raise CubeparFileError(
                f"{path} is not a MIRI CUBEPAR reference file "
                f"(INSTRUME={instrument or 'missing'!s}, REFTYPE={reftype or 'missing'!s})"
            )
        present = {h.name.upper(): h for h in hdul[1:]}
        tables = {}
        for ext, columns in CUBEPAR_TABLES.items():
            hdu = present.get(ext)
            if hdu is None or not isinstance(hdu, fits.BinTableHDU):
                raise CubeparFileError(f"{path}: MIRI CUBEPAR file lacks the {ext} table")
            names = {n.upper() for n in hdu.columns.names}
            lacking = [c for c in columns if c not in names]
            if lacking:
                raise CubeparFileError(
                    f"{path}: table {ext} lacks column(s) {', '.join(lacking)}"
                )
            if hdu.data is None or len(hdu.data) == 0:
                raise CubeparFileError(f"{path}: table {ext} is empty")
            tables[ext] = hdu.data
        try:
            def per_band(ext, kind, columns):
                rows = _band_rows(path, ext, tables[ext], columns)
                return {b: kind(*r) for b, r in rows.items()}

            bands = per_band("CUBEPAR", BandPars, ("WAVEMIN", "WAVEMAX", "SPAXELSIZE", "SPECTRALSTEP"))
            msm = per_band("CUBEPAR_MSM", MSMPars, ("ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"))
            emsm = per_band("CUBEPAR_EMSM", EMSMPars, ("ROISPATIAL", "ROISPECTRAL", "SCALERAD"))

            def multi(ext):
                data = tables[ext]
                cols = {c.lower(): np.asarray(data[c]) for c in CUBEPAR_TABLES[ext]}
                return MultiTable(**cols)

            return CubePars(
                bands, msm, emsm,
                multi("MULTICHANNEL_DRIZ"), multi("MULTICHANNEL_MSM"), multi("MULTICHANNEL_EMSM"),
                source=str(path),
            )  # fmt: skip
        except CubeparFileError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise CubeparFileError(f"{path}: unusable CUBEPAR values ({exc})") from exc


def _band_table(pars: CubePars, names: tuple[str, ...], values) -> np.ndarray:
    """Structured array of a per-band table: 12 ordinary rows, then the two blocks of
    cross-dichroic rows copying their matching band (make_cubepar.py row order)."""
    dtype = [("CHANNEL", "S3"), ("BAND", "S12")] + [(n, "f4") for n in names]
    rows = []
    for block in range(3):
        for name in BAND_NAMES:
            b = band_from_name(name)
            keyword = SUBBAND_KEYWORD[b.subband] if block == 0 else cross_dichroic_bands(b)[block - 1]
            rows.append((str(b.channel), keyword) + tuple(values(name)))
    return np.array(rows, dtype=dtype)


def write_cubepar(
    pars: CubePars,
    path: str | os.PathLike,
    *,
    description: str | None = None,
    author: str = "mrsdask",
    pedigree: str = "INFLIGHT 2022-06-08 2022-06-08",
    useafter: str = "2022-05-01T00:00:00",
    history: Iterable[str] = (),
    overwrite: bool = True,
) -> Path:
    """Write ``pars`` as an official MIRI CUBEPAR reference file.

    The file is made with ``MiriIFUCubeParsModel`` (all six tables, 36 rows in the
    per-band tables: the 12 bands then 24 cross-dichroic rows copying their matching band)
    and then given the upper-case column names and units of the CRDS files. Passing it as
    ``CubeBuildStep(override_cubepar=path)`` makes the official step use exactly these
    numbers.

    Parameters
    ----------
    pars : CubePars
        The parameters.
    path : path-like
        Output FITS file.
    description, author, pedigree, useafter : str
        Reference-file metadata (DESCRIP, AUTHOR, PEDIGREE, USEAFTER). The default pedigree
        and use-after date are those of the FLT-9 distortion/wavelength files the shipped
        defaults were derived from.
    history : iterable of str
        HISTORY lines to add.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import MiriIFUCubeParsModel

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")

    def multi(table: MultiTable, ext: str) -> np.ndarray:
        cols = [c.lower() for c in CUBEPAR_TABLES[ext]]
        arr = np.zeros(len(table), dtype=[(c.upper(), "f4") for c in cols])
        for c in cols:
            arr[c.upper()] = getattr(table, c)
        return arr

    model = MiriIFUCubeParsModel()
    try:
        model.ifucubepars_table = _band_table(
            pars, ("SPAXELSIZE", "SPECTRALSTEP", "WAVEMIN", "WAVEMAX"),
            lambda b: (pars.bands[b].spaxelsize, pars.bands[b].spectralstep,
                       pars.bands[b].wavemin, pars.bands[b].wavemax),
        )  # fmt: skip
        model.ifucubepars_msm_table = _band_table(
            pars, ("ROISPATIAL", "ROISPECTRAL", "POWER", "SOFTRAD"),
            lambda b: (pars.msm[b].roispatial, pars.msm[b].roispectral,
                       pars.msm[b].power, pars.msm[b].softrad),
        )  # fmt: skip
        model.ifucubepars_emsm_table = _band_table(
            pars, ("ROISPATIAL", "ROISPECTRAL", "SCALERAD"),
            lambda b: (pars.emsm[b].roispatial, pars.emsm[b].roispectral, pars.emsm[b].scalerad),
        )
        model.ifucubepars_multichannel_msm_wavetable = multi(pars.multi_msm, "MULTICHANNEL_MSM")
        model.ifucubepars_multichannel_emsm_wavetable = multi(pars.multi_emsm, "MULTICHANNEL_EMSM")
        model.ifucubepars_multichannel_driz_wavetable = multi(pars.multi_driz, "MULTICHANNEL_DRIZ")
        meta = model.meta
        meta.reftype = "CUBEPAR"
        meta.telescope = "JWST"
        meta.instrument.name = "MIRI"
        meta.instrument.detector = "N/A"
        meta.exposure.type = "MIR_MRS"
        meta.author = author
        meta.pedigree = pedigree
        meta.useafter = useafter
        meta.description = description or f"MIRI MRS cube parameters written by mrsdask from {pars.source}"
        for line in history:
            model.add_history_entry(str(line))
        model.validate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".fits")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            model.save(tmp, overwrite=True)
            # The datamodel writes the schema's lower-case column names; CRDS files (and the
            # official reader's lookups) use upper case. FITS names are case-insensitive, so
            # this changes nothing for the datamodel, only the look of the file.
            with fits.open(tmp, mode="update") as hdul:
                hdul[0].header["FILENAME"] = path.name
                for hdu in hdul[1:]:
                    if not isinstance(hdu, fits.BinTableHDU):
                        continue
                    for i, name in enumerate(hdu.columns.names, start=1):
                        hdu.header[f"TTYPE{i}"] = name.upper()
                        unit = _UNITS.get(name.upper())
                        if unit:
                            hdu.header[f"TUNIT{i}"] = unit
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    finally:
        model.close()
    return path


@functools.lru_cache(maxsize=1)
def default_cubepars() -> CubePars:
    """The parameters shipped with mrsdask (read once from :data:`DEFAULT_CUBEPAR_FILE`).

    Made by ``python -m mrsdask.cube.make_cubepar`` from the shipped FLT-9 reference files
    with the recipe of :func:`build_default_cubepars`. The result is immutable and shared.
    """
    return read_cubepar(DEFAULT_CUBEPAR_FILE)
