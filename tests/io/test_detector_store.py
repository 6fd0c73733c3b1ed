"""Detector data model: lazy reading of cal files, zarr detector stores, FITS round trips, bad input."""

import gzip
import json
import shutil

import numpy as np
import pytest
from astropy.io import fits

from mrsdask.datamodel.detector import GEOMETRY_VARS, exposure_table, validate_detector_dataset
from mrsdask.errors import IncompleteStoreError, InputError
from mrsdask.io.association import read_association
from mrsdask.io.detector_store import open_cal, open_detector_store, write_cal_fits, write_detector_store
from mrsdask.io.inputs import resolve_inputs


def test_open_cal_is_lazy_and_follows_the_conventions(sim_1a):
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    assert dict(ds.sizes) == {"exposure": 2, "y": 1024, "x": 1032, "corner": 4}
    validate_detector_dataset(ds)
    # Nothing is read until computed: the arrays are dask arrays.
    for name in ("sci", "err", "dq") + GEOMETRY_VARS:
        assert hasattr(ds[name].data, "dask"), name
    assert ds["sci"].attrs["units"] == "MJy / sr"
    assert ds["wavelength"].attrs["units"] == "um"
    rows = exposure_table(ds)
    assert rows[0]["setting"] == "12A" and rows[0]["channel"] == "12" and rows[0]["band"] == "SHORT"
    assert rows[0]["exptype"] == "science"
    # Geometry of one chunk equals the file's own WCS.
    from stdatamodels.jwst.datamodels import IFUImageModel

    with IFUImageModel(str(sim_1a.cal_files[0])) as model:
        ra, dec, lam = model.meta.wcs(np.arange(1032.0), np.full(1032, 300.0))
    np.testing.assert_array_equal(ds["wavelength"].isel(exposure=0, y=300).values, lam)
    # RA/Dec from the compiled pointing chain: the same to rounding (~1e-14 deg).
    np.testing.assert_allclose(ds["ra"].isel(exposure=0, y=300).values, ra, rtol=0, atol=1e-12)


def test_globs_and_associations_resolve(sim_1a):
    folder = sim_1a.cal_files[0].parent
    members, stores = resolve_inputs([str(folder / "*_cal.fits")])
    assert len(members) == 2 and not stores
    name, asn_members = read_association(str(sim_1a.association))
    assert {m.exptype for m in asn_members} == {"science"}
    assert sorted(m.path for m in asn_members) == sorted(str(p) for p in sim_1a.cal_files)


def test_store_round_trip_and_fits_export(sim_1a, tmp_path):
    ds = open_cal([str(p) for p in sim_1a.cal_files])
    store = str(tmp_path / "det.zarr")
    write_detector_store(ds, store)
    back = open_detector_store(store)
    np.testing.assert_array_equal(back["sci"].values, ds["sci"].values)
    np.testing.assert_array_equal(back["dq"].values, ds["dq"].values)
    np.testing.assert_array_equal(back["corner_dec"].isel(exposure=1, y=500).values,
                                  ds["corner_dec"].isel(exposure=1, y=500).values)
    assert list(back["filename"].values) == list(ds["filename"].values)
    from mrsdask import __version__
    from mrsdask.provenance import software_versions

    assert back.attrs["mrsdask_provenance"]["software"] == software_versions()
    assert software_versions()["mrsdask"] == __version__ and "from" not in back.attrs["mrsdask_provenance"]
    with pytest.raises(InputError, match="already exists"):
        write_detector_store(ds, store)
    # Back to an official cal file.
    out = str(tmp_path / "roundtrip_cal.fits")
    write_cal_fits(back, 0, out)
    from stdatamodels.jwst.datamodels import IFUImageModel

    with IFUImageModel(out) as model, IFUImageModel(str(sim_1a.cal_files[0])) as orig:
        np.testing.assert_array_equal(model.data, orig.data)
        np.testing.assert_array_equal(model.dq, orig.dq)
        assert model.meta.instrument.channel == "12"
        assert model.meta.cal_step.assign_wcs == "COMPLETE"
        x, y = np.array([100.0, 700.0]), np.array([500.0, 200.0])
        np.testing.assert_array_equal(np.array(model.meta.wcs(x, y)), np.array(orig.meta.wcs(x, y)))
        # Stores written before 2026-12 hold an ASDF file of the gwcs alone: still read.
        import io

        import asdf

        from mrsdask.io.detector_store import wcs_from_bytes

        older = io.BytesIO()
        asdf.AsdfFile({"wcs": orig.meta.wcs}).write_to(older)
        for data in (older.getvalue(), back["wcs_asdf"].values[0]):
            np.testing.assert_array_equal(np.array(wcs_from_bytes(data)(x, y)), np.array(orig.meta.wcs(x, y)))


def test_incomplete_store_is_refused(sim_1a, tmp_path):
    ds = open_cal([str(sim_1a.cal_files[0])])
    store = str(tmp_path / "det.zarr")
    write_detector_store(ds, store)
    meta = tmp_path / "det.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["mrsdask_complete"] = False
    meta.write_text(json.dumps(doc))
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        open_detector_store(store)


# ----------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found|no such file"):
        open_cal([str(tmp_path / "nope_cal.fits")])


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(InputError, match="no file matches"):
        open_cal([str(tmp_path / "*.fits")])


def test_not_mrs(sim_1a, tmp_path):
    bad = tmp_path / "nirspec_cal.fits"
    shutil.copy(sim_1a.cal_files[0], bad)
    with fits.open(bad, mode="update") as hdul:
        hdul[0].header["INSTRUME"] = "NIRSPEC"
        hdul[0].header["EXP_TYPE"] = "NRS_IFU"
    with pytest.raises(InputError, match="not a MIRI MRS exposure"):
        open_cal([str(bad)])


def test_no_wcs(tmp_path):
    from mrsdask.instrument.reference import template_file

    bad = tmp_path / "nowcs_cal.fits"
    with fits.open(template_file("12A")) as hdul:
        del hdul["ASDF"]
        hdul[0].header["S_WCS"] = "SKIPPED"
        hdul.writeto(bad)
    with pytest.raises(InputError, match="no WCS"):
        open_cal([str(bad)])


def test_truncated_fits(sim_1a, tmp_path):
    bad = tmp_path / "truncated_cal.fits"
    data = sim_1a.cal_files[0].read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated|corrupt"):
        open_cal([str(bad)])


def test_not_fits_at_all(tmp_path):
    bad = tmp_path / "text_cal.fits"
    bad.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(InputError, match="not a readable FITS"):
        open_cal([str(bad)])


def test_unknown_input_kind(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(InputError, match="unrecognised input"):
        open_cal([str(other)])


def test_stored_geometry_equals_the_files_gwcs_evaluated_pixel_by_pixel(sim_1a):
    """The store's geometry shares the setting's detector frame across exposures
    (mrsdask.instrument.frames) and evaluates only the pointing: the same numbers as the gwcs."""
    from mrsdask.instrument.bands import CHANNEL_INFO
    from mrsdask.instrument.geometry import pixel_geometry, slice_map_of, slice_width
    from mrsdask.io.calfits import load_wcs
    from mrsdask.io.detector_store import geometry_rows

    path = str(sim_1a.cal_files[1])
    rows = geometry_rows(path, 300, 556)
    wcs = load_wcs(path)
    smap = slice_map_of(wcs)
    np.testing.assert_array_equal(rows["slice"], smap[300:556])
    for channel in (1, 2):
        info = CHANNEL_INFO[channel]
        ys, xs = np.nonzero((smap[300:556] >= info.first_slice) & (smap[300:556] <= info.last_slice))
        geom = pixel_geometry(wcs, xs, ys + 300, slice_width(wcs, smap, channel))
        for name in ("ra", "dec", "wavelength", "dwavelength", "alpha", "beta"):
            np.testing.assert_array_equal(rows[name][ys, xs], getattr(geom, name), err_msg=name)
        for name in ("corner_ra", "corner_dec"):
            np.testing.assert_array_equal(rows[name][:, ys, xs], getattr(geom, name), err_msg=name)
    assert np.isnan(rows["ra"][rows["slice"] == 0]).all()
