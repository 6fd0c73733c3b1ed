"""Fringe reference files: FRINGEFREQ (residual-fringe search parameters) and FRINGE (fringe flat).

Both readers use astropy only and return plain arrays, so that tasks never need
``stdatamodels``. The writers produce files that the official ``FringeFreqModel`` /
``FringeModel`` (and so the official steps) open.

FRINGEFREQ format (official ``fringe_freq.schema``): binary tables ``RFC_FREQ_SHORT``,
``RFC_FREQ_MEDIUM``, ``RFC_FREQ_LONG`` — one row per slice (``SLICE`` = 100·channel + slice)
with vector columns, one entry per fringe component, ``FFREQ`` (fringe period in wavenumber,
cm⁻¹), ``DFFREQ`` (search half-width, cm⁻¹), ``MIN_NFRINGES``, ``MAX_NFRINGES``, ``MIN_SNR``,
``PGRAM_RES`` (cm⁻¹) — and ``MAX_AMP`` with ``WAVELENGTH`` (µm) and ``AMPLITUDE``. The table is
chosen by the exposure's ``BAND``. Column names are matched case-insensitively.

The CRDS files themselves are not public. :func:`documented_fringefreq` builds one from the
values the official code documents (the constants of ``jwst.residual_fringe.utils`` for the
1-D correction: periods 2.9 and 0.4 cm⁻¹, half-widths 1.5 and 0.15 cm⁻¹, at most 10 and 15
sines, resolution 0.001 cm⁻¹, maximum amplitude 0.4), with the dichroic component only in
channels 3 and 4 as the step description says.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from mrsdask.errors import InputError, ParameterError
from mrsdask.fringe.kernels import FringeComponent
from mrsdask.instrument.bands import CHANNEL_INFO, SUBBAND_KEYWORD, band_from_name
from mrsdask.io.reference_files import save_reference, stamp_reference

BAND_KEYWORDS = ("SHORT", "MEDIUM", "LONG")
TABLE_NAMES = {band: f"RFC_FREQ_{band}" for band in BAND_KEYWORDS}
SLICE_COLUMNS = ("slice", "ffreq", "dffreq", "min_nfringes", "max_nfringes", "min_snr", "pgram_res")

#: Documented 1-D constants of the official code (``jwst.residual_fringe.utils``).
DOCUMENTED_FFREQ = (2.9, 0.4)
DOCUMENTED_DFFREQ = (1.5, 0.15)
DOCUMENTED_MAX_NFRINGES = (10, 15)
DOCUMENTED_PGRAM_RES = 0.001
DOCUMENTED_MAX_AMP = 0.4
#: Column S/N below which a component is not fitted. Not documented; 10 is the per-pixel
#: S/N the official step requires of the pixels it fits.
DEFAULT_MIN_SNR = (10.0, 10.0)


@dataclass(frozen=True)
class SliceFringeParams:
    """One row of a FRINGEFREQ table: the search parameters of one slice.

    Attributes
    ----------
    slice : int
        ``100 * channel + slice``.
    ffreq, dffreq, min_snr, pgram_res : tuple of float
        Per component (main fringe first).
    min_nfringes, max_nfringes : tuple of int
        Per component. ``min_nfringes`` is read but, as in the official step, not used.
    """

    slice: int
    ffreq: tuple[float, ...]
    dffreq: tuple[float, ...]
    min_nfringes: tuple[int, ...]
    max_nfringes: tuple[int, ...]
    min_snr: tuple[float, ...]
    pgram_res: tuple[float, ...]

    def components(self) -> list[FringeComponent]:
        """The fringe components of this slice, placeholders (FFREQ ≤ 1e-3) included."""
        return [
            FringeComponent(float(f), float(d), int(m), float(s), float(r))
            for f, d, m, s, r in zip(self.ffreq, self.dffreq, self.max_nfringes, self.min_snr, self.pgram_res)
        ]


@dataclass(frozen=True)
class FringeFreqReference:
    """Contents of a FRINGEFREQ reference file.

    Attributes
    ----------
    tables : dict
        Band keyword (SHORT/MEDIUM/LONG) → {slice number → :class:`SliceFringeParams`}.
    max_amp_wavelength, max_amp : ndarray
        The MAX_AMP table: wavelength (µm, increasing) and maximum fringe amplitude.
    path : str or None
        Where it was read from.
    """

    tables: dict[str, dict[int, SliceFringeParams]]
    max_amp_wavelength: np.ndarray
    max_amp: np.ndarray
    path: str | None = None
    n_components: int = field(default=2)

    def slice_params(self, band: str, slice_number: int) -> SliceFringeParams:
        """Parameters of a slice in a band.

        Raises
        ------
        ParameterError
            If the band has no table or the table no row for the slice.
        """
        key = _band_key(band)
        if key not in self.tables:
            raise ParameterError(f"{self.path or 'FRINGEFREQ'}: no table for band {band!r} "
                                 f"(has {', '.join(sorted(self.tables))})")
        table = self.tables[key]
        if int(slice_number) not in table:
            raise ParameterError(f"{self.path or 'FRINGEFREQ'}: table RFC_FREQ_{key} has no row for slice "
                                 f"{int(slice_number)}")
        return table[int(slice_number)]

    def max_amp_at(self, wavelength) -> np.ndarray:
        """MAX_AMP interpolated at ``wavelength`` (µm), constant beyond the table."""
        return np.interp(np.asarray(wavelength, np.float64), self.max_amp_wavelength, self.max_amp)

    def check_slices(self, band: str, slices) -> None:
        """Raise :class:`ParameterError` naming every slice of ``slices`` missing from a band."""
        key = _band_key(band)
        table = self.tables.get(key, {})
        missing = sorted(int(s) for s in slices if int(s) not in table)
        if missing:
            raise ParameterError(f"{self.path or 'FRINGEFREQ'}: table RFC_FREQ_{key} lacks slice(s) "
                                 f"{', '.join(map(str, missing))}")


def _band_key(band: str) -> str:
    """SHORT/MEDIUM/LONG from a band keyword, a sub-band letter or a band name (``"2B"``)."""
    text = str(band).strip().upper()
    if text in BAND_KEYWORDS:
        return text
    if text in SUBBAND_KEYWORD:
        return SUBBAND_KEYWORD[text]
    try:
        return band_from_name(text).band_keyword
    except ValueError:
        return text


def _as_tuple(value, kind):
    arr = np.atleast_1d(np.asarray(value))
    return tuple(kind(v) for v in arr)


@contextlib.contextmanager
def open_reference(path: str, what: str) -> Iterator[fits.HDUList]:
    """A reference FITS file opened (astropy's warnings silenced); a missing or broken file is an
    :class:`InputError` naming it and ``what`` it should be."""
    if not os.path.exists(path):
        raise InputError(f"{path}: {what} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdul:
                yield hdul
    except InputError:
        raise
    except Exception as exc:  # astropy raises many kinds for broken files
        raise InputError(f"{path}: not a readable {what} file ({type(exc).__name__}: {exc})") from exc


def read_fringefreq(path: str | os.PathLike) -> FringeFreqReference:
    """Read an official FRINGEFREQ reference file (FITS).

    Raises
    ------
    InputError
        If the file cannot be read or lacks a table or column.
    """
    path = str(path)
    with open_reference(path, "FRINGEFREQ") as hdul:
        names = [h.name.upper() for h in hdul]
        tables: dict[str, dict[int, SliceFringeParams]] = {}
        n_comp = 0
        for band, ext in TABLE_NAMES.items():
            if ext not in names:
                raise InputError(f"{path}: no {ext} table; not a FRINGEFREQ reference file")
            data = hdul[ext].data
            cols = {c.lower(): c for c in data.columns.names}
            missing = [c for c in SLICE_COLUMNS if c not in cols]
            if missing:
                raise InputError(f"{path}: table {ext} lacks column(s) {', '.join(c.upper() for c in missing)}")
            rows = {}
            for row in data:
                params = SliceFringeParams(
                    slice=int(round(float(row[cols["slice"]]))),
                    ffreq=_as_tuple(row[cols["ffreq"]], float),
                    dffreq=_as_tuple(row[cols["dffreq"]], float),
                    min_nfringes=_as_tuple(row[cols["min_nfringes"]], int),
                    max_nfringes=_as_tuple(row[cols["max_nfringes"]], int),
                    min_snr=_as_tuple(row[cols["min_snr"]], float),
                    pgram_res=_as_tuple(row[cols["pgram_res"]], float),
                )
                rows[params.slice] = params
                n_comp = max(n_comp, len(params.ffreq))
            tables[band] = rows
        if "MAX_AMP" not in names:
            raise InputError(f"{path}: no MAX_AMP table; not a FRINGEFREQ reference file")
        amp = hdul["MAX_AMP"].data
        cols = {c.lower(): c for c in amp.columns.names}
        if "wavelength" not in cols or "amplitude" not in cols:
            raise InputError(f"{path}: MAX_AMP needs WAVELENGTH and AMPLITUDE columns")
        wave = np.asarray(amp[cols["wavelength"]], np.float64)
        value = np.asarray(amp[cols["amplitude"]], np.float64)
    order = np.argsort(wave)
    return FringeFreqReference(tables, wave[order], value[order], path, n_comp)


def documented_fringefreq(min_snr: tuple[float, float] = DEFAULT_MIN_SNR) -> FringeFreqReference:
    """A FRINGEFREQ reference built from the values documented by the official code.

    Every slice of every band gets the main fringe (2.9 ± 1.5 cm⁻¹, ≤ 10 sines); slices of
    channels 3 and 4 also the dichroic fringe (0.4 ± 0.15 cm⁻¹, ≤ 15 sines), channels 1 and
    2 a placeholder (FFREQ = 0). PGRAM_RES = 0.001 cm⁻¹. MAX_AMP is the documented 0.4 at
    all wavelengths (the 2-D step compares twice the table value with the peak-to-peak
    fringe, so fringes of amplitude up to 0.4 are accepted; the official 2-D step also
    masks as lines only features higher than twice the table value).
    """
    tables: dict[str, dict[int, SliceFringeParams]] = {}
    for band in BAND_KEYWORDS:
        rows = {}
        for channel, info in CHANNEL_INFO.items():
            dichroic = channel in (3, 4)
            for number in range(info.first_slice, info.last_slice + 1):
                rows[number] = SliceFringeParams(
                    slice=number,
                    ffreq=(DOCUMENTED_FFREQ[0], DOCUMENTED_FFREQ[1] if dichroic else 0.0),
                    dffreq=(DOCUMENTED_DFFREQ[0], DOCUMENTED_DFFREQ[1] if dichroic else 0.0),
                    min_nfringes=(1, 1 if dichroic else 0),
                    max_nfringes=(DOCUMENTED_MAX_NFRINGES[0], DOCUMENTED_MAX_NFRINGES[1] if dichroic else 0),
                    min_snr=(float(min_snr[0]), float(min_snr[1])),
                    pgram_res=(DOCUMENTED_PGRAM_RES, DOCUMENTED_PGRAM_RES),
                )
        tables[band] = rows
    wave = np.array([4.0, 30.0])
    amp = np.full(2, DOCUMENTED_MAX_AMP)
    return FringeFreqReference(tables, wave, amp, None, 2)


def write_fringefreq(path: str | os.PathLike, reference: FringeFreqReference | None = None,
                     overwrite: bool = True) -> str:
    """Write a FRINGEFREQ reference file that the official ``FringeFreqModel`` opens.

    Parameters
    ----------
    path : str or path-like
        Output FITS file.
    reference : FringeFreqReference, optional
        Contents; by default :func:`documented_fringefreq`.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    str
        The path written.
    """
    from stdatamodels.jwst.datamodels import FringeFreqModel

    path = str(path)
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{path}: exists; pass overwrite=True to replace it")
    ref = reference if reference is not None else documented_fringefreq()
    n_comp = max(len(p.ffreq) for rows in ref.tables.values() for p in rows.values())
    dtype = [("slice", "f8"), ("ffreq", "f8", (n_comp,)), ("dffreq", "f8", (n_comp,)),
             ("min_nfringes", "i8", (n_comp,)), ("max_nfringes", "i8", (n_comp,)),
             ("min_snr", "f8", (n_comp,)), ("pgram_res", "f8", (n_comp,))]

    def pad(values, kind):
        out = np.zeros(n_comp, kind)
        out[: len(values)] = values
        return out

    model = FringeFreqModel()
    for band in BAND_KEYWORDS:
        rows = ref.tables[band]
        table = np.zeros(len(rows), dtype=dtype)
        for i, number in enumerate(sorted(rows)):
            p = rows[number]
            table[i] = (float(number), pad(p.ffreq, float), pad(p.dffreq, float), pad(p.min_nfringes, int),
                        pad(p.max_nfringes, int), pad(p.min_snr, float), pad(p.pgram_res, float))
        setattr(model, f"rfc_freq_{band.lower()}_table", table)
    amp = np.zeros(ref.max_amp.size, dtype=[("wavelength", "f8"), ("amplitude", "f8")])
    amp["wavelength"] = ref.max_amp_wavelength
    amp["amplitude"] = ref.max_amp
    model.max_amp_table = amp
    stamp_reference(model, "fringefreq", "mrsdask FRINGEFREQ from the values documented in jwst.residual_fringe")
    return save_reference(model, path, overwrite=True)


# --------------------------------------------------------------------------- fringe flat
@dataclass(frozen=True)
class FringeFlatInfo:
    """Header facts of a FRINGE reference file (fringe flat).

    Attributes
    ----------
    path : str
        The file.
    detector : str
        ``MIRIFUSHORT`` or ``MIRIFULONG``.
    band : str
        ``SHORT``, ``MEDIUM`` or ``LONG`` (``ANY``/``N/A`` match every band).
    shape : tuple of int
        Shape of the SCI plane.
    """

    path: str
    detector: str
    band: str
    shape: tuple[int, ...]

    def matches(self, detector: str, band: str) -> bool:
        """Whether this flat applies to an exposure of ``detector`` and ``band``."""
        det = str(detector).strip().upper()
        bnd = str(band).strip().upper()
        return self.detector == det and (self.band in ("ANY", "N/A", "") or self.band == bnd)


def read_fringe_flat_info(path: str | os.PathLike) -> FringeFlatInfo:
    """Read the DETECTOR and BAND keywords and the SCI shape of a FRINGE reference file.

    Raises
    ------
    InputError
        If the file is missing, unreadable or has no SCI plane.
    """
    path = str(path)
    with open_reference(path, "fringe flat") as hdul:
        if "SCI" not in [h.name.upper() for h in hdul]:
            raise InputError(f"{path}: no SCI extension; not a FRINGE reference file")
        header = hdul[0].header
        shape = tuple(int(v) for v in hdul["SCI"].shape)
        detector = str(header.get("DETECTOR", "")).strip().upper()
        band = str(header.get("BAND", "")).strip().upper()
    if not detector:
        raise InputError(f"{path}: fringe flat has no DETECTOR keyword")
    return FringeFlatInfo(path, detector, band, shape)


def read_fringe_flat(path: str | os.PathLike) -> np.ndarray:
    """The SCI plane of a FRINGE reference file as float32 (NaN kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(str(path)) as hdul:
            return np.asarray(hdul["SCI"].data, dtype=np.float32)


def write_fringe_flat(path: str | os.PathLike, flat: np.ndarray, detector: str, band: str,
                      overwrite: bool = True) -> str:
    """Write a fringe flat in the official FRINGE format (SCI, ERR, DQ, DQ_DEF).

    The file opens as an official ``FringeModel``; meant for tests and simulations.
    """
    from stdatamodels.jwst.datamodels import FringeModel

    path = str(path)
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{path}: exists; pass overwrite=True to replace it")
    model = FringeModel(data=np.asarray(flat, np.float32))
    stamp_reference(model, "fringe", "mrsdask fringe flat", detector=str(detector).upper(), band=str(band).upper())
    return save_reference(model, path, overwrite=True)
