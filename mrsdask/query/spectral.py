"""Spectral-axis queries on a cube Dataset: plane look-up, slabs, continuum, moments, line maps.

All functions take wavelengths already in µm (:mod:`mrsdask.query.inputs` converts) and stay
lazy: only the wavelength coordinate (an in-memory index) is read to choose planes.
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import numpy as np
import xarray as xr

from mrsdask.datamodel.dq import DO_NOT_USE
from mrsdask.errors import OutsideCubeError, ParameterError

C_UM_PER_S = 2.99792458e14
MJY_TO_SI = 1e-20  # 1 MJy = 1e6 Jy = 1e-20 W m⁻² Hz⁻¹
SB_UNIT = u.MJy / u.sr


def wavelengths(ds: xr.Dataset) -> np.ndarray:
    """Plane centres (µm) as float64."""
    return np.asarray(ds["wavelength"].values, dtype=np.float64)


def plane_widths(ds: xr.Dataset) -> np.ndarray:
    """Width (µm) of each plane: the spacing of the centres (``CDELT3`` for a one-plane cube)."""
    lam = wavelengths(ds)
    if lam.size > 1:
        return np.abs(np.gradient(lam))
    return np.full(lam.shape, float(ds.attrs.get("cdelt3") or 0.0))


def axis_range(ds: xr.Dataset) -> tuple[float, float]:
    """Wavelengths (µm) the axis covers: the end planes' centres ± half their width."""
    lam, width = wavelengths(ds), plane_widths(ds)
    return float(lam[0] - width[0] / 2), float(lam[-1] + width[-1] / 2)


def check_inside(ds: xr.Dataset, wavelength_um: float, what: str = "wavelength") -> None:
    """Raise :class:`OutsideCubeError` for a wavelength beyond the axis (± half a plane)."""
    lo, hi = axis_range(ds)
    if not lo <= wavelength_um <= hi:
        raise OutsideCubeError(
            f"{what} {wavelength_um:.6g} um is outside the cube's wavelength axis "
            f"({lo:.6g}-{hi:.6g} um); ask for a wavelength the cube covers or use a cube that covers it")


def plane_index(ds: xr.Dataset, wavelength_um: float) -> int:
    """Index of the plane whose centre is nearest to a wavelength inside the axis."""
    check_inside(ds, wavelength_um)
    return int(np.argmin(np.abs(wavelengths(ds) - wavelength_um)))


def slab_indices(ds: xr.Dataset, wmin_um: float, wmax_um: float) -> slice:
    """Planes whose centres lie in [wmin, wmax] (either order); both ends must be inside the axis."""
    lo, hi = sorted((wmin_um, wmax_um))
    check_inside(ds, lo, "slab start")
    check_inside(ds, hi, "slab end")
    lam = wavelengths(ds)
    i0, i1 = int(np.searchsorted(lam, lo, "left")), int(np.searchsorted(lam, hi, "right"))
    if i1 <= i0:
        raise ParameterError(f"spectral slab {lo:.6g}-{hi:.6g} um holds no plane centre "
                             f"(planes there are {plane_widths(ds)[min(i0, lam.size - 1)]:.3g} um apart); widen it")
    return slice(i0, i1)


def good_sci(ds: xr.Dataset) -> xr.DataArray:
    """SCI as float64 with NaN where there is no value or DQ has DO_NOT_USE."""
    good = np.isfinite(ds["sci"]) & ((ds["dq"] & DO_NOT_USE) == 0)
    return ds["sci"].astype(np.float64).where(good)


def linear_continuum(ds: xr.Dataset, windows: Sequence[tuple[float, float]]) -> xr.DataArray:
    """Per-spaxel straight line fitted (least squares) to the usable planes of side windows.

    Returns a lazy ``(wavelength, y, x)`` cube of the line at every plane of ``ds`` (MJy/sr);
    NaN where a spaxel has fewer than two usable planes in the windows.
    """
    if len(windows) == 0:
        raise ParameterError("continuum: give at least one (wmin, wmax) window")
    index = np.unique(np.concatenate([np.arange(ds.sizes["wavelength"])[slab_indices(ds, a, b)]
                                      for a, b in windows]))
    lam = wavelengths(ds)
    ref = float(lam[index].mean())
    y = good_sci(ds.isel(wavelength=index))
    x = xr.DataArray(lam[index] - ref, dims="wavelength").where(y.notnull())
    n = y.count("wavelength")
    sx, sy = x.sum("wavelength"), y.sum("wavelength")
    sxx, sxy = (x * x).sum("wavelength"), (x * y).sum("wavelength")
    det = n * sxx - sx * sx
    slope = (n * sxy - sx * sy) / det
    offset = (sy - slope * sx) / n
    usable = (n >= 2) & (det > 0)
    dx = xr.DataArray(lam - ref, dims="wavelength", coords={"wavelength": ds["wavelength"]})
    return (offset + slope * dx).where(usable)


def _subtracted(ds: xr.Dataset, planes: slice, continuum) -> xr.DataArray:
    """Usable SCI of the planes minus a continuum (None, an image/cube in MJy/sr, or windows)."""
    sci = good_sci(ds.isel(wavelength=planes))
    if continuum is None:
        return sci
    if isinstance(continuum, xr.DataArray):
        return sci - continuum
    return sci - linear_continuum(ds, continuum).isel(wavelength=planes)


def moment(ds: xr.Dataset, order: int, planes: slice, rest_um: float | None = None,
           continuum=None, convention: str = "optical") -> xr.DataArray:
    """Moment 0, 1 or 2 map of the planes (lazy); see :meth:`MrsCubeAccessor.moment`."""
    if order not in (0, 1, 2):
        raise ParameterError(f"moment order {order!r}: give 0, 1 or 2")
    lam = wavelengths(ds)
    if rest_um is None:
        axis, unit = lam, u.um
    else:
        try:
            doppler = getattr(u, f"doppler_{convention}")
        except AttributeError:
            raise ParameterError(f"convention {convention!r}: give 'optical', 'radio' or 'relativistic'") from None
        axis = (lam * u.um).to_value(u.km / u.s, equivalencies=doppler(rest_um * u.um))
        unit = u.km / u.s
    width = np.abs(np.gradient(axis)) if axis.size > 1 else plane_widths(ds)
    coords = {"wavelength": ds["wavelength"][planes]}
    x = xr.DataArray(axis[planes], dims="wavelength", coords=coords)
    dx = xr.DataArray(width[planes], dims="wavelength", coords=coords)
    intensity = _subtracted(ds, planes, continuum)
    m0 = (intensity * dx).sum("wavelength", skipna=False)
    if order == 0:
        out, out_unit = m0, SB_UNIT * unit
    else:
        m1 = (intensity * x * dx).sum("wavelength", skipna=False) / m0
        if order == 1:
            out, out_unit = m1, unit
        else:
            out = np.sqrt((intensity * (x - m1) ** 2 * dx).sum("wavelength", skipna=False) / m0)
            out_unit = unit
    out.attrs["units"] = out_unit.to_string()
    out.attrs["moment"] = order
    if rest_um is not None:
        out.attrs["rest_wavelength_um"] = rest_um
        out.attrs["doppler_convention"] = convention
    return out.rename(f"moment{order}")


def line_map(ds: xr.Dataset, planes: slice, continuum=None) -> xr.DataArray:
    """Integrated surface brightness over the planes (W m⁻² sr⁻¹), lazy."""
    lam = wavelengths(ds)[planes]
    coords = {"wavelength": ds["wavelength"][planes]}
    width = xr.DataArray(plane_widths(ds)[planes], dims="wavelength", coords=coords)
    # F_λ = F_ν c / λ²; integrate over λ (µm) with the plane widths.
    to_flam = xr.DataArray(MJY_TO_SI * C_UM_PER_S / lam**2, dims="wavelength", coords=coords)
    out = (_subtracted(ds, planes, continuum) * to_flam * width).sum("wavelength", skipna=False)
    out.attrs["units"] = "W / (m2 sr)"  # astropy-readable, as written before
    return out.rename("line")
