"""FRINGEFREQ and FRINGE reference files, and the fringe flat on detector Datasets."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from mrsdask.errors import InputError, ParameterError
from mrsdask.fringe import (
    apply_fringe_flat,
    divide_by_fringe_flat,
    documented_fringefreq,
    read_fringe_flat,
    read_fringefreq,
    write_fringe_flat,
    write_fringefreq,
)
from mrsdask.fringe.reference import read_fringe_flat_info


def test_fringefreq_round_trip_and_official_model(tmp_path):
    from stdatamodels.jwst.datamodels import FringeFreqModel

    path = write_fringefreq(tmp_path / "fringefreq.fits")
    ref = read_fringefreq(path)
    assert ref.n_components == 2
    p = ref.slice_params("MEDIUM", 305)
    assert p.ffreq == (2.9, 0.4) and p.dffreq == (1.5, 0.15) and p.max_nfringes == (10, 15)
    assert p.pgram_res == (0.001, 0.001)
    assert ref.slice_params("LONG", 117).ffreq == (2.9, 0.0)  # no dichroic fringe in channels 1/2
    comps = ref.slice_params("SHORT", 101).components()
    assert comps[1].is_placeholder and not comps[0].is_placeholder
    assert ref.slice_params("2B", 201) == ref.slice_params("MEDIUM", 201)
    np.testing.assert_allclose(ref.max_amp_at([5.0, 25.0]), 0.4)
    with FringeFreqModel(path) as model:  # what the official step opens
        table = model.rfc_freq_short_table
        assert len(table) == 66
        assert model.max_amp_table["Wavelength"][0] == 4.0


def test_fringefreq_reader_accepts_uppercase_columns_and_custom_values(tmp_path):
    path = tmp_path / "upper.fits"
    rows = [(101.0, [2.97, 0.0], [0.2, 0.0], [1, 0], [5, 0], [20.0, 0.0], [0.002, 0.0])]
    cols = [
        fits.Column("SLICE", "D", array=[r[0] for r in rows]),
        fits.Column("FFREQ", "2D", array=[r[1] for r in rows]),
        fits.Column("DFFREQ", "2D", array=[r[2] for r in rows]),
        fits.Column("MIN_NFRINGES", "2K", array=[r[3] for r in rows]),
        fits.Column("MAX_NFRINGES", "2K", array=[r[4] for r in rows]),
        fits.Column("MIN_SNR", "2D", array=[r[5] for r in rows]),
        fits.Column("PGRAM_RES", "2D", array=[r[6] for r in rows]),
    ]
    hdus = [fits.PrimaryHDU()]
    for band in ("SHORT", "MEDIUM", "LONG"):
        hdus.append(fits.BinTableHDU.from_columns(cols, name=f"RFC_FREQ_{band}"))
    hdus.append(fits.BinTableHDU.from_columns(
        [fits.Column("WAVELENGTH", "D", array=[5.0, 10.0]), fits.Column("AMPLITUDE", "D", array=[0.1, 0.3])],
        name="MAX_AMP"))
    fits.HDUList(hdus).writeto(path)
    ref = read_fringefreq(path)
    p = ref.slice_params("SHORT", 101)
    assert p.ffreq == (2.97, 0.0) and p.max_nfringes == (5, 0) and p.min_snr == (20.0, 0.0)
    assert ref.max_amp_at(7.5) == pytest.approx(0.2)
    with pytest.raises(ParameterError, match="slice 102"):
        ref.slice_params("SHORT", 102)


def test_fringefreq_reader_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_fringefreq(tmp_path / "missing.fits")
    bad = tmp_path / "bad.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(bad)
    with pytest.raises(InputError, match="RFC_FREQ_SHORT"):
        read_fringefreq(bad)


def _detector_ds(detectors, bands, ny=16, nx=12):
    rng = np.random.default_rng(0)
    n = len(detectors)
    sci = rng.uniform(1, 2, (n, ny, nx)).astype(np.float32)
    err = (0.1 * sci).astype(np.float32)
    return xr.Dataset(
        {"sci": (("exposure", "y", "x"), sci), "err": (("exposure", "y", "x"), err),
         "dq": (("exposure", "y", "x"), np.zeros((n, ny, nx), np.uint32))},
        coords={"detector": ("exposure", detectors), "band": ("exposure", bands)},
    ).chunk({"exposure": 1, "y": 8, "x": nx})


def test_fringe_flat_files(tmp_path):
    flat = np.full((16, 12), 2.0, np.float32)
    path = write_fringe_flat(tmp_path / "flat.fits", flat, "MIRIFUSHORT", "SHORT")
    info = read_fringe_flat_info(path)
    assert (info.detector, info.band, info.shape) == ("MIRIFUSHORT", "SHORT", (16, 12))
    np.testing.assert_array_equal(read_fringe_flat(path), flat)
    from stdatamodels.jwst.datamodels import FringeModel

    with FringeModel(path) as model:
        assert model.meta.instrument.band == "SHORT"


def test_divide_by_fringe_flat_replaces_nan_by_one():
    sci = np.array([[2.0, 4.0, 6.0, 8.0]], np.float32)
    err = np.array([[0.2, 0.4, 0.6, 0.8]], np.float32)
    flat = np.array([[2.0, np.nan, 0.5, np.inf]], np.float32)
    s, e = divide_by_fringe_flat(sci, err, flat)
    np.testing.assert_allclose(s, [[1.0, 4.0, 12.0, 8.0]])
    np.testing.assert_allclose(e, [[0.1, 0.4, 1.2, 0.8]])
    assert s.dtype == np.float32


def test_apply_fringe_flat_per_exposure(tmp_path):
    ds = _detector_ds(["MIRIFUSHORT", "MIRIFULONG", "MIRIFUSHORT"], ["SHORT", "SHORT", "LONG"])
    f1 = np.full((16, 12), 2.0, np.float32)
    f1[3, 4] = np.nan
    f2 = np.full((16, 12), 4.0, np.float32)
    f3 = np.full((16, 12), 0.5, np.float32)
    paths = [write_fringe_flat(tmp_path / "a.fits", f1, "MIRIFUSHORT", "SHORT"),
             write_fringe_flat(tmp_path / "b.fits", f2, "MIRIFULONG", "SHORT"),
             write_fringe_flat(tmp_path / "c.fits", f3, "MIRIFUSHORT", "LONG")]
    out = apply_fringe_flat(ds, paths)
    assert isinstance(out["sci"].data, da.Array)
    assert out["sci"].data.chunks == ds["sci"].data.chunks
    res = out.compute()
    sci = ds["sci"].values
    expected = sci / np.stack([np.where(np.isnan(f1), 1, f1), f2, f3])
    np.testing.assert_allclose(res["sci"].values, expected, rtol=1e-6)
    np.testing.assert_allclose(res["err"].values, ds["err"].values / np.stack([np.where(np.isnan(f1), 1, f1), f2, f3]),
                               rtol=1e-6)
    assert res["sci"].values[0, 3, 4] == sci[0, 3, 4]
    np.testing.assert_array_equal(res["dq"].values, ds["dq"].values)
    assert out.attrs["fringe_flat"] == paths


def test_apply_fringe_flat_errors(tmp_path):
    ds = _detector_ds(["MIRIFUSHORT"], ["MEDIUM"])
    short = write_fringe_flat(tmp_path / "s.fits", np.ones((16, 12)), "MIRIFUSHORT", "SHORT")
    with pytest.raises(ParameterError, match="MIRIFUSHORT MEDIUM.*no fringe flat matches"):
        apply_fringe_flat(ds, short)
    long_det = write_fringe_flat(tmp_path / "l.fits", np.ones((16, 12)), "MIRIFULONG", "MEDIUM")
    with pytest.raises(ParameterError, match="no fringe flat matches"):
        apply_fringe_flat(ds, [short, long_det])
    wrong_shape = write_fringe_flat(tmp_path / "w.fits", np.ones((8, 12)), "MIRIFUSHORT", "MEDIUM")
    with pytest.raises(ParameterError, match="shape"):
        apply_fringe_flat(ds, wrong_shape)
    dup = write_fringe_flat(tmp_path / "d.fits", np.ones((16, 12)), "MIRIFUSHORT", "MEDIUM")
    dup2 = write_fringe_flat(tmp_path / "d2.fits", np.ones((16, 12)), "MIRIFUSHORT", "MEDIUM")
    with pytest.raises(ParameterError, match="several"):
        apply_fringe_flat(ds, [dup, dup2])
    with pytest.raises(InputError, match="not found"):
        apply_fringe_flat(ds, tmp_path / "nope.fits")
