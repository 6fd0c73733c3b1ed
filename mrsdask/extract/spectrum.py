"""1-D spectra of cubes: :func:`extract_spectrum` maps the aperture kernel over wavelength slabs.

The result is a lazy xarray Dataset along ``wavelength`` with the columns of the official
``x1d`` product (``flux`` in Jy, ``surf_bright`` in MJy/sr, ``background``, their errors,
``npixels``, ``dq``, and the ``rf_*`` columns of the 1-D residual-fringe correction when asked),
one Dask task per slab of cube planes (the cube's own chunks; :func:`mrsdask.dispatch.map_slabs`),
so a cube larger than memory is extracted in bounded memory and in parallel.
:func:`mrsdask.io.x1d.write_x1d` writes it as an ``x1d`` FITS file.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.dispatch import Output, map_slabs
from mrsdask.extract.columns import SUMS, slab_sums
from mrsdask.extract.parameters import ExtractionParameters
from mrsdask.extract.plan import (  # noqa: F401  (check_aperture_options… were defined here: their old home)
    RF_APPLIED,
    RF_COLUMNS,
    aperture_correction,
    apply_factors,
    channel_number,
    check_aperture_options,
    cube_name,
    locate_source,
    make_request,
    plan_aperture,
    residual_fringe_fits,
    residual_fringe_note,
    residual_fringe_scales,
    resolve_parameters,
    single_band,
    slit_position,
    source_position,
    spectrum_attrs,
    spectrum_columns,
)
from mrsdask.extract.request import ExtractRequest


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
    request = make_request(request, options)
    ap = plan_aperture(cube, resolve_parameters(params, request), request)
    nz, ny, nx = cube["sci"].shape
    slabs = map_slabs(
        slab_sums, [cube[name].data for name in ("sci", "err", "wmap")],
        {"sums": Output(np.float64, ("sum", "wavelength"), {"sum": len(SUMS)}), "dq": np.uint32},
        per_plane=ap.per_plane, shared=ap.shared, label=f"extraction of cube {cube_name(cube)}",
    )
    # The slabs' results joined in one chunk (a spectrum is small): the arithmetic below is then
    # one task per column, not one per column and slab. By tasks, as Dask would choose for so
    # small an array: left to choose, it imports distributed to look for a client (~0.15 s).
    sums = slabs["sums"].rechunk((len(SUMS), nz), method="tasks")
    col = {name: sums[i] for i, name in enumerate(SUMS)}
    col["dq"] = slabs["dq"].rechunk(nz, method="tasks")
    omega = float(cube.attrs["pixelarea_steradians"])
    data = spectrum_columns(col, omega, float(request.ifu_covar_scale))
    data["aperture_radius"] = (da.from_array(ap.radius, name=False), "arcsec")
    rf_done = residual_fringe_note(cube, request)
    if rf_done == RF_APPLIED:
        fitted = dask.delayed(residual_fringe_fits, pure=True)(
            col["temp_flux"], data["surf_bright"][0], data["background"][0], ap.wave, channel_number(cube))
        scales = residual_fringe_scales(omega)
        for i, (name, base) in enumerate(RF_COLUMNS.items()):
            data[name] = (da.from_delayed(fitted[i], shape=(nz,), dtype=np.float64) * scales[i], data[base][1])
    else:
        for name, base in RF_COLUMNS.items():
            data[name] = (da.from_array(np.full(nz, np.nan), name=False), data[base][1])
    apcorr_done, apcorr_file, factors = aperture_correction(ap, request)
    data["apcorr"] = (da.from_array(apply_factors(data, factors, nz), name=False), "")
    ds = xr.Dataset({name: ("wavelength", values, {"units": units} if units else {})
                     for name, (values, units) in data.items()},
                    coords={"wavelength": ("wavelength", ap.wave, {"units": "um"})})
    ds.attrs.update(spectrum_attrs(cube.attrs, ap, request, rf_done=rf_done, apcorr_done=apcorr_done,
                                   apcorr_file=apcorr_file, slit=slit_position(cube.attrs, ny, nx)))
    return ds
