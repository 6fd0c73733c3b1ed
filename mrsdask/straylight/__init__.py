"""Stray light: the official cross-artifact model (``straylight`` step) on detector data.

Layers: :mod:`~mrsdask.straylight.kernels` (numpy on one frame: the row-wise Lorentzian +
Gaussian model by FFT, the pedestal, the shower model), :mod:`~mrsdask.straylight.reference`
(the MRSXARTCORR file), :mod:`~mrsdask.straylight.run` (one task per exposure, the detector
store, :func:`correct`), and the options :class:`~mrsdask.straylight.request.StraylightRequest`
(official ``StraylightStep`` names).
"""

from mrsdask.lazy import lazy_exports

# The Dask layer is imported when first used (the options alone load no Dask).
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "request": ("StraylightRequest",),
    "run": ("DONE_ATTR", "StraylightSummary", "correct", "correct_dataset", "corrected_by_the_pipeline",
            "run_straylight", "straylight_summary"),
})
