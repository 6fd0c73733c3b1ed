"""Reference files shipped with mrsdask and the offline official ``assign_wcs``.

The package carries the in-flight FLT-9 distortion, wavelength and wavelength-range
reference files, the ground slice maps, level-2 templates and the dither tables (see
``data/PROVENANCE.md``; BSD-3, (c) AURA/STScI). They give the real MRS geometry with no
network and no CRDS. Real user data carry their own WCS and never need these.
"""

from __future__ import annotations

import functools
import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from mrsdask.instrument.bands import SETTINGS

DATA_DIR = Path(str(resources.files("mrsdask.instrument") / "data"))
FLT9_DIR = DATA_DIR / "mrs_flt9"
TEMPLATE_DIR = DATA_DIR / "templates"
DITHER_DIR = DATA_DIR / "dithers"

#: Index of the 80 % throughput plane that the pipeline's regions reference uses.
REGIONS_PLANE = 7


def _check_setting(setting: str) -> str:
    setting = setting.upper()
    if setting not in SETTINGS:
        raise ValueError(f"unknown MRS setting {setting!r}; expected one of {', '.join(SETTINGS)}")
    return setting


def distortion_file(setting: str) -> Path:
    """FLT-9 distortion reference file for a setting (``"12A"`` …)."""
    return FLT9_DIR / f"jwst_miri_mrs{_check_setting(setting)}_distortion_flt9.asdf"


def specwcs_file(setting: str) -> Path:
    """FLT-9 wavelength-solution reference file for a setting."""
    return FLT9_DIR / f"jwst_miri_mrs{_check_setting(setting)}_specwcs_flt9.asdf"


def wavelengthrange_file() -> Path:
    """FLT-9 wavelength-range reference file (all settings)."""
    return FLT9_DIR / "jwst_miri_mrs_wavelengthrange_flt9.asdf"


def template_file(setting: str) -> Path:
    """Level-2 ``cal`` template (real header layout, zero data) for a setting."""
    return TEMPLATE_DIR / f"template_{_check_setting(setting)}.fits.gz"


@functools.lru_cache(maxsize=8)
def slice_map(setting: str) -> np.ndarray:
    """Slice map of a setting: int16 (1024, 1032), ``100*channel + slice``, 0 off-slice.

    The returned array is read-only and shared; copy it before changing it.
    """
    with np.load(FLT9_DIR / "slice_maps_ground.npz") as npz:
        arr = np.array(npz[_check_setting(setting)])
    arr.setflags(write=False)
    return arr


def cache_dir() -> Path:
    """Folder for files mrsdask derives from its package data (``$MRSDASK_CACHE``)."""
    base = os.environ.get("MRSDASK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "mrsdask"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def regions_file(setting: str) -> Path:
    """A ``RegionsModel`` reference file made from the shipped slice map (cached).

    The pipeline's regions file holds nine throughput planes and uses plane 7 (80 %); this
    one repeats the single shipped map in all nine planes, as ``PROVENANCE.md`` describes.
    """
    from stdatamodels.jwst.datamodels import RegionsModel

    from mrsdask.io.reference_files import stamp_reference

    setting = _check_setting(setting)
    path = cache_dir() / f"mrsdask_regions_{setting}.asdf"
    if path.exists():
        return path
    smap = slice_map(setting)
    model = RegionsModel()
    model.regions = np.repeat(smap[None].astype(np.float32), 9, axis=0)
    stamp_reference(model, "regions", f"mrsdask regions from ground slice map {setting}", pedigree="GROUND",
                    exp_type="MIR_MRS", detector="MIRIFUSHORT" if setting.startswith("12") else "MIRIFULONG",
                    channel=setting[:2], band={"A": "SHORT", "B": "MEDIUM", "C": "LONG"}[setting[2]])
    # Write to a temporary name first so that a concurrent process never reads half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".asdf")
    os.close(fd)
    model.save(tmp, all_array_compression="zlib")
    os.replace(tmp, path)
    return path


def assign_wcs_offline(model, setting: str | None = None):
    """Run the official ``AssignWcsStep`` on ``model`` with the shipped FLT-9 references.

    This is how the simulator gives its ``cal`` files the pipeline's own gwcs, and how the
    tests compare mrsdask with the official pipeline without CRDS or network.

    Parameters
    ----------
    model : stdatamodels.jwst.datamodels.IFUImageModel
        An MRS level-2 model with its pointing keywords set.
    setting : str, optional
        ``"12A"`` … ``"34C"``; by default taken from the model's CHANNEL and BAND.

    Returns
    -------
    IFUImageModel
        The model with ``meta.wcs`` set and ``cal_step.assign_wcs = "COMPLETE"``.
    """
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")
    disable_crds_context_lookup()
    from jwst.assign_wcs import AssignWcsStep

    if setting is None:
        from mrsdask.instrument.bands import SUBBAND_LETTER

        setting = str(model.meta.instrument.channel) + SUBBAND_LETTER[model.meta.instrument.band]
    setting = _check_setting(setting)
    step = AssignWcsStep(
        override_distortion=str(distortion_file(setting)),
        override_specwcs=str(specwcs_file(setting)),
        override_regions=str(regions_file(setting)),
        override_wavelengthrange=str(wavelengthrange_file()),
    )
    for reftype in step.reference_file_types:
        if getattr(step, f"override_{reftype}", None) is None:
            setattr(step, f"override_{reftype}", "")
    out = step.run(model)
    if out.meta.cal_step.assign_wcs != "COMPLETE":
        raise RuntimeError(f"official AssignWcsStep did not complete for setting {setting}")
    return out


#: setting -> (the official step's output for one exposure: frames, instrument transforms, meta)
_INSTRUMENT_WCS: dict[str, tuple] = {}


def remember_instrument_wcs(model, setting: str) -> None:
    """Keep the instrument part of ``model``'s official gwcs for :func:`assign_wcs_reusing`.

    ``model`` is an output of :func:`assign_wcs_offline` for ``setting`` (any pointing).
    """
    steps = model.meta.wcs.pipeline
    _INSTRUMENT_WCS[_check_setting(setting)] = (
        [step.frame for step in steps], steps[0].transform, steps[1].transform,
        {"specsys": model.meta.wcsinfo.specsys, "dispersion_direction": model.meta.wcsinfo.dispersion_direction},
        model.meta.ref_file.instance,
        {"calibration_software_version": model.meta.calibration_software_version,
         "calibration_software_revision": model.meta.calibration_software_revision},
    )


def assign_wcs_reusing(model, setting: str):
    """:func:`assign_wcs_offline`, reusing the instrument part of an earlier exposure's gwcs.

    The official MRS gwcs is detector → α, β, λ → v2, v3 (built from the setting's reference
    files: most of the step's time) followed by the velocity-aberration and v2, v3 → sky
    transforms of the exposure's pointing. The first exposure of a setting in this process
    runs the official step; later ones keep its first two transforms and frames and rebuild
    the pointing part with the official ``jwst.assign_wcs.pointing`` functions, then set
    ``S_REGION`` with the official ``update_s_region_mrs``, as the step does. The result equals
    a fresh :func:`assign_wcs_offline` (``tests/instrument/test_wcs_reuse.py``) at about half
    the cost of the simulator's exposures.

    Parameters
    ----------
    model : stdatamodels.jwst.datamodels.IFUImageModel
        An MRS level-2 model with its pointing keywords set (changed in place for reuse).
    setting : str
        ``"12A"`` … ``"34C"``.
    """
    setting = _check_setting(setting)
    cached = _INSTRUMENT_WCS.get(setting)
    if cached is None:
        out = assign_wcs_offline(model, setting)
        remember_instrument_wcs(out, setting)
        return out
    import copy

    from astropy.modeling import models
    from gwcs import WCS
    from jwst.assign_wcs import pointing
    from jwst.assign_wcs.util import update_s_region_mrs

    frames, det2abl, abl2v2v3l, wcsinfo, ref_file, software = cached
    meta = model.meta
    va_corr = pointing.dva_corr_model(
        va_scale=meta.velocity_aberration.scale_factor, v2_ref=meta.wcsinfo.v2_ref, v3_ref=meta.wcsinfo.v3_ref,
    ) & models.Identity(1)
    tel2sky = pointing.v23tosky(model) & models.Identity(1)
    meta.wcs = WCS([(frames[0], det2abl), (frames[1], abl2v2v3l), (frames[2], va_corr), (frames[3], tel2sky),
                    (frames[4], None)])
    for key, value in wcsinfo.items():
        setattr(meta.wcsinfo, key, value)
    meta.cal_step.assign_wcs = "COMPLETE"
    update_s_region_mrs(model)
    meta.ref_file = copy.deepcopy(ref_file)
    for key, value in software.items():  # stpipe records the jwst version that ran the step
        setattr(meta, key, value)
    return model


def disable_crds_context_lookup() -> None:
    """Stop stpipe from asking the CRDS server for its context name (offline use).

    stpipe's last bookkeeping call exits the process when no CRDS server answers; a fixed
    name stands in for it. Only the recorded context name changes.
    """
    import stpipe.crds_client

    if getattr(stpipe.crds_client.get_context_used, "_mrsdask_offline", False):
        return

    def _offline_context(*_args, **_kwargs):
        return "jwst_offline.pmap"

    _offline_context._mrsdask_offline = True  # type: ignore[attr-defined]
    stpipe.crds_client.get_context_used = _offline_context
