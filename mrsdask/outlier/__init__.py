"""IFU outlier detection (the official ``outlier_detection`` step, ``mode="ifu"``) on detector data.

Pixels that are sharp across the slices in every exposure of a detector — warm and hot pixels
that the bad-pixel mask missed — get SCI = NaN and DQ |= DO_NOT_USE | OUTLIER in all those
exposures, so that cube building leaves them out.

Layers: :mod:`~mrsdask.outlier.kernels` (numpy/numba on arrays), :mod:`~mrsdask.outlier.run`
(the chunked Dask/xarray layer and :func:`run_outlier`, inputs → detector store), and the
options :class:`~mrsdask.outlier.request.OutlierRequest` (official names ``kernel_size``,
``threshold_percent``, ``ifu_second_check``; ``skip``).
"""

from mrsdask.outlier.request import OutlierRequest

_LAZY = {"DONE_ATTR", "DetectorOutcome", "OutlierSummary", "detect", "outlier_summary", "run_outlier"}


def __getattr__(name: str):
    """The Dask layer is imported when first used (the options alone load no Dask or numba)."""
    if name in _LAZY or name == "flag_outliers":
        from mrsdask.outlier import run as _run

        # "flag_outliers": the same as detect(), named as the official module's function.
        return getattr(_run, "detect" if name == "flag_outliers" else name)
    raise AttributeError(f"module 'mrsdask.outlier' has no attribute {name!r}")


__all__ = ["DONE_ATTR", "DetectorOutcome", "OutlierRequest", "OutlierSummary", "detect", "flag_outliers",
           "outlier_summary", "run_outlier"]
