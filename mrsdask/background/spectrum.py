"""1-D background spectra: the :class:`BackgroundSpectrum` record and its files.

Readers accept what the official ``master_background`` step accepts, and a plain table:

* an ``x1d`` FITS file — ``MultiSpecModel``/``MRSMultiSpecModel`` (first spectrum) or a
  ``CombinedSpecModel``/``MultiCombinedSpecModel`` (the step's ``masterbg1d``): columns
  WAVELENGTH and SURF_BRIGHT (SB_ERROR, DQ when present);
* a text table: two columns λ [µm] and surface brightness [MJy/sr] (a third column, if any,
  is the error); ``#`` starts a comment.

:func:`read_background_x1d` reads a *background member* of an association (the ``x1d`` of a
dedicated background exposure): for MIRI MRS the official step always copies BACKGROUND into
SURF_BRIGHT (and BKGD_ERROR into SB_ERROR) and weights by the exposure time (``EXPTIME``).

Writers: :func:`write_spectrum` (``.fits`` → a ``MultiCombinedSpecModel`` like the official
``masterbg1d``, readable as ``user_background`` by the official step; other suffixes → a text
table) and :func:`write_background_x1d` (an ``MRSMultiSpecModel`` with the BACKGROUND column
filled, as ``extract_1d`` writes for a background exposure).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from mrsdask.background import kernels
from mrsdask.errors import InputError

log = logging.getLogger("mrsdask.background")


@dataclass
class BackgroundSpectrum:
    """A 1-D background surface brightness.

    Attributes
    ----------
    wavelength : ndarray
        µm, strictly increasing after :meth:`sorted`.
    surf_bright : ndarray
        MJy/sr.
    sb_error : ndarray, optional
        MJy/sr (zeros if unknown).
    dq : ndarray, optional
        jwst DQ flags per element.
    flux, flux_error : ndarray, optional
        Jy (only for spectra extracted from cubes).
    weight : float
        Weight when combined with others (the exposure time, s).
    n_input : ndarray, optional
        For a combination: number of inputs per element.
    source : str
        Where it came from (file name, cube name …), for the log and the summary.
    """

    wavelength: np.ndarray
    surf_bright: np.ndarray
    sb_error: np.ndarray | None = None
    dq: np.ndarray | None = None
    flux: np.ndarray | None = None
    flux_error: np.ndarray | None = None
    weight: float = 1.0
    n_input: np.ndarray | None = None
    source: str = ""
    members: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wavelength = np.asarray(self.wavelength, dtype=np.float64)
        self.surf_bright = np.asarray(self.surf_bright, dtype=np.float64)
        n = self.wavelength.size
        if self.surf_bright.shape != (n,):
            raise InputError(f"{self.source or 'spectrum'}: wavelength and surface brightness differ in length")
        self.sb_error = np.zeros(n) if self.sb_error is None else np.asarray(self.sb_error, dtype=np.float64)
        self.dq = np.zeros(n, np.uint32) if self.dq is None else np.asarray(self.dq, dtype=np.uint32)

    def __len__(self) -> int:
        return int(self.wavelength.size)

    def as_dict(self) -> dict:
        """The arrays as :func:`mrsdask.background.kernels.combine_spectra` takes them."""
        return {
            "wavelength": self.wavelength, "surf_bright": self.surf_bright, "sb_error": self.sb_error,
            "dq": self.dq, "flux": self.flux, "flux_error": self.flux_error, "weight": self.weight,
        }

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """(λ, SB) ready for projection: finite rows only, strictly increasing in λ."""
        good = np.isfinite(self.wavelength) & np.isfinite(self.surf_bright)
        if not good.all():
            log.warning("%s: %d non-finite row(s) of the background table ignored",
                        self.source or "background spectrum", int((~good).sum()))
        if good.sum() < 2:
            raise InputError(f"{self.source or 'background spectrum'}: fewer than 2 usable rows")
        return kernels.sort_table(self.wavelength[good], self.surf_bright[good])

    @property
    def wavelength_range(self) -> tuple[float, float]:
        """(min, max) wavelength in µm."""
        return float(np.nanmin(self.wavelength)), float(np.nanmax(self.wavelength))


# --------------------------------------------------------------------------- reading
def _is_fits(path: str) -> bool:
    try:
        with open(path, "rb") as fobj:
            return fobj.read(6) == b"SIMPLE"
    except OSError as exc:
        raise InputError(f"{path}: cannot read the background spectrum ({exc})") from exc


def read_spectrum(path: str) -> BackgroundSpectrum:
    """Read a user-supplied background spectrum (x1d FITS or two-column text table).

    For an x1d, the first spectrum's WAVELENGTH and SURF_BRIGHT are used, as the official
    ``expand_to_2d`` does (a warning is logged if the file holds several).

    Raises
    ------
    InputError
        If the file is missing, unreadable or has no usable rows.
    """
    path = str(path)
    if _is_fits(path):
        return _read_fits_spectrum(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.loadtxt(path, comments="#", ndmin=2, dtype=np.float64, delimiter=None)
    except ValueError as exc:
        raise InputError(
            f"{path}: not a two-column table of wavelength [um] and surface brightness [MJy/sr] ({exc})"
        ) from exc
    if data.shape[1] < 2 or data.shape[0] < 2:
        raise InputError(f"{path}: expected at least two rows of 'wavelength[um] surf_bright[MJy/sr]'")
    err = data[:, 2] if data.shape[1] > 2 else None
    return BackgroundSpectrum(data[:, 0], data[:, 1], sb_error=err, source=path.rsplit("/", 1)[-1])


def _spec_tables(model) -> list:
    if hasattr(model, "spec"):
        return [s for s in model.spec]
    if hasattr(model, "spec_table"):
        return [model]
    raise InputError(f"{model.meta.filename}: not a 1-D spectrum product (no spec or spec_table)")


def _column(table, name: str):
    names = [n.lower() for n in table.dtype.names]
    return np.array(table[name], dtype=np.float64) if name.lower() in names else None


def _open_spectrum_model(path: str, what: str):
    """Open a spectrum file with the official data models; a clear error names the file."""
    from stdatamodels.jwst import datamodels

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return datamodels.open(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from exc


def _read_fits_spectrum(path: str) -> BackgroundSpectrum:
    model = _open_spectrum_model(path, "x1d/combined spectrum")
    with model:
        specs = _spec_tables(model)
        if not specs:
            raise InputError(f"{path}: holds no spectrum")
        if len(specs) > 1:
            log.warning("%s holds %d spectra; using the first, as the official step does", path, len(specs))
        table = specs[0].spec_table
        dq = table["dq"] if "dq" in [n.lower() for n in table.dtype.names] else None
        return BackgroundSpectrum(
            np.array(table["wavelength"], dtype=np.float64),
            np.array(table["surf_bright"], dtype=np.float64),
            sb_error=_column(table, "sb_error"),
            dq=None if dq is None else np.array(dq, dtype=np.uint32),
            flux=_column(table, "flux"),
            source=path.rsplit("/", 1)[-1],
        )


def read_background_x1d(path: str) -> list[BackgroundSpectrum]:
    """The spectra of a background member's x1d, as ``master_background`` uses them.

    For MIRI MRS (and for any file with ``BKGDTARG = False``) the BACKGROUND column becomes
    the surface brightness and BKGD_ERROR its error; the weight is ``EXPTIME``.
    """
    path = str(path)
    model = _open_spectrum_model(path, "x1d file")
    out = []
    with model:
        exp_type = model.meta.exposure.type
        use_background = exp_type == "MIR_MRS" or model.meta.observation.bkgdtarg is False
        exptime = model.meta.exposure.exposure_time
        if exptime is None:
            raise InputError(f"{path}: no EXPTIME; it is needed to weight the background spectra")
        for spec in _spec_tables(model):
            table = spec.spec_table
            sb_col, err_col = ("background", "bkgd_error") if use_background else ("surf_bright", "sb_error")
            out.append(BackgroundSpectrum(
                np.array(table["wavelength"], dtype=np.float64),
                np.array(table[sb_col], dtype=np.float64),
                sb_error=np.array(table[err_col], dtype=np.float64),
                dq=np.array(table["dq"], dtype=np.uint32),
                flux=np.array(table["flux"], dtype=np.float64),
                flux_error=_column(table, "flux_error"),
                weight=float(exptime),
                source=path.rsplit("/", 1)[-1],
                members=[path.rsplit("/", 1)[-1]],
            ))
    return out


def is_x1d(path: str) -> bool:
    """True if ``path`` is a FITS file holding a 1-D spectrum (an ``EXTRACT1D``/``COMBINE1D`` table)."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            return any(h.name in ("EXTRACT1D", "COMBINE1D") for h in hdul)
    except Exception:
        return False


# --------------------------------------------------------------------------- combining
def combine(spectra: list[BackgroundSpectrum], median_kernel: int = 1) -> BackgroundSpectrum:
    """Exposure-time weighted combination, then an optional moving median (official semantics).

    See :func:`mrsdask.background.kernels.combine_spectra` and
    :func:`~mrsdask.background.kernels.median_filter`.
    """
    if not spectra:
        raise InputError("no background spectrum to combine")
    result = kernels.combine_spectra([s.as_dict() for s in spectra])
    sb = result["surf_bright"]
    flux = result["flux"]
    if median_kernel > 1:
        sb = kernels.median_filter(sb, median_kernel)
        flux = kernels.median_filter(flux, median_kernel)
    members = sorted({m for s in spectra for m in (s.members or [s.source])})
    return BackgroundSpectrum(
        result["wavelength"], sb, sb_error=result["sb_error"], dq=result["dq"], flux=flux,
        flux_error=result["flux_error"], weight=float(np.nanmax(result["weight"])) if len(sb) else 0.0,
        n_input=result["n_input"], source=f"combination of {len(spectra)} spectra", members=members,
    )


# --------------------------------------------------------------------------- writing
def write_spectrum(spectrum: BackgroundSpectrum, path: str) -> str:
    """Write a (master) background spectrum.

    ``*.fits``: a ``MultiCombinedSpecModel`` (the official ``masterbg1d`` product; the
    official step reads it as ``user_background``). Anything else: a text table with columns
    wavelength [um], surf_bright [MJy/sr], sb_error [MJy/sr], dq.
    """
    path = str(path)
    n = len(spectrum)
    if path.lower().endswith((".fits", ".fits.gz", ".fit")):
        from stdatamodels.jwst import datamodels

        dtype = datamodels.CombinedSpecModel().get_dtype("spec_table")
        table = np.zeros(n, dtype=dtype)
        table["WAVELENGTH"] = spectrum.wavelength
        table["FLUX"] = spectrum.flux if spectrum.flux is not None else np.nan
        table["ERROR"] = spectrum.flux_error if spectrum.flux_error is not None else np.nan
        table["SURF_BRIGHT"] = spectrum.surf_bright
        table["SB_ERROR"] = spectrum.sb_error
        table["DQ"] = spectrum.dq
        table["WEIGHT"] = spectrum.weight
        table["N_INPUT"] = spectrum.n_input if spectrum.n_input is not None else 1
        model = datamodels.MultiCombinedSpecModel()
        spec = datamodels.CombinedSpecModel(spec_table=table)
        spec.spec_table.columns["wavelength"].unit = "um"
        spec.spec_table.columns["surf_bright"].unit = "MJy/sr"
        spec.spec_table.columns["sb_error"].unit = "MJy/sr"
        spec.spec_table.columns["flux"].unit = "Jy"
        spec.spec_table.columns["error"].unit = "Jy"
        model.spec.append(spec)
        model.meta.instrument.name = "MIRI"
        model.meta.exposure.type = "MIR_MRS"
        model.meta.filename = path.rsplit("/", 1)[-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(path)
        return path
    header = (f"mrsdask background spectrum: {spectrum.source}\n"
              "wavelength[um] surf_bright[MJy/sr] sb_error[MJy/sr] dq")
    np.savetxt(path, np.column_stack([spectrum.wavelength, spectrum.surf_bright, spectrum.sb_error, spectrum.dq]),
               header=header, fmt=["%.10g", "%.10g", "%.6g", "%d"])
    return path


def write_background_x1d(
    spectra: list[BackgroundSpectrum],
    path: str,
    exposure_time: float,
    detector: str = "MIRIFUSHORT",
    filename: str | None = None,
) -> str:
    """Write the x1d of a dedicated background exposure (``MRSMultiSpecModel``).

    One spectrum per cube; SURF_BRIGHT and BACKGROUND both hold the clipped-mean background
    (what ``extract_1d`` puts in BACKGROUND for an extended source), FLUX the unclipped sum
    over the field in Jy when known. ``EXPTIME`` = ``exposure_time``,
    ``BKGDTARG`` = True, ``EXP_TYPE`` = MIR_MRS: the official ``master_background`` reads it
    as a background member.
    """
    from stdatamodels.jwst import datamodels

    model = datamodels.MRSMultiSpecModel()
    for spectrum in spectra:
        n = len(spectrum)
        dtype = datamodels.MRSSpecModel().get_dtype("spec_table")
        table = np.zeros(n, dtype=dtype)
        table["WAVELENGTH"] = spectrum.wavelength
        table["SURF_BRIGHT"] = spectrum.surf_bright
        table["SB_ERROR"] = spectrum.sb_error
        table["BACKGROUND"] = spectrum.surf_bright
        table["BKGD_ERROR"] = spectrum.sb_error
        table["DQ"] = spectrum.dq
        table["FLUX"] = spectrum.flux if spectrum.flux is not None else spectrum.surf_bright
        table["FLUX_ERROR"] = spectrum.flux_error if spectrum.flux_error is not None else 0.0
        for name in ("RF_FLUX", "RF_SURF_BRIGHT", "RF_BACKGROUND"):
            table[name] = np.nan
        spec = datamodels.MRSSpecModel(spec_table=table)
        spec.source_type = "EXTENDED"
        model.spec.append(spec)
    model.meta.instrument.name = "MIRI"
    model.meta.instrument.detector = detector
    model.meta.exposure.type = "MIR_MRS"
    model.meta.exposure.exposure_time = float(exposure_time)
    model.meta.observation.bkgdtarg = True
    model.meta.filename = filename or str(path).rsplit("/", 1)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(path))
    return str(path)
