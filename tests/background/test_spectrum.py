"""1-D background spectra: reading, writing, combining (fast, no detector data)."""

from __future__ import annotations

import numpy as np
import pytest

from mrsdask.background import BackgroundSpectrum, combine, read_spectrum, write_spectrum
from mrsdask.background import spectrum as bspec
from mrsdask.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore")


def _spectrum(n=200, lo=4.9, hi=5.7, weight=100.0, offset=0.0):
    lam = np.linspace(lo, hi, n)
    return BackgroundSpectrum(lam, 0.5 + 0.1 * lam + offset, sb_error=np.full(n, 0.01), weight=weight,
                              flux=np.full(n, 1e-3), source=f"s{offset}")


def test_text_table(tmp_path):
    path = tmp_path / "bkg.txt"
    path.write_text("# lambda sb\n5.2 2.0\n5.0 1.0\n5.1 nan\n5.3 3.0\n")
    spec = read_spectrum(str(path))
    assert len(spec) == 4
    w, sb = spec.table()                 # NaN row dropped, sorted
    np.testing.assert_array_equal(w, [5.0, 5.2, 5.3])
    np.testing.assert_array_equal(sb, [1.0, 2.0, 3.0])
    bad = tmp_path / "bad.txt"
    bad.write_text("not a table\n")
    with pytest.raises(InputError, match="two-column"):
        read_spectrum(str(bad))
    with pytest.raises(InputError):
        read_spectrum(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("suffix", [".fits", ".txt"])
def test_write_read_roundtrip(tmp_path, suffix):
    spec = combine([_spectrum(), _spectrum(weight=300.0, offset=0.2)])
    path = write_spectrum(spec, str(tmp_path / f"master{suffix}"))
    back = read_spectrum(path)
    np.testing.assert_allclose(back.wavelength, spec.wavelength, rtol=1e-9)
    np.testing.assert_allclose(back.surf_bright, spec.surf_bright, rtol=1e-9)
    # Exposure-time weights: 0.25 * s + 0.75 * (s + 0.2).
    np.testing.assert_allclose(spec.surf_bright, 0.5 + 0.1 * spec.wavelength + 0.15, rtol=1e-12)


def test_master_fits_is_read_by_official_expand_to_2d(tmp_path):
    """The official step takes our 1-D master FITS as user_background (MultiCombinedSpecModel)."""
    from stdatamodels.jwst import datamodels

    spec = _spectrum()
    path = write_spectrum(spec, str(tmp_path / "master.fits"))
    with datamodels.open(path) as model:
        assert isinstance(model, datamodels.MultiCombinedSpecModel)
        table = model.spec[0].spec_table
        np.testing.assert_array_equal(table["wavelength"], spec.wavelength)
        np.testing.assert_array_equal(table["surf_bright"], spec.surf_bright)


def test_background_x1d_uses_background_column(tmp_path):
    spec = _spectrum()
    path = bspec.write_background_x1d([spec, _spectrum(lo=5.66, hi=6.6)], str(tmp_path / "b_x1d.fits"), 123.0)
    assert bspec.is_x1d(path)
    spectra = bspec.read_background_x1d(path)
    assert len(spectra) == 2 and spectra[0].weight == 123.0
    np.testing.assert_array_equal(spectra[0].surf_bright, spec.surf_bright)
    # As a user background, the first spectrum's SURF_BRIGHT is used.
    user = read_spectrum(path)
    np.testing.assert_array_equal(user.surf_bright, spec.surf_bright)


def test_median_kernel():
    base = _spectrum(n=101)
    spiky = BackgroundSpectrum(base.wavelength, base.surf_bright.copy(), weight=1.0, flux=base.flux)
    spiky.surf_bright[50] += 100.0
    smooth = combine([spiky], median_kernel=3)
    assert abs(smooth.surf_bright[50] - base.surf_bright[50]) < 0.01
    assert combine([spiky], median_kernel=1).surf_bright[50] > 100
