"""The ``.mrs`` accessor: unit-aware queries, off-cube refusals, aperture errors and DQ, moments."""

from __future__ import annotations

import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits

import mrsdask  # noqa: F401  (registers .mrs: part of what is tested)
from mrsdask.datamodel import cube as cmodel
from mrsdask.datamodel import dq as dqflags
from mrsdask.errors import OutsideCubeError, ParameterError

SPAXEL = 0.13  # arcsec
LAM0, DLAM, NZ = 5.30, 0.0005, 161  # µm: 5.300 … 5.380
C_KMS = 299792.458


def synthetic_cube(nx=9, ny=7, nz=NZ, sci=None, err=None, dq=None, chunks=None, tabular=False,
                   crval1=80.49) -> xr.Dataset:
    """A small cube Dataset with the layout and WCS header of :mod:`mrsdask.datamodel.cube`."""
    header = fits.Header()
    header["WCSAXES"] = 3
    header["CRPIX1"], header["CRPIX2"] = (nx + 1) / 2, (ny + 1) / 2
    header["CRVAL1"], header["CRVAL2"] = crval1, -69.5
    header["CDELT1"] = header["CDELT2"] = SPAXEL / 3600.0
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    rot = np.radians(25.0)
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = (
        -np.cos(rot), np.sin(rot), np.sin(rot), np.cos(rot))
    header["PC3_3"] = 1.0
    header["CUNIT3"] = "um"
    if tabular:
        lam = LAM0 + DLAM * np.arange(nz) * (1 + 0.01 * np.arange(nz))
        header["CTYPE3"], header["PS3_0"], header["PS3_1"] = "WAVE-TAB", "WCS-TABLE", "wavelength"
        header["CRVAL3"] = header["CRPIX3"] = header["CDELT3"] = 1.0
    else:
        lam = LAM0 + DLAM * np.arange(nz)
        header["CTYPE3"], header["CRVAL3"], header["CDELT3"], header["CRPIX3"] = "WAVE", LAM0, DLAM, 1.0
    header["RADESYS"] = "ICRS"
    attrs = {"convention": cmodel.CONVENTION, "wcs_header": header.tostring(sep="\n"),
             "cdelt1": SPAXEL / 3600.0, "cdelt2": SPAXEL / 3600.0,
             "wavelength_axis": "tabular" if tabular else "linear", "cdelt3": 0.0 if tabular else DLAM,
             "pixelarea_arcsecsq": SPAXEL**2, "pixelarea_steradians": SPAXEL**2 * cmodel.ARCSEC2_TO_SR,
             "units": "MJy / sr"}
    ra, dec = cmodel.spaxel_sky_coords(attrs, ny, nx)
    shape = (nz, ny, nx)
    rng = np.random.default_rng(1)
    sci = rng.uniform(1.0, 2.0, shape).astype(np.float32) if sci is None else sci.astype(np.float32)
    err = rng.uniform(0.01, 0.2, shape).astype(np.float32) if err is None else err.astype(np.float32)
    dq = np.zeros(shape, np.uint32) if dq is None else dq
    dims = ("wavelength", "y", "x")
    ds = xr.Dataset({"sci": (dims, sci, {"units": "MJy / sr"}), "err": (dims, err, {"units": "MJy / sr"}),
                     "dq": (dims, dq), "wmap": (dims, np.ones(shape, np.float32))},
                    coords={"wavelength": ("wavelength", lam, {"units": "um"}),
                            "ra": (("y", "x"), ra, {"units": "deg"}), "dec": (("y", "x"), dec, {"units": "deg"})},
                    attrs=attrs)
    return ds.chunk(chunks) if chunks else ds


def sky(ds, x, y):
    """ICRS (ra, dec) deg of a (fractional) pixel position."""
    ra, dec = cmodel.celestial_wcs(ds.attrs).wcs_pix2world([x], [y], 0)
    return float(ra[0]), float(dec[0])


# ---------------------------------------------------------------- units in, same answer out
@pytest.mark.parametrize("query", [
    5.3412, 5.3412 * u.um, 53412 * u.AA, 5.3412e-6 * u.m,
    (5.3412 * u.um).to(u.THz, equivalencies=u.spectral()),
    (5.3412 * u.um).to(u.cm**-1, equivalencies=u.spectral()),
])
def test_plane_takes_any_spectral_unit(query):
    ds = synthetic_cube()
    got = ds.mrs.plane(query)
    assert float(got["wavelength"]) == pytest.approx(5.3410)  # nearest centre
    np.testing.assert_array_equal(got.values, ds["sci"].isel(wavelength=82).values)


def test_plane_outside_the_axis_raises_instead_of_snapping():
    ds = synthetic_cube()
    last = LAM0 + DLAM * (NZ - 1)
    assert float(ds.mrs.plane(last + 0.49 * DLAM)["wavelength"]) == pytest.approx(last)
    assert float(ds.mrs.plane((LAM0 - 0.49 * DLAM) * u.um)["wavelength"]) == pytest.approx(LAM0)
    for outside in (last + 0.51 * DLAM, LAM0 - 0.51 * DLAM, 5.74 * u.um, 53400 * u.AA * 10):
        with pytest.raises(OutsideCubeError, match="outside the cube's wavelength axis"):
            ds.mrs.plane(outside)
    assert issubclass(OutsideCubeError, ValueError)


@pytest.mark.parametrize("call, match", [
    (lambda ds: ds.mrs.plane("5.3"), "expected a number"),
    (lambda ds: ds.mrs.plane(5.3 * u.deg), "not a spectral quantity"),
    (lambda ds: ds.mrs.plane(np.array([5.3, 5.31]) * u.um), "one value"),
    (lambda ds: ds.mrs.spectrum("80.49", -69.5), "expected a number"),
    (lambda ds: ds.mrs.spectrum(80.49 * u.um, -69.5), "not an angle"),
    (lambda ds: ds.mrs.spectrum(80.49), "both ra and dec"),
    (lambda ds: ds.mrs.spectrum(80.49, -69.5, radius=1 * u.um), "not an angle"),
    (lambda ds: ds.mrs.spectrum(SkyCoord(80.49, -69.5, unit="deg"), -69.5), "not both"),
    (lambda ds: ds.mrs.spectrum(80.49, -69.5, radius=0.3, unit=u.m), "cannot express Jy"),
    (lambda ds: ds.mrs.line_map(5.33, 5.35, continuum=5.3), "continuum"),
])
def test_wrong_kinds_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call(synthetic_cube())


def test_positions_and_radii_with_units_equal_plain_numbers():
    ds = synthetic_cube()
    ra, dec = sky(ds, 3.2, 2.9)
    star = SkyCoord(ra * u.deg, dec * u.deg)
    plain_spaxel = ds.mrs.spectrum(ra, dec)
    assert (plain_spaxel.attrs["x"], plain_spaxel.attrs["y"]) == (3, 3)
    np.testing.assert_array_equal(plain_spaxel["flux"].values, ds["sci"].values[:, 3, 3])
    assert plain_spaxel["flux"].attrs["units"] == "MJy / sr"
    plain = ds.mrs.spectrum(ra, dec, radius=0.3)
    assert plain["flux"].attrs["units"] == "Jy"
    for position in ([star], [star.galactic], [star.transform_to("fk5")],
                     [ra * u.deg, dec * u.deg], [Angle(ra, u.deg).to(u.hourangle), (dec * 60) * u.arcmin]):
        same = ds.mrs.spectrum(*position)
        xr.testing.assert_equal(same, plain_spaxel)
        assert same.attrs["ra"] == pytest.approx(ra, abs=1e-10) and same.attrs["dec"] == pytest.approx(dec, abs=1e-10)
        for radius in (0.3, 0.3 * u.arcsec, (0.3 / 3600) * u.deg):
            got = ds.mrs.spectrum(*position, radius=radius)
            np.testing.assert_allclose(got["flux"].values, plain["flux"].values, rtol=1e-12)
            np.testing.assert_array_equal(got["npixels"].values, plain["npixels"].values)


def test_positions_off_the_grid_raise_instead_of_wrapping():
    ds = synthetic_cube()
    # Half a spaxel beyond the first column used to give index -1: the last column.
    for x, y in ((-0.6, 3), (8.6, 3), (4, -0.6), (4, 6.6), (-2.0, -2.0), (30.0, 3)):
        with pytest.raises(OutsideCubeError, match="outside the cube's 9x7 spaxel grid"):
            ds.mrs.spectrum(*sky(ds, x, y))
    assert ds.mrs.spectrum(*sky(ds, -0.4, 3)).attrs["x"] == 0
    # An aperture wholly outside raises; one reaching over the edge is measured and says so.
    with pytest.raises(OutsideCubeError, match="no spaxel centre"):
        ds.mrs.spectrum(*sky(ds, -4.0, 3), radius=0.3)
    edge = ds.mrs.spectrum(*sky(ds, 0.0, 3), radius=0.3)
    assert edge.attrs["aperture_truncated"] == 1 and edge.attrs["aperture_spaxels"] > 0
    assert ds.mrs.spectrum(*sky(ds, 4, 3), radius=0.3).attrs["aperture_truncated"] == 0
    with pytest.raises(ParameterError, match="positive radius"):
        ds.mrs.spectrum(*sky(ds, 4, 3), radius=0.0)


def test_apertures_across_ra_zero():
    ds = synthetic_cube(crval1=0.0)  # spaxels on both sides of RA 0/360
    assert ds["ra"].values.max() > 359 and ds["ra"].values.min() < 1
    yy, xx = np.mgrid[:7, :9]
    expected = int((np.hypot(xx - 4, yy - 3) * SPAXEL <= 0.3).sum())
    ra, dec = sky(ds, 4, 3)
    for ra_ in (ra, ra - 360.0 if ra > 180 else ra + 360.0):
        spec = ds.mrs.spectrum(ra_, dec, radius=0.3)
        assert spec.attrs["aperture_spaxels"] == expected == 21
        assert (spec["npixels"].values == expected).all()
    assert ds.mrs.spectrum(*sky(ds, 4.4, 3)).attrs["x"] == 4


def test_aperture_flux_and_error_by_hand():
    ds = synthetic_cube()
    ra0, dec0 = sky(ds, 4.3, 3.1)
    spec = ds.mrs.spectrum(ra0, dec0, radius=0.35).compute()
    ra, dec = ds["ra"].values, ds["dec"].values
    inside = np.hypot((ra - ra0) * np.cos(np.radians(dec0)), dec - dec0) * 3600 <= 0.35
    assert inside.sum() == spec.attrs["aperture_spaxels"] > 4
    omega = SPAXEL**2 * cmodel.ARCSEC2_TO_SR
    sci, err = ds["sci"].values[:, inside].astype(float), ds["err"].values[:, inside].astype(float)
    np.testing.assert_allclose(spec["flux"].values, sci.sum(axis=1) * omega * 1e6, rtol=1e-12)
    np.testing.assert_allclose(spec["err"].values, np.sqrt((err**2).sum(axis=1)) * omega * 1e6, rtol=1e-12)
    assert (spec["npixels"].values == inside.sum()).all()
    # Other units, per plane: mJy, and F_λ = F_ν c / λ².
    mjy = ds.mrs.spectrum(ra0, dec0, radius=0.35 * u.arcsec, unit="mJy")
    assert mjy["flux"].attrs["units"] == "mJy"
    np.testing.assert_allclose(mjy["flux"].values, spec["flux"].values * 1e3, rtol=1e-12)
    flam = ds.mrs.spectrum(ra0, dec0, radius=0.35, unit=u.erg / u.s / u.cm**2 / u.AA)
    lam_aa = ds["wavelength"].values * 1e4
    expected = spec["flux"].values * 1e-23 * 2.99792458e18 / lam_aa**2
    np.testing.assert_allclose(flam["flux"].values, expected, rtol=1e-9)
    np.testing.assert_allclose(flam["err"].values, spec["err"].values * 1e-23 * 2.99792458e18 / lam_aa**2, rtol=1e-9)
    # A spaxel spectrum converts as a surface brightness.
    per_as2 = ds.mrs.spectrum(ra0, dec0, unit=u.Jy / u.arcsec**2)
    np.testing.assert_allclose(per_as2["flux"].values, ds["sci"].values[:, 3, 4] * 1e6 * cmodel.ARCSEC2_TO_SR,
                               rtol=1e-3)  # ARCSEC2_TO_SR is rounded to 5 digits


def test_dq_flagged_and_missing_voxels_are_left_out():
    ds = synthetic_cube()
    ra0, dec0 = sky(ds, 4.0, 3.0)
    full = ds.mrs.spectrum(ra0, dec0, radius=0.2).compute()
    n = full.attrs["aperture_spaxels"]
    dq, sci = ds["dq"].values.copy(), ds["sci"].values.copy()
    dq[10:20, 3, 4] = dqflags.DO_NOT_USE | dqflags.JUMP_DET  # a finite value that DQ says not to use
    sci[30, 3, 5] = np.nan
    dq[40, :, :] = dqflags.NON_SCIENCE_HOLE  # a whole plane without data
    flagged = ds.assign(dq=(ds["dq"].dims, dq), sci=(ds["sci"].dims, sci))
    got = flagged.mrs.spectrum(ra0, dec0, radius=0.2).compute()
    npix = got["npixels"].values
    assert (npix[10:20] == n - 1).all() and npix[30] == n - 1 and npix[40] == 0 and npix[0] == n
    omega_jy = SPAXEL**2 * cmodel.ARCSEC2_TO_SR * 1e6
    np.testing.assert_allclose(got["flux"].values[10:20], full["flux"].values[10:20]
                               - ds["sci"].values[10:20, 3, 4] * omega_jy, rtol=1e-6)
    assert np.isnan(got["flux"].values[40]) and np.isnan(got["err"].values[40])
    np.testing.assert_array_equal(got["flux"].values[50:], full["flux"].values[50:])
    spaxel = flagged.mrs.spectrum(ra0, dec0)
    assert np.isnan(spaxel["flux"].values[10:20]).all() and (spaxel["npixels"].values[10:20] == 0).all()


def test_queries_stay_lazy():
    ds = synthetic_cube(chunks={"wavelength": 40})
    ra0, dec0 = sky(ds, 4, 3)
    lazy = [ds.mrs.spectrum(ra0, dec0, radius=0.3)["flux"], ds.mrs.spectrum(ra0, dec0)["flux"],
            ds.mrs.plane(5.31), ds.mrs.spectral_slab(5.31, 5.32)["sci"],
            ds.mrs.moment(1, 5.32, 5.34, rest_wavelength=5.33, continuum=[(5.30, 5.31), (5.35, 5.36)]),
            ds.mrs.line_map(5.33 * u.um, 5.35 * u.um)]
    for value in lazy:
        assert hasattr(value.data, "dask"), value.name


def test_spectral_slab_bounds_in_any_unit_and_order():
    ds = synthetic_cube()
    slab = ds.mrs.spectral_slab(5.3101, 5.3204)
    np.testing.assert_allclose(slab["wavelength"].values, 5.3105 + DLAM * np.arange(20))
    nu = [(w * u.um).to(u.THz, equivalencies=u.spectral()) for w in (5.3101, 5.3204)]
    xr.testing.assert_identical(ds.mrs.spectral_slab(*nu), slab)
    with pytest.raises(OutsideCubeError, match="slab end"):
        ds.mrs.spectral_slab(5.35, 5.40)
    with pytest.raises(ParameterError, match="holds no plane centre"):
        ds.mrs.spectral_slab(5.3101, 5.3102)


# ---------------------------------------------------------------- moments and line maps
def line_cube(velocity_kms: np.ndarray, sigma_kms: float, rest: float = 5.34, amp: float = 30.0):
    """Gaussian line (in velocity, optical convention) on a sloped continuum; one velocity per x."""
    lam = LAM0 + DLAM * np.arange(NZ)
    v = C_KMS * (lam - rest) / rest
    continuum = 4.0 + 50.0 * (lam - LAM0)
    line = amp * np.exp(-0.5 * ((v[:, None] - velocity_kms[None, :]) / sigma_kms) ** 2)
    sci = np.broadcast_to((continuum[:, None] + line)[:, None, :], (NZ, 7, velocity_kms.size)).copy()
    return synthetic_cube(nx=velocity_kms.size, sci=sci, chunks={"wavelength": 50})


def test_moments_recover_injected_velocity_and_width():
    velocities = np.array([-300.0, -100.0, 0.0, 150.0, 400.0])
    sigma = 120.0
    ds = line_cube(velocities, sigma)
    windows = [(5.3005, 5.318), (5.363, 5.38)]  # continuum, > 6 sigma from every line
    kwargs = dict(rest_wavelength=5.34 * u.um, continuum=windows)
    m1 = ds.mrs.moment(1, 5.3185, 5.3625, **kwargs)
    m2 = ds.mrs.moment(2, 5.3185 * u.um, 53625 * u.AA, **kwargs)
    m0 = ds.mrs.moment(0, 5.3185, 5.3625, **kwargs)
    assert m1.attrs["units"] == "km / s" and m2.attrs["units"] == "km / s"
    assert u.Unit(m0.attrs["units"]) == u.MJy * u.km / u.s / u.sr
    np.testing.assert_allclose(m1.values[3], velocities, atol=1.0)
    # A plane is 28 km/s wide here: the sum adds its width²/12 to σ² (< 0.5 km/s).
    np.testing.assert_allclose(m2.values[3], sigma, atol=1.5)
    np.testing.assert_allclose(m0.values[3], 30.0 * sigma * np.sqrt(2 * np.pi), rtol=0.01)
    # Without continuum subtraction the sloped continuum biases the moments: the windows matter.
    biased = ds.mrs.moment(2, 5.3185, 5.3625, rest_wavelength=5.34).values[3]
    assert np.all(np.abs(biased - sigma) > 50)
    # Without a rest wavelength the moments are in µm.
    m1_um = ds.mrs.moment(1, 5.3185, 5.3625, continuum=windows)
    assert m1_um.attrs["units"] == "um"
    np.testing.assert_allclose(m1_um.values[3], 5.34 * (1 + velocities / C_KMS), atol=2e-5)
    with pytest.raises(OutsideCubeError):
        ds.mrs.moment(1, 5.36, 5.39, rest_wavelength=5.34)


def test_line_map_integrates_the_line_above_a_fitted_continuum():
    sigma = 120.0
    ds = line_cube(np.zeros(3), sigma)
    windows = [(5.3005, 5.318), (5.363, 5.38)]
    line = ds.mrs.line_map(5.3185 * u.um, 5.3625 * u.um, continuum=windows)
    assert u.Unit(line.attrs["units"]) == u.W / u.m**2 / u.sr
    s_um = 5.34 * sigma / C_KMS
    expected = 30.0 * 1e-20 * 2.99792458e14 / 5.34**2 * s_um * np.sqrt(2 * np.pi)
    np.testing.assert_allclose(line.values, expected, rtol=0.01)
    # A constant continuum image given as is.
    flat = ds.mrs.line_map(5.3185, 5.3625, continuum=ds["sci"].isel(wavelength=0))
    assert np.all(flat.values > line.values)


# ---------------------------------------------------------------- spectral-cube, registration
def test_to_spectral_cube_matches_the_cube():
    pytest.importorskip("spectral_cube")
    ds = synthetic_cube(chunks={"wavelength": 40})
    sc = ds.mrs.to_spectral_cube()
    np.testing.assert_allclose(sc.spectral_axis.to_value(u.um), ds["wavelength"].values, rtol=1e-12)
    assert sc.unit == u.MJy / u.sr
    world = sc.wcs.celestial.pixel_to_world(5, 2)
    assert world.separation(SkyCoord(ds["ra"].values[2, 5], ds["dec"].values[2, 5], unit="deg")).arcsec < 1e-6
    np.testing.assert_array_equal(np.asarray(sc.filled_data[:].value), ds["sci"].values)
    # A cut-out keeps its own axes.
    cut = ds.isel(wavelength=slice(30, 60), x=slice(2, 7), y=slice(1, 5)).mrs.to_spectral_cube()
    np.testing.assert_allclose(cut.spectral_axis.to_value(u.um), ds["wavelength"].values[30:60], rtol=1e-12)
    world = cut.wcs.celestial.pixel_to_world(0, 0)
    assert world.separation(SkyCoord(ds["ra"].values[1, 2], ds["dec"].values[1, 2], unit="deg")).arcsec < 1e-6


def test_to_spectral_cube_keeps_a_tabular_axis_exactly():
    pytest.importorskip("spectral_cube")
    ds = synthetic_cube(tabular=True, chunks={"wavelength": 40})
    lam = ds["wavelength"].values
    sc = ds.mrs.to_spectral_cube()
    assert sc.wcs.wcs.ctype[2] == "WAVE-TAB"
    np.testing.assert_allclose(sc.spectral_axis.to_value(u.um), lam, rtol=1e-12)
    # spectral-cube's own slicing keeps the table; a cut-out of the Dataset gets its own table.
    np.testing.assert_allclose(sc[40:60].spectral_axis.to_value(u.um), lam[40:60], rtol=1e-12)
    cut = ds.isel(wavelength=slice(100, 130)).mrs.to_spectral_cube()
    np.testing.assert_allclose(cut.spectral_axis.to_value(u.um), lam[100:130], rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(cut.filled_data[:].value), ds["sci"].values[100:130])


def test_import_mrsdask_registers_the_accessor_and_stays_light():
    code = ("import sys, xarray as xr, mrsdask; assert hasattr(xr.Dataset, 'mrs'); "
            "heavy = [m for m in ('numba', 'distributed', 'jwst', 'spectral_cube') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_tabular_axis_plane_and_range():
    ds = synthetic_cube(nz=30, tabular=True)
    lam = ds["wavelength"].values
    last_width = lam[-1] - lam[-2]
    assert ds.mrs.plane(lam[-1] + 0.45 * last_width).equals(ds["sci"].isel(wavelength=-1))
    with pytest.raises(OutsideCubeError):
        ds.mrs.plane(lam[-1] + 0.55 * last_width)


# ---------------------------------------------------------------- a real built cube
def test_queries_on_a_built_cube(sim_1a, tmp_path):
    import dask

    from mrsdask.cube.builder import build_cubes, open_cube
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal
    from mrsdask.sim import read_truth

    root = str(tmp_path / "c.zarr")
    with dask.config.set(scheduler="threads"):
        names = build_cubes(open_cal([str(p) for p in sim_1a.cal_files]), root,
                            CubeRequest(channels=(1,), wavemin=5.30, wavemax=5.36), progress=False)
    cube = open_cube(root, names[0])
    assert "slab_done" not in cube.variables
    truth = read_truth(sim_1a.truth).config
    point = truth.sources[0]
    star = SkyCoord(truth.target_ra * u.deg, truth.target_dec * u.deg).spherical_offsets_by(
        point.ra_offset * u.arcsec, point.dec_offset * u.arcsec)
    spec = cube.mrs.spectrum(star, radius=0.6 * u.arcsec).compute()
    plain = cube.mrs.spectrum(float(star.ra.deg), float(star.dec.deg), radius=0.6).compute()
    xr.testing.assert_allclose(spec, plain, rtol=1e-12)
    loaded = cube.load()
    inside = cube.mrs.aperture_mask(star, radius=0.6).values
    good = np.isfinite(loaded["sci"].values[:, inside]) & ((loaded["dq"].values[:, inside] & 1) == 0)
    omega_jy = cube.attrs["pixelarea_steradians"] * 1e6
    sci = np.where(good, loaded["sci"].values[:, inside], 0.0).astype(float)
    np.testing.assert_allclose(spec["flux"].values, np.where(good.any(1), sci.sum(1) * omega_jy, np.nan), rtol=1e-10)
    assert np.array_equal(spec["npixels"].values, good.sum(1))
    assert np.nanmedian(spec["flux"].values) > 0.02  # most of the 40 mJy point source
    lam = cube["wavelength"].values
    assert float(cube.mrs.plane(float(lam[3]) * 1e4 * u.AA)["wavelength"]) == lam[3]
    with pytest.raises(OutsideCubeError):
        cube.mrs.plane(5.40 * u.um)
    with pytest.raises(OutsideCubeError):
        cube.mrs.spectrum(star.spherical_offsets_by(10 * u.arcsec, 0 * u.arcsec))


def test_pixel_to_sky_closed_form_matches_astropy_and_falls_back():
    """A cube's own TAN header is inverted in closed form, an unusual one through astropy: both give
    wcslib's positions (the cube's ra/dec coordinates, S_REGION and SLIT_RA/DEC come from it)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from mrsdask.cube.grid import SpatialGrid

    grid = SpatialGrid(359.9995, -30.2, 0.2, na=12, nb=9, rotation=-75.0)
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"], header["CRPIX2"] = grid.crpix1, grid.crpix2
    header["CRVAL1"], header["CRVAL2"] = grid.crval1, grid.crval2
    header["CDELT1"] = header["CDELT2"] = grid.cdelt / 3600.0
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = grid.pc_matrix
    header["CTYPE3"], header["CRVAL3"] = "WAVE", 5.0
    x, y = np.array([-0.5, 24.5, 3.25]), np.array([-0.5, 18.5, 7.0])
    for extra in ({}, {"LONPOLE": 170.0}):
        h = header.copy()
        h.update(extra)
        want = WCS(h, naxis=2).wcs_pix2world(x, y, 0)
        ra, dec = cmodel.pixel_to_sky({"wcs_header": h.tostring(sep="\n")}, x, y)
        np.testing.assert_allclose(((ra - want[0] + 180) % 360 - 180) * 3600, 0, atol=1e-9)
        np.testing.assert_allclose((dec - want[1]) * 3600, 0, atol=1e-9)
    ny, nx = grid.ny, grid.nx
    ra, dec = cmodel.spaxel_sky_coords({"wcs_header": header.tostring(sep="\n")}, ny, nx)
    np.testing.assert_array_equal(np.stack(grid.spaxel_sky_coords()), np.stack([ra, dec]))
