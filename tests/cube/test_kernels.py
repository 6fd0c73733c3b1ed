"""Weighting kernels against slow, obviously correct references."""

import math

import numpy as np
import pytest
import shapely.geometry as sg

from mrsdask.cube.kernels import clipped_area, drizzle_accumulate, emsm_accumulate, msm_accumulate


def _random_quad(rng):
    cx, cy = rng.uniform(-1, 1, 2)
    w, h = rng.uniform(0.1, 1.5, 2)
    theta = rng.uniform(0, 2 * math.pi)
    skew = rng.uniform(-0.2, 0.2)
    pts = np.array([[-w / 2, -h / 2], [-w / 2 + skew, h / 2], [w / 2 + skew, h / 2], [w / 2, -h / 2]])
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    pts = pts @ rot.T + [cx, cy]
    return pts[:, 0].copy(), pts[:, 1].copy()


def test_clipped_area_matches_shapely():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        qx, qy = _random_quad(rng)
        left, bottom = rng.uniform(-1, 0.5, 2)
        size = rng.uniform(0.05, 1.0)
        expected = sg.Polygon(zip(qx, qy)).intersection(sg.box(left, bottom, left + size, bottom + size)).area
        got = clipped_area(qx, qy, left, left + size, bottom, bottom + size)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("on_grid", [False, True])
def test_cell_areas_equal_clipping_each_spaxel(on_grid):
    from mrsdask.cube.kernels.polygon import CELL_WORK_VERTICES, cell_areas

    rng = np.random.default_rng(11 + on_grid)
    cdelt = 0.13
    xc = (np.arange(12) - 5.5) * cdelt
    yc = (np.arange(9) - 4.0) * cdelt
    areas = np.full((yc.size, xc.size), np.nan)
    work = np.empty((8, CELL_WORK_VERTICES))
    for _ in range(1500):
        qx, qy = _random_quad(rng)
        qx, qy = qx * 0.6, qy * 0.6  # some reach beyond the grid, some are off it
        if on_grid:  # vertices exactly on spaxel edges (the degenerate case of the clippers)
            qx = np.round((qx - xc[0] + cdelt / 2) / cdelt) * cdelt + xc[0] - cdelt / 2
            qx[1] += 0.37 * cdelt
        ix0 = int(max(0, math.floor((qx.min() - xc[0] + cdelt / 2) / cdelt)))
        ix1 = int(min(xc.size, math.floor((qx.max() - xc[0] + cdelt / 2) / cdelt) + 1))
        iy0 = int(max(0, math.floor((qy.min() - yc[0] + cdelt / 2) / cdelt)))
        iy1 = int(min(yc.size, math.floor((qy.max() - yc[0] + cdelt / 2) / cdelt) + 1))
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        cell_areas(qx, qy, xc, yc, cdelt, cdelt, ix0, ix1, iy0, iy1, areas, work)
        for iy in range(iy0, iy1):
            for ix in range(ix0, ix1):
                expected = clipped_area(qx, qy, xc[ix] - cdelt / 2, xc[ix] + cdelt / 2,
                                        yc[iy] - cdelt / 2, yc[iy] + cdelt / 2)
                assert areas[iy, ix] == pytest.approx(expected, rel=1e-9, abs=1e-14)


def _reference_drizzle(cxi, ceta, lam, dlam, flux, err, xc, yc, zc, zw, cdelt):
    """Direct triple loop with shapely, no windowing: the definition of the weights."""
    shape = (zc.size, yc.size, xc.size)
    acc = [np.zeros(shape) for _ in range(4)]
    for k in range(lam.size):
        poly = sg.Polygon(zip(cxi[:, k], ceta[:, k]))
        for iz in range(zc.size):
            overlap = min(zc[iz] + zw[iz] / 2, lam[k] + dlam[k] / 2) - max(zc[iz] - zw[iz] / 2, lam[k] - dlam[k] / 2)
            if overlap <= 0:
                continue
            for iy in range(yc.size):
                for ix in range(xc.size):
                    a = poly.intersection(sg.box(xc[ix] - cdelt / 2, yc[iy] - cdelt / 2,
                                                 xc[ix] + cdelt / 2, yc[iy] + cdelt / 2)).area
                    w = a * overlap
                    if w > 0:
                        acc[0][iz, iy, ix] += flux[k] * w
                        acc[1][iz, iy, ix] += w
                        acc[2][iz, iy, ix] += (err[k] * w) ** 2
                        acc[3][iz, iy, ix] += 1
    return acc


def test_drizzle_matches_reference():
    rng = np.random.default_rng(2)
    n = 40
    cdelt = 0.13
    xc = np.arange(-4, 5) * cdelt
    yc = np.arange(-3, 4) * cdelt
    zc = 5.0 + np.arange(6) * 0.0008
    zw = np.full(zc.size, 0.0008)
    cxi = np.empty((4, n))
    ceta = np.empty((4, n))
    for k in range(n):
        qx, qy = _random_quad(rng)
        cxi[:, k] = qx * 0.3
        ceta[:, k] = qy * 0.3
    lam = rng.uniform(4.9995, 5.005, n)
    dlam = rng.uniform(0.0005, 0.0012, n)
    flux = rng.uniform(1, 10, n)
    err = rng.uniform(0.1, 1, n)
    acc = [np.zeros((zc.size, yc.size, xc.size)) for _ in range(4)]
    drizzle_accumulate(cxi, ceta, lam, dlam, flux, err, xc, yc, zc, zw, cdelt, cdelt, *acc)
    ref = _reference_drizzle(cxi, ceta, lam, dlam, flux, err, xc, yc, zc, zw, cdelt)
    assert ref[1].sum() > 0
    for got, want in zip(acc, ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)


def test_drizzle_of_a_uniform_field_is_uniform():
    """Pixels tiling the sky with the same surface brightness give that value in every voxel."""
    cdelt = 0.13
    xc = np.arange(-5, 6) * cdelt
    yc = np.arange(-5, 6) * cdelt
    zc = np.array([5.0, 5.001])
    zw = np.array([0.001, 0.001])
    px = np.arange(-1.0, 1.0, 0.19)
    py = np.arange(-1.0, 1.0, 0.177)
    gx, gy = np.meshgrid(px, py)
    gx, gy = gx.ravel(), gy.ravel()
    cxi = np.array([gx, gx, gx + 0.19, gx + 0.19])
    ceta = np.array([gy, gy + 0.177, gy + 0.177, gy])
    n = gx.size
    acc = [np.zeros((2, yc.size, xc.size)) for _ in range(4)]
    drizzle_accumulate(cxi, ceta, np.full(n, 5.0005), np.full(n, 0.002), np.full(n, 7.5), np.ones(n),
                       xc, yc, zc, zw, cdelt, cdelt, *acc)
    inner = acc[1][:, 2:-2, 2:-2]
    assert np.all(inner > 0)
    np.testing.assert_allclose(acc[0][:, 2:-2, 2:-2] / inner, 7.5, rtol=1e-12)


def _reference_pointcloud(mode, xi, eta, lam, flux, err, rois, roiw, scalerad, power, softrad, xc, yc, zc, zw, cdelt):
    shape = (zc.size, yc.size, xc.size)
    acc = [np.zeros(shape) for _ in range(4)]
    for k in range(lam.size):
        for iz in range(zc.size):
            if abs(zc[iz] - lam[k]) > roiw[k]:
                continue
            for iy in range(yc.size):
                for ix in range(xc.size):
                    dx, dy = abs(xc[ix] - xi[k]), abs(yc[iy] - eta[k])
                    if dx > rois[k] or dy > rois[k] or math.hypot(dx, dy) > rois[k]:
                        continue
                    d2 = (dx / cdelt) ** 2 + (dy / cdelt) ** 2 + ((lam[k] - zc[iz]) / zw[iz]) ** 2
                    if mode == "emsm":
                        w = math.exp(-d2 / (scalerad[k] / cdelt))
                    else:
                        w = 1.0 / max(math.sqrt(d2) ** power[k], softrad[k])
                    acc[0][iz, iy, ix] += flux[k] * w
                    acc[1][iz, iy, ix] += w
                    acc[2][iz, iy, ix] += (err[k] * w) ** 2
                    acc[3][iz, iy, ix] += 1
    return acc


@pytest.mark.parametrize("mode", ["emsm", "msm"])
def test_pointcloud_matches_reference(mode):
    rng = np.random.default_rng(3)
    n = 60
    cdelt = 0.13
    xc = np.arange(-6, 7) * cdelt
    yc = np.arange(-5, 6) * cdelt
    zc = 5.0 + np.arange(8) * 0.0008
    zw = np.full(zc.size, 0.0008)
    xi, eta = rng.uniform(-0.7, 0.7, n), rng.uniform(-0.6, 0.6, n)
    lam = rng.uniform(5.0, 5.006, n)
    flux, err = rng.uniform(1, 5, n), rng.uniform(0.1, 0.3, n)
    rois = np.full(n, 0.31)
    roiw = np.full(n, 0.0025)
    scalerad = np.full(n, 0.1)
    power = np.full(n, 2.0)
    softrad = np.full(n, 0.01)
    acc = [np.zeros((zc.size, yc.size, xc.size)) for _ in range(4)]
    if mode == "emsm":
        emsm_accumulate(xi, eta, lam, flux, err, rois, roiw, scalerad, xc, yc, zc, zw, cdelt, cdelt, *acc)
    else:
        msm_accumulate(xi, eta, lam, flux, err, rois, roiw, power, softrad, xc, yc, zc, zw, cdelt, cdelt, *acc)
    ref = _reference_pointcloud(mode, xi, eta, lam, flux, err, rois, roiw, scalerad, power, softrad,
                                xc, yc, zc, zw, cdelt)
    assert ref[3].sum() > 100
    for got, want in zip(acc, ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def test_finish_kernel_gives_the_numpy_planes_to_the_bit():
    """The compiled finish of a slab equals the numpy expressions of the official definitions."""
    from mrsdask.cube.slabs import finish_planes
    from mrsdask.datamodel.dq import NON_SCIENCE_HOLE

    rng = np.random.default_rng(3)
    acc = rng.normal(1.0, 2.0, (5, 7, 6, 4))
    acc[..., 1] = np.abs(acc[..., 1]) * (rng.random((5, 7, 6)) > 0.3)  # weight 0 in ~30 %
    acc[..., 3] = rng.integers(0, 3, (5, 7, 6))  # count 0 in some voxels, also where weight > 0
    acc[0, 0, 0, 1] = np.nan
    acc[1, 1, 1, 2] = -1.0  # a negative variance: NaN error, as numpy's sqrt
    f, w, v, n = (acc[..., i] for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        sci = np.where(n > 0, f / w, 0.0)
        var = np.where(n > 0, v / (w * w), 0.0)
        dq = np.where(w > 0, 0, NON_SCIENCE_HOLE).astype(np.uint32)
        sci[dq != 0] = np.nan
        var[dq != 0] = np.nan
        want = {"sci": sci.astype(np.float32), "err": np.sqrt(var).astype(np.float32), "dq": dq,
                "wmap": n.astype(np.float32)}
    got = finish_planes(acc)
    for name, values in want.items():
        assert got[name].dtype == values.dtype
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    np.testing.assert_array_equal(got["ngood"], (dq == 0).sum(axis=(1, 2)))
