"""Parity with the official steps, run offline on the same simulated cal files.

* ``jwst.background.BackgroundStep`` (pixel-by-pixel) with 10 background exposures, so that
  the 3σ clipping along the exposures actually rejects values;
* ``jwst.master_background.MasterBackgroundStep`` with ``user_background`` = an x1d file we
  write (same 1-D spectrum in), for a channel 1/2 and a channel 3/4 exposure;
* ``MasterBackgroundStep`` on an association whose background members are x1d files
  (combination by exposure time + projection).

Required: the 2-D background within 1e-4 relative; observed: bit-identical.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mrsdask.background import BackgroundSpectrum, open_inputs, subtract_background
from mrsdask.background import spectrum as bspec

pytestmark = pytest.mark.filterwarnings("ignore")


def _official_env():
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()


def _by_setting(paths, setting):
    return [str(p) for p in paths if f"_{setting}_" in os.path.basename(str(p))]


def _max_rel(ours, official):
    ours = np.asarray(ours, dtype=np.float64)
    official = np.asarray(official, dtype=np.float64)
    both = np.isfinite(ours) & np.isfinite(official)
    assert np.array_equal(np.isnan(ours), np.isnan(official))
    denom = np.maximum(np.abs(official[both]), 1e-30)
    return float(np.max(np.abs(ours[both] - official[both]) / denom)) if both.any() else 0.0


@pytest.fixture(scope="module")
def many_backgrounds(sim_1a3a, tmp_path_factory):
    """10 background exposures of setting 12A: the simulated one with fresh noise and outliers.

    Copies of the file with SCI and DQ replaced in place (astropy), not re-saved through the
    data model: the same files for both sides, without re-serialising the gwcs ten times."""
    import shutil

    from astropy.io import fits

    folder = tmp_path_factory.mktemp("many_bkg")
    source = _by_setting(sim_1a3a.background_files, "12A")[0]
    rng = np.random.default_rng(42)
    base, dq = fits.getdata(source, "SCI"), fits.getdata(source, "DQ")
    out = []
    for i in range(10):
        data = base + rng.normal(0.0, 0.3, base.shape).astype(np.float32)
        hit = rng.random(base.shape) < 0.02
        data[hit] += rng.uniform(10, 100, hit.sum()).astype(np.float32)
        path = folder / f"many_12A_bkg{i:02d}_cal.fits"
        shutil.copyfile(source, path)
        with fits.open(path, mode="update") as hdul:
            hdul["SCI"].data = data.astype(np.float32)
            hdul["DQ"].data = np.where(rng.random(base.shape) < 0.001, 4, dq).astype(np.uint32)
            hdul[0].header["FILENAME"] = path.name
        out.append(str(path))
    return out


def test_pixel_matches_official_background_step(sim_1a3a, many_backgrounds, tmp_path):
    _official_env()
    from jwst.background import BackgroundStep
    from stdatamodels.jwst import datamodels

    science = _by_setting(sim_1a3a.cal_files, "12A")[0]
    step = BackgroundStep(override_bkg="N/A", override_wavelengthrange="N/A",
                          save_combined_background=True, output_dir=str(tmp_path))
    official = step.run(science, many_backgrounds)
    combined = datamodels.open(str(next(tmp_path.glob("*combinedbackground*.fits"))))

    asn = tmp_path / "asn.json"
    asn.write_text(json.dumps({"products": [{"name": "p", "members": [
        {"expname": science, "exptype": "science"}, *[{"expname": b, "exptype": "background"}
                                                      for b in many_backgrounds]]}]}))
    ds, x1d = open_inputs([str(asn)])
    assert x1d == [] and list(ds["exptype"].values).count("background") == 10
    out, summary, _ = subtract_background(ds, "pixel", combine_errors=False, save_2d=True)
    assert summary.per_setting == {"12A": [os.path.basename(b) for b in many_backgrounds]}
    result = out.isel(exposure=0).compute()
    # The clipping did reject values somewhere (10 exposures, 2 % outliers).
    from mrsdask.background import kernels
    stack = ds["sci"][1:, 400:420].values
    assert kernels.sigma_clip_mask(stack)[np.isfinite(stack)].sum() > 50

    np.testing.assert_array_equal(result["sci"].values, official.data)
    np.testing.assert_array_equal(result["dq"].values, official.dq)
    np.testing.assert_array_equal(result["err"].values, official.err)   # ERR untouched, as official
    np.testing.assert_array_equal(result["background"].values, combined.data)
    np.testing.assert_array_equal(result["background_err"].values, combined.err)
    # Default: background ERR added in quadrature.
    out2, _, _ = subtract_background(ds, "pixel")
    err2 = out2["err"][0, 400:420].values
    expected = np.sqrt(official.err[400:420].astype(np.float32) ** 2 + combined.err[400:420] ** 2)
    np.testing.assert_allclose(err2, expected, rtol=1e-6)


@pytest.mark.parametrize("setting", ["12A", "34A"])
def test_master_user_background_matches_official(sim_1a3a, tmp_path, setting):
    _official_env()
    from jwst.master_background import MasterBackgroundStep
    from stdatamodels.jwst import datamodels

    from mrsdask.sim import sky_spectrum

    lam = np.linspace(4.5, 14.0, 5000)
    wiggle = 1.0 + 0.05 * np.sin(lam * 40.0)           # structure finer than the bands
    user = BackgroundSpectrum(lam, sky_spectrum(lam) * wiggle, source="user")
    x1d = bspec.write_background_x1d([user], str(tmp_path / "user_x1d.fits"), 100.0)

    science = _by_setting(sim_1a3a.cal_files, setting)[0]
    official = MasterBackgroundStep(user_background=x1d, save_background=True,
                                    output_dir=str(tmp_path)).run(science)
    official_2d = datamodels.open(str(next(tmp_path.glob("*masterbg2d*.fits")))).data

    ds, _ = open_inputs([science])
    out, summary, master = subtract_background(ds, "master", user_background=x1d, save_2d=True)
    assert summary.source.startswith("user-supplied spectrum user_x1d.fits")
    result = out.isel(exposure=0).compute()
    rel_2d = _max_rel(result["background"].values, official_2d)
    print(f"{setting}: max relative difference of the 2-D background = {rel_2d:.3g}")
    assert rel_2d <= 1e-4
    np.testing.assert_array_equal(result["background"].values, official_2d)
    np.testing.assert_array_equal(result["sci"].values, official.data)
    np.testing.assert_array_equal(result["dq"].values, official.dq)
    assert np.nanmedian(official_2d[official_2d > 0]) > 0.1


def test_master_x1d_members_match_official(sim_1a3a, tmp_path):
    """Association: science cal + background x1d members (combined, then projected)."""
    _official_env()
    from jwst.master_background import MasterBackgroundStep
    from stdatamodels.jwst import datamodels

    from mrsdask.sim import sky_spectrum

    rng = np.random.default_rng(3)
    members = []
    for i, (exptime, shift) in enumerate([(100.0, 0.0), (250.0, 1e-4)]):
        spectra = []
        for lo, hi, n in ((4.88, 5.76, 1050), (7.49, 8.78, 970)):     # like cubes of 1A and 2A
            lam = np.linspace(lo, hi, n) + shift
            sb = sky_spectrum(lam) * (1 + rng.normal(0, 0.01, n))
            dq = np.where(rng.random(n) < 0.01, 1, 0).astype(np.uint32)
            spectra.append(BackgroundSpectrum(lam, sb, sb_error=np.full(n, 0.02), dq=dq, flux=sb * 1e-6))
        path = tmp_path / f"bkg{i}_x1d.fits"
        bspec.write_background_x1d(spectra, str(path), exptime)
        members.append(path.name)
    science = _by_setting(sim_1a3a.cal_files, "12A")[0]
    asn = tmp_path / "spec3_asn.json"
    asn.write_text(json.dumps({"asn_type": "spec3", "asn_id": "o001", "asn_pool": "pool",
                               "products": [{"name": "prod", "members": [
                                   {"expname": science, "exptype": "science"},
                                   *[{"expname": m, "exptype": "background"} for m in members]]}]}))
    outdir = tmp_path / "official"
    outdir.mkdir()
    official = MasterBackgroundStep(save_background=True, output_dir=str(outdir)).run(str(asn))
    official_1d = datamodels.open(str(next(outdir.glob("*masterbg1d*.fits")))).spec[0].spec_table
    official_2d = datamodels.open(str(next(outdir.glob("*masterbg2d*.fits")))).data

    ds, x1d = open_inputs([str(asn)])
    assert [os.path.basename(p) for p in x1d] == members and ds.sizes["exposure"] == 1
    out, summary, master = subtract_background(ds, "master", background_x1d=x1d, save_2d=True)
    assert summary.background == members
    np.testing.assert_array_equal(master.wavelength, official_1d["wavelength"])
    np.testing.assert_allclose(master.surf_bright, official_1d["surf_bright"], rtol=1e-13)
    result = out.isel(exposure=0).compute()
    rel_2d = _max_rel(result["background"].values, official_2d)
    print(f"x1d members: max relative difference of the 2-D background = {rel_2d:.3g}")
    assert rel_2d <= 1e-4
    np.testing.assert_allclose(result["sci"].values, official[0].data, rtol=1e-6, atol=1e-6)
