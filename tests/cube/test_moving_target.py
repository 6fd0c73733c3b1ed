"""Moving targets: cubes are built in the target frame, as the official assign_mtwcs + cube_build."""

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.bench.parity import compare_with_official, parity_ok
from mrsdask.cube.builder import build_cubes, open_cube
from mrsdask.cube.plan import CubeRequest
from mrsdask.io.detector_store import open_cal

#: The wavelengths (µm) both sides build.
WAVEMIN, WAVEMAX = 5.2, 5.4


@pytest.fixture(scope="module")
def moving_sim(tmp_path_factory):
    """Two exposures at different pointings, the point source 0.6″ further east in the second one.

    Each is simulated alone (one dither; the second pointing offset by a mosaic step), so the
    fixture makes two exposures, not four.
    """
    from mrsdask.sim import simulate

    folder = tmp_path_factory.mktemp("moving")
    files = []
    truth_positions = []
    for dither, east, pointing in ((1, 0.0, (0.0, 0.0)), (2, 0.6, (0.35, -0.25))):
        config = {
            "bands": ["1A"], "n_dithers": 1, "pointings": [pointing], "noise": False, "sky_background": 0.0,
            "seed": dither,
            "sources": [{"type": "point", "ra_offset": east, "dec_offset": 0.0, "continuum_mjy": 30.0}],
            "prefix": f"mov{dither}",
        }
        result = simulate(config, folder / f"d{dither}")
        (path,) = result.cal_files
        ra = 80.49 + east / 3600.0 / np.cos(np.radians(-69.5))
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["TARGTYPE"] = "MOVING"
            hdul["SCI"].header["MT_RA"] = ra
            hdul["SCI"].header["MT_DEC"] = -69.5
        files.append(str(path))
        truth_positions.append((ra, -69.5))
    return files, truth_positions


def test_moving_target_matches_official_assign_mtwcs(moving_sim, tmp_path, official_cubepar):
    import dask
    from jwst.assign_mtwcs import AssignMTWcsStep
    from jwst.datamodels import ModelContainer
    from stdatamodels.jwst.datamodels import IFUImageModel

    from tests.conftest import run_official_cube_build

    files, positions = moving_sim
    container = ModelContainer([IFUImageModel(f) for f in files])
    shifted = AssignMTWcsStep().run(container)
    # The shifted models go to the official cube step in memory, as in the official Spec3Pipeline.
    # A 0.2 µm stretch of the band: the frame shift is the same at every wavelength.
    with shifted:
        models = [shifted.borrow(i) for i in range(len(shifted))]
        official = run_official_cube_build(ModelContainer(models), official_cubepar, output_type="band", channel="1",
                                           band="short", wavemin=WAVEMIN, wavemax=WAVEMAX)
        for i, model in enumerate(models):
            shifted.shelve(model, i, modify=False)
    official_path = str(tmp_path / "official_s3d.fits")
    official[0].save(official_path)
    with dask.config.set(scheduler="threads"):
        names = build_cubes(open_cal(files), str(tmp_path / "c.zarr"), CubeRequest(channels=(1,), wavemin=WAVEMIN, wavemax=WAVEMAX), progress=False)
    cube = open_cube(str(tmp_path / "c.zarr"), names[0])
    figures = compare_with_official(official_path, cube)
    assert parity_ok(figures), figures
    # The source is a single point at the mean target position, not two.
    image = np.nanmedian(cube["sci"].values, axis=0)
    iy, ix = np.unravel_index(np.nanargmax(image), image.shape)
    ra, dec = cube["ra"].values[iy, ix], cube["dec"].values[iy, ix]
    mean_ra = np.mean([p[0] for p in positions])
    assert abs((ra - mean_ra) * np.cos(np.radians(dec)) * 3600) < 0.2
    assert abs((dec + 69.5) * 3600) < 0.2
