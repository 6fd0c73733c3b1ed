"""End to end on real MRS geometry (slow): simulator cal files → open_cal → residual_fringe.

The simulator (``mrsdask.sim``) writes the same scene twice, with and without multiplicative
fringes; their ratio is the injected fringe, so the correction can be checked pixel by pixel
on the official gwcs geometry (curved slices, per-pixel wavelengths).
"""

from __future__ import annotations

import dask
import numpy as np
import pytest

X0, X1 = 160, 200


@pytest.mark.slow
def test_simulated_exposure_fringes_removed(tmp_path):
    from mrsdask.fringe import residual_fringe, residual_fringe_summary
    from mrsdask.io.detector_store import open_cal
    from mrsdask.sim import simulate

    base = {
        "bands": ["1A"],
        "n_dithers": 1,
        "noise": False,
        "sky_background": 0.0,
        "sources": [{
            "type": "extended", "profile": "disc", "size": 12.0, "continuum_mjysr": 50.0, "slope": 1.0,
            "lines": [{"wavelength": 5.05, "fwhm": 0.0016, "flux": 2e-8},
                      {"wavelength": 5.5, "fwhm": 0.0016, "flux": 1e-8}],
        }],
        "seed": 5,
    }
    fringed = simulate({**base, "fringes": 0.1, "prefix": "frin"}, tmp_path / "fringed")
    clean = simulate({**base, "prefix": "clean"}, tmp_path / "clean")
    ds = open_cal([str(fringed.cal_files[0])]).isel(x=slice(X0, X1))
    ref = open_cal([str(clean.cal_files[0])]).isel(x=slice(X0, X1))
    with dask.config.set(scheduler="threads", num_workers=2):
        out = residual_fringe(ds).compute()
        sci_in, sci_ref = dask.compute(ds["sci"].data, ref["sci"].data)
    (summary,) = residual_fringe_summary(out)
    assert summary["corrected"] >= 30
    assert summary["fit_failed"] == 0
    corrected = (out["rf_flag"].values & 0x0F) == 1
    good = corrected & np.isfinite(sci_ref) & (sci_ref > 0)
    before = sci_in[good] / sci_ref[good] - 1
    after = out["sci"].values[good] / sci_ref[good] - 1
    assert np.sqrt(np.mean(before**2)) > 0.06
    assert np.sqrt(np.mean(after**2)) < np.sqrt(np.mean(before**2)) / 5
    periods = out["rf_period"].values[..., 0]
    assert np.nanmedian(periods) == pytest.approx(2.9, abs=0.02)
