"""The MRS spectral leak: second-order 1B light (~6.1 µm) in channel 3A (~12.2 µm), removed from 3A spectra.

The official ``spectral_leak`` step (jwst ``spectral_leak.do_correction``), on x1d products of
point sources:

* the 1B spectrum is the one whose channel contains 1 and band is MEDIUM, or a MULTIPLE-band
  spectrum of channel 1 covering 6 µm; the 3A spectrum likewise (channel 3, SHORT, or
  MULTIPLE covering 12 µm);
* leak(λ) = F_1B(λ/2) · frac_leak(λ): the 1B flux interpolated at λ/2 times FRAC_LEAK of the
  MRSPTCORR reference (``MirMrsPtCorrModel``, table LEAKCOR) interpolated at λ (numpy's
  ``interp``: constant beyond the ends);
* FLUX of 3A −= leak, and RF_FLUX likewise with the 1B RF_FLUX; errors are unchanged;
* skipped when any spectrum is of an EXTENDED source, or when 1B or 3A is missing.

:func:`leak_correction` is the arithmetic, :func:`find_leak_pair` the selection and
:func:`plan_leak` the outcome of a set of spectra; :func:`correct_spectra` applies it to lazy
spectra (:func:`mrsdask.extract.spectra`), :func:`remove_leak_from_columns` to numpy columns
(the direct extraction, :mod:`mrsdask.extract.stored`, which plans it before it computes) and
:func:`correct_x1d_files` to x1d files. The flight MRSPTCORR table is a CRDS file: the
shipped default (:func:`default_mrsptcorr_file`) is an approximate shape (see
:mod:`mrsdask.extract.reffiles`) and is reported as such.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np

from mrsdask.errors import InputError

log = logging.getLogger(__name__)
DEFAULT_MRSPTCORR = "mrsdask_mrs_mrsptcorr_approximate.fits"
CH1B_WAVE, CH3A_WAVE = 6.0, 12.0


def default_mrsptcorr_file() -> str:
    """Path of the shipped (approximate) MRSPTCORR file."""
    return str(resources.files("mrsdask.extract").joinpath("data", DEFAULT_MRSPTCORR))


@dataclass(frozen=True)
class LeakTable:
    """FRAC_LEAK(λ) of an MRSPTCORR file; ``source`` names the file (and says if approximate)."""

    wavelength: np.ndarray
    frac_leak: np.ndarray
    source: str


def read_mrsptcorr(path: str) -> LeakTable:
    """The LEAKCOR table of an official MRSPTCORR reference file (``MirMrsPtCorrModel``, FITS).

    Raises
    ------
    InputError
        If the file has no readable LEAKCOR table.
    """
    name = str(path).rsplit("/", 1)[-1]
    columns = _read_leakcor_plain(path)
    if columns is None:
        from stdatamodels.jwst.datamodels import MirMrsPtCorrModel

        try:
            with MirMrsPtCorrModel(path) as ref:
                columns = np.array(ref.leakcor_table.wavelength), np.array(ref.leakcor_table.frac_leak)
        except Exception as exc:  # any unreadable or foreign file
            raise InputError(f"{path}: not an MRSPTCORR reference file with a LEAKCOR table (MirMrsPtCorrModel) "
                             f"({exc}); give the CRDS jwst_miri_mrsptcorr_*.fits file") from exc
    wave, frac = columns
    if wave.size < 2 or wave.shape != frac.shape:
        raise InputError(f"{path}: LEAKCOR needs WAVELENGTH and FRAC_LEAK of one length (at least 2)")
    if name == DEFAULT_MRSPTCORR:
        name += " (APPROXIMATE shipped table, not the flight values)"
    return LeakTable(wave, frac, name)


#: Bytes per element of the binary-table formats (FITS standard §7.3.3; X: bits, P/Q: not read here).
_TFORM_BYTES = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16}
_TFORM = re.compile(r"(\d*)([A-Z])")


def _read_leakcor_plain(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """WAVELENGTH and FRAC_LEAK of the LEAKCOR table, read from the file's bytes, or None.

    ``MirMrsPtCorrModel`` costs ~1 CPU-s (stdatamodels and its schemas) to read two columns,
    serial at the end of an extraction. Where both are plain big-endian float32 columns (the
    schema's type, so the model gives the same values) of a binary table without scaling, they
    are read here; anything else returns None and the datamodel reads the file.
    """
    import io

    from mrsdask.io.fits_headers import read_headers
    from mrsdask.io.paths import open_file

    try:
        with open_file(path) as fobj:
            raw = fobj.read()
        headers = read_headers(io.BytesIO(raw), len(raw), keep=("LEAKCOR",))
        header = headers.extensions.get("LEAKCOR")
        if header is None or str(header.get("XTENSION", "")).strip() != "BINTABLE" or int(header.get("PCOUNT", 0)):
            return None
        offsets, offset = {}, 0
        for i in range(1, int(header["TFIELDS"]) + 1):
            match = _TFORM.fullmatch(str(header[f"TFORM{i}"]).strip().upper())
            if match is None or match[2] not in _TFORM_BYTES:
                return None
            repeat = int(match[1] or 1)
            offsets[str(header.get(f"TTYPE{i}", "")).strip().upper()] = (offset, i, repeat, match[2])
            offset += repeat * _TFORM_BYTES[match[2]]
        if offset != int(header["NAXIS1"]):
            return None
        out = []
        for column in ("WAVELENGTH", "FRAC_LEAK"):
            start, i, repeat, code = offsets[column]
            if repeat != 1 or code != "E" or any(f"{key}{i}" in header for key in ("TSCAL", "TZERO")):
                return None
            rows = np.ndarray((int(header["NAXIS2"]),), dtype=">f4", buffer=raw,
                              offset=headers.data_at["LEAKCOR"] + start, strides=(offset,))
            out.append(rows.astype(np.float32))
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None
    return out[0], out[1]


def leak_correction(wave3a, flux3a, wave1b, flux1b, table: LeakTable) -> np.ndarray:
    """The 3A flux without the leak: F_3A − F_1B(λ/2)·frac_leak(λ) (numpy arrays)."""
    leak = np.interp(wave3a, 2 * np.asarray(wave1b), flux1b) * np.interp(wave3a, table.wavelength, table.frac_leak)
    return np.asarray(flux3a) - leak


def _covers(wave, value: float) -> bool:
    wave = np.asarray(wave)
    return bool(np.min(wave) < value < np.max(wave))


def find_leak_pair(items: list[tuple[str, str, str, np.ndarray]]) -> tuple[int | None, int | None, str]:
    """Indices of the 1B and 3A spectra among ``(channel, band, source_type, wavelength)`` rows, or a reason.

    Returns
    -------
    (int or None, int or None, str)
        1B index, 3A index (the last match, as the official loop), and why nothing is done
        ("" when both are found).
    """
    i1b = i3a = None
    for i, (channel, band, source_type, wave) in enumerate(items):
        if str(source_type).upper() == "EXTENDED":
            return None, None, "skipped: extended source (the leak correction is for point sources)"
        channel, band = str(channel), str(band).upper()
        if "1" in channel and ("MEDIUM" in band or ("MULTIPLE" in band and _covers(wave, CH1B_WAVE))):
            i1b = i
        if "3" in channel and ("SHORT" in band or ("MULTIPLE" in band and _covers(wave, CH3A_WAVE))):
            i3a = i
    if i1b is None or i3a is None:
        missing = " and ".join(n for n, i in (("1B", i1b), ("3A", i3a)) if i is None)
        return i1b, i3a, f"skipped: no {missing} spectrum among the extracted cubes"
    return i1b, i3a, ""


def plan_leak(names: list[str], attrs: list[dict], waves: list[np.ndarray], path: str | None = None
              ) -> tuple[str, tuple[int, int, LeakTable] | None]:
    """The outcome, and which spectrum to correct with which: the 1B and 3A indices and the leak
    table (None when nothing is done).

    ``attrs`` (each spectrum's attributes, by ``names``' order) get ``spectral_leak`` (what
    was done, or why not) and ``mrsptcorr_file`` (the file used, '' if none), in place.
    """
    items = [(a.get("channel", ""), a.get("band", ""), a.get("source_type", ""), w) for a, w in zip(attrs, waves)]
    i1b, i3a, reason = find_leak_pair(items)
    used, table = "", None
    if reason:
        outcome = reason
    else:
        table = read_mrsptcorr(path or default_mrsptcorr_file())
        outcome = f"applied to {names[i3a]} with {names[i1b]} and {table.source}"
        used = str(path or default_mrsptcorr_file()).rsplit("/", 1)[-1]
    for i, a in enumerate(attrs):
        if reason or i == i3a:
            a["spectral_leak"] = outcome
            a["mrsptcorr_file"] = used
        else:
            a["spectral_leak"] = f"not a 3A spectrum (the correction was {outcome})"
    return outcome, (None if reason else (i1b, i3a, table))


#: The columns the leak is removed from (the errors are left as they are, as the official step).
LEAK_COLUMNS = ("flux", "rf_flux")


def remove_leak_from_columns(columns: list[dict], waves: list[np.ndarray], plan: tuple[int, int, LeakTable]) -> None:
    """Remove the leak from the 3A spectrum among spectra given as numpy ``columns`` (name →
    array, one dict per spectrum; ``waves`` their wavelengths), in place, as :func:`plan_leak`
    planned it (``plan``: its 1B and 3A indices and table)."""
    i1b, i3a, table = plan
    for column in LEAK_COLUMNS:
        columns[i3a][column] = leak_correction(waves[i3a], columns[i3a][column], waves[i1b], columns[i1b][column],
                                               table)


def correct_spectra(spectra: dict, path: str | None = None) -> str:
    """Remove the leak from the 3A spectrum of ``spectra`` (name → lazy Dataset), in place; the outcome.

    The 3A ``flux`` and ``rf_flux`` become lazy corrected arrays; every spectrum's
    ``spectral_leak`` attribute says what was done and with which file.
    """
    import dask
    import dask.array as da

    names = list(spectra)
    waves = [s["wavelength"].values for s in spectra.values()]
    outcome, plan = plan_leak(names, [s.attrs for s in spectra.values()], waves, path)
    if plan is None:
        return outcome
    i1b, i3a, table = plan
    s1b, s3a = spectra[names[i1b]], spectra[names[i3a]]
    for column in LEAK_COLUMNS:
        fixed = dask.delayed(leak_correction, pure=True)(waves[i3a], s3a[column].data, waves[i1b], s1b[column].data,
                                                         table)
        s3a[column] = (("wavelength",), da.from_delayed(fixed, shape=waves[i3a].shape, dtype=np.float64),
                       s3a[column].attrs)
    return outcome


def correct_x1d_files(paths: list[str], path: str | None = None) -> str:
    """The official step on x1d files: the 3A file's FLUX (and RF_FLUX) rewritten; the outcome."""
    from stdatamodels.jwst import datamodels

    models = [datamodels.open(p) for p in paths]
    try:
        items = [(m.meta.instrument.channel or "", m.meta.instrument.band or "", m.spec[0].source_type or "",
                  np.array(m.spec[0].spec_table["WAVELENGTH"])) for m in models]
        i1b, i3a, reason = find_leak_pair(items)
        if reason:
            return reason
        table = read_mrsptcorr(path or default_mrsptcorr_file())
        t1b, t3a = models[i1b].spec[0].spec_table, models[i3a].spec[0].spec_table
        t3a["FLUX"] = leak_correction(t3a["WAVELENGTH"], t3a["FLUX"], t1b["WAVELENGTH"], t1b["FLUX"], table)
        if isinstance(models[i1b], datamodels.MRSMultiSpecModel) and isinstance(models[i3a],
                                                                                 datamodels.MRSMultiSpecModel):
            t3a["RF_FLUX"] = leak_correction(t3a["WAVELENGTH"], t3a["RF_FLUX"], t1b["WAVELENGTH"], t1b["RF_FLUX"],
                                             table)
        models[i3a].meta.cal_step.spectral_leak = "COMPLETE"
        models[i3a].save(paths[i3a])
        return f"applied to {paths[i3a]} with {paths[i1b]} and {table.source}"
    finally:
        for m in models:
            m.close()
