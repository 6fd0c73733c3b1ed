"""``xarray.open_dataset(..., engine="mrsdask")``: the same lazy Datasets as mrsdask's own openers."""

import numpy as np
import pytest
import xarray as xr

from mrsdask.errors import InputError


def test_the_engine_opens_cal_files_associations_cube_stores_and_s3d_files(sim_1a, window_cube_1a, tmp_path):
    from mrsdask.cube.export import write_s3d
    from mrsdask.cube.reader import open_cube
    from mrsdask.io.detector_store import open_cal

    assert "mrsdask" in xr.backends.list_engines()
    cal = str(sim_1a.cal_files[0])
    by_engine = xr.open_dataset(cal)  # chosen by the name (*_cal.fits); lazy, read when indexed
    mine = open_cal([cal])
    assert xr.open_dataset(cal, chunks={})["sci"].chunks is not None  # as Dask arrays
    np.testing.assert_array_equal(by_engine["sci"][0, 500].values, mine["sci"][0, 500].values)
    assert list(xr.open_dataset(str(sim_1a.association), engine="mrsdask")["filename"].values) == \
        [p.name for p in sim_1a.cal_files]

    store, name = window_cube_1a
    cube = xr.open_dataset(store, engine="mrsdask", group=name, drop_variables=["wmap"])
    assert "wmap" not in cube and cube.attrs["mrsdask_complete"] is True
    np.testing.assert_array_equal(cube["sci"][10].values, open_cube(store, name)["sci"][10].values)
    s3d = write_s3d(open_cube(store, name), str(tmp_path / f"o_{name}_s3d.fits"))
    np.testing.assert_array_equal(xr.open_dataset(s3d)["sci"][10].values, cube["sci"][10].values)
    with pytest.raises(InputError, match="name the cube with group="):
        xr.open_dataset(store, engine="mrsdask")
