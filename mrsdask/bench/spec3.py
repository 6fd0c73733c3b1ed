"""``mrsdask bench spec3``: the official ``Spec3Pipeline`` and ``mrsdask run spec3`` on one association, same run.

The observation is simulated (:func:`prepare_observation`): dithered science exposures with
cosmic-ray hits that no DQ flag marks (work for the outlier detection), a dedicated background
exposure per setting, and, linked in the association as the official ``master_background``
expects them, background x1d files (what spec2 extracts from those exposures: here the
simulated sky with noise, :func:`write_background_members`). Both sides get the same
association and the same reference files (:func:`reference_files`: CUBEPAR, EXTRACT1D, APCORR,
MRSPTCORR, named explicitly on both sides). Each side runs as its own process tree, monitored
for wall time, CPU time and peak RSS (:func:`mrsdask.bench.monitor.run_monitored`); then every
cube and every x1d spectrum are compared (:func:`compare_products`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

from mrsdask.bench.monitor import (add_run_arguments, check_run_arguments, median_of, print_sides,
                                   run_alternating)
from mrsdask.scheduling import Scheduling

ALL_BANDS = [f"{c}{s}" for c in "1234" for s in "ABC"]

#: name: simulation overrides.
SPEC3_CASES = {
    "small": {"bands": ["1A"], "n_dithers": 2},
    "leak": {"bands": ["1B", "3A"], "n_dithers": 4},
    "full": {"bands": ALL_BANDS, "n_dithers": 4},
}

#: The issue's targets: cube median and 99th percentile of |Δ|/F, x1d FLUX relative.
CUBE_MEDIAN, CUBE_P99, X1D_FLUX = 1e-5, 1e-3, 1e-6


def simulation_config(overrides: dict) -> dict:
    """A point source on extended emission, sky, noise, 30 unflagged cosmic rays per exposure, one background."""
    config = {
        "sources": [
            {"type": "point", "ra_offset": 0.2, "dec_offset": -0.15, "continuum_mjy": 40.0, "slope": 1.0},
            {"type": "extended", "ra_offset": -0.6, "dec_offset": 0.5, "size": 1.5, "continuum_mjysr": 10.0},
        ],
        "cosmic_rays": 30,
        "n_background_exposures": 1,
        "sky_background": 1.0,
        "seed": 17,
        "prefix": "spec3",
    }
    config.update(overrides)
    return config


def background_member(path: str, setting: str, exptime: float, detector: str, sky_scale: float,
                      rng: np.random.Generator) -> str:
    """Write the x1d of a dedicated background exposure of ``setting``: the simulated sky with 0.5 % noise.

    An ``MRSMultiSpecModel`` with the BACKGROUND column, ``BKGDTARG = T`` and ``EXPTIME``, as
    the official ``master_background`` reads a background member; the wavelength step is that of
    the cubes (λ/7000), over the detector setting's range.
    """
    from mrsdask.background import BackgroundSpectrum
    from mrsdask.background import spectrum as bspec
    from mrsdask.background.master import nominal_wavelength_range
    from mrsdask.sim import sky_spectrum

    lo, hi = nominal_wavelength_range(setting)
    n = int(np.log(hi / lo) * 7000)
    lam = np.geomspace(lo, hi, n)
    sb = sky_spectrum(lam, sky_scale) * (1 + rng.normal(0, 0.005, n))
    spectrum = BackgroundSpectrum(lam, sb, sb_error=0.005 * sb, source=os.path.basename(path))
    return bspec.write_background_x1d([spectrum], path, float(exptime), detector=detector)


def write_background_members(background_files: list[str], folder: str, sky_scale: float, seed: int = 0) -> list[str]:
    """One background x1d file (:func:`background_member`) per background cal file, named after it."""
    from mrsdask.io.calfits import read_exposure_info

    rng = np.random.default_rng(seed)
    out = []
    for path in background_files:
        info = read_exposure_info(path)
        name = os.path.basename(path).replace("_cal.fits", "_x1d.fits")
        out.append(background_member(os.path.join(folder, name), info.setting, info.exptime, info.detector,
                                     sky_scale, rng))
    return out


def prepare_observation(config: dict, folder: str) -> str:
    """Simulate ``config`` in ``folder``; the spec3 association (science cal + background x1d members).

    Reused when ``folder`` already holds the same configuration's files.
    """
    from mrsdask.sim import simulate

    stamp = os.path.join(folder, "spec3-config.json")
    asn = os.path.join(folder, f"{config['prefix']}_spec3_bkgx1d_asn.json")
    if os.path.exists(stamp) and os.path.exists(asn):
        with open(stamp) as fobj:
            if json.load(fobj) == config:
                return asn
    result = simulate(config, folder)
    x1d = write_background_members([str(p) for p in result.background_files], folder,
                                   config.get("sky_background", 1.0), config.get("seed", 0))
    with open(result.association) as fobj:
        table = json.load(fobj)
    members = [m for m in table["products"][0]["members"] if m["exptype"] == "science"]
    members += [{"expname": os.path.basename(p), "exptype": "background"} for p in x1d]
    table["products"][0]["members"] = members
    with open(asn, "w") as fobj:
        json.dump(table, fobj, indent=4)
    with open(stamp, "w") as fobj:
        json.dump(config, fobj)
    return asn


def reference_files(folder: str) -> dict:
    """The reference files both sides get: the shipped CUBEPAR, APCORR and MRSPTCORR, and an EXTRACT1D file of
    the default apertures (written in ``folder``)."""
    from mrsdask.cube.cubepars import DEFAULT_CUBEPAR_FILE
    from mrsdask.extract import default_parameters, write_extract1d
    from mrsdask.extract.apcorr import default_apcorr_file
    from mrsdask.extract.leak import default_mrsptcorr_file

    os.makedirs(folder, exist_ok=True)
    return {"cubepar": str(DEFAULT_CUBEPAR_FILE),
            "extract1d": write_extract1d(default_parameters(), os.path.join(folder, "extract1d.asdf")),
            "apcorr": default_apcorr_file(), "mrsptcorr": default_mrsptcorr_file()}


def mrsdask_settings(refs: dict, cube: dict | None = None) -> list[str]:
    """``--set`` items giving mrsdask the reference files ``refs`` (and cube parameters ``cube``)."""
    items = [f"cube_build.cubepar={refs['cubepar']}", f"extract_1d.override_extract1d={refs['extract1d']}",
             f"extract_1d.override_apcorr={refs['apcorr']}", f"extract_1d.override_mrsptcorr={refs['mrsptcorr']}"]
    return items + [f"cube_build.{k}={v}" for k, v in (cube or {}).items()]


def official_settings(cube: dict | None = None) -> list[str]:
    """The same cube parameters for the official side (``STEP.PARAM=VALUE``)."""
    return [f"cube_build.{k}={v}" for k, v in (cube or {}).items()]


def _cube_name(path: str) -> str:
    """``ch1-short`` from ``<product>_ch1-short_s3d.fits`` (or ``_x1d``)."""
    base = os.path.basename(path)
    return "ch" + base.rsplit("_ch", 1)[-1].rsplit("_", 1)[0]


def compare_products(official_dir: str, run_folder: str) -> dict:
    """Every cube and x1d spectrum of the mrsdask run against the official ones of the same name.

    Returns
    -------
    dict
        ``cubes``: name → :func:`mrsdask.bench.parity.compare_with_official` figures (and
        ``ok``: the issue's median/p99 targets); ``x1d``: name → max relative |ΔFLUX|/FLUX
        (and RF_FLUX, SURF_BRIGHT) over finite non-zero official values, ``ok``; ``missing``:
        products one side made and the other did not.
    """
    from stdatamodels.jwst import datamodels

    from mrsdask.bench.parity import compare_with_official
    from mrsdask.cube.builder import open_cube

    store = os.path.join(run_folder, "cubes.zarr")
    official_cubes = {_cube_name(p): p for p in glob.glob(os.path.join(official_dir, "*_s3d.fits"))}
    official_x1d = {_cube_name(p): p for p in glob.glob(os.path.join(official_dir, "*_x1d.fits"))}
    mine_x1d = {_cube_name(p): p for p in glob.glob(os.path.join(run_folder, "x1d", "*_x1d.fits"))}
    with open(os.path.join(run_folder, "pipeline-run.json")) as fobj:
        record = json.load(fobj)
    cube_step = next(s for s in record["steps"] if s["step"] == "cube")
    mine_cubes = list(cube_step.get("products", []))
    out: dict = {"cubes": {}, "x1d": {}, "missing": []}
    for name in sorted(set(official_cubes) | set(mine_cubes)):
        if name not in official_cubes or name not in mine_cubes:
            out["missing"].append(f"cube {name}: " + ("official only" if name in official_cubes else "mrsdask only"))
            continue
        figures = compare_with_official(official_cubes[name], open_cube(store, name))
        figures["ok"] = bool(figures.get("same_shape") and figures.get("median_rel", 1) <= CUBE_MEDIAN
                             and figures.get("p99_rel", 1) <= CUBE_P99)
        out["cubes"][name] = figures
    for name in sorted(set(official_x1d) | set(mine_x1d)):
        if name not in official_x1d or name not in mine_x1d:
            out["missing"].append(f"x1d {name}: " + ("official only" if name in official_x1d else "mrsdask only"))
            continue
        with datamodels.open(official_x1d[name]) as a, datamodels.open(mine_x1d[name]) as b:
            ta, tb = a.spec[0].spec_table, b.spec[0].spec_table
            entry = {"same_wavelengths": bool(np.array_equal(ta["WAVELENGTH"], tb["WAVELENGTH"])),
                     "source_type": str(a.spec[0].source_type)}
            for column in ("FLUX", "RF_FLUX", "SURF_BRIGHT"):
                x, y = np.asarray(ta[column], float), np.asarray(tb[column], float)
                use = np.isfinite(x) & (x != 0)
                entry[f"{column}_max_rel"] = (float(np.max(np.abs(y[use] - x[use]) / np.abs(x[use])))
                                              if use.any() else 0.0)
                entry[f"{column}_same_nan"] = bool(np.array_equal(np.isnan(x), np.isnan(y)))
        entry["ok"] = bool(entry["same_wavelengths"] and entry["FLUX_max_rel"] <= X1D_FLUX and entry["FLUX_same_nan"])
        out["x1d"][name] = entry
    out["ok"] = bool(not out["missing"] and out["cubes"] and all(c["ok"] for c in out["cubes"].values())
                     and all(x["ok"] for x in out["x1d"].values()))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="small", choices=sorted(SPEC3_CASES),
                   help="small: band 1A from 2 dithers; leak: bands 1B and 3A (and 2B, 4A) from 4 dithers, the "
                        "spectral leak; full: 12 bands from 4 dithers (24 exposures); all with cosmic rays and a "
                        "linked background")
    p.add_argument("--wavemin", type=float, default=None, help="both sides: cube_build.wavemin (um)")
    p.add_argument("--wavemax", type=float, default=None, help="both sides: cube_build.wavemax (um)")
    p.add_argument("--workdir", default="mrsdask-bench", help="folder for inputs and outputs")
    p.add_argument("--n-workers", type=int, default=None,
                   help="mrsdask on a local cluster of this many workers (default: what 'mrsdask run' chooses)")
    p.add_argument("--skip-official", action="store_true", help="run mrsdask only (no ratio, no parity)")
    add_run_arguments(p)


def run(args) -> int:
    check_run_arguments(args)
    cube = {k: v for k, v in (("wavemin", args.wavemin), ("wavemax", args.wavemax)) if v is not None}
    tag = args.case + "".join(f"-{k}{v:g}" for k, v in cube.items())
    workdir = os.path.abspath(os.path.join(args.workdir, f"spec3-{tag}"))
    os.makedirs(workdir, exist_ok=True)
    print(f"simulating inputs (or reusing them) in {workdir}/inputs …")
    asn = prepare_observation(simulation_config(SPEC3_CASES[args.case]), os.path.join(workdir, "inputs"))
    refs = reference_files(workdir)
    refs_json = os.path.join(workdir, "refs.json")
    with open(refs_json, "w") as fobj:
        json.dump(refs, fobj, indent=1)
    run_folder, off_dir = os.path.join(workdir, "mrsdask-run"), os.path.join(workdir, "official")
    mine_cmd = [sys.executable, "-m", "mrsdask.cli", "run", "spec3", asn, "-o", run_folder, "--overwrite",
                *Scheduling(n_workers=args.n_workers).flags(),
                *[a for item in mrsdask_settings(refs, cube) for a in ("--set", item)]]
    off_cmd = [sys.executable, "-m", "mrsdask.bench.official_spec3", "run", asn, off_dir, refs_json,
               *official_settings(cube)]
    with open(asn) as fobj:
        n_inputs = len(json.load(fobj)["products"][0]["members"])
    results: dict = {"case": args.case, "cube": cube, "n_inputs": n_inputs, "machine": {"cores": os.cpu_count()},
                     "repeat": args.repeat}
    sides = [("mrsdask", "mrsdask run spec3", mine_cmd)] + (
        [] if args.skip_official else [("official", "the official Spec3Pipeline", off_cmd)])
    runs = run_alternating(sides, args.repeat, lambda side, n: os.path.join(workdir, f"{side}-{n}.log"),
                           host_settle_max_s=args.host_settle_max)
    for side, side_runs in runs.items():
        results[side] = median_of(side_runs)
    if not args.skip_official:
        results["speedup_wall"] = results["official"]["wall_s"] / results["mrsdask"]["wall_s"]
        results["parity"] = compare_products(off_dir, run_folder)
    report(results)
    if args.json:
        with open(args.json, "w") as fobj:
            json.dump(results, fobj, indent=2, default=float)
    return 0 if args.skip_official or results["parity"]["ok"] else 1


def report(r: dict) -> None:
    """Print the two sides' times and memory, then the parity of every product."""
    print()
    print(f"spec3 case {r['case']} {r['cube'] or ''}: {r['n_inputs']} association members, "
          f"{r['machine']['cores']} cores" + (f"; medians of {r['repeat']} runs per side" if r["repeat"] > 1 else ""))
    print_sides(r)
    if "speedup_wall" in r:
        print(f"speed-up (official wall / mrsdask wall): {r['speedup_wall']:.2f}x")
    parity = r.get("parity")
    if not parity:
        return
    for name, f in parity["cubes"].items():
        if not f["same_shape"]:
            print(f"  cube {name}: SHAPE DIFFERS official {f['official_shape']} mrsdask {f['mrsdask_shape']}")
            continue
        print(f"  cube {name}: median |Δ|/F {f['median_rel']:.2e}, p99 {f['p99_rel']:.2e}, max {f['max_rel']:.2e}; "
              f"WMAP equal {100 * f['wmap_equal']:.3f}%; {'OK' if f['ok'] else 'NOT OK'}")
    for name, f in parity["x1d"].items():
        print(f"  x1d {name} ({f['source_type']}): FLUX max rel {f['FLUX_max_rel']:.2e}, RF_FLUX {f['RF_FLUX_max_rel']:.2e}, "
              f"SURF_BRIGHT {f['SURF_BRIGHT_max_rel']:.2e}; {'OK' if f['ok'] else 'NOT OK'}")
    for line in parity["missing"]:
        print(f"  MISSING {line}")
    print("parity: " + ("all products within the targets" if parity["ok"] else "NOT within the targets"))
