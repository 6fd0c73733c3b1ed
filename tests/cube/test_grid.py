"""Cube grids: projection conventions and sizes, against the official coordinate code."""

import numpy as np
import pytest

from mrsdask.cube.grid import (
    linear_wavelength_grid,
    sky_to_tangent,
    spatial_grid_from_corners,
    tabular_wavelength_grid,
)


@pytest.mark.parametrize("rot", [None, 0.0, 37.0, -120.0])
def test_tangent_projection_matches_official(rot):
    from jwst.cube_build.coord import radec2std, std2radec

    rng = np.random.default_rng(0)
    ra = 80.5 + rng.uniform(-0.01, 0.01, 100)
    dec = -69.5 + rng.uniform(-0.01, 0.01, 100)
    xi, eta = sky_to_tangent(ra, dec, 80.5, -69.5, rot)
    xo, eo = radec2std(80.5, -69.5, ra, dec, rot)
    np.testing.assert_allclose(xi, xo, rtol=0, atol=1e-9)
    np.testing.assert_allclose(eta, eo, rtol=0, atol=1e-9)
    # Back to the sky with the official inverse, which knows no rotation: undo the −θ rotation first.
    c, s = (np.cos(np.radians(rot)), np.sin(np.radians(rot))) if rot is not None else (1.0, 0.0)
    back_ra, back_dec = std2radec(80.5, -69.5, xi * c - eta * s, xi * s + eta * c)
    np.testing.assert_allclose(back_ra, ra, atol=1e-11)
    np.testing.assert_allclose(back_dec, dec, atol=1e-11)


@pytest.mark.parametrize("rot", [None, 37.0])
def test_pixel_corners_projected_together_equal_each_corner_on_its_own(rot):
    """A (4, n) array of pixel corners (the angle-addition path from each pixel's first corner)
    against every corner projected alone (the full trigonometry), across RA 0/360 and with a
    moving target's offset; a NaN first corner or a far point takes the full trigonometry."""
    from jwst.cube_build.coord import radec2std

    rng = np.random.default_rng(1)
    n = 500
    ra = (0.002 + rng.uniform(-0.01, 0.01, n))[None, :] + rng.uniform(-5e-5, 5e-5, (4, n))  # ~0.2" apart
    dec = (-69.5 + rng.uniform(-0.01, 0.01, n))[None, :] + rng.uniform(-5e-5, 5e-5, (4, n))
    ra %= 360.0
    ra[0, 7] = np.nan  # its other corners: full trigonometry
    ra[2, 9] = ra[0, 9] + 1.0  # a point far from the first: full trigonometry
    offset = (1e-4, -2e-4)
    xi, eta = sky_to_tangent(ra, dec, 0.001, -69.5, rot, offset=offset)
    for r in range(4):
        alone_xi, alone_eta = sky_to_tangent(ra[r], dec[r], 0.001, -69.5, rot, offset=offset)
        np.testing.assert_allclose(xi[r], alone_xi, rtol=0, atol=1e-9)
        np.testing.assert_allclose(eta[r], alone_eta, rtol=0, atol=1e-9)
        xo, eo = radec2std(0.001, -69.5, ra[r] + offset[0], dec[r] + offset[1], rot)
        np.testing.assert_allclose(xi[r], np.where(np.isnan(ra[r]), np.nan, xo), rtol=0, atol=1e-8)
        np.testing.assert_allclose(eta[r], np.where(np.isnan(ra[r]), np.nan, eo), rtol=0, atol=1e-8)
    assert np.isnan(xi[0, 7]) and np.isfinite(xi[1:, 7]).all()


def test_xi_increases_to_the_west():
    xi, _ = sky_to_tangent([80.501], [-69.5], 80.5, -69.5)
    assert xi[0] < 0  # east (larger RA) has negative ξ: east is left with PC1_1 = -1


def test_spatial_grid_is_symmetric_and_covers_corners():
    ra = np.array([359.999, 0.001, 0.001, 359.999])  # straddles RA = 0
    dec = np.array([-0.001, -0.001, 0.001, 0.001])
    grid = spatial_grid_from_corners(ra, dec, 0.13)
    assert grid.crval1 == pytest.approx(0.0, abs=1e-9) or grid.crval1 == pytest.approx(360.0)
    assert grid.nx % 2 == 1 and grid.ny % 2 == 1
    assert grid.xcoord[grid.na] == pytest.approx(0.0, abs=1e-12)
    assert grid.xcoord[-1] + 0.065 >= 3.6
    forced = spatial_grid_from_corners(ra, dec, 0.13, nspax_x=20, nspax_y=11)
    assert (forced.nx, forced.ny) == (21, 11)


def test_wavelength_grids():
    g = linear_wavelength_grid(4.9, 5.74, 0.0008)
    assert g.nz == 1050 and g.linear
    assert g.zcoord[0] == pytest.approx(4.9004)
    np.testing.assert_allclose(g.zwidth, 0.0008, rtol=1e-9)
    t = tabular_wavelength_grid([5.0, 5.001, 5.003])
    np.testing.assert_allclose(t.zwidth, [0.001, 0.002, 0.002])
    with pytest.raises(ValueError):
        tabular_wavelength_grid([5.0, 4.0])


@pytest.mark.parametrize("crval, rotation", [((80.5, -69.5), None), ((0.0005, 0.3), 37.0),
                                             ((271.0, 66.56), -120.0), ((10.0, 89.99), 5.0)])
def test_spaxel_sky_coords_match_the_header_wcs(crval, rotation):
    """The closed-form TAN inverse gives the positions that astropy's WCS of the cube header gives,
    across RA = 0 and near the pole (the cube's ra/dec coordinates come from it)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from mrsdask.cube.grid import SpatialGrid

    grid = SpatialGrid(crval[0], crval[1], 0.13, na=30, nb=25, rotation=rotation)
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"], header["CRPIX2"] = grid.crpix1, grid.crpix2
    header["CRVAL1"], header["CRVAL2"] = grid.crval1, grid.crval2
    header["CDELT1"] = header["CDELT2"] = grid.cdelt / 3600.0
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = grid.pc_matrix
    iy, ix = np.mgrid[: grid.ny, : grid.nx]
    want_ra, want_dec = WCS(header).wcs_pix2world(ix, iy, 0)
    ra, dec = grid.spaxel_sky_coords()
    assert ra.shape == dec.shape == (grid.ny, grid.nx)
    assert ((ra >= 0) & (ra < 360)).all()
    dra = (ra - want_ra + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(dra * np.cos(np.radians(dec)) * 3600, 0.0, atol=1e-9)
    np.testing.assert_allclose((dec - want_dec) * 3600, 0.0, atol=1e-9)
