"""Render a scene onto one MRS exposure, given the exposure's official gwcs.

For every on-slice pixel (from the shipped slice map) the pixel value is the scene's surface
brightness averaged over the pixel footprint:

* 3 samples along the slice: α at the pixel centre and at ``x ± 1/3`` px
  (``wcs.get_transform("detector", "alpha_beta")``);
* 3 samples across the slice: β at the slice centre and ``± slice_width / 3``;
* the 9 (α, β) samples go to the sky through ``wcs.get_transform("alpha_beta", "world")``
  at the pixel's centre wavelength: the transform is evaluated at the centre, at
  ``α(x + 1/3)`` and at ``β + w/3``, and the 9 samples use its local Jacobian (the mapping
  is linear to far better than a micro-arcsecond over one pixel);
* spectra are taken at the pixel's centre wavelength, emission lines averaged over the
  pixel's wavelength extent (from λ at ``y ± 0.49`` px).

Then the detector effects: multiplicative fringes, the variance model, Gaussian noise and
cosmic rays. Off-slice pixels are NaN with ``DQ = NON_SCIENCE | DO_NOT_USE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrsdask.datamodel.dq import DO_NOT_USE, NON_SCIENCE
from mrsdask.instrument.reference import slice_map
from mrsdask.sim.scene import Scene, radec_to_offsets

#: DQ value of pixels between slices.
OFF_SLICE_DQ = NON_SCIENCE | DO_NOT_USE
#: Sub-pixel sample offsets, in units of the pixel (α) or slice (β) width.
SUBSAMPLE_OFFSETS = (-1.0 / 3.0, 0.0, 1.0 / 3.0)
#: Golden-ratio step used to spread the fringe phase over the slices.
_PHASE_STEP = 0.6180339887498949


@dataclass
class PixelGeometry:
    """Where the on-slice pixels of one exposure look.

    Attributes
    ----------
    setting : str
        ``"12A"`` … ``"34C"``.
    shape : tuple of int
        Detector shape, (1024, 1032).
    y, x : numpy.ndarray of int, shape (N,)
        On-slice pixel indices.
    slice_id : numpy.ndarray of int, shape (N,)
        Slice number, ``100 * channel + slice``.
    alpha, beta, wavelength : numpy.ndarray, shape (N,)
        α, β (arcsec) and λ (µm) at the pixel centres.
    dwave : numpy.ndarray, shape (N,)
        Wavelength extent of each pixel, µm.
    dalpha : numpy.ndarray, shape (3, N)
        α offsets (arcsec) of the along-slice samples: α(x - 1/3) - α, 0, α(x + 1/3) - α.
    dbeta : numpy.ndarray, shape (3, N)
        β offsets (arcsec) of the across-slice samples: -w/3, 0, +w/3 (w: slice width).
    ra, dec : numpy.ndarray, shape (3, N)
        Sky positions (deg) from the official WCS of (α, β), (α(x + 1/3), β) and
        (α, β + w/3), all at the pixel's λ. The 3 × 3 samples follow from these by the local
        (linear) Jacobian of α, β → sky, exact to far below a micro-arcsecond over a pixel.
    """

    setting: str
    shape: tuple[int, int]
    y: np.ndarray
    x: np.ndarray
    slice_id: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    wavelength: np.ndarray
    dwave: np.ndarray
    dalpha: np.ndarray
    dbeta: np.ndarray
    ra: np.ndarray
    dec: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """Boolean detector image, True on rendered pixels."""
        out = np.zeros(self.shape, dtype=bool)
        out[self.y, self.x] = True
        return out

    @property
    def n_samples(self) -> int:
        """Sub-pixel samples per pixel (9)."""
        return self.dalpha.shape[0] * self.dbeta.shape[0]

    def sample_offsets(self, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
        """Tangent-plane offsets (east, north; arcsec, shape (9, N)) of the sub-pixel samples
        from the sky position (ra0, dec0) in degrees."""
        e, n = radec_to_offsets(self.ra, self.dec, ra0, dec0)
        with np.errstate(invalid="ignore", divide="ignore"):
            step_a = self.dalpha[2]
            step_b = self.dbeta[2]
            ja_e, ja_n = (e[1] - e[0]) / step_a, (n[1] - n[0]) / step_a
            jb_e, jb_n = (e[2] - e[0]) / step_b, (n[2] - n[0]) / step_b
        east = np.empty((self.n_samples, e.shape[1]))
        north = np.empty_like(east)
        k = 0
        for da in self.dalpha:
            for db in self.dbeta:
                east[k] = e[0] + da * ja_e + db * jb_e
                north[k] = n[0] + da * ja_n + db * jb_n
                k += 1
        return east, north


def slice_widths(beta: np.ndarray, slice_id: np.ndarray) -> dict[int, float]:
    """Slice width (arcsec) of each channel from the slice-centre β of its slices."""
    out = {}
    for ch in np.unique(slice_id // 100):
        sel = slice_id // 100 == ch
        ids, first = np.unique(slice_id[sel], return_index=True)
        betas = beta[sel][first]
        order = np.argsort(ids)
        steps = np.diff(betas[order]) / np.diff(ids[order])
        out[int(ch)] = float(np.median(np.abs(steps)))
    return out


#: setting -> (detector → α, β transform, its evaluations): exposures whose gwcs share the
#: instrument transform (:func:`mrsdask.instrument.reference.assign_wcs_reusing`) share these.
_DETECTOR_PART: dict[str, tuple] = {}


def _detector_part(d2ab, setting: str) -> tuple:
    """α, β, λ and their sub-pixel steps on every on-slice pixel (independent of the pointing)."""
    cached = _DETECTOR_PART.get(setting)
    if cached is not None and cached[0] is d2ab:
        return cached[1]
    smap = slice_map(setting)
    y, x = np.nonzero(smap)
    sid = smap[y, x].astype(np.int32)
    xf = x.astype(float)
    yf = y.astype(float)
    alpha0, beta0, lam0 = d2ab(xf, yf)
    good = np.isfinite(alpha0) & np.isfinite(beta0) & np.isfinite(lam0)
    if not good.all():
        y, x, sid, xf, yf = y[good], x[good], sid[good], xf[good], yf[good]
        alpha0, beta0, lam0 = alpha0[good], beta0[good], lam0[good]

    # Wavelength extent of the pixel (λ changes along y; stay inside the pixel for the selector).
    _, _, lam_lo = d2ab(xf, yf - 0.49)
    _, _, lam_hi = d2ab(xf, yf + 0.49)
    dwave = np.abs(lam_hi - lam_lo) / 0.98
    dwave = np.where(np.isfinite(dwave), dwave, 0.0)

    dalpha = np.zeros((len(SUBSAMPLE_OFFSETS), alpha0.size))
    for i, dx in enumerate(SUBSAMPLE_OFFSETS):
        if dx != 0.0:
            a, _, _ = d2ab(xf + dx, yf)
            dalpha[i] = np.where(np.isfinite(a), a - alpha0, 0.0)
    # A pixel whose α(x + 1/3) failed still needs a non-zero step for the Jacobian.
    bad = dalpha[2] == 0.0
    if bad.any():
        dalpha[2, bad] = -dalpha[0, bad]
        dalpha[2, dalpha[2] == 0.0] = 0.06
    widths = slice_widths(beta0, sid)
    w_pix = np.zeros(sid.shape)
    for ch, w in widths.items():
        w_pix[sid // 100 == ch] = w
    dbeta = np.array(SUBSAMPLE_OFFSETS)[:, None] * w_pix[None, :]
    part = (smap.shape, y, x, sid, alpha0, beta0, lam0, dwave, dalpha, dbeta)
    for array in part[1:]:
        array.setflags(write=False)  # shared by the exposures of the setting
    _DETECTOR_PART[setting] = (d2ab, part)
    return part


def pixel_geometry(wcs, setting: str) -> PixelGeometry:
    """Evaluate the exposure's gwcs at the centre and sub-samples of every on-slice pixel.

    Parameters
    ----------
    wcs : gwcs.WCS
        The official MRS WCS of the exposure (``model.meta.wcs``).
    setting : str
        ``"12A"`` … ``"34C"``: picks the slice map.
    """
    d2ab = wcs.get_transform("detector", "alpha_beta")
    ab2w = wcs.get_transform("alpha_beta", "world")
    shape, y, x, sid, alpha0, beta0, lam0, dwave, dalpha, dbeta = _detector_part(d2ab, setting)
    ra = np.empty((3, alpha0.size))
    dec = np.empty_like(ra)
    for k, (a, b) in enumerate(((alpha0, beta0), (alpha0 + dalpha[2], beta0), (alpha0, beta0 + dbeta[2]))):
        r, d, _ = ab2w(a, b, lam0)
        ra[k], dec[k] = r, d
    return PixelGeometry(setting, shape, y, x, sid, alpha0, beta0, lam0, dwave, dalpha, dbeta, ra, dec)


def fringe_factor(geometry: PixelGeometry, amplitude: float, period_cm: float = 2.9) -> np.ndarray:
    """Multiplicative fringe pattern ``1 + A sin(2π ν D + φ)`` for the on-slice pixels.

    ``ν = 1e4 / λ`` cm⁻¹ and ``D = 1 / period_cm`` cm, so the fringe period in wavenumber is
    ``period_cm`` (cm⁻¹). The phase φ changes from slice to slice (a fixed, seed-independent
    sequence: the fringes are a property of the detector) and slowly along the slice with α.
    """
    nu = 1e4 / geometry.wavelength
    phase = 2 * np.pi * ((geometry.slice_id * _PHASE_STEP) % 1.0) + 0.4 * geometry.alpha
    return 1.0 + amplitude * np.sin(2 * np.pi * nu / period_cm + phase)


@dataclass
class ExposureArrays:
    """The data planes of one exposure, full detector frame."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray
    var_flat: np.ndarray
    cosmic_ray_pixels: np.ndarray  # (n, 2) int array of (y, x)


def render_exposure(
    geometry: PixelGeometry,
    scene: Scene,
    rng: np.random.Generator,
    *,
    include_sources: bool = True,
    include_sky: bool = True,
    noise: bool = True,
    read_noise: float = 0.5,
    poisson_factor: float = 0.01,
    flat_error: float = 0.002,
    fringes: float | None = None,
    fringe_period: float = 2.9,
    cosmic_rays: int = 0,
    cosmic_ray_amplitude: float = 2000.0,
) -> ExposureArrays:
    """Fill the data planes of one exposure.

    Parameters
    ----------
    geometry : PixelGeometry
        From :func:`pixel_geometry`.
    scene : Scene
        The sky.
    rng : numpy.random.Generator
        Source of the noise and cosmic rays (noise is drawn first, then the cosmic rays).
    include_sources, include_sky : bool
        What of the scene to render (a background exposure has no sources).
    noise, read_noise, poisson_factor, flat_error, fringes, fringe_period, cosmic_rays, cosmic_ray_amplitude
        As in :class:`mrsdask.sim.config.SimulationConfig`.

    Returns
    -------
    ExposureArrays
        SCI/ERR/VAR_* float32 in MJy/sr (NaN off slice), DQ uint32.
    """
    g = geometry
    signal = scene.pixel_average(
        *g.sample_offsets(scene.target_ra, scene.target_dec),
        g.wavelength,
        g.dwave,
        include_sources=include_sources,
        include_sky=include_sky,
    )
    if fringes:
        signal = signal * fringe_factor(g, fringes, fringe_period)
    n = signal.size
    var_rnoise = np.full(n, read_noise**2)
    var_poisson = poisson_factor * np.maximum(signal, 0.0)
    var_flat = (flat_error * signal) ** 2
    sci = signal.copy()
    if noise:
        sci += rng.standard_normal(n) * np.sqrt(var_poisson + var_rnoise)
    cr_idx = np.empty(0, dtype=np.int64)
    if cosmic_rays:
        k = min(int(cosmic_rays), n)
        cr_idx = np.sort(rng.choice(n, size=k, replace=False))
        sci[cr_idx] += cosmic_ray_amplitude * 10.0 ** rng.uniform(-0.5, 0.5, size=k)
    err = np.sqrt(var_poisson + var_rnoise + var_flat)

    def full(values: np.ndarray) -> np.ndarray:
        out = np.full(g.shape, np.nan, dtype=np.float32)
        out[g.y, g.x] = values
        return out

    dq = np.full(g.shape, OFF_SLICE_DQ, dtype=np.uint32)
    dq[g.y, g.x] = 0
    return ExposureArrays(
        sci=full(sci),
        err=full(err),
        dq=dq,
        var_poisson=full(var_poisson),
        var_rnoise=full(var_rnoise),
        var_flat=full(var_flat),
        cosmic_ray_pixels=np.stack([g.y[cr_idx], g.x[cr_idx]], axis=1),
    )
