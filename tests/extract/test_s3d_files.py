"""``mrsdask extract FILE_s3d.fits``: s3d files extracted as the cubes of a store.

(An s3d file of the official CubeBuildStep against the official Extract1dStep:
tests/cube/test_build_parity.py, the rotated windowed case.)
"""

import os

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.cli import main


def test_an_s3d_file_gives_the_spectrum_of_its_cube_in_the_store(window_cube_1a, tmp_path, capsys):
    from mrsdask.cube.export import write_s3d
    from mrsdask.cube.reader import open_cube
    from mrsdask.io.s3d import open_s3d

    store, name = window_cube_1a
    cube = open_cube(store, name)
    s3d = write_s3d(cube, str(tmp_path / f"obs_{name}_s3d.fits"))
    opened = open_s3d(s3d)
    for var in ("sci", "err", "dq", "wmap"):
        np.testing.assert_array_equal(opened[var].values, cube[var].values)
    np.testing.assert_array_equal(opened["wavelength"].values, cube["wavelength"].values)
    assert (opened.attrs["channel"], opened.attrs["band"], opened.attrs["bands"]) == ("1", "SHORT", ["1A"])

    assert main(["extract", store, "--x1d", str(tmp_path / "from_store"), "--no-spectral-leak"]) == 0
    assert main(["extract", s3d, "--x1d", str(tmp_path / "from_s3d"), "--no-spectral-leak"]) == 0
    assert os.listdir(tmp_path / "from_s3d") == [f"obs_{name}_x1d.fits"]
    a = fits.getdata(tmp_path / "from_store" / f"{cube.attrs['product_name']}_{name}_x1d.fits", "EXTRACT1D")
    b = fits.getdata(tmp_path / "from_s3d" / f"obs_{name}_x1d.fits", "EXTRACT1D")
    for column in ("WAVELENGTH", "FLUX", "FLUX_ERROR", "SURF_BRIGHT", "BACKGROUND"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-12, err_msg=column)
    capsys.readouterr()

    # Mistakes: one line, exit 2, nothing written.
    for args, message in (([str(tmp_path / "missing_s3d.fits")], "file not found"),
                          ([s3d, "--cube", name], "--cube names cubes of a store"),
                          ([store, s3d], "give one cube store, or s3d files")):
        assert main(["extract", *args, "--x1d", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
    with fits.open(s3d) as hdul:
        hdul["SCI"].header["BUNIT"] = "Jy"
        hdul.writeto(tmp_path / "jy_s3d.fits")
    assert main(["extract", str(tmp_path / "jy_s3d.fits"), "--x1d", str(tmp_path / "bad")]) == 2
    assert "MJy/sr" in capsys.readouterr().err


@pytest.mark.parametrize("name, expected", [("jw01_ch1-short_s3d.fits", "jw01_ch1-short_x1d.fits"),
                                            ("cube.fits.gz", "cube_x1d.fits")])
def test_x1d_names_follow_the_s3d_names(name, expected):
    from mrsdask.extract.files import x1d_name

    assert x1d_name(f"/data/{name}") == expected
