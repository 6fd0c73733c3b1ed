"""Stray light: the official cross-artifact model (``straylight`` step) on detector data.

Layers: :mod:`~mrsdask.straylight.kernels` (numpy on one frame: the row-wise Lorentzian +
Gaussian model by FFT, the pedestal, the shower model), :mod:`~mrsdask.straylight.reference`
(the MRSXARTCORR file), :mod:`~mrsdask.straylight.run` (one task per exposure, the detector
store, :func:`correct`), and the options :class:`~mrsdask.straylight.request.StraylightRequest`
(official ``StraylightStep`` names).
"""

from mrsdask.straylight.request import StraylightRequest

_LAZY = {"DONE_ATTR", "StraylightSummary", "correct", "corrected_by_the_pipeline", "correct_dataset", "run_straylight", "straylight_summary"}


def __getattr__(name: str):
    """The Dask layer is imported when first used (the options alone load no Dask)."""
    if name in _LAZY:
        from mrsdask.straylight import run as _run

        return getattr(_run, name)
    raise AttributeError(f"module 'mrsdask.straylight' has no attribute {name!r}")


__all__ = ["DONE_ATTR", "StraylightRequest", "StraylightSummary", "correct", "correct_dataset",
           "corrected_by_the_pipeline", "run_straylight", "straylight_summary"]
