"""s3d files written while a cube's slabs run (mrsdask.cube.s3d_sink) equal the store's export."""

import logging

import numpy as np

from mrsdask.datamodel.dq import NON_SCIENCE_HOLE


def _file_bytes_without_date(path) -> bytes:
    """The file's bytes with the DATE card (the time the file was written) blanked."""
    data = bytearray(open(path, "rb").read())
    start = 0
    while (at := data.find(b"DATE    = ", start)) >= 0:
        if at % 80 == 0:  # a card, not text inside one
            data[at:at + 80] = b" " * 80
        start = at + 1
    return bytes(data)


def test_a_build_writes_the_s3d_file_that_the_store_export_writes(sim_1a, window_cube_1a, tmp_path, caplog):
    import dask

    from mrsdask.cube.builder import build_cubes, open_cube
    from mrsdask.cube.export import export_s3d
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal
    from tests.cluster import dask_procs

    root = str(tmp_path / "cubes.zarr")
    request = CubeRequest(output_type="band", channels=(1,), subbands=("A",), wavemin=dask_procs.WAVEMIN,
                          wavemax=dask_procs.WAVEMAX)
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    with dask.config.set(scheduler="threads"), caplog.at_level(logging.INFO, logger="mrsdask.phases"):
        names = build_cubes(ds, root, request, progress=False, s3d=str(tmp_path / "s3d"), s3d_prefix="t")
    assert names == [dask_procs.CUBE]
    assert "s3d export" not in caplog.text  # written beside the slabs, not read back from the store
    direct = tmp_path / "s3d" / f"t_{dask_procs.CUBE}_s3d.fits"
    assert sorted(p.name for p in (tmp_path / "s3d").iterdir()) == [direct.name]  # no staging left
    exported = export_s3d(root, names, str(tmp_path / "exported"), prefix="t")[0]
    assert _file_bytes_without_date(direct) == _file_bytes_without_date(exported)
    for name, values in dask_procs.cube_arrays(root).items():  # the store is the reference build
        np.testing.assert_array_equal(values, dask_procs.cube_arrays(window_cube_1a[0])[name])

    # The cube is complete now: a second build keeps it and exports its file from the store.
    caplog.clear()
    with dask.config.set(scheduler="threads"), caplog.at_level(logging.INFO, logger="mrsdask.phases"):
        build_cubes(ds, root, request, progress=False, s3d=str(tmp_path / "s3d"), s3d_prefix="t")
    assert "s3d export" in caplog.text
    assert _file_bytes_without_date(direct) == _file_bytes_without_date(exported)
    assert open_cube(root, names[0]).attrs["mrsdask_complete"] is True

    # Built again (overwrite): the file there is set aside and removed while the slabs run.
    old = direct.stat().st_ino
    with dask.config.set(scheduler="threads"):
        build_cubes(ds, root, request, progress=False, overwrite=True, s3d=str(tmp_path / "s3d"), s3d_prefix="t")
    assert direct.stat().st_ino != old and sorted(p.name for p in (tmp_path / "s3d").iterdir()) == [direct.name]
    again = export_s3d(root, names, str(tmp_path / "again"), prefix="t")[0]  # this build's date in its history
    assert _file_bytes_without_date(direct) == _file_bytes_without_date(again)


def test_planes_written_in_any_order_and_blanked_tears_equal_the_export(window_cube_1a, tmp_path):
    from mrsdask.cube.builder import open_cube
    from mrsdask.cube.export import write_s3d
    from mrsdask.cube.gwcs_document import cube_asdf_bytes
    from mrsdask.cube.s3d_sink import finish_s3d, start_s3d

    cube = open_cube(*window_cube_1a, dask=False).load()
    nz = cube.sizes["wavelength"]
    tears = np.array([3, nz - 1])
    sink = start_s3d(str(tmp_path / "sink.fits"), cube, str(tmp_path / "c_s3d.fits"))
    for z0, z1 in ((200, nz), (0, 7), (7, 200)):  # slabs finish in any order
        sink.write_planes(z0, {name: cube[name].values[z0:z1].copy() for name in ("sci", "err", "dq", "wmap")})
    shape = (nz, cube.sizes["y"], cube.sizes["x"])
    document = cube_asdf_bytes(cube.attrs["wcs_header"], shape, cube["wavelength"].values.astype(np.float32))
    finish_s3d(sink, cube["wavelength"].values, tears, document)

    blanked = cube.copy(deep=True)
    for name, value in (("sci", np.nan), ("err", np.nan), ("wmap", 0.0), ("dq", NON_SCIENCE_HOLE)):
        blanked[name].values[tears] = value
    write_s3d(blanked, str(tmp_path / "c_s3d.fits"))
    assert _file_bytes_without_date(sink.path) == _file_bytes_without_date(tmp_path / "c_s3d.fits")

    from stdatamodels.jwst.datamodels import IFUCubeModel

    with IFUCubeModel(sink.path) as model:  # the official reader
        assert np.isnan(model.data[tears]).all() and (model.dq[tears] == NON_SCIENCE_HOLE).all()
        np.testing.assert_array_equal(model.dq[5], cube["dq"].values[5])
        assert model.meta.wcs is not None
