"""Fixtures of the residual-fringe tests."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

#: One 12A exposure, as a user gets it from the simulator: noise, sky background (not
#: subtracted), 8 % fringes, a bright point source and extended emission with a bright line
#: at 8 µm. Before the robust-baseline fix the residual-fringe fit raised IndexError in two
#: columns: through the channel-2 peak of the point source (x = 931, slice 208) and through
#: the 8 µm line of the extended source (x = 626, slice 211).
BRIGHT_SCENE = {
    "bands": ["1A"],
    "n_dithers": 1,
    "fringes": 0.08,
    "seed": 5,
    "prefix": "rfbright",
    "sources": [
        {"type": "point", "ra_offset": 0.1, "dec_offset": -0.05, "continuum_mjy": 2000.0, "slope": 1.0},
        {"type": "extended", "ra_offset": -0.6, "dec_offset": 0.4, "size": 1.5, "continuum_mjysr": 20.0,
         "lines": [{"wavelength": 8.0, "fwhm": 0.004, "flux": 2e-9}]},
    ],
}


#: Detector columns of :data:`BRIGHT_SCENE` kept by :func:`bright_columns_12a`.
BRIGHT_COLUMNS = np.r_[624:629, 929:934]


@pytest.fixture(scope="session")
def bright_science_12a(tmp_path_factory):
    """Path of the cal file of :data:`BRIGHT_SCENE` (simulated once per run: ``build_once``)."""
    from mrsdask.sim import simulate

    from tests.conftest import build_once

    result = build_once(tmp_path_factory, "rf_bright", lambda folder: simulate(BRIGHT_SCENE, folder))
    (path,) = result.cal_files
    return str(path)


@pytest.fixture(scope="session")
def bright_columns_12a(bright_science_12a):
    """The :data:`BRIGHT_COLUMNS` of the simulated exposure as a detector Dataset (in memory).

    SCI, ERR and DQ are the file's; the slice map and the wavelengths come from the file's
    own gwcs, evaluated on these columns only (what ``open_cal`` computes for the whole
    detector, without the sky coordinates that the residual-fringe fit does not use).
    """
    from mrsdask.instrument.geometry import detector_frame_geometry, slice_map_of
    from mrsdask.io import calfits

    (sci, err, dq), wcs = calfits.read_planes_and_wcs(bright_science_12a)
    cols = BRIGHT_COLUMNS
    slices = slice_map_of(wcs).astype(np.int16)[:, cols]
    wavelength = np.full(slices.shape, np.nan)
    ys, xs = np.nonzero(slices > 0)
    wavelength[ys, xs] = detector_frame_geometry(wcs, cols[xs].astype(float), ys.astype(float)).wavelength
    planes = {"sci": sci[:, cols], "err": err[:, cols], "dq": dq[:, cols], "slice": slices, "wavelength": wavelength}
    return xr.Dataset({name: (("exposure", "y", "x"), value[None]) for name, value in planes.items()},
                      coords={"x": cols, "detector": ("exposure", ["MIRIFUSHORT"]),
                              "band": ("exposure", ["SHORT"])})
