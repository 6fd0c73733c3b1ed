"""A cube's gwcs and the ASDF document of its s3d file, apart from the rest of the s3d writer.

:mod:`mrsdask.io.writer_process` loads this module in its own process: it imports only
numpy and astropy's FITS module at first, then gwcs, jwst's FITS-WCS transforms and asdf
(:func:`load_writer`), none of xarray, dask or zarr that the rest of the s3d writer
(:mod:`mrsdask.cube.export`) needs (~0.9 CPU-s less for that process to load, on the core the
build's first tasks run on).
"""

from __future__ import annotations

import io

import numpy as np
from astropy.io import fits

from mrsdask.io.asdf_tree import sorted_extension_history


def _wave_table(wavelength) -> np.ndarray:
    """The WCS-TABLE row of a cube: its wavelengths (µm, float32) as one (n, 1) column."""
    wave = np.asarray(wavelength, dtype=np.float32)
    return np.array([(wave[None].T,)], dtype=[("wavelength", "<f4", (wave.size, 1))])


def gwcs_from_header(wcs_header: str, shape: tuple[int, int, int], wavelength: np.ndarray):
    """:func:`mrsdask.cube.export.cube_gwcs` from the cube's FITS WCS keywords (text), its (nz, ny, nx) and its wavelengths."""
    import astropy.units as u
    from gwcs import coordinate_frames as cf
    from gwcs import utils as gwutils
    from gwcs import wcs as gwcs_wcs
    from jwst.assign_wcs.pointing import fitswcs_transform_from_model, frame_from_model

    header = fits.Header.fromstring(wcs_header, sep="\n")
    nz, ny, nx = shape
    wcsinfo = _model_wcsinfo(header)
    wavetable = None
    _, spectral_axes, _ = gwutils.get_axes(wcsinfo)
    if spectral_axes and wcsinfo["CTYPE"][spectral_axes[0]] == "WAVE-TAB":
        wavetable = _wave_table(wavelength)
    transform = fitswcs_transform_from_model(wcsinfo, wavetable=wavetable)
    if wcsinfo["WCSAXES"] != 3:
        raise ValueError(f"a cube has 3 WCS axes, not {wcsinfo['WCSAXES']}")
    detector = cf.CoordinateFrame(name="detector", naxes=3, axes_order=(0, 1, 2), unit=(u.pix, u.pix, u.pix),
                                  axes_type=["SPATIAL", "SPATIAL", "SPECTRAL"], axes_names=("x", "y", "z"),
                                  axis_physical_types=None)
    wcs = gwcs_wcs.WCS([(detector, transform), (frame_from_model(wcsinfo), None)])
    wcs.bounding_box = ((0, nx - 1), (0, ny - 1), (0, nz - 1))
    return wcs


def cube_asdf_bytes(wcs_header: str, shape: tuple[int, int, int], wavelength: np.ndarray) -> bytes:
    """The ASDF document of a cube's s3d ``ASDF`` extension: its gwcs (:func:`mrsdask.cube.export.cube_gwcs`), as bytes.

    What :mod:`mrsdask.io.writer_process` runs for :func:`mrsdask.cube.export.write_s3d` and the
    s3d sinks (plain arguments, bytes out).
    """
    import asdf

    buffer = io.BytesIO()
    asdf.AsdfFile({"meta": {"wcs": gwcs_from_header(wcs_header, shape, wavelength)}}).write_to(buffer)
    return sorted_extension_history(buffer.getvalue())


def _model_wcsinfo(header: fits.Header) -> dict:
    """What ``jwst.assign_wcs.pointing.wcsinfo_from_model`` reads from an ``IFUCubeModel`` whose
    ``meta.wcsinfo`` holds the cube's WCS keywords: a keyword the header lacks is None there
    (every one of them is in the model's schema), as ``meta.coordinates.reference_frame``."""
    wcsaxes = header.get("WCSAXES")
    wcsinfo = {"WCSAXES": wcsaxes}
    for key in ("CRPIX", "CRVAL", "CDELT", "CTYPE", "CUNIT"):
        wcsinfo[key] = np.array([header.get(f"{key}{ax}") for ax in range(1, wcsaxes + 1)])
    pc = np.zeros((wcsaxes, wcsaxes))
    for i in range(1, wcsaxes + 1):
        for j in range(1, wcsaxes + 1):
            pc[i - 1, j - 1] = header.get(f"PC{i}_{j}")
    wcsinfo["PC"] = pc
    wcsinfo["RADESYS"] = None
    wcsinfo["has_cd"] = False
    return wcsinfo


def load_writer() -> None:
    """Load what :func:`cube_asdf_bytes` needs: the jwst and gwcs imports, asdf's extensions and
    schemas (~2.5 CPU-s the first time in a process; :mod:`mrsdask.io.writer_process` runs it)."""
    import astropy.units as u
    from astropy.modeling.models import Shift
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gwcs_wcs
    from jwst.assign_wcs.pointing import fitswcs_transform_from_model  # noqa: F401  (gwcs_from_header)

    import asdf

    frame = dict(naxes=1, axes_order=(0,), axes_type=["SPATIAL"], unit=(u.pix,))
    tiny = gwcs_wcs.WCS([(cf.CoordinateFrame(name="detector", **frame), Shift(1.0)),
                         (cf.CoordinateFrame(name="world", **frame), None)])
    asdf.AsdfFile({"meta": {"wcs": tiny}}).write_to(io.BytesIO())  # asdf loads its extensions
