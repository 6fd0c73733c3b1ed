"""Write extracted spectra as official ``x1d`` FITS files (``MRSMultiSpecModel``).

The table has the columns of the pipeline's MRS spectra (``MRSSpecModel``): WAVELENGTH, FLUX,
FLUX_ERROR, SURF_BRIGHT, SB_ERROR, DQ, BACKGROUND, BKGD_ERROR, NPIXELS, RF_FLUX,
RF_SURF_BRIGHT, RF_BACKGROUND and the variance columns. As in the official step for cubes,
which carry only ERR, the variance columns are 0 and the errors are the square roots of the
summed ERR². Each spectrum carries the gwcs the official step gives it (:func:`spectral_wcs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from mrsdask.io import outputs
from mrsdask.provenance import fits_cards

if TYPE_CHECKING:
    import xarray as xr

_COLUMNS = {"WAVELENGTH": "wavelength", "FLUX": "flux", "FLUX_ERROR": "flux_error", "SURF_BRIGHT": "surf_bright",
            "SB_ERROR": "sb_error", "DQ": "dq", "BACKGROUND": "background", "BKGD_ERROR": "bkgd_error",
            "NPIXELS": "npixels", "RF_FLUX": "rf_flux", "RF_SURF_BRIGHT": "rf_surf_bright",
            "RF_BACKGROUND": "rf_background"}
_UNITS = {"wavelength": "um", "flux": "Jy", "flux_error": "Jy", "flux_var_poisson": "Jy^2", "flux_var_rnoise": "Jy^2",
          "flux_var_flat": "Jy^2", "surf_bright": "MJy/sr", "sb_error": "MJy/sr", "background": "MJy/sr",
          "bkgd_error": "MJy/sr", "rf_flux": "Jy", "rf_surf_bright": "MJy/sr", "rf_background": "MJy/sr"}


def spectral_wcs(ra: float, dec: float, wavelength: np.ndarray):
    """The gwcs of an extracted spectrum: pixel → (RA, Dec, λ), as the official ``extract_1d`` builds it.

    A constant sky position and a table of wavelengths (µm) along the pixel axis, with the
    inverse table when the wavelengths are monotonic (the layout of
    ``jwst.extract_1d.spec_wcs.create_spectral_wcs``; built here without importing the
    pipeline's step package).
    """
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling.models import Const1D, Mapping, Tabular1D
    from gwcs import coordinate_frames as cf
    from gwcs.wcs import WCS

    wavelength = np.asarray(wavelength, dtype=np.float64)
    pixel_frame = cf.CoordinateFrame(naxes=1, axes_type=("SPATIAL",), axes_order=(0,), unit=(u.pix,),
                                     name="pixel_frame")
    sky = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
    spectral = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,), axes_names=("wavelength",))
    world = cf.CompositeFrame([sky, spectral], name="world")
    pixel = np.arange(len(wavelength), dtype=float)
    transform = Mapping((0, 0, 0)) | Const1D(ra) & Const1D(dec) & Tabular1D(
        points=pixel, lookup_table=wavelength, bounds_error=False, fill_value=None)
    transform.name = "pixel_to_world"
    steps = np.diff(wavelength)
    if np.all(steps > 0):
        transform.inverse = Mapping((2,)) | Tabular1D(points=wavelength, lookup_table=pixel, bounds_error=False)
    elif np.all(steps < 0):
        transform.inverse = Mapping((2,)) | Tabular1D(points=wavelength[::-1], lookup_table=pixel[::-1],
                                                       bounds_error=False)
    return WCS([(pixel_frame, transform), (world, None)])


def _record_extraction(model, a: dict) -> list[str]:
    """What the extraction did, in the primary header: the official step flags and reference names, and
    mrsdask's keywords (``APCORR``/``APCORFIL`` aperture correction, ``SRCPOS`` how the centre was
    found, ``PMAPPL``/``PMRA``/``PMDEC`` proper motion, ``SPLEAK`` spectral leak) with the full
    sentences as HISTORY (returned: stdatamodels drops HISTORY cards of ``extra_fits``, so
    :func:`write_x1d` adds them to the written file)."""
    model.meta.cal_step.extract_1d = "COMPLETE"
    if a.get("extraction_parameters"):
        model.meta.ref_file.extract1d.name = str(a["extraction_parameters"])
    cards = []
    apcorr = str(a.get("aperture_correction", ""))
    if apcorr:
        cards.append(["APCORR", apcorr.startswith("applied"), "aperture correction applied (APCORR table)"])
        if a.get("apcorr_file"):
            cards.append(["APCORFIL", str(a["apcorr_file"]), "APCORR reference file used"])
    if a.get("center_from"):
        cards.append(["SRCPOS", str(a["center_from"])[:68], "how the aperture centre was found"])
    if a.get("proper_motion"):
        applied = str(a["proper_motion"]).startswith("applied")
        cards.append(["PMAPPL", applied, "target moved by its proper motion to EXPMID"])
        if applied:
            cards += [["PMRA", float(a["targ_ra_moved"]), "[deg] target RA at the exposures' mid-time"],
                      ["PMDEC", float(a["targ_dec_moved"]), "[deg] target Dec at the exposures' mid-time"]]
    leak = str(a.get("spectral_leak", ""))
    if leak:
        applied = leak.startswith("applied")
        if applied or leak.startswith("skipped"):
            model.meta.cal_step.spectral_leak = "COMPLETE" if applied else "SKIPPED"
        cards.append(["SPLEAK", applied, "spectral leak (1B in 3A) removed from this spectrum"])
        if a.get("mrsptcorr_file"):
            model.meta.ref_file.mrsptcorr.name = str(a["mrsptcorr_file"])
    for key in ("mu_ra", "mu_dec"):
        value = a.get(key)
        if value is not None and np.isfinite(float(value)):
            setattr(model.meta.target, "proper_motion_" + key[3:], float(value))
    if a.get("mu_epoch"):
        model.meta.target.proper_motion_epoch = str(a["mu_epoch"])
    history = [f"mrsdask extract, {what}: {text}"
               for what, text in (("centre", a.get("center_from")), ("aperture correction", apcorr),
                                  ("proper motion", a.get("proper_motion")), ("spectral leak", leak),
                                  ("residual fringe", a.get("residual_fringe_note"))) if text]
    for key, value, comment in fits_cards():  # CAL_VER, CAL_VCS, DATE, software versions
        if key == "CAL_VER":
            model.meta.calibration_software_version = value
        elif key == "DATE":
            model.meta.date = value
        elif key == "HISTORY":
            history.append(value)
        else:
            cards.append([key, value, comment])
    if a.get("mrsdask_request"):
        history.append(f"mrsdask cube parameters: {a['mrsdask_request']}")
    model.extra_fits = {"PRIMARY": {"header": cards}}
    return history


def load_writer() -> None:
    """Load what :func:`write_x1d` needs: the jwst spectrum models' schemas, asdf's extensions
    and the gwcs converters, ~2.1 of the 2.3 CPU-s of a first ``x1d`` file; ~1.1 in the writer
    process, which lightens asdf first (:func:`mrsdask.io.writer_process.lighter_asdf`)."""
    import io

    import asdf
    from stdatamodels.jwst import datamodels

    datamodels.MRSSpecModel().get_dtype("spec_table")
    datamodels.MRSMultiSpecModel().close()
    tiny = spectral_wcs(0.0, 0.0, np.array([5.0, 6.0]))
    asdf.AsdfFile({"wcs": tiny}).write_to(io.BytesIO())


def write_x1d(spectrum: xr.Dataset, path: str) -> str:
    """Write a spectrum from :func:`mrsdask.extract.extract_spectrum` (lazy or loaded) as an ``x1d``
    FITS file at ``path`` (``*_x1d.fits``, a path or ``s3://`` URL), staged as
    :func:`mrsdask.cube.export.write_s3d` writes; returns ``path``.
    """
    spectrum = spectrum.load()
    return write_x1d_columns({name: spectrum[name].values for name in _COLUMNS.values()}, spectrum.attrs, path)


def _sort_extension_history(hdul) -> None:
    """The ASDF extension of a file open for update, its list of extensions used in sorted order
    (:func:`mrsdask.io.asdf_tree.sorted_extension_history`: the same bytes from every process)."""
    from mrsdask.io.asdf_tree import sorted_extension_history

    columns = getattr(hdul["ASDF"], "columns", None) if "ASDF" in hdul else None
    if columns is None or "ASDF_METADATA" not in columns.names:
        return
    cell = hdul["ASDF"].data["ASDF_METADATA"][0]
    if cell.dtype == np.uint8:
        cell[:] = np.frombuffer(sorted_extension_history(cell.tobytes()), dtype=np.uint8)


def write_x1d_columns(columns: Mapping[str, np.ndarray], a: Mapping, path: str) -> str:
    """:func:`write_x1d` of a computed spectrum given as its columns (numpy arrays by the
    Dataset's variable names, ``wavelength`` included) and its attributes ``a``."""
    from stdatamodels.jwst import datamodels

    table = np.zeros(len(columns["wavelength"]), dtype=datamodels.MRSSpecModel().get_dtype("spec_table"))
    for column, name in _COLUMNS.items():
        table[column] = columns[name]
    spec = datamodels.MRSSpecModel(spec_table=table)
    spec.meta.wcs = spectral_wcs(a["slit_ra"], a["slit_dec"], columns["wavelength"])
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
    model.meta.origin = "mrsdask"  # ORIGIN: how a later run knows it may replace the file
    model.meta.telescope = "JWST"  # TELESCOP: what specutils identifies a JWST x1d by
    history = _record_extraction(model, a)
    model.spec.append(spec)
    with outputs.staged_file(path) as tmp:  # the final name, so FILENAME is right
        model.save(tmp)
        with fits.open(tmp, mode="update") as hdul:
            for text in history:
                hdul[0].header.add_history(text)
            _sort_extension_history(hdul)
    model.close()
    return path
