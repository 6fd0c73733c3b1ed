"""Voxel-by-voxel comparison of an mrsdask cube with an official ``s3d`` cube."""

from __future__ import annotations

import numpy as np


def compare_with_official(official_path: str, cube) -> dict:
    """Parity figures of an mrsdask cube (xarray Dataset) against an official s3d file.

    Returns
    -------
    dict
        ``same_shape``, ``same_wcs`` (CRVAL/CRPIX/CDELT/wavelengths agree to 1e-9 relative),
        ``n_both`` (voxels both fill), ``median_rel``, ``p99_rel``, ``max_rel`` of
        |Δ|/|F| over those voxels, ``wmap_equal`` (fraction of voxels with equal WMAP),
        ``dq_zero_where_official_data`` (True when DQ is 0 exactly where the official cube
        has data) and ``err_median_rel``.
    """
    from stdatamodels.jwst.datamodels import IFUCubeModel

    with IFUCubeModel(official_path) as off:
        a = np.asarray(off.data, dtype=np.float64)
        a_err = np.asarray(off.err, dtype=np.float64)
        a_dq = np.asarray(off.dq)
        a_wmap = np.asarray(off.weightmap)
        w = off.meta.wcsinfo
        off_wave = np.asarray(off.wavetable.wavelength, dtype=np.float64).ravel()
        off_wcs = (w.crval1, w.crval2, w.crpix1, w.crpix2, w.cdelt1, w.cdelt2)
    out: dict = {"official_shape": list(a.shape), "mrsdask_shape": [int(v) for v in cube["sci"].shape]}
    out["same_shape"] = tuple(a.shape) == tuple(cube["sci"].shape)
    attrs = cube.attrs
    mine_wcs = (attrs["crval1"], attrs["crval2"], attrs["crpix1"], attrs["crpix2"], attrs["cdelt1"], attrs["cdelt2"])
    wave = np.asarray(cube["wavelength"].values, dtype=np.float32).astype(np.float64)
    same = all(np.isclose(x, y, rtol=1e-9, atol=1e-12) for x, y in zip(off_wcs, mine_wcs))
    if out["same_shape"]:
        same = same and np.allclose(off_wave, wave, rtol=1e-6, atol=0)
    out["same_wcs"] = bool(same)
    if not out["same_shape"]:
        return out
    b = np.asarray(cube["sci"].values, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b) & (a != 0)
    rel = np.abs(a[both] - b[both]) / np.abs(a[both])
    out["n_both"] = int(both.sum())
    out["n_official"] = int(np.isfinite(a).sum())
    out["n_mrsdask"] = int(np.isfinite(b).sum())
    out["median_rel"] = float(np.median(rel)) if rel.size else float("nan")
    out["p99_rel"] = float(np.percentile(rel, 99)) if rel.size else float("nan")
    out["max_rel"] = float(rel.max()) if rel.size else float("nan")
    b_err = np.asarray(cube["err"].values, dtype=np.float64)
    eboth = both & np.isfinite(a_err) & np.isfinite(b_err) & (a_err > 0)
    out["err_median_rel"] = float(np.median(np.abs(a_err[eboth] - b_err[eboth]) / a_err[eboth])) if eboth.any() else float("nan")
    out["wmap_equal"] = float(np.mean(a_wmap == np.asarray(cube["wmap"].values)))
    b_dq = np.asarray(cube["dq"].values)
    out["dq_zero_where_official_data"] = bool(np.array_equal(b_dq == 0, np.isfinite(a) & (a_dq == 0)))
    out["dq_equal"] = float(np.mean(a_dq == b_dq))
    return out


def parity_ok(figures: dict) -> bool:
    """The issue's parity targets."""
    return bool(
        figures.get("same_shape") and figures.get("same_wcs")
        and figures.get("median_rel", 1) <= 1e-5 and figures.get("p99_rel", 1) <= 1e-3
        and figures.get("wmap_equal", 0) >= 0.999 and figures.get("dq_zero_where_official_data")
    )
