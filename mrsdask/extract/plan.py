"""What an extraction reads of a cube besides its planes, and what it says of a spectrum.

Numpy only (no xarray, no Dask arrays): shared by the lazy spectra of
:mod:`mrsdask.extract.spectrum` and the plain slab graph of :mod:`mrsdask.extract.stored`.
A cube here is an xarray cube (:mod:`mrsdask.datamodel.cube`) or anything that offers the
same ``attrs``, ``sizes`` and ``cube[name].values`` (:class:`mrsdask.extract.stored.StoredCube`).

* :func:`plan_aperture` — source type, centre (:func:`locate_source`) and radii per plane;
* :func:`spectrum_columns` — the x1d columns from the kernel's sums (numpy or Dask arrays);
* :func:`spectrum_attrs` — the spectrum's attributes; :func:`announce_spectrum` its summary line.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mrsdask.errors import ParameterError
from mrsdask.extract.request import SOURCE_TYPES, ExtractRequest

if TYPE_CHECKING:
    import xarray as xr

    from mrsdask.extract.parameters import ExtractionParameters

log = logging.getLogger("mrsdask.extract.spectrum")  # the name its lines had before they moved here


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


def cube_name(cube: xr.Dataset) -> str:
    """The cube's name in its store, or its channel and band."""
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
    name = cube_name(cube)
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


def channel_number(cube: xr.Dataset) -> int | None:
    """The cube's channel (1-4), or None for a cube of several."""
    channel = str(cube.attrs.get("channel", ""))
    return int(channel) if channel in ("1", "2", "3", "4") else None


def single_band(cube: xr.Dataset) -> bool:
    """One channel and one band (the official ``_check_mrs_type``: where the 1-D fringe fit applies)."""
    return channel_number(cube) is not None and str(cube.attrs.get("band", "")).lower() in ("short", "medium", "long")


def _plane_chunk(variable) -> int | None:
    """The planes of one chunk of a cube's variable (an xarray variable, Dask-backed or not, or a
    :class:`mrsdask.extract.stored.StoredCube`'s), if known."""
    chunks = getattr(variable, "chunks", None)
    if chunks:
        first = chunks[0]
        return int(first[0] if isinstance(first, tuple) else first) or None
    encoded = getattr(variable, "encoding", {}).get("chunks")
    return int(encoded[0]) if encoded else None


def locate_source(cube: xr.Dataset, request: ExtractRequest) -> dict:
    """Aperture centre of a point source and how it was found (reads the cube for ``ifu_autocen``:
    an xarray cube, or a :class:`mrsdask.extract.stored.StoredCube`, which reads the same way).

    Order as the official step: ``center_xy``; else ``ifu_autocen`` (falls back on the target
    if nothing is found); else the spaxel nearest to the target, moved by its proper motion
    when the cube carries one and ``proper_motion`` is on.
    """
    from mrsdask.extract.position import (AUTOCEN_MAX_WAVELENGTH, brightest_source, has_proper_motion,
                                          load_source_finder, median_image, target_at_observation)

    out = {"proper_motion": "not applied (no MU_RA/MU_DEC/MU_EPOCH/EXPMID in the inputs)"}
    if request.center_xy is not None:
        return {**out, "x": float(request.center_xy[0]), "y": float(request.center_xy[1]), "how": "given (center_xy)"}
    if request.ifu_autocen:
        below = np.flatnonzero(np.asarray(cube["wavelength"].values) < AUTOCEN_MAX_WAVELENGTH)
        sci = cube["sci"]  # an xarray variable, or a StoredCube's (mrsdask.extract.stored): read by bands of rows
        loading = threading.Thread(target=load_source_finder, name="mrsdask-load-source-finder", daemon=True)
        loading.start()  # beside the reads and the median, which mostly leave the GIL free
        image = median_image(lambda z, y: sci.isel(wavelength=below[z], y=y).values, below.size,
                             cube.sizes["y"], cube.sizes["x"], plane_chunk=_plane_chunk(sci), dtype=sci.dtype)
        loading.join()
        found = brightest_source(image)
        if found is not None:
            return {**out, "x": found[0], "y": found[1], "how": "auto-centring (ifu_autocen: brightest DAOStarFinder "
                    "source of the median image below 26 um)"}
        log.warning("cube %s: auto-centring found no source; using the target position", cube_name(cube))
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


def resolve_parameters(params: ExtractionParameters | None, request: ExtractRequest) -> ExtractionParameters:
    """The apertures of an extraction: ``params``, else the request's ``override_extract1d`` file,
    else :func:`~mrsdask.extract.parameters.default_parameters`; with the request's
    ``bkg_sigma_clip`` and ``subtract_background``."""
    from mrsdask.extract.parameters import default_parameters, read_extract1d

    if params is None:
        params = read_extract1d(request.override_extract1d, request.bkg_sigma_clip) if request.override_extract1d \
            else default_parameters()
    if request.subtract_background is not None or params.bkg_sigma_clip != request.bkg_sigma_clip:
        params = replace(params, bkg_sigma_clip=request.bkg_sigma_clip,
                         subtract_background=params.subtract_background if request.subtract_background is None
                         else request.subtract_background)
    return params


@dataclass(frozen=True)
class Aperture:
    """Where and how a cube is extracted: all of it but the planes' sums.

    Attributes
    ----------
    source_type : str
        ``POINT`` or ``EXTENDED``.
    x, y : float
        Aperture centre (0-based spaxels); ``how`` it was found; ``located``: what
        :func:`locate_source` found (the proper motion).
    wave : numpy.ndarray
        The cube's wavelengths (µm).
    radius : numpy.ndarray
        Aperture radius per plane (arcsec; NaN for an extended source).
    per_plane : dict of str to numpy.ndarray
        The kernel's per-plane radii in spaxels (``radius``, ``inner_bkg``, ``outer_bkg``).
    shared : dict
        The kernel's other arguments (centre, source type, method…).
    scale : float
        Arcsec per spaxel.
    params : ExtractionParameters
    """

    source_type: str
    x: float
    y: float
    how: str
    located: dict
    wave: np.ndarray
    radius: np.ndarray
    per_plane: dict
    shared: dict
    scale: float
    params: Any

    @property
    def point(self) -> bool:
        return self.source_type == "POINT"


def plan_aperture(cube: xr.Dataset, params: ExtractionParameters, request: ExtractRequest) -> Aperture:
    """The aperture of each plane of ``cube`` (reads its wavelengths, and the sky positions or
    planes that locating a point source needs; see :func:`locate_source`)."""
    source_type = check_aperture_options(cube, request)
    point = source_type == "POINT"
    nz, ny, nx = cube.sizes["wavelength"], cube.sizes["y"], cube.sizes["x"]
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
    return Aperture(
        source_type, x_c, y_c, how, located, wave, radius,
        per_plane={"radius": radius_px, "inner_bkg": inner_px, "outer_bkg": outer_px},
        shared={"x_center": x_c, "y_center": y_c, "point": point, "subtract_background": params.subtract_background,
                "method": params.method, "subpixels": params.subpixels, "bkg_sigma_clip": params.bkg_sigma_clip},
        scale=scale, params=params)


def spectrum_columns(col: dict, omega: float, covar: float) -> dict[str, tuple[Any, str]]:
    """The x1d columns (and units) from the kernel's per-plane sums ``col``
    (:data:`mrsdask.extract.kernels.OUTPUTS`), numpy or Dask arrays alike (numpy's functions
    dispatch to Dask's): ``omega`` is the spaxel's solid angle (sr), ``covar`` ``ifu_covar_scale``."""
    npix = np.where(col["npixels"] > 0, col["npixels"], 1.0)
    npix_bkg = np.where(col["npixels_bkg"] > 0, col["npixels_bkg"], 1.0)
    surf_bright = col["temp_flux"] / npix
    background = col["background"] / npix_bkg
    return {
        "flux": (col["temp_flux"] * omega * 1e6, "Jy"),
        "flux_error": (np.sqrt(col["f_var"]) * omega * 1e6 * covar, "Jy"),
        "surf_bright": (surf_bright, "MJy/sr"),
        "sb_error": (np.sqrt(col["f_var"]) / npix * covar, "MJy/sr"),
        "background": (background, "MJy/sr"),
        "bkgd_error": (np.sqrt(col["b_var"]) / npix_bkg * covar, "MJy/sr"),
        "npixels": (col["npixels"], ""),
        "npixels_bkg": (col["npixels_bkg"], ""),
        "dq": (col["dq"], ""),
    }


#: The ``rf_*`` columns of the 1-D residual-fringe correction, by the column each corrects.
RF_COLUMNS = {"rf_flux": "flux", "rf_surf_bright": "surf_bright", "rf_background": "background"}
RF_APPLIED = "applied (1-D residual-fringe fit; RF_ columns)"


def residual_fringe_fits(temp_flux, surf_bright, background, wave, channel: int | None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 1-D fringe fits of a spectrum's aperture sum, surface brightness and background
    (numpy), in the order of :data:`RF_COLUMNS`; a spectrum that cannot be fitted gives NaN
    (as the official step). Times :func:`residual_fringe_scales`, they are the ``rf_*`` columns."""
    from mrsdask.fringe import fit_residual_fringes_1d

    out = []
    for values in (temp_flux, surf_bright, background):
        try:
            out.append(np.asarray(fit_residual_fringes_1d(values, wave, channel=channel), dtype=np.float64))
        except Exception as exc:  # the official step logs and leaves NaN
            log.warning("1-D residual fringe fit failed (%s); the rf_ column is NaN", exc)
            out.append(np.full(len(wave), np.nan))
    return tuple(out)


def residual_fringe_scales(omega: float) -> tuple[float, float, float]:
    """The factors from :func:`residual_fringe_fits` to the ``rf_*`` columns: the official step
    fits the aperture sum, then converts it to Jy (``omega``: the spaxel's solid angle, sr)."""
    return (omega * 1e6, 1.0, 1.0)


def aperture_correction(ap: Aperture, request: ExtractRequest) -> tuple[str, str, np.ndarray | None]:
    """The aperture correction of a point source as the request asks: what is done, the APCORR
    file used ('' if none) and the factor per plane (None if none: :func:`apply_factors`)."""
    from mrsdask.extract.apcorr import apcorr_factors, default_apcorr_file, read_apcorr

    if not ap.point:
        return "not applied (extended source)", "", None
    if not request.apply_apcorr:
        return "not applied (apply_apcorr off)", "", None
    apcorr_file = request.override_apcorr or default_apcorr_file()
    table = read_apcorr(apcorr_file)
    return f"applied: {table.source}", apcorr_file, apcorr_factors(table, ap.wave, ap.per_plane["radius"], ap.scale)


def apply_factors(data: dict, factors: np.ndarray | None, nz: int) -> np.ndarray:
    """The aperture correction ``factors`` applied to the columns it corrects of ``data`` (name →
    (values, units), numpy or Dask: replaced); the factors, ones where None."""
    from mrsdask.extract.apcorr import CORRECTED

    if factors is None:
        return np.ones(nz)
    for name in CORRECTED:
        data[name] = (data[name][0] * factors, data[name][1])
    return factors


def residual_fringe_note(cube: xr.Dataset, request: ExtractRequest) -> str:
    """Whether the 1-D residual-fringe correction applies to the cube (:data:`RF_APPLIED`), or why not."""
    if not request.ifu_rfcorr:
        return "not applied (ifu_rfcorr off)"
    if not single_band(cube):
        return (f"not applied: ifu_rfcorr applies to single-band cubes (this one: channel "
                f"{cube.attrs.get('channel')}, band {cube.attrs.get('band')}), as the official step")
    return RF_APPLIED


def spectrum_attrs(cube_attrs: dict, ap: Aperture, request: ExtractRequest, *, rf_done: str, apcorr_done: str,
                   apcorr_file: str, slit: tuple[float, float] | None) -> dict:
    """The attributes of a cube's spectrum (``slit``: the sky position of the cube's centre,
    :func:`slit_position`; None leaves ``slit_ra``/``slit_dec`` out, for the writer to add)."""
    params = ap.params
    attrs = {} if slit is None else {"slit_ra": float(slit[0]), "slit_dec": float(slit[1])}
    attrs.update({
        "source_type": ap.source_type, "x_center": ap.x, "y_center": ap.y, "center_from": ap.how,
        "extraction_parameters": params.source, "method": params.method, "subpixels": params.subpixels,
        "subtract_background": bool(params.subtract_background and ap.point), "bkg_sigma_clip": params.bkg_sigma_clip,
        "rscale": request.ifu_rscale if request.ifu_rscale is not None else "",
        "residual_fringe": rf_done.startswith("applied"), "residual_fringe_note": rf_done,
        "aperture_correction": apcorr_done, "apcorr_file": apcorr_file.rsplit("/", 1)[-1],
        "ifu_covar_scale": float(request.ifu_covar_scale), "proper_motion": ap.located["proper_motion"],
        "channel": cube_attrs.get("channel", ""), "band": cube_attrs.get("band", ""),
        "pixelarea_steradians": float(cube_attrs["pixelarea_steradians"]), "targ_ra": cube_attrs.get("targ_ra", np.nan),
        "targ_dec": cube_attrs.get("targ_dec", np.nan),
    })
    for key in ("mu_ra", "mu_dec", "mu_epoch", "expmid"):
        if key in cube_attrs:
            attrs[key] = cube_attrs[key]
    if "targ_ra_moved" in ap.located:
        attrs["targ_ra_moved"], attrs["targ_dec_moved"] = ap.located["targ_ra_moved"], ap.located["targ_dec_moved"]
    log.info("extracting %s source at x=%.2f y=%.2f (%s), %s; aperture correction %s", ap.source_type, ap.x, ap.y,
             ap.how, params.source, apcorr_done)
    return attrs


def slit_position(cube_attrs: dict, ny: int, nx: int) -> tuple[float, float]:
    """RA, Dec (deg) of the cube's centre (``SLIT_RA``/``SLIT_DEC`` of the x1d file)."""
    from mrsdask.datamodel import cube as cmodel

    slit_ra, slit_dec = cmodel.pixel_to_sky(cube_attrs, nx / 2.0, ny / 2.0)
    return float(slit_ra), float(slit_dec)


def announce_spectrum(path: str, a: dict, announce, source: str = "") -> None:
    """The lines that say what an x1d file written at ``path`` holds (its spectrum's attributes ``a``)."""
    announce(f"  wrote {path}{source} ({a['source_type'].lower()} source at x={a['x_center']:g}, "
             f"y={a['y_center']:g}: {a['center_from']}; aperture correction {a['aperture_correction']})")
    if str(a.get("proper_motion", "")).startswith("applied"):
        announce(f"    proper motion {a['proper_motion']}")
    if str(a.get("spectral_leak", "")).startswith("applied"):
        announce(f"    spectral leak {a['spectral_leak']}")


def announce_leak(attrs: list[dict], announce) -> None:
    """The closing line on the spectral leak when no spectrum had it removed."""
    if attrs and not any(str(a.get("spectral_leak", "")).startswith("applied") for a in attrs):
        announce(f"  spectral leak {attrs[0].get('spectral_leak', '')}")


def write_spectrum(columns: dict, attrs: dict, cube_wcs: dict, shape: tuple[int, int], path: str) -> str:
    """Write a computed spectrum (``columns`` and ``attrs`` without the slit position) as an x1d
    file, its ``slit_ra``/``slit_dec`` found first from the cube's WCS (``cube_wcs``: its
    ``wcs_header`` attribute; ``shape``: ny, nx). Run by the writer process
    (:mod:`mrsdask.io.writer_process`), which loads astropy's WCS with the writers anyway."""
    from mrsdask.io.x1d import write_x1d_columns

    slit_ra, slit_dec = slit_position(cube_wcs, *shape)
    return write_x1d_columns(columns, {"slit_ra": slit_ra, "slit_dec": slit_dec, **attrs}, path)
