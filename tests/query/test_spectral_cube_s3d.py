"""spectral-cube reads a real multi-channel (WAVE-TAB) s3d file, as the official reader does."""

import warnings

import numpy as np
import pytest

pytest.importorskip("spectral_cube")


@pytest.fixture(scope="module")
def multi_s3d(sim_1a, tmp_path_factory):
    """A multi cube (tabular axis) of ``sim_1a`` over 5.20-5.26 um, exported as s3d."""
    import dask

    import mrsdask.cube
    from mrsdask.cube.export import write_s3d

    folder = tmp_path_factory.mktemp("multi_s3d")
    with dask.config.set(scheduler="threads"):
        cubes = mrsdask.cube.build([str(p) for p in sim_1a.cal_files], str(folder / "multi.zarr"),
                                   output_type="multi", wavemin=5.20, wavemax=5.26)
    (cube,) = cubes.values()
    assert cube.attrs["wavelength_axis"] == "tabular"
    return cube, write_s3d(cube, str(folder / "multi_s3d.fits"))


def test_spectral_cube_reads_the_multi_s3d_as_the_official_reader(multi_s3d):
    import astropy.units as u
    from spectral_cube import SpectralCube
    from stdatamodels.jwst.datamodels import IFUCubeModel

    import mrsdask.query.spectral_cube  # noqa: F401  (registers the reader)

    cube, path = multi_s3d
    lam = cube["wavelength"].values
    from spectral_cube.io.fits import load_fits_cube

    with pytest.raises(ValueError, match="-TAB"):  # why the bridge exists: spectral-cube's fits reader fails
        load_fits_cube(path, hdu="SCI")
    sc = SpectralCube.read(path)  # found by itself once mrsdask.query.spectral_cube is imported
    explicit = SpectralCube.read(path, format="mrsdask-s3d")
    np.testing.assert_array_equal(explicit.spectral_axis, sc.spectral_axis)
    assert sc.wcs.wcs.ctype[2] == "WAVE-TAB" and sc.unit == u.MJy / u.sr
    np.testing.assert_allclose(sc.spectral_axis.to_value(u.um), lam, rtol=1e-7)
    sci, dq = cube["sci"].values, cube["dq"].values
    good = np.isfinite(sci) & ((dq & 1) == 0)
    assert (~good).any() and good.any()
    np.testing.assert_array_equal(sc.mask.include(), good)
    np.testing.assert_array_equal(np.asarray(sc.filled_data[:].value)[good], sci[good])
    # Every voxel's world coordinates equal the official data model's gwcs of the same file.
    nz, ny, nx = sci.shape
    z, y, x = (a.ravel() for a in np.meshgrid(np.arange(0, nz, 7), np.arange(0, ny, 4), np.arange(0, nx, 4),
                                              indexing="ij"))
    with warnings.catch_warnings(), IFUCubeModel(path) as model:
        warnings.simplefilter("ignore")
        ra, dec, wave = model.meta.wcs(x, y, z)
    mine = sc.wcs.pixel_to_world_values(x, y, z)
    np.testing.assert_allclose(mine[0], ra, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mine[1], dec, rtol=0, atol=1e-9)
    spectral_unit = u.Unit(sc.wcs.wcs.cunit[2])
    np.testing.assert_allclose((np.asarray(mine[2]) * spectral_unit).to_value(u.um), wave, rtol=1e-7)
    # The zarr cube's own hand-off gives the same cube.
    lazy = cube.mrs.to_spectral_cube()
    np.testing.assert_allclose(lazy.spectral_axis.to_value(u.um), lam, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(lazy.filled_data[:].value)[good], sci[good])


def test_band_s3d_files_still_go_to_spectral_cubes_own_reader(window_cube_1a, tmp_path):
    """The registration claims only tabular s3d files: a band s3d is read by spectral-cube's fits reader."""
    import astropy.units as u
    from spectral_cube import SpectralCube

    import mrsdask.query.spectral_cube as bridge
    from mrsdask.cube.export import write_s3d
    from mrsdask.cube.reader import open_cube

    store, name = window_cube_1a
    cube = open_cube(store, name).isel(wavelength=slice(0, 40))
    path = write_s3d(cube, str(tmp_path / "band_s3d.fits"))
    assert not bridge.is_tabular_s3d(path)
    sc = SpectralCube.read(path, hdu="SCI")
    assert sc.wcs.wcs.ctype[2] == "WAVE"
    np.testing.assert_allclose(sc.spectral_axis.to_value(u.um), cube["wavelength"].values, rtol=1e-6)
