"""Reading official level-2 MRS ``cal``/``rate`` FITS files.

Headers are read eagerly (:mod:`mrsdask.io.fits_headers`: plain ones without astropy's card
objects, any other by astropy) to validate and describe each exposure; pixel
planes and the gwcs are read in tasks, through stdatamodels so that the WCS is the file's
own (``ASDF`` extension).
"""

from __future__ import annotations

import functools
from collections import ChainMap
import io
from dataclasses import asdict, dataclass

import numpy as np
from astropy.io import fits

from mrsdask.errors import InputError
from mrsdask.instrument.bands import SUBBAND_LETTER
from mrsdask.io import paths
from mrsdask.io.asdf_tree import wcs_from_asdf_bytes
from mrsdask.io import fits_headers
from mrsdask.srctype import decide_source_type, header_flag

MRS_DETECTORS = ("MIRIFUSHORT", "MIRIFULONG")
DETECTOR_SHAPE = (1024, 1032)


@dataclass(frozen=True)
class ExposureInfo:
    """What mrsdask needs to know about one exposure, from its headers.

    Attributes mirror the official keywords; ``exptype`` is the association role
    (``science`` or ``background``).
    """

    path: str
    filename: str
    exptype: str
    detector: str
    channel: str
    band: str
    exp_type: str
    source_type: str
    source_type_rule: str
    target_type: str
    targ_ra: float
    targ_dec: float
    ra_ref: float
    dec_ref: float
    v2_ref: float
    v3_ref: float
    roll_ref: float
    exptime: float
    s_region: str
    bkgdtarg: bool
    mt_ra: float
    mt_dec: float
    mu_ra: float = np.nan
    mu_dec: float = np.nan
    mu_epoch: str = ""
    expmid: float = np.nan

    @property
    def setting(self) -> str:
        """Detector setting such as ``"12A"``."""
        return self.channel + SUBBAND_LETTER[self.band]

    def as_dict(self) -> dict:
        """Plain dictionary of the attributes."""
        return asdict(self)


def _float(header, key, default=np.nan) -> float:
    value = header.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float(default)


def _image_shape(header) -> tuple[int, ...] | None:
    """Data shape from an extension header (numpy order), None if it has no data."""
    naxis = int(header.get("NAXIS", 0))
    return tuple(int(header[f"NAXIS{k}"]) for k in range(naxis, 0, -1)) if naxis else None


def read_exposure_info(path: str, exptype: str | None = None) -> ExposureInfo:
    """Read and validate the headers of an MRS level-2 file.

    ``exptype`` is the file's association role; ``None`` takes it from the header as the
    official association rules do: ``background`` for a dedicated background observation
    (``BKGDTARG = T``), else ``science``.

    Raises
    ------
    InputError
        If the file is missing, truncated, not MIRI MRS, has no SCI/ERR/DQ planes of the
        detector's shape, or has no WCS (``assign_wcs`` not run).
    """
    if not paths.exists(path):
        raise InputError(f"{path}: file not found; check the path (globs are expanded)")
    try:
        # Headers only: the data are not read (a task reads them), but a file that ends before
        # its last extension's data is caught here by its size, not in a task.
        with paths.open_file(path) as fobj:
            size = fobj.seek(0, io.SEEK_END)
            fobj.seek(0)
            headers = fits_headers.read_headers(fobj, size, keep=("SCI", "ERR", "DQ"))
        names, primary, end = headers.names, headers.primary, headers.end
        sci_header = headers.extensions.get("SCI")
        shapes = {ext: _image_shape(header) for ext, header in headers.extensions.items()}
        if size < end:
            raise InputError(f"{path}: truncated ({size:,} bytes, its extensions need {end:,}); "
                             "download it again")
    except InputError:
        raise
    except Exception as exc:  # astropy raises many kinds for broken files
        raise InputError(
            f"{path}: not a readable FITS file ({type(exc).__name__}: {exc}); "
            "the file may be truncated or corrupt — download it again"
        ) from exc
    instrume = str(primary.get("INSTRUME", "")).strip()
    exp_type = str(primary.get("EXP_TYPE", "")).strip()
    detector = str(primary.get("DETECTOR", "")).strip()
    if instrume != "MIRI" or detector not in MRS_DETECTORS or exp_type not in ("MIR_MRS", "MIR_FLATMRS"):
        raise InputError(
            f"{path}: not a MIRI MRS exposure (INSTRUME={instrume!r}, DETECTOR={detector!r}, "
            f"EXP_TYPE={exp_type!r}); mrsdask needs MIR_MRS level-2 files from MIRIFUSHORT/MIRIFULONG"
        )
    missing = [ext for ext in ("SCI", "ERR", "DQ") if ext not in names]
    if missing:
        raise InputError(f"{path}: missing extension(s) {', '.join(missing)}; expected a cal or rate file")
    shape = shapes["SCI"]
    if shape != DETECTOR_SHAPE:
        raise InputError(
            f"{path}: SCI has shape {shape}, expected {DETECTOR_SHAPE} (full-frame MRS detector); "
            "3-D rateints files must be averaged first"
        )
    if "ASDF" not in names or str(primary.get("S_WCS", "")).strip() != "COMPLETE":
        raise InputError(
            f"{path}: no WCS (assign_wcs has not run: S_WCS={primary.get('S_WCS')!r}); "
            "run the official calwebb_spec2 assign_wcs step on it first"
        )
    channel = str(primary.get("CHANNEL", "")).strip()
    band = str(primary.get("BAND", "")).strip().upper()
    if channel not in ("12", "34") or band not in SUBBAND_LETTER:
        raise InputError(
            f"{path}: CHANNEL={channel!r} BAND={band!r} is not a standard MRS setting "
            "(cross-dichroic exposures are not supported)"
        )
    sci = sci_header if sci_header is not None else primary
    source_type, source_type_rule = decide_source_type(ChainMap(primary, sci))  # SRCTYPE is in SCI
    return ExposureInfo(
        path=str(path),
        filename=str(primary.get("FILENAME", str(path).rsplit("/", 1)[-1])).strip(),
        exptype=exptype or ("background" if header_flag(primary, "BKGDTARG") else "science"),
        detector=detector,
        channel=channel,
        band=band,
        exp_type=exp_type,
        source_type=source_type,
        source_type_rule=source_type_rule,
        target_type=str(primary.get("TARGTYPE", "FIXED") or "FIXED").strip().upper(),
        targ_ra=_float(primary, "TARG_RA"),
        targ_dec=_float(primary, "TARG_DEC"),
        ra_ref=_float(sci, "RA_REF"),
        dec_ref=_float(sci, "DEC_REF"),
        v2_ref=_float(sci, "V2_REF"),
        v3_ref=_float(sci, "V3_REF"),
        roll_ref=_float(sci, "ROLL_REF", 0.0),
        exptime=_float(primary, "EFFEXPTM", _float(primary, "EXPTIME", 0.0)),
        s_region=str(sci.get("S_REGION", "")).strip(),
        bkgdtarg=header_flag(primary, "BKGDTARG"),
        mt_ra=_float(sci, "MT_RA", _float(primary, "MT_RA")),
        mt_dec=_float(sci, "MT_DEC", _float(primary, "MT_DEC")),
        mu_ra=_float(primary, "MU_RA"),  # arcsec/yr, μα·cos δ (the official target proper motion)
        mu_dec=_float(primary, "MU_DEC"),
        mu_epoch=str(primary.get("MU_EPOCH", "") or "").strip(),
        expmid=_float(primary, "EXPMID"),  # MJD (UTC) of the exposure's mid-time
    )


@functools.lru_cache(maxsize=8)
def load_wcs(path: str):
    """The gwcs of a level-2 file (cached per process: tasks on one worker share it).

    Only the ``meta.wcs`` node of the file's ASDF extension is converted (a lazy ASDF tree,
    no schema validation of the rest of the metadata): the same gwcs object that
    ``stdatamodels`` would give, at about half the cost.
    """
    return read_planes_and_wcs(path, planes=False)[1]


def read_planes(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCI (float32), ERR (float32) and DQ (uint32) planes of a level-2 file."""
    return read_planes_and_wcs(path, wcs=False)[0]


def read_planes_and_wcs(path: str, planes: bool = True, wcs: bool = True):
    """Read a level-2 file once (one download from an object store) for its planes and/or gwcs.

    Returns
    -------
    (sci, err, dq) or None, gwcs or None
    """
    arrays, raw = _read_planes_and_asdf(path, planes, wcs)
    return arrays, (wcs_from_asdf_bytes(path, raw) if wcs else None)


def read_planes_and_wcs_parts(path: str):
    """Planes and the gwcs split into instrument model and pointing (one read of the file).

    Returns
    -------
    (sci, err, dq), mrsdask.io.mrs_wcs.MrsWcsParts
    """
    from mrsdask.io.mrs_wcs import split_mrs_wcs

    arrays, raw = _read_planes_and_asdf(path, True, True)
    return arrays, split_mrs_wcs(path, raw)


def read_asdf_extension(path: str) -> bytes:
    """The raw bytes of a level-2 file's ``ASDF`` extension (its metadata tree and gwcs)."""
    return bytes(_read_planes_and_asdf(path, False, True)[1])


def read_wcs_parts(path: str):
    """The gwcs of a cal file split into instrument model and pointing (no science planes read).

    Returns
    -------
    mrsdask.io.mrs_wcs.MrsWcsParts
    """
    from mrsdask.io.mrs_wcs import split_mrs_wcs

    _, raw = _read_planes_and_asdf(path, False, True)
    return split_mrs_wcs(path, raw)


def _read_planes_and_asdf(path: str, planes: bool, wcs: bool):
    """SCI, ERR, DQ and the ASDF extension's bytes of a level-2 file, as astropy reads them.

    Only those HDUs' bytes are read, by their offsets (:mod:`mrsdask.io.fits_headers`), into
    the arrays that are returned: a third of a ``cal`` file, no copy of the rest, no astropy
    object per card (~4x quicker than ``fits.open`` of the whole file, all of it holding the
    GIL while the other tasks of a build wait for it). A remote file is downloaded once and
    read from memory. Anything the direct reader does not take as plain (scaled floats, other
    integer kinds, a variable-length ASDF column…) is read by astropy instead: the same values.
    """
    with paths.open_file(path) as opened:
        fobj = io.BytesIO(opened.read()) if paths.is_remote(path) else opened
        size = fobj.seek(0, io.SEEK_END)
        fobj.seek(0)
        try:
            headers = fits_headers.read_headers(fobj, size, keep=("SCI", "ERR", "DQ", "ASDF"))
            arrays = None
            if planes:
                arrays = (_image(fobj, headers, "SCI", np.float32), _image(fobj, headers, "ERR", np.float32),
                          _image(fobj, headers, "DQ", np.uint32))
            raw = _asdf_bytes(path, fobj, headers) if wcs else None
        except _NotPlain:
            fobj.seek(0)
            return _read_with_astropy(path, fobj.read(), planes, wcs)
    return arrays, raw


class _NotPlain(Exception):
    """An HDU that :func:`_read_planes_and_asdf` leaves to astropy."""


#: Unscaled image data the direct reader takes: BITPIX → big-endian dtype, and for integers
#: the BZERO that makes them unsigned (astropy's ``uint=True``).
_IMAGE_TYPES = {-32: ">f4", -64: ">f8", 16: ">i2", 32: ">i4"}
_UNSIGNED_ZERO = {16: 2**15, 32: 2**31}


def _image(fobj, headers, name: str, dtype) -> np.ndarray:
    """Image HDU ``name`` as ``dtype`` (float32 or uint32), read from its data offset."""
    header = headers.extensions.get(name)
    if header is None or header.get("XTENSION") != "IMAGE":
        raise _NotPlain
    bitpix, bzero = int(header["BITPIX"]), header.get("BZERO", 0)
    unsigned = bitpix in _UNSIGNED_ZERO and bzero == _UNSIGNED_ZERO[bitpix]
    if (bitpix not in _IMAGE_TYPES or header.get("BSCALE", 1) != 1 or not (bzero == 0 or unsigned)
            or (unsigned and np.dtype(dtype) != np.uint32) or (bitpix < 0) != (np.dtype(dtype).kind == "f")):
        raise _NotPlain
    shape = tuple(int(header[f"NAXIS{k}"]) for k in range(int(header["NAXIS"]), 0, -1))
    data = _read_exactly(fobj, headers.data_at[name], np.empty(shape, dtype=_IMAGE_TYPES[bitpix]))
    native = data.byteswap(inplace=True).view(data.dtype.newbyteorder("="))
    if unsigned:  # stored as signed minus BZERO: flip the sign bit
        native = native.view(native.dtype.str.replace("i", "u"))
        native ^= native.dtype.type(_UNSIGNED_ZERO[bitpix])
    return native if native.dtype == np.dtype(dtype) else native.astype(dtype)


def _asdf_bytes(path: str, fobj, headers) -> bytearray:
    """The ASDF extension's bytes: its table's one row of one fixed-size byte column (read into
    a bytearray and returned as it is: no copy of its ~9 MB under the GIL)."""
    if "ASDF" not in headers.names:
        raise InputError(f"{path}: no ASDF extension (no WCS); run assign_wcs on it")
    header = headers.extensions["ASDF"]
    width = int(header.get("NAXIS1", -1))
    if (header.get("XTENSION") != "BINTABLE" or header.get("TFIELDS") != 1 or header.get("NAXIS2") != 1
            or str(header.get("TTYPE1", "")).strip() != "ASDF_METADATA" or header.get("PCOUNT", 0) != 0
            or str(header.get("TFORM1", "")).strip() not in (f"{width}B", "B" if width == 1 else "")):
        raise _NotPlain
    return _read_exactly(fobj, headers.data_at["ASDF"], bytearray(width))


def _read_exactly(fobj, offset: int, into):
    fobj.seek(offset)
    view = memoryview(into).cast("B")
    done = 0
    while done < len(view):
        n = fobj.readinto(view[done:])
        if not n:
            raise InputError(f"{getattr(fobj, 'name', 'file')}: ends inside its data (at byte {offset + done}); "
                             "the file is cut short: copy or download it again")
        done += n
    return into


def _read_with_astropy(path: str, content: bytes, planes: bool, wcs: bool):
    with fits.open(io.BytesIO(content)) as hdul:
        arrays = None
        if planes:
            arrays = (
                np.asarray(hdul["SCI"].data, dtype=np.float32),
                np.asarray(hdul["ERR"].data, dtype=np.float32),
                np.asarray(hdul["DQ"].data).astype(np.uint32),
            )
        raw = None
        if wcs:
            if "ASDF" not in hdul:
                raise InputError(f"{path}: no ASDF extension (no WCS); run assign_wcs on it")
            raw = bytes(hdul["ASDF"].data["ASDF_METADATA"][0])
    return arrays, raw


def read_headers(path: str) -> tuple[str, str]:
    """Primary and SCI headers as FITS header strings (kept for round trips)."""
    with paths.open_file(path) as fobj:
        with fits.open(io.BytesIO(fobj.read())) as hdul:
            return hdul[0].header.tostring(), hdul["SCI"].header.tostring()
