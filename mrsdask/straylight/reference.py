"""The MRSXARTCORR reference file: per-row cross-artifact parameters of each band and channel.

Format (official ``MirMrsXArtCorrModel``, schema ``miri_mrsxartcorr``): twelve binary tables
``CH1A`` … ``CH4C`` (model attributes ``ch1a_table`` …), 1024 rows each, one per detector row,
with columns ``YROW`` (int16), ``LOR_FWHM``, ``LOR_SCALE`` (Lorentzian full width at half
maximum in pixels, and amplitude per unit source), ``GAU_FWHM``, ``GAU_XOFF`` (width and offset
in pixels of the Gaussian pairs), ``GAU_SCALE1``, ``GAU_SCALE2`` (their amplitudes), float32.

The CRDS files are not shipped with mrsdask: give one with ``override_mrsxartcorr``.
:func:`write_xartcorr` writes a file of this format from arrays (e.g. for tests, or to try
other parameters); the official step opens it as it opens the CRDS file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from mrsdask.errors import InputError
from mrsdask.io.reference_files import save_reference, stamp_reference
from mrsdask.straylight.kernels import PARAMETER_COLUMNS

#: Band tables of the file (model attribute ``<name>_table``, FITS extension ``<NAME>``).
TABLES = tuple(f"ch{c}{b}" for c in "1234" for b in "abc")
ROWS = 1024


@dataclass(frozen=True)
class XArtCorrReference:
    """The parameters of an MRSXARTCORR file.

    Attributes
    ----------
    path : str
        The file.
    tables : dict of str to ndarray
        ``"ch1a"`` … → float64 array (6, 1024): the :data:`~mrsdask.straylight.kernels.PARAMETER_COLUMNS`
        per detector row. A table absent from the file is absent here (no correction there,
        as officially).
    """

    path: str
    tables: dict[str, np.ndarray] = field(default_factory=dict)

    def params(self, name: str | None) -> np.ndarray | None:
        """The parameters of table ``name`` (None: no such table, or no name)."""
        return self.tables.get(name) if name else None


def read_xartcorr(path: str | os.PathLike) -> XArtCorrReference:
    """Read an MRSXARTCORR reference file through the official ``MirMrsXArtCorrModel``.

    Raises
    ------
    InputError
        If the file cannot be opened as that model, or a table lacks a column or has not
        1024 rows.
    """
    from stdatamodels.jwst.datamodels import MirMrsXArtCorrModel

    path = str(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: MRSXARTCORR reference file not found; give an existing file "
                         "(override_mrsxartcorr)")
    try:
        model = MirMrsXArtCorrModel(path)
    except Exception as exc:  # noqa: BLE001 - any reason the official model refuses it
        raise InputError(f"{path}: not an MRSXARTCORR reference file ({type(exc).__name__}: {exc}); "
                         "give the CRDS mrsxartcorr file or one written by write_xartcorr") from exc
    tables = {}
    with model:
        for name in TABLES:
            table = getattr(model, f"{name}_table", None)
            if table is None or len(table) == 0:
                continue
            names = {n.lower(): n for n in table.dtype.names}
            missing = [c for c in PARAMETER_COLUMNS if c not in names]
            if missing:
                raise InputError(f"{path}: table {name.upper()} lacks column(s) {', '.join(missing)}")
            if len(table) != ROWS:
                raise InputError(f"{path}: table {name.upper()} has {len(table)} rows, not {ROWS} "
                                 "(one per detector row)")
            tables[name] = np.stack([np.asarray(table[names[c]], dtype=np.float64) for c in PARAMETER_COLUMNS])
    return XArtCorrReference(path, tables)


def write_xartcorr(path: str | os.PathLike, tables: dict[str, np.ndarray], description: str = "") -> str:
    """Write an MRSXARTCORR reference file (official format) from per-row parameters.

    Parameters
    ----------
    path : str
        The FITS file to write.
    tables : dict of str to array (6, 1024)
        ``"ch1a"`` … → the :data:`~mrsdask.straylight.kernels.PARAMETER_COLUMNS` per row
        (a table left out is not written).
    description : str
        The file's DESCRIP keyword.
    """
    from stdatamodels.jwst.datamodels import MirMrsXArtCorrModel

    model = MirMrsXArtCorrModel()
    for name, values in tables.items():
        if name not in TABLES:
            raise ValueError(f"unknown MRSXARTCORR table {name!r}; one of {', '.join(TABLES)}")
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (len(PARAMETER_COLUMNS), ROWS):
            raise ValueError(f"table {name}: parameters of shape {values.shape}, expected (6, {ROWS})")
        dtype = [("yrow", np.int16)] + [(c, np.float32) for c in PARAMETER_COLUMNS]
        table = np.zeros(ROWS, dtype=dtype)
        table["yrow"] = np.arange(ROWS)
        for c, row in zip(PARAMETER_COLUMNS, values):
            table[c] = row
        setattr(model, f"{name}_table", table)
    stamp_reference(model, "MRSXARTCORR", description or "MRSXARTCORR parameters written by mrsdask",
                    exp_type="MIR_MRS", detector="N/A")
    return save_reference(model, path)
