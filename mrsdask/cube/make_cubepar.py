"""Generate the CUBEPAR file shipped with mrsdask (``data/jwst_miri_cubepar_mrsdask.fits``).

Run ``python -m mrsdask.cube.make_cubepar [OUTPUT]`` (about 30 s). It

1. measures, for each of the 12 bands, the wavelength limits that every slice covers:
   the official ``AssignWcsStep`` is run offline on the level-2 template of each detector
   setting with the shipped FLT-9 distortion/wavelength files
   (:func:`mrsdask.instrument.reference.assign_wcs_offline`), and its
   ``detector → alpha_beta`` transform is evaluated on detector rows 3 and 1020 (the 4th
   row from each edge: the outer three are DO_NOT_USE in real data) at every pixel of each
   slice of the shipped slice map. Per slice, the minimum is the largest wavelength on the
   short-wavelength row and the maximum the smallest on the long-wavelength row (iso-λ
   lines are curved, so this keeps only wavelengths that all pixels of the slice reach);
   the band's limits are the largest per-slice minimum and the smallest per-slice maximum;
2. applies the recipe of :func:`mrsdask.cube.cubepars.build_default_cubepars` (rounding,
   4C override, fixed per-channel values, multi grid and multichannel tables);
3. writes the file with :func:`mrsdask.cube.cubepars.write_cubepar`, the measured values
   recorded as HISTORY lines.

Difference from STScI's generator (miri3d ``make_cubepar.py``, inferred from its source):
it evaluates the distortion on the most permissive (10 % throughput) slice mask of the
ground distortion files; mrsdask carries only one slice map per setting (the regions plane
that ``assign_wcs`` uses), so slices are a pixel or so narrower here. Which row is the
short-wavelength one is decided from the data (the two detectors are dispersed in opposite
directions), as that script does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mrsdask.cube.cubepars import (
    DEFAULT_CUBEPAR_FILE,
    FIXED_WAVE_RANGE,
    WAVE_RANGE_ROWS,
    build_default_cubepars,
    multi_wavelength_grid,
    write_cubepar,
)
from mrsdask.instrument.bands import BANDS, SETTINGS, SUBBAND_KEYWORD


def _template_model(setting: str):
    """Level-2 template of a setting with a fresh official WCS."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import IFUImageModel

    from mrsdask.instrument.reference import assign_wcs_offline, template_file

    with fits.open(template_file(setting)) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul if h.name != "ASDF"])
    model = IFUImageModel(hdul)
    model.meta.wcsinfo.ra_ref = 80.5
    model.meta.wcsinfo.dec_ref = -69.5
    model.meta.wcsinfo.roll_ref = 0.0
    model.meta.wcsinfo.velosys = None  # no barycentric correction of λ
    return assign_wcs_offline(model, setting)


def measure_band_wave_ranges(
    rows: tuple[int, int] = WAVE_RANGE_ROWS, settings: tuple[str, ...] = SETTINGS
) -> dict[str, dict]:
    """Measure each band's common wavelength range on two detector rows.

    Parameters
    ----------
    rows : (int, int)
        Detector rows (negative counts from the top), default 3 and -4 (= 1020).
    settings : tuple of str
        Detector settings to measure (``"12A"`` …), default all six (about 20 s).

    Returns
    -------
    dict
        Band name → ``{"wavemin": float, "wavemax": float, "slice_min": {slice: λ},
        "slice_max": {slice: λ}}`` in µm (before rounding).
    """
    from mrsdask.instrument.reference import slice_map

    out = {}
    for setting in settings:
        model = _template_model(setting)
        smap = slice_map(setting)
        ny, nx = smap.shape
        det2ab = model.meta.wcs.get_transform("detector", "alpha_beta")
        x = np.arange(nx, dtype=np.float64)
        lam = {}
        for row in rows:
            r = row % ny
            _, _, lam[r] = det2ab(x, np.full(nx, float(r)))
        r1, r2 = (row % ny for row in rows)
        for band in BANDS:
            if band.setting != setting:
                continue
            info = band.channel_info
            slices = range(info.first_slice, info.last_slice + 1)
            on1 = np.isin(smap[r1], list(slices))
            on2 = np.isin(smap[r2], list(slices))
            lo_row, hi_row = r1, r2
            # the short-wavelength row must be first (detectors are dispersed oppositely)
            if np.nanmax(lam[r1][on1]) > np.nanmax(lam[r2][on2]):
                lo_row, hi_row = r2, r1
            smin, smax = {}, {}
            for s in slices:
                lo = lam[lo_row][smap[lo_row] == s]
                hi = lam[hi_row][smap[hi_row] == s]
                if lo.size == 0 or hi.size == 0 or np.all(np.isnan(lo)) or np.all(np.isnan(hi)):
                    raise RuntimeError(f"slice {s} of band {band.name} has no pixel on rows {rows}")
                smin[s] = float(np.nanmax(lo))
                smax[s] = float(np.nanmin(hi))
            out[band.name] = {
                "wavemin": max(smin.values()),
                "wavemax": min(smax.values()),
                "slice_min": smin,
                "slice_max": smax,
            }
        model.close()
    return out


def make_default_cubepar(path: str | Path = DEFAULT_CUBEPAR_FILE) -> Path:
    """Measure, build and write the default CUBEPAR file; return its path."""
    measured = measure_band_wave_ranges()
    ranges = {b: (v["wavemin"], v["wavemax"]) for b, v in measured.items()}
    pars = build_default_cubepars(ranges, source="mrsdask make_cubepar (FLT-9)")
    n = multi_wavelength_grid().size
    history = [
        "Made by mrsdask/cube/make_cubepar.py following miri3d make_cubepar.py (Nov 2022 recipe).",
        "WAVEMIN/WAVEMAX: largest per-slice min / smallest per-slice max wavelength on detector "
        "rows 3 and 1020 (FLT-9 distortion+specwcs, shipped slice map), rounded to 0.01 um and "
        "pulled in by 0.01 um; 4C fixed at 24.4-28.7 um.",
        "Cross-dichroic rows copy their matching band (ch1/ch4 follow DGAA, ch2/ch3 DGAB).",
        f"Multi grid: R(lambda) quadratic fit, lambda0=4.90, step lambda/(2R), <=27.9 um: {n} rows.",
    ]
    for band in BANDS:
        v = measured.get(band.name)
        if v is None:
            continue
        note = " (not used: fixed range)" if band.name in FIXED_WAVE_RANGE else ""
        history.append(
            f"Measured {band.channel}{SUBBAND_KEYWORD[band.subband]}: "
            f"{v['wavemin']:.5f}-{v['wavemax']:.5f} um{note}"
        )
    description = (
        "MIRI MRS cube parameters made by mrsdask from the FLT-9 distortion/specwcs reference "
        "files with the miri3d make_cubepar.py recipe (no CRDS)"
    )
    return write_cubepar(pars, path, description=description, author="mrsdask make_cubepar.py",
                         history=history)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default=str(DEFAULT_CUBEPAR_FILE))
    args = parser.parse_args(argv)
    path = make_default_cubepar(args.output)
    from mrsdask.cube.cubepars import read_cubepar

    pars = read_cubepar(path)
    print(f"wrote {path}")
    print("band  wavemin  wavemax  spaxel  step")
    for name, b in pars.bands.items():
        print(f"{name}   {b.wavemin:7.3f}  {b.wavemax:7.3f}  {b.spaxelsize:.3f}  {b.spectralstep:.4f}")
    print(f"multi grid: {len(pars.multi_driz)} wavelengths "
          f"{pars.multi_driz.wavelength[0]:.4f}-{pars.multi_driz.wavelength[-1]:.4f} um")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
