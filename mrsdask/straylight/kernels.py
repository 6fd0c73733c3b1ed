"""Stray-light kernels on one exposure's 2-D arrays (pure numpy; nothing of Dask).

The official ``straylight`` step (``jwst/straylight/straylight.py``, cross-artifact model of
jwst ≥ 1.6) on one MRS detector frame, see ``docs/jwst-mrs-algorithms.md`` §4:

1. A work copy (in the data's precision) with NaN and ±inf set to 0; weight 0 for NaN pixels
   and for DQ DO_NOT_USE, NON_SCIENCE, DEAD or HOT.
2. First pedestal: the sigma-clipped mean (astropy, 3σ, 5 iterations) of the dark strip between the
   channels (x 503–515 for detector "12", 474–506 for "34", rows 50–973).
3. Weight 0 below pedestal + 3·rms.
4. Per detector half (source columns 0–515 and 516–1023), the weighted image above the
   pedestal, negative values set to 0, is spread along each whole row by that half's kernel:
   a Lorentzian plus two pairs of Gaussians, with per-row parameters from the MRSXARTCORR
   table of the half's band (:func:`row_kernels`). Reference columns 0–3 and 1028–1031 of
   the model are zeroed and the model is subtracted.
5. The pedestal is re-measured (sigma-clipped median of the strip after the subtraction) and
   subtracted except in the reference columns.

The convolution is done by FFT along each row (:func:`convolve_rows`), O(rows · n log n),
instead of the official direct O(rows · n²) loop; the two agree to float64 rounding.

The model of a half covers the whole row: light of a source column in one half also falls
on the other half (and on the columns beyond 1023), as in the official C extension.
"""

from __future__ import annotations

import numpy as np

#: DQ bits (jwst ``dqflags.pixel``).
DO_NOT_USE, DEAD, HOT, NON_SCIENCE, REFERENCE_PIXEL = 1, 1 << 10, 1 << 11, 1 << 9, 1 << 31
#: Pixels left out of the cross-artifact model.
MODEL_EXCLUDED_DQ = DO_NOT_USE | NON_SCIENCE | DEAD | HOT
#: Detector halves: the columns whose light is spread with each half's kernel.
HALVES = ((0, 516), (516, 1024))
#: Reference-pixel columns (not corrected).
REFERENCE_COLUMNS = ((0, 4), (1028, 1032))
#: Dark strip between the channels (x0, x1, y0, y1), per detector ("12" = MIRIFUSHORT).
DARK_STRIP = {"12": (503, 516, 50, 974), "34": (474, 507, 50, 974)}
#: Per-row parameter columns of a band table, in the order :func:`row_kernels` takes them.
PARAMETER_COLUMNS = ("lor_fwhm", "lor_scale", "gau_fwhm", "gau_xoff", "gau_scale1", "gau_scale2")
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def band_tables(channel: str, band: str) -> tuple[str | None, str | None]:
    """The MRSXARTCORR tables of the left and right detector halves (None: no correction).

    ``"12"``: channel 1 left, channel 2 right; ``"34"``: channel 4 left, channel 3 right.
    Cross-dichroic bands (``"SHORT-MEDIUM"``…) have none, as in the official step.
    """
    letter = {"SHORT": "a", "MEDIUM": "b", "LONG": "c"}.get(str(band).strip().upper())
    channel = str(channel).strip()
    if letter is None or channel not in ("12", "34"):
        return None, None
    left, right = ("1", "2") if channel == "12" else ("4", "3")
    return f"ch{left}{letter}", f"ch{right}{letter}"


def row_kernels(params: np.ndarray, n: int) -> np.ndarray:
    """The cross-artifact kernel of each row, for offsets across ``n`` columns.

    Parameters
    ----------
    params : ndarray, shape (6, rows)
        ``LOR_FWHM, LOR_SCALE, GAU_FWHM, GAU_XOFF, GAU_SCALE1, GAU_SCALE2`` per row.
    n : int
        Columns of the frame.

    Returns
    -------
    ndarray, shape (rows, 2n - 1), float64
        ``K[j, d + n - 1]``: light at column offset ``d`` (−(n−1) … n−1) from a source of 1
        in row ``j``:
        ``A_L γ²/(γ² + d²) + A_1 Σ± exp(−(d ∓ δ)²/2σ²) + A_2 Σ± exp(−(d ∓ 2δ)²/8σ²)``,
        with γ = FWHM_L/2, σ = FWHM_G/(2√(2 ln 2)), δ = GAU_XOFF.
    """
    p = np.asarray(params, dtype=np.float64)
    lor_fwhm, lor_amp, g_fwhm, g_dx, g1_amp, g2_amp = (p[k][:, None] for k in range(6))
    gamma2 = (lor_fwhm / 2.0) ** 2
    var = (g_fwhm / FWHM_PER_SIGMA) ** 2
    d = np.arange(-(n - 1), n, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kernel = lor_amp * gamma2 / (gamma2 + d * d)
        kernel = kernel + g1_amp * (np.exp(-((d - g_dx) ** 2) / (2 * var)) + np.exp(-((d + g_dx) ** 2) / (2 * var)))
        kernel = kernel + g2_amp * (np.exp(-((d - 2 * g_dx) ** 2) / (8 * var))
                                    + np.exp(-((d + 2 * g_dx) ** 2) / (8 * var)))
    return kernel


def convolve_rows(image: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Row-by-row convolution, each row with its own kernel, by FFT.

    Parameters
    ----------
    image : ndarray, shape (rows, n)
    kernels : ndarray, shape (rows, 2n - 1)
        Centred kernels (:func:`row_kernels`).

    Returns
    -------
    ndarray, shape (rows, n), float64
        ``out[j, k] = Σ_i image[j, i] · kernels[j, k − i + n − 1]``.
    """
    rows, n = image.shape
    size = 1 << int(np.ceil(np.log2(3 * n - 2)))  # the full linear convolution, no wrap-around
    spectrum = np.fft.rfft(image, size, axis=1) * np.fft.rfft(kernels, size, axis=1)
    return np.fft.irfft(spectrum, size, axis=1)[:, n - 1:2 * n - 1]


def xartifact_model(source: np.ndarray, left: np.ndarray | None, right: np.ndarray | None) -> np.ndarray:
    """The cross-artifact model of a frame from its source image (above the pedestal).

    Parameters
    ----------
    source : ndarray, shape (1024, 1032)
        The weighted image above the first pedestal; negative values count as 0.
    left, right : ndarray (6, 1024) or None
        Parameters of the band tables of the two halves (None: no model on that half).

    Returns
    -------
    ndarray, float64, same shape
        Zero in the reference columns.
    """
    source = np.where(source < 0.0, 0.0, np.asarray(source, dtype=np.float64))
    model = np.zeros(source.shape, dtype=np.float64)
    width = source.shape[1]
    for (x0, x1), params in zip(HALVES, (left, right)):
        if params is not None:
            half = np.zeros_like(source)
            half[:, x0:x1] = source[:, x0:x1]
            model += convolve_rows(half, row_kernels(params, width))
    for x0, x1 in REFERENCE_COLUMNS:
        model[:, x0:x1] = 0.0
    return model


def correct_xartifact(sci: np.ndarray, dq: np.ndarray, channel: str, left: np.ndarray | None,
                      right: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Subtract the cross-artifact model and the pedestal from one frame (steps 1–5 above).

    Parameters
    ----------
    sci : ndarray, shape (1024, 1032)
        Pixel values (NaN allowed); not modified.
    dq : ndarray of int, same shape
        DQ flags.
    channel : str
        ``"12"`` or ``"34"`` (the detector: chooses the dark strip).
    left, right : ndarray (6, 1024) or None
        The band tables of the two halves (:func:`band_tables`); None: no model there (the
        pedestal is still removed, as officially).

    Returns
    -------
    sci : ndarray
        Corrected copy, in ``sci``'s floating dtype; the model is computed in float64.
    pedestal : float
        The pedestal removed (NaN when it could not be measured: then none is removed).
    """
    from astropy.stats import sigma_clipped_stats  # 3σ about the median, 5 iterations, as officially

    data = np.asarray(sci)
    finite = np.isfinite(data)
    # The work copy keeps the data's precision (float32 for detector data), as the official one
    # does: the pedestal and the threshold are then the same numbers, and so is the pixel mask.
    work = np.where(finite, data, 0).astype(data.dtype if data.dtype.kind == "f" else np.float64)
    weight = np.ones_like(work)
    weight[np.isnan(data) | ((np.asarray(dq).astype(np.uint32) & MODEL_EXCLUDED_DQ) != 0)] = 0
    x0, x1, y0, y1 = DARK_STRIP["12" if str(channel).strip() == "12" else "34"]
    guess, _, rms = sigma_clipped_stats(work[y0:y1, x0:x1])
    weight[work < guess + 3 * rms] = 0
    model = xartifact_model((work - guess) * weight, left, right)
    out = (data - model).astype(work.dtype)
    _, pedestal, _ = sigma_clipped_stats((work - model)[y0:y1, x0:x1])
    pedestal = float(pedestal)
    if np.isfinite(pedestal):
        columns = np.ones(out.shape[1], dtype=bool)
        for c0, c1 in REFERENCE_COLUMNS:
            columns[c0:c1] = False
        out[:, columns] = (out[:, columns].astype(np.float64) - pedestal).astype(work.dtype)
    return out, pedestal


def shower_model(sci: np.ndarray, dq: np.ndarray, regions: np.ndarray, x_stddev: float = 18.0,
                 y_stddev: float = 5.0, low_reject: float = 0.1, high_reject: float = 99.9) -> np.ndarray:
    """The smooth model of residual cosmic-ray showers (the official ``clean_showers``).

    The pixels between the slices (``regions == 0``), not DO_NOT_USE or REFERENCE_PIXEL and
    within the [``low_reject``, ``high_reject``] percentiles of those, are smoothed with a
    2-D Gaussian (σ ``x_stddev`` × ``y_stddev`` pixels) by FFT, NaN pixels interpolated from
    their neighbours (astropy ``convolve_fft``, normalised kernel, zero outside the frame).

    Parameters
    ----------
    sci, dq : ndarray, shape (1024, 1032)
        A frame (after the cross-artifact correction) and its DQ.
    regions : ndarray, same shape
        A plane of the REGIONS reference: 0 between the slices.

    Returns
    -------
    ndarray, float64
        The model to subtract from ``sci``.
    """
    from astropy.convolution import Gaussian2DKernel, convolve_fft

    use = np.array(sci, copy=True)
    use[np.asarray(regions) != 0] = np.nan
    use[(np.asarray(dq).astype(np.uint32) & (DO_NOT_USE | REFERENCE_PIXEL)) != 0] = np.nan
    low, high = np.nanpercentile(use, low_reject), np.nanpercentile(use, high_reject)
    use[(use < low) | (use > high)] = np.nan
    return convolve_fft(use, Gaussian2DKernel(x_stddev=x_stddev, y_stddev=y_stddev))
