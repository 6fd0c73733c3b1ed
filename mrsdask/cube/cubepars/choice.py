"""The parameters of one cube, as the official step decides them (``determine_cube_parameters``).

:func:`cube_parameters` looks up, in a :class:`~mrsdask.cube.cubepars.CubePars` and the step
options, the spaxel size, wavelength range and step, regions of interest and weighting
parameters of one cube, and returns them as :class:`CubeParameters`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mrsdask.cube.cubepars.model import CubeParameterError, CubePars, check_weighting
from mrsdask.instrument.bands import Band, band_from_name


@dataclass(frozen=True, eq=False)
class CubeParameters:
    """Parameters of one cube, as the official ``determine_cube_parameters`` sets them.

    ``NaN`` marks a value the reference file does not give for this weighting (the
    official step turns a missing table value into NaN the same way); ``None`` marks a value
    the official step leaves unset.

    Attributes
    ----------
    bands : tuple of str
        The cube's bands, in the order given.
    weighting : str
        ``drizzle``, ``msm`` or ``emsm``.
    linear : bool
        Linear wavelength axis (``False``: the multichannel table gives the planes).
    n_files : int
        Number of input files as the official step counts them (summed over bands).
    spatial_size : float
        Spaxel size [arcsec] (CDELT1 = CDELT2, in degrees in the cube header).
    wavemin, wavemax : float
        Wavelength range [µm] that sets the cube's spectral extent.
    spectral_size : float or None
        Linear step [µm] (CDELT3): ``scalew`` or the bands' common SPECTRALSTEP; ``None``
        when the bands' steps differ and ``scalew`` is 0.
    rois, roiw : float or None
        Spatial [arcsec] and spectral [µm] regions of interest used in the linear case.
    weight_power : float or None
        MSM power used in the linear case (``None`` when not defined).
    softrad, scalerad : float or None
        MSM softening radius and EMSM scale radius [arcsec] used in the linear case.
    wavelength_table, rois_table, roiw_table : ndarray or None
    softrad_table, weight_power_table, scalerad_table : ndarray or None
        Non-linear case only: the selected rows of the multichannel table. Pixels take
        their parameters from the nearest table wavelength; user ``rois``/``roiw``/
        ``weight_power`` do not change these tables.
    """

    bands: tuple[str, ...]
    weighting: str
    linear: bool
    n_files: int
    spatial_size: float
    wavemin: float
    wavemax: float
    spectral_size: float | None
    rois: float | None
    roiw: float | None
    weight_power: float | None
    softrad: float | None
    scalerad: float | None
    wavelength_table: np.ndarray | None = None
    rois_table: np.ndarray | None = None
    roiw_table: np.ndarray | None = None
    softrad_table: np.ndarray | None = None
    weight_power_table: np.ndarray | None = None
    scalerad_table: np.ndarray | None = None

    @property
    def interpolation(self) -> str:
        """``drizzle`` or ``pointcloud`` (msm/emsm), as the official step names it."""
        return "drizzle" if self.weighting == "drizzle" else "pointcloud"

    @property
    def naxis3(self) -> int:
        """Number of wavelength planes of the cube."""
        if self.linear:
            return int(math.ceil((self.wavemax - self.wavemin) / self.spectral_size))
        return int(self.wavelength_table.size)

    @property
    def crval3(self) -> float:
        """Wavelength of the first plane [µm] (CRPIX3 = 1)."""
        if self.linear:
            return self.wavemin + self.spectral_size / 2.0
        return float(self.wavelength_table[0])

    def plane_wavelengths(self) -> np.ndarray:
        """Centre wavelength of each plane [µm], computed as the official step does."""
        if not self.linear:
            return np.array(self.wavelength_table, dtype=np.float64)
        n = self.naxis3
        step = self.spectral_size
        top = self.wavemin + n * step
        return np.arange(self.wavemin + step / 2.0, top, step)[:n]


def _band_values(pars: CubePars, name: str, weighting: str):
    """(spaxelsize, step, wmin, wmax, rois, roiw, power, softrad, scalerad) for one band;
    NaN where the weighting's table does not give a value (official: None → NaN)."""
    b = pars.bands[name]
    nan = math.nan
    if weighting == "msm":
        m = pars.msm[name]
        extra = (m.roispatial, m.roispectral, m.power, m.softrad, nan)
    elif weighting == "emsm":
        e = pars.emsm[name]
        extra = (e.roispatial, e.roispectral, nan, nan, e.scalerad)
    else:
        extra = (nan, nan, nan, nan, nan)
    return (b.spaxelsize, b.spectralstep, b.wavemin, b.wavemax) + extra


def cube_parameters(
    pars: CubePars,
    bands: Iterable[str | Band],
    weighting: str,
    linear: bool,
    n_files: int,
    wavemin: float | None = None,
    wavemax: float | None = None,
    scalexy: float = 0,
    scalew: float = 0,
    rois: float = 0,
    roiw: float = 0,
    weight_power: float = 0,
) -> CubeParameters:
    """Parameters of one cube, reproducing the official ``determine_cube_parameters``.

    Parameters
    ----------
    pars : CubePars
        The reference parameters (e.g. :func:`default_cubepars`).
    bands : iterable of str or Band
        The cube's bands in the official step's order (the first one decides ties).
    weighting : str
        ``drizzle``, ``msm`` or ``emsm``.
    linear : bool
        The step's ``linear_wave`` (``False`` when ``output_type="multi"``).
    n_files : int
        Input files as the official step counts them: for each band of the cube, the number
        of exposures holding it, summed (an exposure counts once per band it gives).
    wavemin, wavemax : float, optional
        User wavelength limits [µm]; default min WAVEMIN / max WAVEMAX over the bands.
    scalexy : float
        User spaxel size [arcsec]; 0 = from the file (min SPAXELSIZE unless all equal).
    scalew : float
        User linear step [µm]; 0 = from the file. When set, roiw/power/softrad/scalerad are
        the minimum over the bands.
    rois, roiw : float
        User regions of interest; 0 = from the file. From the file, ``rois`` is that of the
        band with the smallest spaxel size and is multiplied by 1.5 when ``n_files < 4``
        and the weighting is not ``emsm``.
    weight_power : float
        User MSM power; 0 = from the file. Note the official step's own default is 2.0,
        not 0: pass ``weight_power=2.0`` to mimic a default ``CubeBuildStep``.

    Returns
    -------
    CubeParameters

    Raises
    ------
    CubeParameterError
        Unknown band or weighting; a linear cube of bands with different SPECTRALSTEP and
        no ``scalew`` (the official step fails there: its spectral step stays unset); an
        essential parameter that is NaN (the official ``IncorrectParameterError``).

    Notes
    -----
    Non-linear case: the rows of the weighting's multichannel table nearest to ``wavemin``
    and ``wavemax`` are found; the first is moved one row down when its wavelength is above
    ``wavemin`` and its index is above 1 (the official test is ``imin > 1``, so row 1 is
    never widened to row 0), the last one row up when below ``wavemax`` and not the last
    row. ``rois_table`` is multiplied by 1.5 when ``n_files < 4`` whatever the weighting.
    """
    weighting = check_weighting(weighting)
    try:
        names = tuple(b.name if isinstance(b, Band) else band_from_name(b).name for b in bands)
    except ValueError as exc:
        raise CubeParameterError(str(exc)) from exc
    if not names:
        raise CubeParameterError("a cube needs at least one band")
    linear = bool(linear)
    n_files = int(n_files)

    vals = np.array([_band_values(pars, n, weighting) for n in names], dtype=np.float64)
    spaxel, step, minw, maxw, b_rois, b_roiw, b_power, b_softrad, b_scalerad = vals.T

    if np.all(spaxel == spaxel[0]):
        spatial_size = float(spaxel[0])
        spatial_roi = float(b_rois[0])
    else:
        k = int(np.argmin(spaxel))
        spatial_size = float(spaxel[k])
        spatial_roi = float(b_rois[k])

    wmin = float(np.amin(minw)) if wavemin is None else float(np.float64(wavemin))
    wmax = float(np.amax(maxw)) if wavemax is None else float(np.float64(wavemax))

    spectral_size = wave_roi = table_power = softrad = scalerad = None
    if scalew != 0:
        spectral_size = scalew
        wave_roi = float(np.amin(b_roiw))
        table_power = float(np.amin(b_power))
        softrad = float(np.amin(b_softrad))
        scalerad = float(np.amin(b_scalerad))
    elif np.all(step == step[0]):
        spectral_size = float(step[0])
        wave_roi = float(b_roiw[0])
        table_power = float(b_power[0])
        softrad = float(b_softrad[0])
        scalerad = float(b_scalerad[0])

    tables = {}
    if not linear:
        table = pars.multi_table(weighting)
        n_rows = len(table)
        # Same arithmetic as the official code: float32 table values minus a float64 limit.
        # (np.float64 limits: a Python float would be compared in float32 under NEP 50.)
        wave32 = table.wavelength.astype(np.float32)
        lo, hi = np.float64(wmin), np.float64(wmax)
        imin = int(np.abs(wave32 - lo).argmin())
        imax = int(np.abs(wave32 - hi).argmin())
        if imin > 1 and wave32[imin] > lo:
            imin -= 1
        if imax < n_rows - 1 and hi > wave32[imax]:
            imax += 1
        sel = slice(imin, imax + 1)
        nsel = max(imax - imin + 1, 0)

        def column(name):
            col = getattr(table, name)
            arr = np.full(nsel, np.nan) if col is None else np.array(col[sel], dtype=np.float64)
            arr.setflags(write=False)
            return arr

        rois_table = column("roispatial")
        if n_files < 4:
            rois_table = rois_table * 1.5
            rois_table.setflags(write=False)
        tables = dict(
            wavelength_table=column("wavelength"),
            rois_table=rois_table,
            roiw_table=column("roispectral"),
            softrad_table=column("softrad"),
            weight_power_table=column("power"),
            scalerad_table=column("scalerad"),
        )

    if rois == 0.0:
        out_rois = spatial_roi
        if n_files < 4 and weighting != "emsm":
            out_rois = out_rois * 1.5
    else:
        out_rois = float(rois)
    out_roiw = wave_roi if roiw == 0 else float(roiw)
    out_power = table_power if weight_power == 0 else float(weight_power)
    if scalexy != 0:
        spatial_size = float(scalexy)

    problems = []

    def isnan(x):
        return x is None or bool(np.isnan(x))

    if linear:
        if spectral_size is None:
            raise CubeParameterError(
                f"bands {', '.join(names)} have different SPECTRALSTEP values "
                f"({', '.join(f'{s:g}' for s in step)}): a linear wavelength axis needs "
                "scalew (--scalew), or a tabular axis (linear_wave=False, --no-linear-wave); "
                "the official step fails with these settings"
            )
        if weighting != "drizzle":
            if isnan(out_rois):
                problems.append("spatial roi")
            if isnan(out_roiw):
                problems.append("spectral roi")
        if weighting == "msm":
            if isnan(out_power):
                problems.append("weight power")
            if isnan(softrad):
                problems.append("soft rad")
        if weighting == "emsm" and isnan(scalerad):
            problems.append("scalerad")
    else:
        def all_nan(name):
            return bool(np.isnan(tables[name]).all())

        if all_nan("wavelength_table"):
            problems.append("wavelength table")
        if weighting != "drizzle":
            if all_nan("rois_table"):
                problems.append("spatial roi table")
            if all_nan("roiw_table"):
                problems.append("spectral roi table")
        if weighting == "msm":
            if all_nan("softrad_table"):
                problems.append("soft rad table")
            if all_nan("weight_power_table"):
                problems.append("weight power table")
        if weighting == "emsm" and all_nan("scalerad_table"):
            problems.append("scalerad table")
    if problems:
        raise CubeParameterError(
            f"essential cube parameter(s) are NaN ({', '.join(problems)}) for bands "
            f"{', '.join(names)} with weighting {weighting}; check the CUBEPAR file {pars.source}"
        )
    if out_power is not None and np.isnan(out_power):
        out_power = None

    return CubeParameters(
        bands=names,
        weighting=weighting,
        linear=linear,
        n_files=n_files,
        spatial_size=spatial_size,
        wavemin=wmin,
        wavemax=wmax,
        spectral_size=spectral_size,
        rois=out_rois,
        roiw=out_roiw,
        weight_power=out_power,
        softrad=softrad,
        scalerad=scalerad,
        **tables,
    )
