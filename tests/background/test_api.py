"""The Dask/xarray layers and run_background: roles, errors, options, laziness (fast)."""

from __future__ import annotations

import json
import logging

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from bkg_helpers import synthetic_detector_dataset

from mrsdask.background import BackgroundSpectrum, run_background, subtract_background, write_background_store
from mrsdask.errors import MrsdaskError, InputError, ParameterError

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def mixed():
    """12A: 2 science + 3 background; 34A: 1 science, no background."""
    a = synthetic_detector_dataset(2, 3, setting="12A", seed=1)
    b = synthetic_detector_dataset(1, 0, setting="34A", seed=2)
    return xr.concat([a, b], dim="exposure")


def test_pixel_roles_unmatched_and_laziness(mixed, caplog):
    with caplog.at_level(logging.INFO, logger="mrsdask.background"):
        out, summary, master = subtract_background(mixed, "pixel", save_2d=True)
    assert master is None
    assert isinstance(out["sci"].data, da.Array)                   # nothing computed yet
    assert out.sizes["exposure"] == 3 and list(out["exptype"].values) == ["science"] * 3
    assert summary.per_setting == {"12A": ["syn_12A_bac2_cal.fits", "syn_12A_bac3_cal.fits", "syn_12A_bac4_cal.fits"]}
    assert summary.unchanged == ["syn_34A_sci0_cal.fits"]
    assert "has no background exposure of its setting" in caplog.text
    assert "pixel background: setting 12A, 3 background exposure(s)" in caplog.text
    # Chunks stay one exposure by a block of rows.
    assert max(out["sci"].data.chunks[1]) <= 256 and out["sci"].data.chunks[0] == (1, 1, 1)
    rows = slice(500, 520)
    sci = mixed["sci"][:, rows].values
    got = out["sci"][:, rows].values
    np.testing.assert_allclose(got[:2], (sci[:2] - sci[2:5].astype(np.float64).mean(axis=0)).astype(np.float32),
                               atol=2e-5)
    np.testing.assert_array_equal(got[2], sci[5])                      # unmatched: unchanged
    assert np.all(out["background"][2, rows].values == 0)
    json.loads(out.attrs["mrsdask_background"])


def test_keep_background_and_in_memory_input(mixed):
    small = mixed.isel(exposure=[0, 2, 3], y=slice(0, 64)).load()        # plain numpy arrays
    out, _, _ = subtract_background(small, "pixel", keep_background=True)
    assert list(out["exptype"].values) == ["science", "background", "background"]
    np.testing.assert_array_equal(out["sci"][1].values, small["sci"][1].values)
    expected = small["sci"][0].values - small["sci"][1:].values.astype(np.float64).mean(axis=0).astype(np.float32)
    np.testing.assert_allclose(out["sci"][0].values, expected, atol=2e-5)


def test_master_user_spectrum_on_dataset(mixed):
    lam = np.linspace(4.0, 30.0, 500)
    user = BackgroundSpectrum(lam, np.full(lam.size, 7.0), source="flat")
    out, summary, master = subtract_background(mixed, "master", user_background=user, save_2d=True)
    assert master is user and summary.source == "user-supplied spectrum flat"
    bkg = out["background"][:, 500:510].values
    on = np.isfinite(mixed["wavelength"][0, 500:510].values)
    assert np.all(bkg[0][on] == 7.0) and np.all(bkg[0][~on] == 0.0)
    np.testing.assert_array_equal(out["dq"].values[:, 500:510], mixed["dq"].values[[0, 1, 5], 500:510])
    assert summary.notes == []
    narrow = BackgroundSpectrum(np.linspace(5.0, 8.0, 50), np.ones(50), source="narrow")
    _, summary, _ = subtract_background(mixed, "master", user_background=narrow)
    assert len(summary.notes) == 2 and "setting 34A" in summary.notes[1] and "(0% covered)" in summary.notes[1]


def test_errors(mixed, tmp_path):
    science_only = mixed.isel(exposure=[0, 1])
    with pytest.raises(InputError, match="needs background exposures"):
        subtract_background(science_only, "pixel")
    with pytest.raises(InputError, match="master method needs"):
        subtract_background(science_only, "master")
    with pytest.raises(ParameterError, match="choose pixel or master"):
        subtract_background(mixed, "median")
    with pytest.raises(ParameterError, match="needs method='master'"):
        subtract_background(mixed, "pixel", user_background=BackgroundSpectrum([5, 6], [1, 1]))
    with pytest.raises(InputError, match="no science exposure"):
        subtract_background(mixed.isel(exposure=[2, 3]), "pixel")
    done, _, _ = subtract_background(mixed, "pixel")
    with pytest.raises(ParameterError, match="already background-subtracted"):
        subtract_background(done, "pixel")
    with pytest.raises(ParameterError, match="save_master needs method='master'"):
        run_background(mixed, None, method="pixel", save_master=str(tmp_path / "m.txt"))


def test_run_background_store_roundtrip(mixed, tmp_path):
    from mrsdask.io.detector_store import open_detector_store

    small = mixed.isel(exposure=[0, 2, 3, 4])
    store = str(tmp_path / "out.zarr")
    with dask.config.set(scheduler="threads"):
        summary = run_background(small, store, method="pixel", save_2d=True)
        with pytest.raises(InputError, match="already exists"):
            run_background(small, store, method="pixel")
    assert summary.output_store == store and "wrote" in str(summary)
    out = open_detector_store(store)
    assert out.sizes["exposure"] == 1 and "background_err" in out
    assert json.loads(out.attrs["mrsdask_background"])["method"] == "pixel"
    # A subtracted store is refused unless forced; never written over itself or over a folder.
    with pytest.raises(ParameterError, match="already background-subtracted"):
        run_background(store, None, method="pixel")
    with pytest.raises(InputError, match="is the input store"):
        write_background_store(out, store, overwrite=True)
    folder = tmp_path / "not_a_store"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(MrsdaskError, match="not a zarr store"):  # refused before any work
        run_background(small, str(folder), method="pixel", overwrite=True)
    assert (folder / "precious.txt").exists()


def test_master_background_cubes_use_the_cubepar_given(sim_1a, tmp_path):
    """--cubepar / cubepar=: the background cubes are built with that CUBEPAR (a coarser 1A
    spectral step gives a coarser background spectrum); refused for the pixel method."""
    import dataclasses

    from mrsdask.background.master import cube_background_spectra
    from mrsdask.background.request import BackgroundRequest
    from mrsdask.cube.cubepars import default_cubepars, write_cubepar
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal

    ds = open_cal([str(sim_1a.cal_files[0])])
    ds = ds.assign_coords(exptype=("exposure", np.array(["background"])))
    pars = default_cubepars()
    coarse = dataclasses.replace(pars.bands["1A"], spectralstep=pars.bands["1A"].spectralstep * 4)
    path = write_cubepar(dataclasses.replace(pars, bands={**pars.bands, "1A": coarse}), tmp_path / "coarse.fits")
    window = CubeRequest(output_type="band", channels=(1,), wavemin=5.30, wavemax=5.36)
    with dask.config.set(scheduler="threads"):
        (default,) = cube_background_spectra(ds, request=window)
        (given,) = cube_background_spectra(ds, request=window, cubepar=str(path))
    step = np.median(np.diff(default.wavelength))
    assert np.median(np.diff(given.wavelength)) == pytest.approx(4 * step, rel=1e-3)
    with pytest.raises(ParameterError, match="cubepar needs method='master'"):
        BackgroundRequest(method="pixel", cubepar=str(path))
    assert BackgroundRequest(method="master", cubepar=str(path)).run_arguments()["cubepar"] == str(path)


def test_nominal_wavelength_range_is_that_of_the_reference_geometry_and_kept_in_the_cache(tmp_path, monkeypatch):
    """The coverage check's ranges: the wavelength models alone give the reference geometry's
    extremes; a later process reads them from the cache folder without opening the models."""
    import numpy as np

    from mrsdask.background import master
    from mrsdask.instrument.geometry import reference_geometry

    monkeypatch.setenv("MRSDASK_CACHE", str(tmp_path))
    master.nominal_wavelength_range.cache_clear()
    lam = reference_geometry("34A")["wavelength"]
    assert master.nominal_wavelength_range("34A") == (float(np.nanmin(lam)), float(np.nanmax(lam)))
    assert (tmp_path / master.RANGES_CACHE).exists()
    master.nominal_wavelength_range.cache_clear()  # as in a new process

    def opened(*args):
        raise AssertionError("the reference file was opened although its range is in the cache")

    monkeypatch.setattr(master, "_wavelength_range", opened)
    assert master.nominal_wavelength_range("34A") == (float(np.nanmin(lam)), float(np.nanmax(lam)))
    master.nominal_wavelength_range.cache_clear()
