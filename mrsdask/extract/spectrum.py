"""1-D spectra of cubes: :func:`extract_spectrum` maps the aperture kernel over wavelength slabs.

The result is a lazy xarray Dataset along ``wavelength`` with the columns of the official
``x1d`` product (``flux`` in Jy, ``surf_bright`` in MJy/sr, ``background``, their errors,
``npixels``, ``dq``, and the ``rf_*`` columns of the 1-D residual-fringe correction when asked),
one Dask task per slab of cube planes (the cube's own chunks), so a cube larger than memory is
extracted in bounded memory and in parallel. :func:`mrsdask.io.x1d.write_x1d` writes it as an
``x1d`` FITS file.
"""

from __future__ import annotations

import logging

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.datamodel import cube as cmodel
from mrsdask.errors import ParameterError
from mrsdask.extract.kernels import OUTPUTS, extract_slab
from mrsdask.extract.parameters import ExtractionParameters, default_parameters

log = logging.getLogger(__name__)
SOURCE_TYPES = ("POINT", "EXTENDED")


def source_position(cube: xr.Dataset) -> tuple[float, float, str]:
    """Aperture centre (x, y; 0-based spaxels) from the cube's target position, as the official step.

    The spaxel nearest to TARG_RA/TARG_DEC (an integer position, by 3-D unit vectors); the
    centre of the cube (nx/2, ny/2) if the target is unknown or on the cube's edge.
    """
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    ra_t, dec_t = cube.attrs.get("targ_ra"), cube.attrs.get("targ_dec")
    if ra_t is None or dec_t is None or not np.isfinite([ra_t, dec_t]).all():
        return nx / 2.0, ny / 2.0, "cube centre (no target position)"
    ra, dec = (np.radians(np.asarray(cube[c].values, dtype=np.float64)) for c in ("ra", "dec"))
    target = np.array([np.cos(np.radians(dec_t)) * np.cos(np.radians(ra_t)),
                       np.cos(np.radians(dec_t)) * np.sin(np.radians(ra_t)), np.sin(np.radians(dec_t))])
    cart = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
    j, i = divmod(int(np.argmin(((cart - target) ** 2).sum(axis=-1))), nx)
    if i <= 0 or j <= 0 or i >= nx - 1 or j >= ny - 1:
        return nx / 2.0, ny / 2.0, "cube centre (the target is on or beyond the cube's edge)"
    return float(i), float(j), "spaxel nearest to TARG_RA/TARG_DEC"


def check_aperture_options(cube: xr.Dataset, source_type: str, center=None, rscale: float | None = None) -> None:
    """Refuse aperture options that do not apply to a cube, before anything is computed.

    ``center`` must lie on the cube and ``rscale`` in 0.5-3; both shape the aperture of a point
    source, and an extended source is extracted over the whole field, where they would be
    silently ignored: they are refused there.

    Raises
    ------
    ParameterError
    """
    name = cube.attrs.get("cube") or f"{cube.attrs.get('channel', '?')} {cube.attrs.get('band', '')}".strip()
    if str(source_type).upper() == "EXTENDED" and (center is not None or rscale is not None):
        given = " and ".join(o for o, v in (("--center", center), ("--rscale", rscale)) if v is not None)
        raise ParameterError(f"cube {name}: {given} set the aperture of a point source, but this cube is "
                             "extracted as an extended source (over the whole field); leave them out, or "
                             "pass --source-type point")
    if rscale is not None and not (np.isfinite(rscale) and 0.5 <= rscale <= 3.0):
        raise ParameterError(f"--rscale {rscale}: allowed 0.5-3 (the aperture radius is scaled by rscale/2)")
    if center is not None:
        ny, nx = cube.sizes["y"], cube.sizes["x"]
        x_c, y_c = float(center[0]), float(center[1])
        if not (np.isfinite([x_c, y_c]).all() and -0.5 <= x_c <= nx - 0.5 and -0.5 <= y_c <= ny - 0.5):
            raise ParameterError(f"cube {name}: aperture centre ({x_c:g}, {y_c:g}) is outside the cube ({nx} x {ny} "
                                 "spaxels, 0-based spaxel centres); give x in [-0.5, nx-0.5] and y in [-0.5, ny-0.5]")


def _channel(cube: xr.Dataset) -> int | None:
    channel = str(cube.attrs.get("channel", ""))
    return int(channel) if channel in ("1", "2", "3", "4") else None


def extract_spectrum(
    cube: xr.Dataset,
    params: ExtractionParameters | None = None,
    *,
    source_type: str | None = None,
    center: tuple[float, float] | None = None,
    rscale: float | None = None,
    residual_fringe: bool = False,
) -> xr.Dataset:
    """Extract the 1-D spectrum of a cube (lazy; one task per slab of planes).

    Parameters
    ----------
    cube : xarray.Dataset
        A cube following :mod:`mrsdask.datamodel.cube` (:func:`mrsdask.cube.build.open_cube`).
    params : ExtractionParameters, optional
        Aperture radii and method; default :func:`~mrsdask.extract.parameters.default_parameters`.
    source_type : {"POINT", "EXTENDED"}, optional
        Default: the cube's ``source_type`` (from the exposures' SRCTYPE).
    center : (float, float), optional
        Aperture centre (x, y) in 0-based spaxels; default :func:`source_position`.
    rscale : float, optional
        Scale the aperture radius by ``rscale / 2`` (official ``ifu_rscale``, 0.5-3).
    residual_fringe : bool
        Also fit and remove residual fringes from the spectra (official ``ifu_rfcorr``): fills
        ``rf_flux``, ``rf_surf_bright`` and ``rf_background`` (NaN otherwise). Only for
        single-band cubes, as in the official step.

    Returns
    -------
    xarray.Dataset
        Along ``wavelength`` (µm): ``flux``, ``flux_error`` (Jy), ``surf_bright``,
        ``sb_error``, ``background``, ``bkgd_error`` (MJy/sr), ``npixels``, ``npixels_bkg``,
        ``dq``, ``aperture_radius`` (arcsec), ``rf_flux``, ``rf_surf_bright``,
        ``rf_background``; attributes with the centre, source type and parameters.
    """
    params = params or default_parameters()
    source_type = str(source_type or cube.attrs.get("source_type") or "POINT").upper()
    if source_type not in SOURCE_TYPES:
        raise ParameterError(f"source type {source_type!r}: choose point or extended")
    point = source_type == "POINT"
    check_aperture_options(cube, source_type, center, rscale)
    nz, ny, nx = cube["sci"].shape
    wave = np.asarray(cube["wavelength"].values, dtype=np.float64)
    if point:
        if center is not None:
            x_c, y_c, how = float(center[0]), float(center[1]), "given"
        else:
            x_c, y_c, how = source_position(cube)
        scale = float(cube.attrs["cdelt1"]) * 3600.0  # arcsec per spaxel
        radius, inner, outer = params.at(wave, rscale)
        radius_px, inner_px, outer_px = radius / scale, inner / scale, outer / scale
    else:
        x_c, y_c, how = nx / 2.0 - 0.5, ny / 2.0 - 0.5, "whole cube (extended source)"
        radius = np.full(nz, np.nan)
        radius_px = inner_px = outer_px = np.zeros(nz)
    sci, err, wmap = (cube[name].data if isinstance(cube[name].data, da.Array) else da.from_array(cube[name].values)
                      for name in ("sci", "err", "wmap"))
    err = err.rechunk(sci.chunks)
    wmap = wmap.rechunk(sci.chunks)
    kernel = dask.delayed(extract_slab, pure=True)
    parts = {name: [] for name in OUTPUTS}
    z0 = 0
    for i, size in enumerate(sci.chunks[0]):
        z1 = z0 + size
        block = kernel(sci.blocks[i], err.blocks[i], wmap.blocks[i], radius_px[z0:z1], inner_px[z0:z1],
                       outer_px[z0:z1], x_c, y_c, point=point, subtract_background=params.subtract_background,
                       method=params.method, subpixels=params.subpixels, bkg_sigma_clip=params.bkg_sigma_clip)
        for name in OUTPUTS:
            parts[name].append(da.from_delayed(block[name], shape=(size,),
                                               dtype=np.uint32 if name == "dq" else np.float64))
        z0 = z1
    col = {name: da.concatenate(parts[name]) for name in OUTPUTS}
    omega = float(cube.attrs["pixelarea_steradians"])
    npix = da.where(col["npixels"] > 0, col["npixels"], 1.0)
    npix_bkg = da.where(col["npixels_bkg"] > 0, col["npixels_bkg"], 1.0)
    surf_bright = col["temp_flux"] / npix
    background = col["background"] / npix_bkg
    data = {
        "flux": (col["temp_flux"] * omega * 1e6, "Jy"),
        "flux_error": (da.sqrt(col["f_var"]) * omega * 1e6, "Jy"),
        "surf_bright": (surf_bright, "MJy/sr"),
        "sb_error": (da.sqrt(col["f_var"]) / npix, "MJy/sr"),
        "background": (background, "MJy/sr"),
        "bkgd_error": (da.sqrt(col["b_var"]) / npix_bkg, "MJy/sr"),
        "npixels": (col["npixels"], ""),
        "npixels_bkg": (col["npixels_bkg"], ""),
        "dq": (col["dq"], ""),
        "aperture_radius": (da.from_array(radius), "arcsec"),
    }
    rf = {"rf_flux": "flux", "rf_surf_bright": "surf_bright", "rf_background": "background"}
    if residual_fringe:
        channel = _channel(cube)
        if channel is None or len(cube.attrs.get("bands", [])) > 1:
            raise ParameterError("the 1-D residual-fringe correction applies to single-band cubes "
                                 f"(this one: channel {cube.attrs.get('channel')}, bands {cube.attrs.get('bands')})")
        fitted = dask.delayed(_residual_fringe_1d, pure=True)(
            data["flux"][0], data["surf_bright"][0], data["background"][0], wave, channel)
        for i, (name, base) in enumerate(rf.items()):
            data[name] = (da.from_delayed(fitted[i], shape=(nz,), dtype=np.float64), data[base][1])
    else:
        for name, base in rf.items():
            data[name] = (da.full(nz, np.nan), data[base][1])
    ds = xr.Dataset({name: ("wavelength", values, {"units": units} if units else {})
                     for name, (values, units) in data.items()},
                    coords={"wavelength": ("wavelength", wave, {"units": "um"})})
    slit_ra, slit_dec = cmodel.celestial_wcs(cube.attrs).wcs_pix2world(nx / 2.0, ny / 2.0, 0)
    ds.attrs.update({
        "slit_ra": float(slit_ra), "slit_dec": float(slit_dec),
        "source_type": source_type, "x_center": x_c, "y_center": y_c, "center_from": how,
        "extraction_parameters": params.source, "method": params.method, "subpixels": params.subpixels,
        "subtract_background": bool(params.subtract_background and point), "bkg_sigma_clip": params.bkg_sigma_clip,
        "rscale": rscale if rscale is not None else "", "residual_fringe": bool(residual_fringe),
        "aperture_correction": "not applied", "channel": cube.attrs.get("channel", ""), "band": cube.attrs.get("band", ""),
        "pixelarea_steradians": omega, "targ_ra": cube.attrs.get("targ_ra", np.nan),
        "targ_dec": cube.attrs.get("targ_dec", np.nan),
    })
    log.info("extracting %s source at x=%.2f y=%.2f (%s), %s", source_type, x_c, y_c, how, params.source)
    return ds


def _residual_fringe_1d(flux, surf_bright, background, wave, channel):
    """The 1-D fringe fit of the three spectra; a spectrum that cannot be fitted gives NaN (as the official)."""
    from mrsdask.fringe import fit_residual_fringes_1d

    out = []
    for values in (flux, surf_bright, background):
        try:
            out.append(np.asarray(fit_residual_fringes_1d(values, wave, channel=channel), dtype=np.float64))
        except Exception as exc:  # the official step logs and leaves NaN
            log.warning("1-D residual fringe fit failed (%s); the rf_ column is NaN", exc)
            out.append(np.full(len(wave), np.nan))
    return tuple(out)
