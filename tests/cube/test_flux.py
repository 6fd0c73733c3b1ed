"""Flux conservation on a simulated point source: aperture flux vs the simulator's truth."""

import numpy as np
import pytest

from mrsdask.cube.builder import build_cubes, open_cube
from mrsdask.cube.plan import CubeRequest
from mrsdask.io.detector_store import open_cal


def _aperture_flux_jy(cube, ra0, dec0, radius_arcsec):
    ra, dec = cube["ra"].values, cube["dec"].values
    dx = (ra - ra0) * np.cos(np.radians(dec0)) * 3600.0
    dy = (dec - dec0) * 3600.0
    inside = np.hypot(dx, dy) <= radius_arcsec
    sci = cube["sci"].values[:, inside]
    complete = np.all(np.isfinite(sci), axis=1)
    omega = cube.attrs["pixelarea_steradians"]
    return np.where(complete, np.nansum(sci, axis=1) * omega * 1e6, np.nan)


@pytest.mark.parametrize("weighting", ["drizzle", "emsm"])
def test_point_source_flux_is_conserved(point_source_sim, tmp_path, weighting):
    import dask

    from mrsdask.sim import read_truth, truth_spectrum

    files = [str(p) for p in point_source_sim.cal_files]
    with dask.config.set(scheduler="threads"):
        names = build_cubes(open_cal(files), str(tmp_path / "c.zarr"),
                            CubeRequest(output_type="band", weighting=weighting, channels=(1,),
                                        wavemin=5.0, wavemax=5.5), progress=False)
    cube = open_cube(str(tmp_path / "c.zarr"), names[0]).load()
    truth = read_truth(point_source_sim.truth)
    source = truth.config.sources[0]
    ra0 = truth.config.target_ra + source.ra_offset / 3600.0 / np.cos(np.radians(truth.config.target_dec))
    dec0 = truth.config.target_dec + source.dec_offset / 3600.0
    measured = _aperture_flux_jy(cube, ra0, dec0, radius_arcsec=1.0)
    # The .mrs accessor gives the same aperture photometry, lazily; it sums the usable spaxels
    # of every plane, so it equals the full-aperture sum where all of them were usable.
    lazy = open_cube(str(tmp_path / "c.zarr"), names[0]).mrs.spectrum(ra0, dec0, radius=1.0)
    full = lazy["npixels"] == lazy.attrs["aperture_spaxels"]
    np.testing.assert_allclose(lazy["flux"].where(full).values, measured, rtol=1e-6)
    expected = truth_spectrum(source, cube["wavelength"].values)
    ratio = measured / expected
    good = np.isfinite(ratio)
    assert good.sum() > 0.8 * ratio.size
    assert np.median(ratio[good]) == pytest.approx(1.0, abs=0.01)
    assert np.percentile(np.abs(ratio[good] - 1), 90) < 0.02
