"""Stray light on a chunked detector Dataset, and the step that writes a detector store.

``mrsdask straylight``, the pipeline ``straylight`` step and :func:`correct` all run it::

    import mrsdask.straylight

    lazy = mrsdask.straylight.correct("cal/*.fits", override_mrsxartcorr="xart.fits")   # nothing computed
    ds = mrsdask.straylight.correct("cal/*.fits", output="sl.zarr", override_mrsxartcorr="xart.fits")

Each exposure's SCI frame is corrected in one task (:func:`mrsdask.straylight.kernels.correct_xartifact`:
the model spreads light along whole rows and the pedestal is a statistic of the whole frame),
then split again into the Dataset's chunks. ERR and DQ are unchanged, as officially. What was
done is recorded in the Dataset's (and store's) ``mrsdask_straylight`` attribute.

In the official level-2 pipeline the step runs on rate data, before ``flat_field`` and
``photom``; here it runs on the detector data given (usually cal files). The cross-artifact
model is linear in the data, so on cal data it is the same up to the pixel-to-pixel variation
of the flat field and photometric conversion across a row; the pedestal is removed in the data's
units. Do not run it on data that the official pipeline already corrected (``S_STRAY =
COMPLETE`` in cal files from a default ``calwebb_spec2`` run): it would be subtracted twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from mrsdask.errors import InputError, ParameterError
from mrsdask.straylight import kernels
from mrsdask.straylight.request import StraylightRequest
from mrsdask.scheduling import Scheduling, detector_result

log = logging.getLogger("mrsdask.straylight")

#: Dataset/store attribute recording what the step did (JSON of :class:`StraylightSummary`).
DONE_ATTR = "mrsdask_straylight"


@dataclass
class StraylightSummary:
    """What :func:`correct_dataset` / :func:`run_straylight` did.

    Attributes
    ----------
    mrsxartcorr : str
        The reference file.
    exposures : list of dict
        Per exposure: ``filename``, ``left`` and ``right`` (band tables used; None: none for
        that half), ``regions`` (the REGIONS file of the shower cleaning, or None).
    clean_showers : bool
    output_store : str or None
    seconds : float
    """

    mrsxartcorr: str
    exposures: list[dict] = field(default_factory=list)
    clean_showers: bool = False
    output_store: str | None = None
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable report."""
        out = [f"straylight (cross-artifact model, {self.mrsxartcorr})"
               + (", residual showers cleaned" if self.clean_showers else "")]
        for e in self.exposures:
            tables = " + ".join(t.upper() for t in (e["left"], e["right"]) if t) or \
                "no band table (pedestal only)"
            out.append(f"  {e['filename']}: {tables}")
        if self.output_store:
            out.append(f"  wrote {self.output_store} in {self.seconds:.1f} s")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def straylight_summary(ds: xr.Dataset) -> StraylightSummary | None:
    """What the step did to a Dataset or detector store (None: never run on it)."""
    text = ds.attrs.get(DONE_ATTR)
    return StraylightSummary(**json.loads(text)) if text else None


def open_straylight_inputs(inputs_or_dataset: Any) -> xr.Dataset:
    """A detector Dataset as given, or the files, association or store it names, opened lazily."""
    if isinstance(inputs_or_dataset, xr.Dataset):
        return inputs_or_dataset
    from mrsdask.io.detector_store import open_detector_inputs

    items = [inputs_or_dataset] if isinstance(inputs_or_dataset, (str, os.PathLike)) else list(inputs_or_dataset)
    return open_detector_inputs([str(i) for i in items])


# --------------------------------------------------------------------------- REGIONS (showers)
def _regions_setting(path: str) -> tuple[str, str]:
    from stdatamodels.jwst.datamodels import RegionsModel

    try:
        with RegionsModel(path) as model:
            inst = model.meta.instrument
            return str(inst.channel or "").strip(), str(inst.band or "").strip().upper()
    except Exception as exc:  # noqa: BLE001 - any reason the official model refuses it
        raise InputError(f"{path}: not a REGIONS reference file ({type(exc).__name__}: {exc}); "
                         "give the CRDS regions file of the exposures' detector and band") from exc


def read_regions_plane(path: str, plane: int) -> np.ndarray:
    """Plane ``plane`` of a REGIONS reference file (0 between the slices)."""
    from stdatamodels.jwst.datamodels import RegionsModel

    with RegionsModel(path) as model:
        regions = np.asarray(model.regions)
    if regions.ndim != 3 or not 0 <= plane < regions.shape[0]:
        raise ParameterError(f"{path}: REGIONS has shape {regions.shape}; no throughput plane {plane} "
                             "(shower_plane)")
    return np.array(regions[plane])


def match_regions(channels, bands, paths) -> list[str]:
    """The REGIONS file of each exposure, by CHANNEL and BAND.

    Raises
    ------
    ParameterError
        If an exposure has no matching file, or more than one.
    """
    settings = {p: _regions_setting(p) for p in paths}
    out = []
    for i, (channel, band) in enumerate(zip(channels, bands)):
        key = (str(channel).strip(), str(band).strip().upper())
        hits = [p for p, s in settings.items() if s == key]
        if len(hits) != 1:
            have = "; ".join(f"{p} ({c} {b})" for p, (c, b) in settings.items())
            what = "no REGIONS file matches it" if not hits else "several REGIONS files match it"
            raise ParameterError(f"straylight: exposure {i} is channel {key[0]} band {key[1]}, but {what}: {have}; "
                                 "give one REGIONS reference per detector and band (override_regions)")
        out.append(hits[0])
    return out


# --------------------------------------------------------------------------- one frame
def correct_frame(sci: np.ndarray, dq: np.ndarray, channel: str, left: np.ndarray | None,
                  right: np.ndarray | None, regions: np.ndarray | None, shower: dict) -> np.ndarray:
    """One exposure's corrected SCI ``(1, y, x)`` from its ``(1, y, x)`` SCI and DQ."""
    out, pedestal = kernels.correct_xartifact(sci[0], dq[0], channel, left, right)
    if regions is not None:
        model = kernels.shower_model(out, dq[0], regions, **shower)
        out = (out - model).astype(out.dtype)
    return out[None]


def corrected_by_the_pipeline(ds: xr.Dataset) -> list[str]:
    """File names of the exposures whose primary header says ``S_STRAY = 'COMPLETE'``.

    The header is the detector store's copy (``primary_header``), else the file's own primary
    header (only that header is read).
    """
    from astropy.io import fits

    from mrsdask.io import paths

    done = []
    for i in range(ds.sizes["exposure"]):
        if "primary_header" in ds.coords:
            header = fits.Header.fromstring(str(ds["primary_header"].values[i]))
        elif "path" in ds.coords:
            with paths.open_file(str(ds["path"].values[i])) as fobj:
                header = fits.getheader(fobj)
        else:
            continue
        if str(header.get("S_STRAY", "")).strip().upper() == "COMPLETE":
            done.append(str(ds["filename"].values[i]) if "filename" in ds.coords else f"exposure {i}")
    return done


def correct_dataset(ds: xr.Dataset, request: StraylightRequest) -> xr.Dataset:
    """Stray-light correction of ``request`` on a detector Dataset, lazily (one task per exposure).

    Raises
    ------
    ParameterError
        Without the reference files needed, or for REGIONS files that do not match.
    InputError
        For an unreadable MRSXARTCORR file, or data that mrsdask corrected already.
    """
    from mrsdask.straylight.reference import read_xartcorr

    request.check_runnable()
    if DONE_ATTR in ds.attrs:
        raise InputError("straylight: these data were corrected for stray light already (mrsdask_straylight "
                         "attribute); run the step on the uncorrected inputs")
    for name in ("sci", "dq"):
        if name not in ds:
            raise InputError(f"straylight: dataset has no {name!r} variable")
    done = corrected_by_the_pipeline(ds)
    if done:
        raise InputError(
            f"straylight: {', '.join(done[:3])}{' …' if len(done) > 3 else ''}: S_STRAY = COMPLETE, the official "
            "pipeline removed the stray light already; correcting again would subtract it twice. Run the step on "
            "files reduced with it skipped (calwebb_spec2 --steps.straylight.skip=true)")
    reference = read_xartcorr(request.override_mrsxartcorr)
    n = ds.sizes["exposure"]
    channels = [str(v).strip() for v in ds["channel"].values]
    bands = [str(v).strip().upper() for v in ds["band"].values]
    names = [str(v) for v in ds["filename"].values]
    regions_paths = match_regions(channels, bands, request.override_regions) if request.clean_showers else [None] * n
    shower = dict(x_stddev=request.shower_x_stddev, y_stddev=request.shower_y_stddev,
                  low_reject=request.shower_low_reject, high_reject=request.shower_high_reject)
    sci, dq = ds["sci"].data, ds["dq"].data
    if not isinstance(sci, da.Array):
        sci = da.from_array(sci, chunks=(1, -1, -1))
    if not isinstance(dq, da.Array):
        dq = da.from_array(dq, chunks=(1, -1, -1))
    shape = (1, ds.sizes["y"], ds.sizes["x"])
    regions_planes: dict[str, Any] = {}
    summary = StraylightSummary(str(request.override_mrsxartcorr), clean_showers=request.clean_showers)
    frames = []
    for i in range(n):
        left, right = kernels.band_tables(channels[i], bands[i])
        left = left if reference.params(left) is not None else None
        right = right if reference.params(right) is not None else None
        if left is None and right is None:
            log.warning("straylight: %s (channel %s band %s): no MRSXARTCORR table; only the pedestal is removed",
                        names[i], channels[i], bands[i])
        regions = None
        if regions_paths[i] is not None:
            path = regions_paths[i]
            if path not in regions_planes:
                regions_planes[path] = dask.delayed(read_regions_plane, pure=True)(
                    path, request.shower_plane, dask_key_name=f"straylight-regions-{request.shower_plane}-{path}")
            regions = regions_planes[path]
        frame = dask.delayed(correct_frame, pure=True)(
            sci[i:i + 1], dq[i:i + 1], channels[i], reference.params(left), reference.params(right), regions, shower)
        frames.append(da.from_delayed(frame, shape=shape, dtype=sci.dtype))
        summary.exposures.append({"filename": names[i], "left": left, "right": right, "regions": regions_paths[i]})
    corrected = da.concatenate(frames, axis=0).rechunk(sci.chunks)
    out = ds.copy()
    out["sci"] = ds["sci"].copy(data=corrected)
    out.attrs[DONE_ATTR] = json.dumps(asdict(summary))
    return out


def run_straylight(inputs_or_dataset: Any, output: str, request: StraylightRequest, *, overwrite: bool = False,
                   progress: bool = False) -> StraylightSummary:
    """Correct stray light and write a detector store; the summary (also logged on ``mrsdask.straylight``).

    The request and the output are checked before any input is read. Runs on the current Dask
    scheduler.
    """
    from mrsdask.io.detector_store import check_detector_output, write_detector_store

    t0 = time.perf_counter()
    request.check_runnable()
    output = check_detector_output(str(output), overwrite)
    ds = correct_dataset(open_straylight_inputs(inputs_or_dataset), request)
    write_detector_store(ds, output, overwrite=overwrite, progress=progress)
    summary = straylight_summary(ds)
    summary.output_store = output
    summary.seconds = time.perf_counter() - t0
    for line in summary.lines():
        log.info(line)
    return summary


def correct(inputs_or_dataset: Any, output: str | None = None, request: StraylightRequest | None = None, *,
            overwrite: bool = False, scheduling: Scheduling | None = None, **options: Any) -> xr.Dataset:
    """Stray-light correction (official cross-artifact model): a lazy Dataset, or a store written and opened.

    The same work as ``mrsdask straylight`` and the pipeline ``straylight`` step, with the same
    options (:class:`~mrsdask.straylight.request.StraylightRequest`).

    Parameters
    ----------
    inputs_or_dataset : str, list of str or xarray.Dataset
        cal files, globs, an association JSON, one detector store, or a detector Dataset.
    output : str, optional
        Detector store (path or URL) to write. None: the corrected Dataset is returned lazily.
    request : StraylightRequest, optional
        The options; keyword ``options`` change its fields.
    overwrite : bool
        Replace a complete store at ``output``.
    scheduling : Scheduling, optional
        Where the work runs, and progress bars (:class:`~mrsdask.scheduling.Scheduling`; its fields also as keywords).
    **options
        Fields of :class:`StraylightRequest` by name (``override_mrsxartcorr="xart.fits"``,
        ``clean_showers=True``…).

    Returns
    -------
    xarray.Dataset
        The corrected detector Dataset (lazy), or the written store opened lazily.

    Raises
    ------
    ParameterError
        For an unknown option, a bad value, or a missing reference file.
    """
    from mrsdask.options import request_from

    scheduling = Scheduling.pop_from(options, scheduling, "mrsdask.straylight.correct")
    request = request_from(StraylightRequest, request, "mrsdask.straylight.correct", **options)
    request.check_runnable()
    return detector_result(inputs_or_dataset, open_straylight_inputs(inputs_or_dataset), request, output,
                           correct=correct_dataset, run=run_straylight, overwrite=overwrite, scheduling=scheduling)
