"""Write extracted spectra as official ``x1d`` FITS files (``MRSMultiSpecModel``).

The table has the columns of the pipeline's MRS spectra (``MRSSpecModel``): WAVELENGTH, FLUX,
FLUX_ERROR, SURF_BRIGHT, SB_ERROR, DQ, BACKGROUND, BKGD_ERROR, NPIXELS, RF_FLUX,
RF_SURF_BRIGHT, RF_BACKGROUND and the variance columns. As in the official step for cubes,
which carry only ERR, the variance columns are 0 and the errors are the square roots of the
summed ERR². The spectrum's spectral WCS is made by the pipeline's own ``create_spectral_wcs``.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from mrsdask.io import paths

_COLUMNS = {"WAVELENGTH": "wavelength", "FLUX": "flux", "FLUX_ERROR": "flux_error", "SURF_BRIGHT": "surf_bright",
            "SB_ERROR": "sb_error", "DQ": "dq", "BACKGROUND": "background", "BKGD_ERROR": "bkgd_error",
            "NPIXELS": "npixels", "RF_FLUX": "rf_flux", "RF_SURF_BRIGHT": "rf_surf_bright",
            "RF_BACKGROUND": "rf_background"}
_UNITS = {"wavelength": "um", "flux": "Jy", "flux_error": "Jy", "flux_var_poisson": "Jy^2", "flux_var_rnoise": "Jy^2",
          "flux_var_flat": "Jy^2", "surf_bright": "MJy/sr", "sb_error": "MJy/sr", "background": "MJy/sr",
          "bkgd_error": "MJy/sr", "rf_flux": "Jy", "rf_surf_bright": "MJy/sr", "rf_background": "MJy/sr"}


def write_x1d(spectrum: xr.Dataset, path: str) -> str:
    """Write a spectrum from :func:`mrsdask.extract.extract_spectrum` as an ``x1d`` FITS file.

    Parameters
    ----------
    spectrum : xarray.Dataset
        Lazy or loaded.
    path : str
        Local output path (``*_x1d.fits``); written under a temporary name, then renamed.

    Returns
    -------
    str
        The path written.
    """
    from jwst.extract_1d.spec_wcs import create_spectral_wcs
    from stdatamodels.jwst import datamodels

    if paths.is_remote(path):
        raise NotImplementedError("x1d export writes local files; copy it to the object store afterwards")
    spectrum = spectrum.load()
    a = spectrum.attrs
    table = np.zeros(spectrum.sizes["wavelength"], dtype=datamodels.MRSSpecModel().get_dtype("spec_table"))
    table["WAVELENGTH"] = spectrum["wavelength"].values
    for column, name in _COLUMNS.items():
        if column != "WAVELENGTH":
            table[column] = spectrum[name].values
    spec = datamodels.MRSSpecModel(spec_table=table)
    spec.meta.wcs = create_spectral_wcs(a["slit_ra"], a["slit_dec"], spectrum["wavelength"].values)
    for name, unit in _UNITS.items():
        spec.spec_table.columns[name].unit = unit
    spec.slit_ra, spec.slit_dec = a["slit_ra"], a["slit_dec"]
    spec.source_type = a["source_type"]
    spec.extraction_x, spec.extraction_y = a["x_center"], a["y_center"]
    spec.detector = "MIRIFULONG" if str(a.get("channel", "1"))[:1] in "34" else "MIRIFUSHORT"
    model = datamodels.MRSMultiSpecModel()
    model.meta.instrument.name = "MIRI"
    model.meta.instrument.detector = spec.detector
    model.meta.exposure.type = "MIR_MRS"
    if a.get("channel"):
        model.meta.instrument.channel = str(a["channel"])
    if a.get("band"):
        model.meta.instrument.band = str(a["band"])
    if np.isfinite(a.get("targ_ra", np.nan)):
        model.meta.target.ra, model.meta.target.dec = float(a["targ_ra"]), float(a["targ_dec"])
    model.meta.target.source_type = a["source_type"]
    model.meta.filename = os.path.basename(path)
    model.spec.append(spec)
    tmp = f"{path}.part.fits"
    model.save(tmp)
    model.close()
    os.replace(tmp, path)
    return path
