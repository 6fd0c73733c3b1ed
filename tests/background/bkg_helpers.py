"""Helpers shared by the background tests: synthetic detector stores and truth comparisons."""

from __future__ import annotations

import numpy as np
import xarray as xr

from mrsdask.datamodel import detector as dmodel

NY, NX = 1024, 1032

#: The standard test scene: a 2 mJy (at 10 µm) point source on the default sky, bands 1A and 3A.
SIM_CONFIG = dict(
    bands=["1A", "3A"],
    dither_pattern="none",
    sources=[{"type": "point", "ra_offset": 0.3, "dec_offset": -0.2, "continuum_mjy": 2.0, "slope": 1.0,
              "name": "star"}],
    sky_background=1.0,
    read_noise=0.25,
    n_background_exposures=1,
    seed=3,
    prefix="bkgtest",
)


def synthetic_detector_dataset(
    n_science: int,
    n_background: int,
    setting: str = "12A",
    sky_scale: float = 1.0,
    noise: float = 0.3,
    seed: int = 0,
    chunk_rows: int = 256,
) -> xr.Dataset:
    """A lazy detector Dataset following the conventions, without FITS files or a WCS.

    Per-pixel wavelength and slice come from the shipped reference models of ``setting``
    (:func:`mrsdask.instrument.geometry.reference_geometry`); SCI is the simulator's sky
    spectrum at each pixel's λ plus Gaussian noise (science exposures also get a constant
    +5 MJy/sr "source" on every on-slice pixel); sky positions are zeros. The WCS and header
    coordinates hold placeholders, so the Dataset can be written with
    :func:`mrsdask.background.write_background_store` (not exported to FITS).
    """
    import dask.array as da

    from mrsdask.instrument.geometry import reference_geometry
    from mrsdask.sim.scene import sky_spectrum

    geom = reference_geometry(setting)
    lam = geom["wavelength"]
    on = geom["slice"] > 0
    sky = np.where(on, sky_spectrum(np.nan_to_num(lam, nan=5.0), sky_scale), np.nan).astype(np.float32)
    n = n_science + n_background
    chunks = (1, chunk_rows, NX)

    def noisy(index: int, source: float) -> da.Array:
        def block(block_info=None):
            (y0, y1) = block_info[None]["array-location"][1]
            rng = np.random.default_rng([seed, index, y0])
            out = sky[y0:y1] + source + rng.normal(0.0, noise, size=(y1 - y0, NX)).astype(np.float32)
            return np.where(on[y0:y1], out, np.nan).astype(np.float32)[None]
        return da.map_blocks(block, chunks=((1,), da.core.normalize_chunks(chunk_rows, (NY,))[0], (NX,)),
                             dtype=np.float32)

    sci = da.concatenate([noisy(i, 5.0 if i < n_science else 0.0) for i in range(n)])
    err = da.where(da.isnan(sci), np.float32(np.nan), np.float32(noise))
    dq = da.broadcast_to(np.where(on, 0, 513).astype(np.uint32), (n, NY, NX)).rechunk(chunks)
    rep = lambda a, dtype: da.broadcast_to(np.asarray(a, dtype=dtype), (n, NY, NX)).rechunk(chunks)  # noqa: E731
    zeros = da.zeros((n, NY, NX), dtype=np.float64, chunks=chunks)
    data = {
        "sci": (("exposure", "y", "x"), sci.rechunk(chunks)),
        "err": (("exposure", "y", "x"), err.rechunk(chunks)),
        "dq": (("exposure", "y", "x"), dq),
        "slice": (("exposure", "y", "x"), rep(geom["slice"], np.int16)),
        "wavelength": (("exposure", "y", "x"), rep(lam, np.float64)),
        "dwavelength": (("exposure", "y", "x"), rep(geom["dwavelength"], np.float64)),
        "alpha": (("exposure", "y", "x"), rep(geom["alpha"], np.float64)),
        "beta": (("exposure", "y", "x"), rep(geom["beta"], np.float64)),
        "ra": (("exposure", "y", "x"), zeros),
        "dec": (("exposure", "y", "x"), zeros),
        "corner_ra": (("exposure", "corner", "y", "x"), da.zeros((n, 4, NY, NX), chunks=(1, 4, chunk_rows, NX))),
        "corner_dec": (("exposure", "corner", "y", "x"), da.zeros((n, 4, NY, NX), chunks=(1, 4, chunk_rows, NX))),
    }
    roles = ["science"] * n_science + ["background"] * n_background
    coords = {
        "filename": ("exposure", np.array([f"syn_{setting}_{r[:3]}{i}_cal.fits" for i, r in enumerate(roles)])),
        "path": ("exposure", np.array([f"/nonexistent/syn{i}_cal.fits" for i in range(n)])),
        "exptype": ("exposure", np.array(roles)),
        "detector": ("exposure", np.array(["MIRIFUSHORT" if setting.startswith("12") else "MIRIFULONG"] * n)),
        "channel": ("exposure", np.array([setting[:2]] * n)),
        "band": ("exposure", np.array([{"A": "SHORT", "B": "MEDIUM", "C": "LONG"}[setting[2]]] * n)),
        "setting": ("exposure", np.array([setting] * n)),
        "exp_type": ("exposure", np.array(["MIR_MRS"] * n)),
        "source_type": ("exposure", np.array(["EXTENDED"] * n)),
        "target_type": ("exposure", np.array(["FIXED"] * n)),
        "s_region": ("exposure", np.array([""] * n)),
        "bkgdtarg": ("exposure", np.array([r == "background" for r in roles])),
        "wcs_asdf": ("exposure", np.array([b"none"] * n)),
        "primary_header": ("exposure", np.array([""] * n)),
        "sci_header": ("exposure", np.array([""] * n)),
    }
    for name in ("targ_ra", "targ_dec", "ra_ref", "dec_ref", "v2_ref", "v3_ref", "roll_ref", "mt_ra", "mt_dec"):
        coords[name] = ("exposure", np.zeros(n))
    coords["exptime"] = ("exposure", np.full(n, 100.0))
    ds = xr.Dataset(data, coords=coords)
    return dmodel.annotate(ds)


# --------------------------------------------------------------------------- truth comparisons
def truth_images(path: str, setting: str, truth):
    """Noiseless sky and source images of a simulated exposure, and its pixel geometry.

    The simulator's own renderer is run again on the file's gwcs with ``noise=False``: the
    sky only, then the sources only. Returns ``(geometry, sky, star)``, images (1024, 1032).
    """
    from mrsdask.io.calfits import load_wcs
    from mrsdask.sim import pixel_geometry, render_exposure

    geometry = pixel_geometry(load_wcs(path), setting)
    rng = np.random.default_rng(0)
    sky = render_exposure(geometry, truth.scene, rng, include_sources=False, include_sky=True, noise=False).sci
    star = render_exposure(geometry, truth.scene, rng, include_sources=True, include_sky=False, noise=False).sci
    return geometry, sky, star


def band_ratios(sci, background, geometry, sky, star, source_radec, lam_range=None, nbins=8, radius_fwhm=2.0):
    """Per channel and wavelength bin: background and point-source recovery ratios.

    The point source is measured on **truth-known pixels**: for the detector pixels within
    ``radius_fwhm`` × FWHM(λ) of the source (from their pixel-centre sky positions), the sum of
    the background-subtracted SCI over the sum of the noiseless source-only image of the same
    pixels. The background ratio is Σ subtracted background / Σ noiseless sky over all
    on-slice pixels of the bin. ``unsubtracted`` is the source ratio without subtraction.

    Returns
    -------
    dict
        channel → dict of arrays (one value per bin): ``background``, ``source``,
        ``unsubtracted``, ``n_aperture``, ``edges``.
    """
    from mrsdask.sim import psf_fwhm
    from mrsdask.sim.scene import radec_to_offsets

    y, x = geometry.y, geometry.x
    lam = geometry.wavelength
    east, north = radec_to_offsets(geometry.ra[0], geometry.dec[0], *source_radec)
    radius = np.hypot(east, north)
    s, b, sk, st = sci[y, x].astype(float), background[y, x].astype(float), sky[y, x], star[y, x]
    out = {}
    for channel in np.unique(geometry.slice_id // 100):
        on = (geometry.slice_id // 100 == channel) & np.isfinite(s)
        lo, hi = lam[on].min(), lam[on].max()
        if lam_range is not None:
            lo, hi = max(lo, lam_range[0]), min(hi, lam_range[1])
        edges = np.linspace(lo, hi, nbins + 1)
        rows = {"background": [], "source": [], "unsubtracted": [], "n_aperture": []}
        for a, c in zip(edges[:-1], edges[1:]):
            sel = on & (lam >= a) & (lam < c)
            ap = sel & (radius < radius_fwhm * psf_fwhm(lam))
            rows["background"].append(b[sel].sum() / sk[sel].sum())
            rows["source"].append(s[ap].sum() / st[ap].sum())
            rows["unsubtracted"].append((s[ap] + b[ap]).sum() / st[ap].sum())
            rows["n_aperture"].append(int(ap.sum()))
        out[int(channel)] = {k: np.array(v) for k, v in rows.items()} | {"edges": edges}
    return out
