"""1-D spectra of cubes: :func:`extract_spectrum` maps the aperture kernel over wavelength slabs.

The result is a lazy xarray Dataset along ``wavelength`` with the columns of the official
``x1d`` product (``flux`` in Jy, ``surf_bright`` in MJy/sr, ``background``, their errors,
``npixels``, ``dq``, and the ``rf_*`` columns of the 1-D residual-fringe correction when asked),
one Dask task per slab of cube planes (the cube's own chunks; :func:`mrsdask.dispatch.map_slabs`),
so a cube larger than memory is extracted in bounded memory and in parallel.
:func:`mrsdask.io.x1d.write_x1d` writes it as an ``x1d`` FITS file.
"""

from __future__ import annotations

import logging

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.datamodel import cube as cmodel
from mrsdask.dispatch import Output, map_slabs
from mrsdask.errors import ParameterError
from mrsdask.extract.kernels import OUTPUTS, extract_slab
from mrsdask.extract.parameters import ExtractionParameters, default_parameters, read_extract1d
from mrsdask.extract.request import SOURCE_TYPES, ExtractRequest

log = logging.getLogger(__name__)

#: The kernel's float64 sums per plane (its outputs but ``dq``), the rows of :func:`slab_sums`' table.
SUMS = tuple(name for name in OUTPUTS if name != "dq")


def slab_sums(*args, **kwargs) -> dict[str, np.ndarray]:
    """:func:`~mrsdask.extract.kernels.extract_slab` on a slab, its float64 sums stacked in one
    ``(len(SUMS), planes)`` table (``sums``), and ``dq``: two arrays per slab for Dask to pick
    from the task's result instead of seven."""
    columns = extract_slab(*args, **kwargs)
    return {"sums": np.stack([columns[name] for name in SUMS]), "dq": columns["dq"]}


def source_position(cube: xr.Dataset, ra_t: float | None = None, dec_t: float | None = None
                    ) -> tuple[float, float, str]:
    """Aperture centre (x, y; 0-based spaxels) from the target position, as the official step.

    The spaxel nearest to the target (``ra_t``/``dec_t``, default the cube's TARG_RA/TARG_DEC;
    an integer position, by 3-D unit vectors); the centre of the cube (nx/2, ny/2) if the
    target is unknown or on the cube's edge.
    """
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    if ra_t is None or dec_t is None:
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


def _name(cube: xr.Dataset) -> str:
    return cube.attrs.get("cube") or f"{cube.attrs.get('channel', '?')} {cube.attrs.get('band', '')}".strip()


def check_aperture_options(cube: xr.Dataset, request: ExtractRequest) -> str:
    """Refuse aperture options that do not apply to a cube, before anything is computed; the source type.

    ``center_xy`` must lie on the cube. ``center_xy``, ``ifu_rscale`` and ``ifu_autocen`` shape
    the aperture of a point source; an extended source is extracted over the whole field,
    where they would be silently ignored: they are refused there.

    Raises
    ------
    ParameterError
    """
    name = _name(cube)
    source_type = str(request.ifu_set_srctype or cube.attrs.get("source_type") or "POINT").upper()
    if source_type not in SOURCE_TYPES:
        raise ParameterError(f"cube {name}: source type {source_type!r}: choose POINT or EXTENDED")
    given = [o for o, v in (("center_xy", request.center_xy), ("ifu_rscale", request.ifu_rscale),
                            ("ifu_autocen", request.ifu_autocen or None)) if v is not None]
    if source_type == "EXTENDED" and given:
        raise ParameterError(f"cube {name}: {' and '.join(given)} set the aperture of a point source, but this cube "
                             "is extracted as an extended source (over the whole field); leave them out, or set "
                             "ifu_set_srctype POINT")
    if request.center_xy is not None:
        ny, nx = cube.sizes["y"], cube.sizes["x"]
        x_c, y_c = float(request.center_xy[0]), float(request.center_xy[1])
        if not (np.isfinite([x_c, y_c]).all() and -0.5 <= x_c <= nx - 0.5 and -0.5 <= y_c <= ny - 0.5):
            raise ParameterError(f"cube {name}: aperture centre ({x_c:g}, {y_c:g}) is outside the cube ({nx} x {ny} "
                                 "spaxels, 0-based spaxel centres); give x in [-0.5, nx-0.5] and y in [-0.5, ny-0.5]")
    return source_type


def _channel(cube: xr.Dataset) -> int | None:
    channel = str(cube.attrs.get("channel", ""))
    return int(channel) if channel in ("1", "2", "3", "4") else None


def single_band(cube: xr.Dataset) -> bool:
    """One channel and one band (the official ``_check_mrs_type``: where the 1-D fringe fit applies)."""
    return _channel(cube) is not None and str(cube.attrs.get("band", "")).lower() in ("short", "medium", "long")


def locate_source(cube: xr.Dataset, request: ExtractRequest) -> dict:
    """Aperture centre of a point source and how it was found (reads the cube for ``ifu_autocen``).

    Order as the official step: ``center_xy``; else ``ifu_autocen`` (falls back on the target
    if nothing is found); else the spaxel nearest to the target, moved by its proper motion
    when the cube carries one and ``proper_motion`` is on.
    """
    from mrsdask.extract.position import (AUTOCEN_MAX_WAVELENGTH, autocentre, has_proper_motion,
                                          target_at_observation)

    out = {"proper_motion": "not applied (no MU_RA/MU_DEC/MU_EPOCH/EXPMID in the inputs)"}
    if request.center_xy is not None:
        return {**out, "x": float(request.center_xy[0]), "y": float(request.center_xy[1]), "how": "given (center_xy)"}
    if request.ifu_autocen:
        below = np.flatnonzero(np.asarray(cube["wavelength"].values) < AUTOCEN_MAX_WAVELENGTH)
        planes = np.asarray(cube["sci"].isel(wavelength=below).values)
        found = autocentre(planes)
        if found is not None:
            return {**out, "x": found[0], "y": found[1], "how": "auto-centring (ifu_autocen: brightest DAOStarFinder "
                    "source of the median image below 26 um)"}
        log.warning("cube %s: auto-centring found no source; using the target position", _name(cube))
    ra_t, dec_t = cube.attrs.get("targ_ra"), cube.attrs.get("targ_dec")
    if has_proper_motion(cube.attrs) and ra_t is not None and np.isfinite([ra_t, dec_t]).all():
        if request.proper_motion:
            ra_t, dec_t, text = target_at_observation(float(ra_t), float(dec_t), cube.attrs)
            out["proper_motion"] = "applied: " + text
            out["targ_ra_moved"], out["targ_dec_moved"] = ra_t, dec_t
        else:
            out["proper_motion"] = "not applied (proper_motion off); the target is at its MU_EPOCH position"
    x, y, how = source_position(cube, ra_t, dec_t)
    if request.ifu_autocen:
        how = "auto-centring found no source; " + how
    return {**out, "x": x, "y": y, "how": how}


def extract_spectrum(
    cube: xr.Dataset,
    params: ExtractionParameters | None = None,
    request: ExtractRequest | None = None,
    **options,
) -> xr.Dataset:
    """Extract the 1-D spectrum of a cube (lazy; one task per slab of planes).

    Parameters
    ----------
    cube : xarray.Dataset
        A cube following :mod:`mrsdask.datamodel.cube` (:func:`mrsdask.cube.builder.open_cube`).
    params : ExtractionParameters, optional
        Aperture radii and method; default the request's ``override_extract1d`` file, else
        :func:`~mrsdask.extract.parameters.default_parameters`.
    request : ExtractRequest, optional
        The options (official ``Extract1dStep`` names); default :class:`ExtractRequest`.
    **options
        Fields of :class:`ExtractRequest` that replace the request's (official names or the
        older ``source_type``, ``center``, ``rscale``, ``residual_fringe``).

    Returns
    -------
    xarray.Dataset
        Along ``wavelength`` (µm): ``flux``, ``flux_error`` (Jy), ``surf_bright``,
        ``sb_error``, ``background``, ``bkgd_error`` (MJy/sr), ``npixels``, ``npixels_bkg``,
        ``dq``, ``aperture_radius`` (arcsec), ``apcorr`` (the factor applied, 1 if none),
        ``rf_flux``, ``rf_surf_bright``, ``rf_background``; attributes with the centre and how
        it was found, the source type, the proper motion, the aperture correction and the
        parameters.
    """
    from mrsdask.extract.apcorr import CORRECTED, apcorr_factors, default_apcorr_file, read_apcorr

    request = make_request(request, options)
    if params is None:
        params = read_extract1d(request.override_extract1d, request.bkg_sigma_clip) if request.override_extract1d \
            else default_parameters()
    if request.subtract_background is not None or params.bkg_sigma_clip != request.bkg_sigma_clip:
        from dataclasses import replace

        params = replace(params, bkg_sigma_clip=request.bkg_sigma_clip,
                         subtract_background=params.subtract_background if request.subtract_background is None
                         else request.subtract_background)
    source_type = check_aperture_options(cube, request)
    point = source_type == "POINT"
    nz, ny, nx = cube["sci"].shape
    wave = np.asarray(cube["wavelength"].values, dtype=np.float64)
    located = {"proper_motion": "not used (extended source)"}
    scale = float(cube.attrs["cdelt1"]) * 3600.0  # arcsec per spaxel
    if point:
        located = locate_source(cube, request)
        x_c, y_c, how = located["x"], located["y"], located["how"]
        radius, inner, outer = params.at(wave, request.ifu_rscale)
        radius_px, inner_px, outer_px = radius / scale, inner / scale, outer / scale
    else:
        x_c, y_c, how = nx / 2.0 - 0.5, ny / 2.0 - 0.5, "whole cube (extended source)"
        radius = np.full(nz, np.nan)
        radius_px = inner_px = outer_px = np.zeros(nz)
    slabs = map_slabs(
        slab_sums, [cube[name].data for name in ("sci", "err", "wmap")],
        {"sums": Output(np.float64, ("sum", "wavelength"), {"sum": len(SUMS)}), "dq": np.uint32},
        per_plane={"radius": radius_px, "inner_bkg": inner_px, "outer_bkg": outer_px},
        shared={"x_center": x_c, "y_center": y_c, "point": point, "subtract_background": params.subtract_background,
                "method": params.method, "subpixels": params.subpixels, "bkg_sigma_clip": params.bkg_sigma_clip},
        label=f"extraction of cube {_name(cube)}",
    )
    # The slabs' results joined in one chunk (a spectrum is small): the arithmetic below is then
    # one task per column, not one per column and slab. By tasks, as Dask would choose for so
    # small an array: left to choose, it imports distributed to look for a client (~0.15 s).
    sums = slabs["sums"].rechunk((len(SUMS), nz), method="tasks")
    col = {name: sums[i] for i, name in enumerate(SUMS)}
    col["dq"] = slabs["dq"].rechunk(nz, method="tasks")
    omega = float(cube.attrs["pixelarea_steradians"])
    npix = da.where(col["npixels"] > 0, col["npixels"], 1.0)
    npix_bkg = da.where(col["npixels_bkg"] > 0, col["npixels_bkg"], 1.0)
    surf_bright = col["temp_flux"] / npix
    background = col["background"] / npix_bkg
    covar = float(request.ifu_covar_scale)
    data = {
        "flux": (col["temp_flux"] * omega * 1e6, "Jy"),
        "flux_error": (da.sqrt(col["f_var"]) * omega * 1e6 * covar, "Jy"),
        "surf_bright": (surf_bright, "MJy/sr"),
        "sb_error": (da.sqrt(col["f_var"]) / npix * covar, "MJy/sr"),
        "background": (background, "MJy/sr"),
        "bkgd_error": (da.sqrt(col["b_var"]) / npix_bkg * covar, "MJy/sr"),
        "npixels": (col["npixels"], ""),
        "npixels_bkg": (col["npixels_bkg"], ""),
        "dq": (col["dq"], ""),
        "aperture_radius": (da.from_array(radius, name=False), "arcsec"),
    }
    rf = {"rf_flux": "flux", "rf_surf_bright": "surf_bright", "rf_background": "background"}
    rf_done = "not applied (ifu_rfcorr off)"
    if request.ifu_rfcorr and not single_band(cube):
        rf_done = (f"not applied: ifu_rfcorr applies to single-band cubes (this one: channel "
                   f"{cube.attrs.get('channel')}, band {cube.attrs.get('band')}), as the official step")
    elif request.ifu_rfcorr:
        fitted = dask.delayed(_residual_fringe_1d, pure=True)(
            col["temp_flux"], surf_bright, background, wave, _channel(cube))
        scales = (omega * 1e6, 1.0, 1.0)  # the official fits the aperture sum, then converts it to Jy
        for i, (name, base) in enumerate(rf.items()):
            data[name] = (da.from_delayed(fitted[i], shape=(nz,), dtype=np.float64) * scales[i], data[base][1])
        rf_done = "applied (1-D residual-fringe fit; RF_ columns)"
    if rf_done != "applied (1-D residual-fringe fit; RF_ columns)":
        for name, base in rf.items():
            data[name] = (da.from_array(np.full(nz, np.nan), name=False), data[base][1])
    apcorr_file, factors = "", np.ones(nz)
    if not point:
        apcorr_done = "not applied (extended source)"
    elif not request.apply_apcorr:
        apcorr_done = "not applied (apply_apcorr off)"
    else:
        apcorr_file = request.override_apcorr or default_apcorr_file()
        table = read_apcorr(apcorr_file)
        factors = apcorr_factors(table, wave, radius_px, scale)
        for name in CORRECTED:
            data[name] = (data[name][0] * factors, data[name][1])
        apcorr_done = f"applied: {table.source}"
    data["apcorr"] = (da.from_array(factors, name=False), "")
    ds = xr.Dataset({name: ("wavelength", values, {"units": units} if units else {})
                     for name, (values, units) in data.items()},
                    coords={"wavelength": ("wavelength", wave, {"units": "um"})})
    slit_ra, slit_dec = cmodel.celestial_wcs(cube.attrs).wcs_pix2world(nx / 2.0, ny / 2.0, 0)
    ds.attrs.update({
        "slit_ra": float(slit_ra), "slit_dec": float(slit_dec),
        "source_type": source_type, "x_center": x_c, "y_center": y_c, "center_from": how,
        "extraction_parameters": params.source, "method": params.method, "subpixels": params.subpixels,
        "subtract_background": bool(params.subtract_background and point), "bkg_sigma_clip": params.bkg_sigma_clip,
        "rscale": request.ifu_rscale if request.ifu_rscale is not None else "",
        "residual_fringe": rf_done.startswith("applied"), "residual_fringe_note": rf_done,
        "aperture_correction": apcorr_done, "apcorr_file": apcorr_file.rsplit("/", 1)[-1],
        "ifu_covar_scale": covar, "proper_motion": located["proper_motion"],
        "channel": cube.attrs.get("channel", ""), "band": cube.attrs.get("band", ""),
        "pixelarea_steradians": omega, "targ_ra": cube.attrs.get("targ_ra", np.nan),
        "targ_dec": cube.attrs.get("targ_dec", np.nan),
    })
    for key in ("mu_ra", "mu_dec", "mu_epoch", "expmid"):
        if key in cube.attrs:
            ds.attrs[key] = cube.attrs[key]
    if "targ_ra_moved" in located:
        ds.attrs["targ_ra_moved"], ds.attrs["targ_dec_moved"] = located["targ_ra_moved"], located["targ_dec_moved"]
    log.info("extracting %s source at x=%.2f y=%.2f (%s), %s; aperture correction %s", source_type, x_c, y_c, how,
             params.source, apcorr_done)
    return ds


def make_request(request: ExtractRequest | None, options: dict) -> ExtractRequest:
    """``request`` (default :class:`ExtractRequest`) with ``options`` replaced (field names or aliases).

    Raises
    ------
    ParameterError
        For an unknown option (with the accepted names).
    """
    from dataclasses import replace

    from mrsdask.options import declared_options

    request = request or ExtractRequest()
    if not options:
        return request
    names = {}
    for opt in declared_options(ExtractRequest):
        names[opt.name] = opt
        for alias in opt.spec.aliases:
            names[alias] = opt
    values = {}
    for key, value in options.items():
        if key not in names:
            raise ParameterError(f"extraction option {key!r} is unknown; accepted: "
                                 f"{', '.join(o.name for o in declared_options(ExtractRequest))}")
        opt = names[key]
        if opt.name in values:
            raise ParameterError(f"give {opt.name!r} or its older name, not both")
        values[opt.name] = opt.to_field(value) if value is not None else None
    return replace(request, **values)


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
