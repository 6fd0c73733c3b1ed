"""The options of IFU outlier detection: one frozen dataclass, official parameter names."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from mrsdask.errors import ParameterError
from mrsdask.options import option

log = logging.getLogger("mrsdask.outlier")


def parse_kernel_size(value) -> tuple[int, int]:
    """``'7 7'``, ``['7', '7']``, ``[7, 7]`` or ``(7, 7)`` → ``(7, 7)``.

    Raises
    ------
    ParameterError
        Unless the value is two positive integers.
    """
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
    elif isinstance(value, (list, tuple)):
        parts = [p for item in value for p in str(item).replace(",", " ").split()]
    else:
        parts = [value]
    try:
        sizes = tuple(int(p) for p in parts)
        exact = all(float(p) == int(p) for p in parts)
    except (TypeError, ValueError):
        sizes, exact = (), False
    if len(sizes) != 2 or not exact or min(sizes) < 1:
        raise ParameterError(f"outlier: kernel_size {value!r} must be two positive odd integers, e.g. '7 7'")
    return sizes  # type: ignore[return-value]


@dataclass(frozen=True)
class OutlierRequest:
    """What :func:`mrsdask.outlier.flag_outliers` does (official ``OutlierDetectionStep``, mode ifu).

    Attributes
    ----------
    kernel_size : (int, int)
        Median-filter window normalising the minimum neighbour differences. Given as the
        official string (``'7 7'``) or a pair; the first number is along detector rows (axis
        0), as in the official code. An even size is increased by 1 with a warning, as there.
    threshold_percent : float
        Percentile of the normalised differences above which pixels are outliers.
    ifu_second_check : bool
        Also flag pixels whose minimum difference is NaN (a NaN neighbour in every exposure).
    skip : bool
        Do nothing: the data pass through unchanged, recorded as skipped.
    """

    #: Official steps whose stpipe parameter files give this request (``--params``,
    #: :func:`mrsdask.options.request_from_step_file`): import path and the options they imply.
    OFFICIAL_STEPS: ClassVar[dict[str, tuple[str, dict]]] = {
        "OutlierDetectionStep": ("jwst.outlier_detection.OutlierDetectionStep", {}),
    }

    kernel_size: tuple[int, int] = option(
        (7, 7), "median-filter window normalising the neighbour differences, 'NY NX' (odd)",
        kind="str_list", parse=parse_kernel_size, user_default="7 7", metavar="N")
    threshold_percent: float = option(
        99.8, "flag pixels above this percentile (0-100) of the normalised minimum neighbour difference",
        kind="float", metavar="PERCENT")
    ifu_second_check: bool = option(
        False, "also flag pixels whose neighbour difference is NaN in every exposure", kind="bool")
    skip: bool = option(False, "skip outlier detection (data passed through, recorded as skipped)", kind="bool")

    def __post_init__(self) -> None:
        sizes = list(parse_kernel_size(self.kernel_size))
        for axis, size in enumerate(sizes):
            if size % 2 == 0:
                log.warning("outlier: kernel_size %d (axis %d) is even; using %d, as the official step does",
                            size, axis, size + 1)
                sizes[axis] = size + 1
        object.__setattr__(self, "kernel_size", (sizes[0], sizes[1]))
        if isinstance(self.threshold_percent, bool) or not 0.0 < float(self.threshold_percent) <= 100.0:
            raise ParameterError(f"outlier: threshold_percent {self.threshold_percent!r} must be in (0, 100]")
        object.__setattr__(self, "threshold_percent", float(self.threshold_percent))

    def as_official(self) -> dict:
        """The parameters as the official step takes them (``kernel_size`` as a string)."""
        return {"kernel_size": f"{self.kernel_size[0]} {self.kernel_size[1]}",
                "threshold_percent": self.threshold_percent, "ifu_second_check": self.ifu_second_check}
