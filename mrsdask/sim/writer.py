"""Files: level-2 ``cal`` exposures, the level-3 association and the truth file.

* :func:`build_exposure_model` turns a level-2 template (real header layout, the embedded
  legacy ``ASDF`` WCS dropped as ``PROVENANCE.md`` asks) into an ``IFUImageModel`` with the
  exposure's pointing, target, dither, timing and calibration-step keywords, then runs the
  official ``AssignWcsStep`` offline (:func:`mrsdask.instrument.reference.assign_wcs_reusing`: the
  step itself for the first exposure of a setting, its instrument transforms kept for the others).
* :func:`write_association` writes an official-format ``spec3`` association JSON.
* :func:`write_truth` / :func:`read_truth` hold the scene's truth (see below).

Truth file layout (FITS)
------------------------
``PRIMARY``
    Header only: ``TARG_RA``, ``TARG_DEC``, ``ROLL``, ``NSOURCE``, ``SKYSCALE``, ``SEED``.
``WAVELENGTH``
    float64 (n,), µm: a geometric grid from 4.6 to 28.9 µm at λ/Δλ = 20000.
``SOURCE`` (EXTVER = 1 … NSOURCE, in the configuration's order)
    float64 (n,): the intrinsic spectrum (:func:`mrsdask.sim.scene.truth_spectrum`):
    ``BUNIT = 'Jy'`` (flux density) for a point source, ``'MJy/sr'`` (central surface
    brightness before PSF convolution) for an extended one. Header: ``SRCNAME``,
    ``SRCTYPE`` (POINT/EXTENDED), ``RA``, ``DEC`` (deg), ``RA_OFF``, ``DEC_OFF`` (arcsec),
    and for extended sources ``PROFILE``, ``SIZE``, ``AXRATIO``, ``PA``.
``SKY``
    float64 (n,), MJy/sr: the sky background in every exposure (zeros if disabled).
``CONFIG``
    uint8: the UTF-8 JSON of the full :class:`~mrsdask.sim.config.SimulationConfig`, from
    which :class:`~mrsdask.sim.scene.Scene` rebuilds the analytic scene.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta

from mrsdask.instrument.reference import assign_wcs_reusing, template_file
from mrsdask.sim.config import ExtendedSource, PointSource, SimulationConfig
from mrsdask.sim.observation import PATTERN_KEYWORD, ExposurePlan, attitude, exposure_times
from mrsdask.sim.scene import Scene, sky_spectrum, truth_spectrum

#: Program number written to the simulated files.
PROGRAM = "09999"
#: Seconds between the end of one exposure and the start of the next.
OVERHEAD_S = 60.0
#: Primary-header keywords of the template's own (MiriTE) simulator, dropped from the output.
_TEMPLATE_ONLY_KEYWORDS = (
    "FILETYPE", "CAL_VCS", "MODELNAM", "DETTEMP", "DETSETNG", "SCA_ID", "ROWRSETS", "FRMRSETS",
    "GRPAVG", "INTAVG", "CRMETHOD", "CRMODE", "GCR_FLUX", "CRNUM", "CRNUMPIX", "SUBBURST",
    "DETROWS", "DETCOLS", "SMPSKIP", "WELL", "REQTIME", "EXPTIME", "RDNOISE", "GAINCF", "MAXDN",
    "CREATOR",
)
_STRUCTURAL = ("BSCALE", "BZERO")

#: Calibration steps a level-2 MRS ``cal`` file has been through.
CAL_STEPS_DONE = (
    "dq_init", "emicorr", "saturation", "firstframe", "lastframe", "reset", "linearity", "rscd",
    "dark_sub", "jump", "ramp_fit", "srctype", "flat_field", "straylight", "photom",
)
#: Steps a default level-2 run skips.
CAL_STEPS_SKIPPED = ("gain_scale", "group_scale", "bkg_subtract", "residual_fringe", "pixel_replace")


@functools.lru_cache(maxsize=6)
def _template_headers(setting: str) -> tuple[tuple[str, fits.Header], ...]:
    """Headers of a template's HDUs, without the ``ASDF`` extension (cached)."""
    out = []
    with fits.open(template_file(setting)) as hdul:
        for hdu in hdul:
            if hdu.name == "ASDF":
                continue
            hdr = hdu.header.copy()
            for key in _STRUCTURAL:
                hdr.remove(key, ignore_missing=True)
            if hdu.name == "PRIMARY":
                for key in _TEMPLATE_ONLY_KEYWORDS:
                    hdr.remove(key, ignore_missing=True, remove_all=True)
            out.append((hdu.name, hdr))
    return tuple(out)


def template_model(setting: str):
    """A fresh ``IFUImageModel`` from the setting's template (zero data, no WCS)."""
    from stdatamodels.jwst.datamodels import IFUImageModel

    headers = _template_headers(setting)
    hdul = fits.HDUList([fits.PrimaryHDU(header=headers[0][1].copy())])
    for name, hdr in headers[1:]:
        dtype = np.uint32 if name == "DQ" else np.float32
        shape = (int(hdr.get("NAXIS2", 1024)), int(hdr.get("NAXIS1", 1032)))
        hdul.append(fits.ImageHDU(data=np.zeros(shape, dtype), header=hdr.copy(), name=name))
    return IFUImageModel(hdul)


def _ids(plan: ExposurePlan, plans: list[ExposurePlan]) -> dict[str, str]:
    observation = "002" if plan.is_background else "001"
    visit = f"{max(plan.pointing, 1):03d}"
    same_visit = [
        p for p in plans if p.is_background == plan.is_background and max(p.pointing, 1) == max(plan.pointing, 1)
    ]
    exposure = f"{same_visit.index(plan) + 1:05d}"
    return {
        "program_number": PROGRAM,
        "observation_number": observation,
        "visit_number": visit,
        "visit_group": "01",
        "sequence_id": "1",
        "activity_id": "01",
        "exposure_number": exposure,
        "visit_id": f"{PROGRAM}{observation}{visit}",
        "obs_id": f"V{PROGRAM}{observation}{visit}P0000000001101",
    }


def build_exposure_model(
    plan: ExposurePlan, config: SimulationConfig, plans: list[ExposurePlan], association_name: str = ""
):
    """The ``IFUImageModel`` of one exposure with its metadata and official gwcs.

    Parameters
    ----------
    plan : ExposurePlan
        The exposure.
    config : SimulationConfig
        The simulation.
    plans : list of ExposurePlan
        All exposures (for the exposure numbering).
    association_name : str
        Written to ``ASNTABLE``.

    Returns
    -------
    IFUImageModel
        Zero data planes; ``meta.wcs`` assigned by the official ``AssignWcsStep``.
    """
    model = template_model(plan.setting)
    meta = model.meta
    times = exposure_times(config)
    start = Time(config.date, format="isot", scale="utc") + TimeDelta(
        plan.exposure_index * (times["duration"] + OVERHEAD_S), format="sec"
    )
    end = start + TimeDelta(times["duration"], format="sec")
    mid = start + TimeDelta(0.5 * times["duration"], format="sec")

    meta.filename = plan.filename
    meta.origin = "mrsdask simulator"
    meta.asn.pool_name = f"{config.prefix}_pool"
    meta.asn.table_name = association_name or "singleton"
    for key, value in _ids(plan, plans).items():
        setattr(meta.observation, key, value)
    meta.observation.date = start.isot[:10]
    meta.observation.time = start.isot[11:23]
    meta.observation.date_beg = start.isot
    meta.observation.date_end = end.isot
    meta.observation.bkgdtarg = plan.is_background

    meta.exposure.type = "MIR_MRS"
    meta.exposure.readpatt = "FASTR1"
    meta.exposure.nints = config.nints
    meta.exposure.ngroups = config.ngroups
    meta.exposure.nframes = 1
    meta.exposure.groupgap = 0
    meta.exposure.frame_time = times["frame_time"]
    meta.exposure.group_time = times["group_time"]
    meta.exposure.integration_time = times["integration_time"]
    meta.exposure.exposure_time = times["exposure_time"]
    meta.exposure.effective_exposure_time = times["effective_exposure_time"]
    meta.exposure.duration = times["duration"]
    meta.exposure.start_time = start.mjd
    meta.exposure.mid_time = mid.mjd
    meta.exposure.end_time = end.mjd
    meta.exposure.start_time_mjd = start.mjd
    meta.exposure.mid_time_mjd = mid.mjd
    meta.exposure.end_time_mjd = end.mjd

    if plan.is_background:
        meta.target.proposer_name = f"{config.prefix.upper()}-BACKGROUND"
        meta.target.source_type = "EXTENDED"
        meta.target.source_type_apt = "EXTENDED"
    else:
        meta.target.proposer_name = f"{config.prefix.upper()}-TARGET"
        meta.target.source_type = config.resolved_source_type
        meta.target.source_type_apt = config.resolved_source_type
    meta.target.catalog_name = meta.target.proposer_name
    meta.target.type = "FIXED"
    # TARG_RA/TARG_DEC: the proposer's target (for a background exposure, the empty field).
    meta.target.ra = plan.ra_ref if plan.is_background else config.target_ra
    meta.target.dec = plan.dec_ref if plan.is_background else config.target_dec

    pos = plan.position
    meta.dither.primary_type = PATTERN_KEYWORD[config.dither_pattern]
    meta.dither.primary_points = plan.n_dither
    meta.dither.total_points = plan.n_dither
    meta.dither.dither_points = plan.n_dither
    meta.dither.position_number = plan.dither if not plan.is_background else (plan.dither - 1) % plan.n_dither + 1
    meta.dither.pattern_start = 1
    meta.dither.optimized_for = {"4-point": "POINT-SOURCE", "2-point": "EXTENDED-SOURCE"}.get(
        config.dither_pattern, "NONE"
    )
    meta.dither.primary_channel = f"CHANNEL{pos.channel}"
    meta.dither.x_offset = pos.dx_ideal
    meta.dither.y_offset = pos.dy_ideal
    meta.dither.dithered_ra = plan.ra_ref
    meta.dither.dithered_dec = plan.dec_ref

    att = attitude(pos.v2, pos.v3, plan.ra_ref, plan.dec_ref, config.roll)
    meta.wcsinfo.v2_ref = pos.v2
    meta.wcsinfo.v3_ref = pos.v3
    meta.wcsinfo.ra_ref = plan.ra_ref
    meta.wcsinfo.dec_ref = plan.dec_ref
    meta.wcsinfo.roll_ref = att["roll_ref"]
    meta.pointing.ra_v1 = att["ra_v1"]
    meta.pointing.dec_v1 = att["dec_v1"]
    meta.pointing.pa_v3 = config.roll
    meta.velocity_aberration.scale_factor = 1.0
    meta.velocity_aberration.va_ra_ref = plan.ra_ref
    meta.velocity_aberration.va_dec_ref = plan.dec_ref

    for step in CAL_STEPS_DONE:
        setattr(meta.cal_step, step, "COMPLETE")
    for step in CAL_STEPS_SKIPPED:
        setattr(meta.cal_step, step, "SKIPPED")
    meta.cal_step.fringe = "SKIPPED" if config.fringes else "COMPLETE"
    meta.cal_step.assign_wcs = "SKIPPED"  # the step sets COMPLETE
    meta.bunit_data = "MJy/sr"
    meta.bunit_err = "MJy/sr"
    meta.photometry.conversion_megajanskys = 1.0

    return assign_wcs_reusing(model, plan.setting)


# ---------------------------------------------------------------------------- association
def write_association(
    path: str | Path,
    config: SimulationConfig,
    science: list[Path],
    background: list[Path],
) -> Path:
    """Write an official-format level-3 ``spec3`` association listing the files.

    Members are given by file name (relative to the association's folder), ``exptype``
    ``"science"`` or ``"background"``; one product named after ``config.prefix``.
    """
    from mrsdask import __version__

    path = Path(path)
    members = [{"expname": Path(p).name, "exptype": "science"} for p in science]
    members += [{"expname": Path(p).name, "exptype": "background"} for p in background]
    asn = {
        "asn_type": "spec3",
        "asn_rule": "candidate_Asn_Lv3MIRMRS",
        "asn_id": "o001",
        "asn_pool": f"{config.prefix}_pool",
        "program": PROGRAM,
        "target": "t001",
        "version_id": None,
        "code_version": f"mrsdask {__version__}",
        "degraded_status": "No known degraded exposures in association.",
        "constraints": "mrsdask simulation: " + ", ".join(config.settings),
        "products": [{"name": config.prefix, "members": members}],
    }
    path.write_text(json.dumps(asn, indent=4) + "\n")
    return path


# ---------------------------------------------------------------------------- truth
#: Truth wavelength grid: 4.6 … 28.9 µm, geometric, λ/Δλ = 20000.
TRUTH_RESOLUTION = 20000.0
TRUTH_RANGE_UM = (4.6, 28.9)


def truth_wavelengths() -> np.ndarray:
    """The truth file's wavelength grid, µm."""
    lo, hi = TRUTH_RANGE_UM
    n = int(np.ceil(np.log(hi / lo) * TRUTH_RESOLUTION)) + 1
    return lo * np.exp(np.arange(n) / TRUTH_RESOLUTION)


def write_truth(path: str | Path, config: SimulationConfig) -> Path:
    """Write the truth FITS file described in the module notes."""
    path = Path(path)
    scene = Scene.from_config(config)
    lam = truth_wavelengths()
    primary = fits.PrimaryHDU()
    h = primary.header
    h["ORIGIN"] = ("mrsdask", "mrsdask simulator truth")
    h["TARG_RA"] = (config.target_ra, "[deg] target RA (tangent point of offsets)")
    h["TARG_DEC"] = (config.target_dec, "[deg] target Dec")
    h["ROLL"] = (config.roll, "[deg] PA_V3")
    h["NSOURCE"] = (len(config.sources), "number of SOURCE extensions")
    h["SKYSCALE"] = (config.sky_background, "scale of the built-in sky spectrum")
    h["SEED"] = (config.seed, "random seed")
    h["PSFFWHM"] = ("0.033*lambda_um+0.106", "[arcsec] Gaussian PSF FWHM")
    hdus = [primary, fits.ImageHDU(lam, name="WAVELENGTH")]
    hdus[1].header["BUNIT"] = "um"
    for i, src in enumerate(config.sources, start=1):
        hdu = fits.ImageHDU(truth_spectrum(src, lam), name="SOURCE", ver=i)
        sh = hdu.header
        ra, dec = scene.source_position(src)
        sh["SRCNAME"] = src.name or f"source{i}"
        sh["SRCTYPE"] = "POINT" if isinstance(src, PointSource) else "EXTENDED"
        sh["BUNIT"] = "Jy" if isinstance(src, PointSource) else "MJy/sr"
        sh["RA"] = (ra, "[deg] centre")
        sh["DEC"] = (dec, "[deg] centre")
        sh["RA_OFF"] = (src.ra_offset, "[arcsec] east offset from target")
        sh["DEC_OFF"] = (src.dec_offset, "[arcsec] north offset from target")
        if isinstance(src, ExtendedSource):
            sh["PROFILE"] = src.profile
            sh["SIZE"] = (src.size, "[arcsec] FWHM (gaussian) or radius (disc)")
            sh["AXRATIO"] = src.axis_ratio
            sh["PA"] = (src.position_angle, "[deg] major axis, E of N")
            sh["PSFCONV"] = (bool(src.psf_convolved and src.profile == "gaussian"), "PSF-convolved in data")
        hdus.append(hdu)
    sky = fits.ImageHDU(sky_spectrum(lam, config.sky_background), name="SKY")
    sky.header["BUNIT"] = "MJy/sr"
    hdus.append(sky)
    hdus.append(fits.ImageHDU(np.frombuffer(config.to_json().encode("utf-8"), dtype=np.uint8), name="CONFIG"))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


@dataclass
class Truth:
    """Contents of a truth file.

    Attributes
    ----------
    wavelength : numpy.ndarray
        µm.
    spectra : list of numpy.ndarray
        One per source, Jy (point) or MJy/sr (extended).
    sources : list of dict
        Header values of each ``SOURCE`` extension (``SRCTYPE``, ``RA``, ``DEC``, …).
    sky : numpy.ndarray
        MJy/sr.
    config : SimulationConfig
        The full configuration.
    """

    wavelength: np.ndarray
    spectra: list[np.ndarray]
    sources: list[dict]
    sky: np.ndarray
    config: SimulationConfig

    @property
    def scene(self) -> Scene:
        """The analytic scene."""
        return Scene.from_config(self.config)


_STRUCTURAL_TRUTH = ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "PCOUNT", "GCOUNT", "EXTNAME", "EXTVER")


def read_truth(path: str | Path) -> Truth:
    """Read a truth file written by :func:`write_truth`."""
    with fits.open(path) as hdul:
        lam = np.array(hdul["WAVELENGTH"].data, dtype=float)
        n = int(hdul[0].header["NSOURCE"])
        spectra, info = [], []
        for i in range(1, n + 1):
            hdu = hdul["SOURCE", i]
            spectra.append(np.array(hdu.data, dtype=float))
            info.append({k: hdu.header[k] for k in hdu.header if k not in _STRUCTURAL_TRUTH})
        sky = np.array(hdul["SKY"].data, dtype=float)
        config = SimulationConfig.from_json(bytes(hdul["CONFIG"].data).decode("utf-8"))
    return Truth(lam, spectra, info, sky, config)
