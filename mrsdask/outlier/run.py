"""IFU outlier detection on a chunked detector Dataset, and the step that writes a detector store.

::

    from mrsdask.outlier import OutlierRequest, detect, run_outlier

    flagged = detect(ds, OutlierRequest(threshold_percent=99.8))   # lazy Dataset
    summary = run_outlier(["obs_spec3_asn.json"], "flagged.zarr")    # inputs -> detector store

The science exposures are grouped by detector (MIRIFUSHORT, MIRIFULONG), whatever their band,
as the official step groups them. Per detector, the minimum neighbour-difference map is a Dask
reduction over blocks of rows of all its exposures (:func:`min_difference_map`); the median
filter and the percentile need the whole 1024 × 1032 map, so each detector's map is then
computed and turned into an outlier mask in memory (8 MB). The masks are applied lazily,
chunk by chunk, to every exposure of the detector (:func:`detect`).

A detector with fewer than 2 science exposures is skipped (its data pass through unchanged).
The official step skips only an input of fewer than 2 exposures in all; a detector with a single
exposure beside others it flags from that exposure alone (sharp real features, such as a point
source's peak, included): here such a detector is skipped instead. Background exposures are left
unchanged (in the official ``Spec3Pipeline`` the master background step has removed them
before outlier detection). What was done is recorded in the Dataset's (and store's)
``mrsdask_outlier`` attribute (:func:`outlier_summary`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.dispatch import lazy_variable, map_exposures, merge_exposures
from mrsdask.outlier import kernels
from mrsdask.outlier.request import OutlierRequest

log = logging.getLogger("mrsdask.outlier")

#: Dataset/store attribute recording what outlier detection did (JSON of :class:`OutlierSummary`).
DONE_ATTR = "mrsdask_outlier"
#: Fewest science exposures of a detector for outlier detection.
MIN_EXPOSURES = 2


@dataclass
class DetectorOutcome:
    """Outlier detection on one detector.

    Attributes
    ----------
    detector : str
        ``MIRIFUSHORT`` or ``MIRIFULONG``.
    status : str
        ``flagged`` (detection ran; possibly 0 pixels) or ``skipped``.
    exposures : list of str
        Its science exposures (file names).
    flagged : int
        Pixels flagged in each of its exposures (percentile cut + second check).
    second_check : int
        Of which flagged by the second check only.
    threshold : float or None
        The percentile value of the normalised minimum difference.
    reason : str
        Why it was skipped.
    """

    detector: str
    status: str
    exposures: list[str] = field(default_factory=list)
    flagged: int = 0
    second_check: int = 0
    threshold: float | None = None
    reason: str = ""


@dataclass
class OutlierSummary:
    """What :func:`detect` / :func:`run_outlier` did."""

    parameters: dict
    detectors: list[DetectorOutcome] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: bool = False
    output_store: str | None = None
    seconds: float = 0.0

    @property
    def flagged(self) -> dict[str, int]:
        """Pixels flagged per exposure, by detector (skipped detectors left out)."""
        return {d.detector: d.flagged for d in self.detectors if d.status == "flagged"}

    def to_dict(self) -> dict:
        """Plain JSON-able dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OutlierSummary:
        detectors = [DetectorOutcome(**d) for d in data.get("detectors", [])]
        return cls(**{**data, "detectors": detectors})

    def lines(self) -> list[str]:
        """Human-readable report, one line per item."""
        p = self.parameters
        if self.skipped:
            return ["outlier detection skipped (skip: true); data unchanged"]
        out = [f"outlier detection (ifu): kernel_size {' '.join(map(str, p['kernel_size']))}, "
               f"threshold_percent {p['threshold_percent']}, ifu_second_check {p['ifu_second_check']}"]
        for d in self.detectors:
            if d.status == "skipped":
                out.append(f"  {d.detector}: SKIPPED ({d.reason}); data unchanged")
            else:
                extra = f", {d.second_check} by the second check" if p["ifu_second_check"] else ""
                out.append(f"  {d.detector}: {d.flagged} pixels flagged in each of {len(d.exposures)} "
                           f"exposures (threshold {d.threshold:.4g}{extra})")
        if self.unchanged:
            out.append(f"  background exposures left unchanged: {', '.join(self.unchanged)}")
        if self.output_store:
            out.append(f"  wrote {self.output_store}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def outlier_summary(ds: xr.Dataset) -> OutlierSummary | None:
    """What outlier detection did to a Dataset or detector store (None: never run on it)."""
    text = ds.attrs.get(DONE_ATTR)
    return OutlierSummary.from_dict(json.loads(text)) if text else None


def detector_groups(ds: xr.Dataset) -> dict[str, list[int]]:
    """Indices of the science exposures of each detector, detectors in sorted order."""
    detectors = [str(v) for v in ds["detector"].values]
    roles = [str(v) for v in ds["exptype"].values]
    groups: dict[str, list[int]] = {}
    for i, (name, role) in enumerate(zip(detectors, roles)):
        if role != "background":
            groups.setdefault(name.upper(), []).append(i)
    return dict(sorted(groups.items()))


def min_difference_map(ds: xr.Dataset, indices: list[int]) -> da.Array:
    """Lazy minimum neighbour difference ``(y, x)`` over the exposures ``indices``.

    One task per block of rows: it reads those rows of every exposure (all columns, the
    differences being along x) and reduces them (:func:`mrsdask.dispatch.map_exposures` with
    one group).
    """
    out = map_exposures(kernels.min_difference, ds, {"min_difference": np.float64}, inputs=("sci", "dq"),
                        groups=[indices], label="outlier detection (neighbour differences)")
    return out["min_difference"][0]


def detect(ds: xr.Dataset, request: OutlierRequest | None = None) -> xr.Dataset:
    """Flag IFU outliers: a lazy detector Dataset with SCI = NaN, DQ |= DO_NOT_USE | OUTLIER.

    The outlier masks are computed here (one pass over ``sci`` and ``dq``, chunk by chunk);
    the returned planes are lazy. The summary (per-detector counts and statuses) is in the
    ``mrsdask_outlier`` attribute (:func:`outlier_summary`) and logged; with the second check, a
    count includes the pixels NaN in every exposure (e.g. between the slices), which the official
    step flags OUTLIER too.

    Parameters
    ----------
    ds : xarray.Dataset
        A detector Dataset (:mod:`mrsdask.datamodel.detector`).
    request : OutlierRequest
        The options (default: the official defaults).
    """
    request = request or OutlierRequest()
    summary = OutlierSummary(parameters={**asdict(request), "kernel_size": list(request.kernel_size)})
    names = [str(v) for v in ds["filename"].values]
    groups = detector_groups(ds)
    summary.unchanged = [names[i] for i in range(ds.sizes["exposure"])
                         if not any(i in idx for idx in groups.values())]
    if request.skip:
        summary.skipped = True
        log.info("outlier detection skipped (skip: true)")
        return _with_summary(ds, summary)
    runnable = {}
    for detector, idx in groups.items():
        if len(idx) < MIN_EXPOSURES:
            reason = (f"only {len(idx)} science exposure; outlier detection needs at least {MIN_EXPOSURES} "
                      "of the same detector")
            log.warning("outlier detection skipped for %s: %s; data passed through unchanged", detector, reason)
            summary.detectors.append(DetectorOutcome(detector, "skipped", [names[i] for i in idx], reason=reason))
        else:
            runnable[detector] = idx
    # One task per detector for the median filter and the percentile (numba releases the GIL:
    # the detectors' filters run side by side), after the chunked reduction of its exposures.
    found_all = dask.compute(*[
        dask.delayed(kernels.outlier_mask, pure=True)(min_difference_map(ds, idx), request.kernel_size,
                                                      request.threshold_percent, request.ifu_second_check)
        for idx in runnable.values()])
    masks = {}
    for (detector, idx), found in zip(runnable.items(), found_all):
        masks[detector] = found.mask
        outcome = DetectorOutcome(detector, "flagged", [names[i] for i in idx], int(found.mask.sum()),
                                  found.n_nan, found.threshold)
        summary.detectors.append(outcome)
        log.info("outlier detection: %s: %d pixels flagged in each of %d exposures", detector, outcome.flagged, len(idx))
    summary.detectors.sort(key=lambda d: d.detector)
    out = ds.copy()
    if masks:
        detector_of = {i: det for det, idx in runnable.items() for i in idx}
        flagged = sorted(detector_of)
        outputs = {name: ds[name].dtype for name in ("sci", "err", "dq")}
        done = map_exposures(kernels.apply_mask, ds, outputs, exposures=flagged,
                             planes={"mask": [masks[detector_of[i]] for i in flagged]},
                             label="outlier detection (flagging)")
        out = out.assign({name: out[name].copy(data=merge_exposures(lazy_variable(ds, name), flagged, done[name]))
                          for name in ("sci", "err", "dq")})
    return _with_summary(out, summary)


def _with_summary(ds: xr.Dataset, summary: OutlierSummary) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs[DONE_ATTR] = json.dumps(summary.to_dict())
    return ds


def run_outlier(inputs: list[str] | xr.Dataset, output: str, request: OutlierRequest | None = None,
                overwrite: bool = False, progress: bool = False) -> OutlierSummary:
    """Inputs → detector store with IFU outliers flagged (the CLI's and the pipeline step's entry point).

    Parameters
    ----------
    inputs : list of str or xarray.Dataset
        cal files, globs, an association JSON or one detector store (local or ``s3://``), or a
        detector Dataset.
    output : str
        Detector store to write (local path or ``s3://`` URL).
    request : OutlierRequest
        Options (default: the official defaults).
    overwrite : bool
        Replace a complete store at ``output``.
    progress : bool
        Progress bar while writing.
    """
    from mrsdask.io.detector_store import check_detector_output, open_detector_inputs, write_detector_store

    t0 = time.perf_counter()
    check_detector_output(output, overwrite)  # before any work
    ds = inputs if isinstance(inputs, xr.Dataset) else open_detector_inputs(list(inputs))
    flagged = detect(ds, request)
    summary = outlier_summary(flagged)
    write_detector_store(flagged, output, overwrite=overwrite, progress=progress)
    summary.output_store = output
    summary.seconds = time.perf_counter() - t0
    return summary
