"""``mrsdask bench cube``: the official ``CubeBuildStep`` and mrsdask on the same inputs, same run.

Each side runs as its own process tree (the official step in one process, mrsdask as its CLI,
run as a user runs it: a local cluster of worker processes, or for a small job its own
process, unless ``--n-workers`` is given); a monitor samples the resident memory of every
process in the tree every 0.1 s. Reported per side: wall time, CPU time (all processes),
peak total RSS and peak RSS of the largest single process (for mrsdask: the largest worker
or the client); then the speed ratio and the parity figures of every cube.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys

from mrsdask.bench.monitor import (add_run_arguments, check_run_arguments, median_of, print_phases, print_sides,
                                   run_alternating)
from mrsdask.phases import parse_phases
from mrsdask.scheduling import Scheduling

BENCH_CASES = {
    # name: (simulation overrides, output_type)
    "band1a": ({"bands": ["1A"], "n_dithers": 4}, "band", ["1"], ["short"]),
    "channel": ({"bands": [f"{c}{s}" for c in "1234" for s in "ABC"], "n_dithers": 4}, "channel", ["all"], ["all"]),
    "multi": ({"bands": [f"{c}{s}" for c in "1234" for s in "ABC"], "n_dithers": 4}, "multi", ["all"], ["all"]),
    "multi1": ({"bands": [f"{c}{s}" for c in "1234" for s in "ABC"], "n_dithers": 1}, "multi", ["all"], ["all"]),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="band1a", choices=sorted(BENCH_CASES),
                   help="band1a: 1A from 4 dithers; channel: 4 channel cubes from 24 exposures; "
                        "multi: multi cube from 24 exposures; multi1: multi from 6")
    p.add_argument("--weighting", default="drizzle", choices=["drizzle", "emsm", "msm"],
                   help="voxel weighting of both sides (default drizzle)")
    p.add_argument("--workdir", default="mrsdask-bench", help="folder for inputs and outputs")
    p.add_argument("--mosaic", default=None, help="mosaic of pointings NXxNY@STEP (more inputs)")
    p.add_argument("--pointings", default=None,
                   help='explicit pointings "E,N;E,N;…" in arcsec, e.g. "0,0;40,0;0,40" (a >1e9-voxel multi cube)')
    p.add_argument("--n-workers", type=int, default=None,
                   help="mrsdask on a local cluster of this many workers (default: what 'mrsdask cube' chooses)")
    p.add_argument("--memory-limit", default=None,
                   help="memory limit per local-cluster worker (default 2GB); in process (a small job) it plans the tasks")
    p.add_argument("--skip-official", action="store_true", help="run mrsdask only (no ratio, no parity)")
    p.add_argument("--s3d", action=argparse.BooleanOptionalAction, default=True,
                   help="mrsdask also writes each cube as s3d FITS, as the official side does (default: yes)")
    p.add_argument("--frame-cache", default="machine", choices=["machine", "cold"],
                   help="mrsdask's detector-frame files (mrsdask.instrument.frame_files): 'machine' uses this "
                        "machine's, as a user's later runs do (the first run writes them); 'cold' gives each "
                        "mrsdask run an empty cache folder, as the first run on a machine (default machine)")
    add_run_arguments(p)


def simulate_inputs(workdir: str, overrides: dict, mosaic: str | None, pointings: str | None = None) -> list[str]:
    from mrsdask.sim import simulate

    config = {
        "sources": [
            {"type": "point", "ra_offset": 0.3, "dec_offset": -0.2, "continuum_mjy": 30.0, "slope": 1.5},
            {"type": "extended", "ra_offset": -0.8, "dec_offset": 0.6, "size": 2.0, "continuum_mjysr": 30.0},
        ],
        "seed": 7,
        "prefix": "bench",
    }
    config.update(overrides)
    if mosaic:
        from mrsdask.sim.config import mosaic_pointings

        config["pointings"] = mosaic_pointings(mosaic)
    if pointings:
        config["pointings"] = [tuple(float(v) for v in p.split(",")) for p in pointings.split(";")]
    import hashlib

    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    # Inputs are shared by every case with the same simulation (e.g. channel and multi).
    folder = os.path.join(os.path.dirname(workdir), f"inputs-{digest}")
    stamp = os.path.join(folder, "config.json")
    if os.path.exists(stamp) and _read_json(stamp) == config:
        files = sorted(glob.glob(os.path.join(folder, "*_cal.fits")))
        if files:
            return files
    result = simulate(config, folder)
    with open(stamp, "w") as fobj:
        json.dump(config, fobj)
    return [str(p) for p in result.cal_files]


def _read_json(path: str):
    with open(path) as fobj:
        return json.load(fobj)


def run(args) -> int:
    from mrsdask.bench.parity import compare_with_official, parity_ok
    from mrsdask.cube.builder import open_cube
    from mrsdask.cube.cubepars import DEFAULT_CUBEPAR_FILE
    from mrsdask.cube.store import open_group

    check_run_arguments(args)
    overrides, output_type, channel, band = BENCH_CASES[args.case]
    tag = f"{args.case}-{args.weighting}" + (f"-{args.mosaic}" if args.mosaic else "") + (
        "-p" + args.pointings.replace(";", "_").replace(",", "x") if args.pointings else "")
    workdir = os.path.abspath(os.path.join(args.workdir, tag))
    os.makedirs(workdir, exist_ok=True)
    print(f"simulating inputs (or reusing them) next to {workdir} …")
    files = simulate_inputs(workdir, overrides, args.mosaic, args.pointings)
    print(f"{len(files)} input files")
    results: dict = {"case": args.case, "weighting": args.weighting, "n_inputs": len(files), "s3d": args.s3d,
                     "frame_cache": args.frame_cache, "machine": {"cores": os.cpu_count()}}
    store = os.path.join(workdir, "mrsdask.zarr")
    # --log-level info: the command logs its phases (mrsdask.phases), reported below.
    cold_cache = os.path.join(workdir, "cold-cache")
    env = ["env", f"MRSDASK_CACHE={cold_cache}"] if args.frame_cache == "cold" else []
    mine_cmd = [*env, sys.executable, "-m", "mrsdask.cli", "--log-level", "info", "cube", *files, "-o", store, "--output-type", output_type,
                "--weighting", args.weighting, "--channel", *channel, "--band", *band,
                "--overwrite", *Scheduling(n_workers=args.n_workers, memory_limit=args.memory_limit).flags()]
    if args.s3d:  # the official side saves its cubes as s3d files: the same outputs on both sides
        mine_cmd += ["--s3d", os.path.join(workdir, "mrsdask-s3d")]
    off_dir = os.path.join(workdir, "official")
    off_cmd = [sys.executable, "-m", "mrsdask.bench.official", off_dir, str(DEFAULT_CUBEPAR_FILE), output_type,
               args.weighting, " ".join(channel), " ".join(band), *files]
    sides = [("mrsdask", "mrsdask", mine_cmd)] + (
        [] if args.skip_official else [("official", "the official CubeBuildStep", off_cmd)])

    def before(side: str) -> None:
        if side == "mrsdask" and args.frame_cache == "cold":
            shutil.rmtree(cold_cache, ignore_errors=True)

    runs = run_alternating(sides, args.repeat, lambda side, n: os.path.join(workdir, f"{side}-{n}.log"), before,
                           host_settle_max_s=args.host_settle_max)
    results["repeat"] = args.repeat
    results["mrsdask"] = median_of(runs["mrsdask"])
    results["mrsdask"]["scheduler"] = _scheduler_line(results["mrsdask"]["log"])
    with open(results["mrsdask"]["log"]) as fobj:
        results["mrsdask"]["phases"] = parse_phases(fobj.read())
    if not args.skip_official:
        results["official"] = median_of(runs["official"])
        results["speedup_wall"] = results["official"]["wall_s"] / results["mrsdask"]["wall_s"]
        names = sorted(k for k in open_group(store).group_keys() if not k.startswith("_"))
        results["parity"] = {}
        for name in names:
            official = os.path.join(off_dir, f"official_{name}_s3d.fits")
            if not os.path.exists(official):
                results["parity"][name] = {"missing_official": official}
                continue
            figures = compare_with_official(official, open_cube(store, name))
            figures["ok"] = parity_ok(figures)
            results["parity"][name] = figures
    cube_voxels = 0
    for name in sorted(k for k in open_group(store).group_keys() if not k.startswith("_")):
        shape = open_group(store)[name]["sci"].shape
        cube_voxels += int(shape[0] * shape[1] * shape[2])
    results["voxels"] = cube_voxels
    _report(results)
    if args.json:
        with open(args.json, "w") as fobj:
            json.dump(results, fobj, indent=2, default=float)
    return 0


def _scheduler_line(log_path: str) -> str:
    """The line in which ``mrsdask cube`` says where its tasks ran."""
    with open(log_path) as fobj:
        for line in fobj:
            if line.startswith(("local Dask cluster", "in-process Dask scheduler", "Dask scheduler", "current Dask")):
                return line.split(" — ")[0].strip()
    return "unknown"


def _report(r: dict) -> None:
    print()
    repeat = r.get("repeat", 1)
    print(f"case {r['case']} ({r['weighting']}), {r['n_inputs']} inputs, {r['voxels']:,} voxels, "
          f"{r['machine']['cores']} cores" + (f"; medians of {repeat} runs per side" if repeat > 1 else ""))
    print("outputs: " + ("s3d FITS files on both sides (mrsdask also its zarr store)" if r.get("s3d", True)
                         else "mrsdask writes its zarr store only, the official side s3d FITS files (--no-s3d)"))
    print("mrsdask's detector-frame files: " + ("computed and written by every run (--frame-cache cold)"
                                                if r.get("frame_cache") == "cold" else
                                                "this machine's, written by the first run that needed them"))
    print_sides(r)
    if "mrsdask" in r:
        print(f"mrsdask ran on: {r['mrsdask'].get('scheduler', 'unknown')}")
        print_phases(r["mrsdask"])
    if "speedup_wall" in r:
        print(f"speed-up (official wall / mrsdask wall): {r['speedup_wall']:.1f}x; "
              f"CPU time ratio {r['official']['cpu_s_sampled'] / max(r['mrsdask']['cpu_s_sampled'], 1e-9):.1f}x")
    for name, f in r.get("parity", {}).items():
        if "missing_official" in f:
            print(f"  {name}: no official cube")
            continue
        if not f["same_shape"]:
            print(f"  {name}: SHAPE DIFFERS official {f['official_shape']} mrsdask {f['mrsdask_shape']}")
            continue
        print(f"  {name}: same WCS {f['same_wcs']}; median |Δ|/F {f['median_rel']:.2e}, p99 {f['p99_rel']:.2e}, "
              f"max {f['max_rel']:.2e}; WMAP equal {100 * f['wmap_equal']:.3f}%; DQ 0 where official data "
              f"{f['dq_zero_where_official_data']}; {'OK' if f['ok'] else 'NOT OK'}")
