"""Simulated MIRI MRS level-2 observations on the real instrument geometry.

The simulator writes ``cal`` files that the official pipeline accepts (``IFUImageModel``,
official gwcs from the shipped FLT-9 reference files), an official-format ``spec3``
association and a truth file::

    from mrsdask.sim import SimulationConfig, PointSource, ExtendedSource, EmissionLine, simulate

    config = SimulationConfig(
        bands=["1A"],
        sources=[PointSource(0.3, -0.2, continuum_mjy=50, slope=1.0,
                             lines=[EmissionLine(5.34, 0.002, 1e-16)])],
        dither_pattern="4-point",
        seed=1,
    )
    result = simulate(config, "out/")
    result.cal_files, result.association, result.truth

What is simulated: point sources through a Gaussian PSF (FWHM ``0.033 λ + 0.106`` arcsec),
Gaussian or uniform-disc extended sources, power-law continua with Gaussian emission lines,
a smooth sky+telescope background, multiplicative fringes, a simple variance model with
Gaussian noise, unflagged cosmic rays, dithers (PRDOPSSOC-M-025), mosaics and dedicated
background exposures. What is not: the line-spread function (lines keep their intrinsic
width), PSF structure beyond a Gaussian, stray light, detector non-linearity, persistence,
bad pixels, flat-field structure, spectral leak, the 12.2 µm dichroic features and
throughput losses (data are already in calibrated MJy/sr).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrsdask.io import outputs
from mrsdask.sim import record
from mrsdask.sim.config import EmissionLine, ExtendedSource, PointSource, SimulationConfig
from mrsdask.sim.detector import PixelGeometry, pixel_geometry, render_exposure
from mrsdask.sim.observation import ExposurePlan, dither_positions, plan_exposures
from mrsdask.sim.scene import Scene, psf_fwhm, sky_spectrum, truth_spectrum
from mrsdask.sim.writer import Truth, build_exposure_model, read_truth, write_association, write_truth

__all__ = [
    "EmissionLine",
    "ExposurePlan",
    "ExtendedSource",
    "PixelGeometry",
    "PointSource",
    "Scene",
    "SimulationConfig",
    "SimulationResult",
    "Truth",
    "dither_positions",
    "exposure_rng",
    "pixel_geometry",
    "plan_exposures",
    "psf_fwhm",
    "read_truth",
    "render_exposure",
    "simulate",
    "sky_spectrum",
    "truth_spectrum",
]


@dataclass
class SimulationResult:
    """What :func:`simulate` wrote.

    Attributes
    ----------
    cal_files : list of pathlib.Path
        Science exposures, in the order of :func:`mrsdask.sim.observation.plan_exposures`.
    background_files : list of pathlib.Path
        Dedicated background exposures.
    truth : pathlib.Path
        Truth FITS file (layout in :mod:`mrsdask.sim.writer`).
    association : pathlib.Path
        Level-3 ``spec3`` association JSON listing all files.
    scene : pathlib.Path
        The configuration as JSON (also embedded in the truth file).
    exposures : list of ExposurePlan
        One per file, science then background.
    cosmic_rays : dict
        File name -> (n, 2) int array of the (y, x) pixels hit by a cosmic ray.
    seconds : float
        Wall time of the simulation.
    """

    cal_files: list[Path]
    background_files: list[Path]
    truth: Path
    association: Path
    scene: Path
    exposures: list[ExposurePlan] = field(default_factory=list)
    cosmic_rays: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def all_files(self) -> list[Path]:
        """Science then background files."""
        return [*self.cal_files, *self.background_files]


_SETTING_CODE = {"12A": 0, "12B": 1, "12C": 2, "34A": 3, "34B": 4, "34C": 5}


def exposure_rng(seed: int, plan: ExposurePlan) -> np.random.Generator:
    """Random generator of one exposure: depends only on the seed and the exposure's identity.

    The key is (setting, science/background, pointing, dither), so an exposure's noise does
    not change when other exposures are added to or removed from the simulation.
    """
    key = (_SETTING_CODE[plan.setting], int(plan.is_background), plan.pointing, plan.dither)
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=key))


def simulate(config: SimulationConfig | dict, outdir: str | Path, *, verbose: bool = False) -> SimulationResult:
    """Simulate an MRS observation and write its files.

    Parameters
    ----------
    config : SimulationConfig or dict
        The observation (a mapping is passed to :meth:`SimulationConfig.from_dict`).
    outdir : str or pathlib.Path
        Output folder (created if needed). Existing files of the same names are replaced only
        if the simulator wrote them (listed with an unchanged stamp in the folder's
        ``mrsdask-simulate.json``, :mod:`mrsdask.sim.record`); otherwise nothing is written and
        :class:`~mrsdask.errors.OutputError` lists the clashing files.
    verbose : bool
        Print one line per file written.

    Returns
    -------
    SimulationResult
        Paths of the ``cal`` files, background files, truth file and association.

    Notes
    -----
    File names: ``<prefix>_<setting>_p<pointing>_d<dither>_cal.fits`` for science exposures
    (pointing and dither 1-based), ``<prefix>_<setting>_bkg_d<n>_cal.fits`` for background
    exposures, ``<prefix>_spec3_asn.json``, ``<prefix>_truth.fits``, ``<prefix>_scene.json``.
    Each file is written under a temporary name and moved into place when complete. The same
    configuration (seed included) gives bit-identical data arrays.
    """
    t0 = time.perf_counter()
    if isinstance(config, dict):
        config = SimulationConfig.from_dict(config)
    elif isinstance(config, SimulationConfig):
        config.validate()
    else:
        raise ValueError(f"config must be a SimulationConfig or a mapping, got {type(config).__name__}")
    outputs.check_output_folder(str(outdir), "simulation folder")
    outdir = Path(outdir)
    plans = plan_exposures(config)
    asn_path = outdir / f"{config.prefix}_spec3_asn.json"
    truth_path = outdir / f"{config.prefix}_truth.fits"
    scene_json = outdir / f"{config.prefix}_scene.json"
    names = [p.filename for p in plans] + [asn_path.name, truth_path.name, scene_json.name]
    written = record.check_clashes(outdir, names)  # before any work
    outputs.make_folder(str(outdir))

    scene = Scene.from_config(config)
    science: list[Path] = []
    background: list[Path] = []
    cosmic: dict[str, np.ndarray] = {}
    for plan in plans:
        t1 = time.perf_counter()
        model = build_exposure_model(plan, config, plans, asn_path.name)
        geometry = pixel_geometry(model.meta.wcs, plan.setting)
        arrays = render_exposure(
            geometry,
            scene,
            exposure_rng(config.seed, plan),
            include_sources=not plan.is_background,
            include_sky=True,
            noise=config.noise,
            read_noise=config.read_noise,
            poisson_factor=config.poisson_factor,
            flat_error=config.flat_error,
            fringes=config.fringes,
            fringe_period=config.fringe_period,
            cosmic_rays=config.cosmic_rays,
            cosmic_ray_amplitude=config.cosmic_ray_amplitude,
        )
        model.data = arrays.sci
        model.err = arrays.err
        model.dq = arrays.dq
        model.var_poisson = arrays.var_poisson
        model.var_rnoise = arrays.var_rnoise
        model.var_flat = arrays.var_flat
        path = outdir / plan.filename
        with outputs.staged_file(str(path)) as tmp:  # the final name, so FILENAME is right
            model.save(tmp)
        model.close()
        record.remember(outdir, written, path)
        cosmic[plan.filename] = arrays.cosmic_ray_pixels
        (background if plan.is_background else science).append(path)
        if verbose:
            print(f"wrote {path} ({time.perf_counter() - t1:.1f} s)")

    with outputs.staged_file(str(asn_path)) as tmp:
        write_association(tmp, config, science, background)
    record.remember(outdir, written, asn_path)
    with outputs.staged_file(str(truth_path)) as tmp:
        write_truth(tmp, config)
    truth = truth_path
    record.remember(outdir, written, truth_path)
    with outputs.staged_file(str(scene_json)) as tmp:
        Path(tmp).write_text(config.to_json() + "\n")
    record.remember(outdir, written, scene_json)
    return SimulationResult(
        cal_files=science,
        background_files=background,
        truth=truth,
        association=asn_path,
        scene=scene_json,
        exposures=plans,
        cosmic_rays=cosmic,
        seconds=time.perf_counter() - t0,
    )
