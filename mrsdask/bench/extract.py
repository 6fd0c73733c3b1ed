"""``mrsdask bench extract``: the official ``Extract1dStep`` and ``mrsdask extract`` on the same s3d files.

The cubes of a ``mrsdask bench cube`` case are built by mrsdask (anew at every run) and exported
as s3d; then, for each cube, the official step (one process) and ``mrsdask extract`` (its
CLI) extract it with the same EXTRACT1D apertures, each side monitored for wall time, CPU
time and peak RSS as in the cube benchmark. Reported: the times, the ratio, and how far the
spectra differ column by column.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from mrsdask.bench.cube import BENCH_CASES, simulate_inputs
from mrsdask.bench.monitor import (add_run_arguments, check_run_arguments, median_of, print_host_settle,
                                   run_alternating)
from mrsdask.errors import ParameterError

COLUMNS = ("FLUX", "SURF_BRIGHT", "BACKGROUND", "FLUX_ERROR", "NPIXELS")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="band1a", choices=sorted(BENCH_CASES), help="inputs and cubes as in 'bench cube'")
    p.add_argument("--source-type", default="point", choices=["point", "extended"],
                   help="source type both sides extract (default point)")
    p.add_argument("--ifu-autocen", action="store_true",
                   help="both sides place the aperture by auto-centring (the official ifu_autocen; point sources)")
    p.add_argument("--workdir", default="mrsdask-bench", help="folder for inputs and outputs")
    add_run_arguments(p)


def spectra_difference(official_path: str, mine_path: str) -> dict:
    """Largest relative difference per x1d column (over finite, non-zero official values)."""
    from stdatamodels.jwst import datamodels

    out = {}
    with datamodels.open(official_path) as a, datamodels.open(mine_path) as b:
        ta, tb = a.spec[0].spec_table, b.spec[0].spec_table
        out["same_wavelengths"] = bool(np.array_equal(ta["WAVELENGTH"], tb["WAVELENGTH"]))
        out["same_dq"] = bool(np.array_equal(ta["DQ"], tb["DQ"]))
        out["same_centre"] = bool(a.spec[0].extraction_x == b.spec[0].extraction_x
                                  and a.spec[0].extraction_y == b.spec[0].extraction_y)
        for column in COLUMNS:
            x, y = np.asarray(ta[column], float), np.asarray(tb[column], float)
            use = np.isfinite(x) & (x != 0)
            out[column] = float(np.max(np.abs(y[use] - x[use]) / np.abs(x[use]))) if use.any() else 0.0
    return out


def run(args) -> int:
    from mrsdask.cube.builder import open_cube
    from mrsdask.cube.export import write_s3d
    from mrsdask.cube.store import open_group
    from mrsdask.extract import default_parameters, write_extract1d

    check_run_arguments(args)
    if args.ifu_autocen and args.source_type != "point":
        raise ParameterError("--ifu-autocen finds a point source: use it with --source-type point")
    autocen = "_autocen" if args.ifu_autocen else ""
    overrides, output_type, channel, band = BENCH_CASES[args.case]
    workdir = os.path.abspath(os.path.join(args.workdir, f"extract-{args.case}-{args.source_type}"))
    os.makedirs(workdir, exist_ok=True)
    files = simulate_inputs(workdir, overrides, None)
    store = os.path.join(workdir, "cubes.zarr")
    # Built anew by this code at every run: a store kept from older code would time its format
    # (e.g. its compression), not this one's. Its s3d files are exported from it again below.
    print(f"building the {args.case} cubes with mrsdask …")
    subprocess.run([sys.executable, "-m", "mrsdask.cli", "cube", *files, "-o", store, "--output-type", output_type,
                    "--channel", *channel, "--band", *band, "--no-progress", "--overwrite"], check=True,
                   stdout=subprocess.DEVNULL)
    names = sorted(k for k in open_group(store).group_keys() if not k.startswith("_"))
    ref = write_extract1d(default_parameters(), os.path.join(workdir, "extract1d.asdf"))
    results: dict = {"case": args.case, "source_type": args.source_type, "ifu_autocen": bool(args.ifu_autocen),
                     "cubes": {}, "machine": {"cores": os.cpu_count()}}
    mine_dir = os.path.join(workdir, f"mrsdask_x1d{autocen}")
    for name in names:
        s3d = os.path.join(workdir, f"{name}_s3d.fits")
        if os.path.exists(s3d):
            os.remove(s3d)
        write_s3d(open_cube(store, name), s3d)
        official = os.path.join(workdir, f"official_{name}{autocen}_x1d.fits")
        off_cmd = [sys.executable, "-m", "mrsdask.bench.official_extract", s3d, ref, args.source_type, official,
                   *(["ifu_autocen"] if args.ifu_autocen else [])]
        mine_cmd = [sys.executable, "-m", "mrsdask.cli", "extract", store, "--cube", name, "--x1d", mine_dir,
                    "--prefix", "bench", "--extract1d", ref, "--ifu-set-srctype", args.source_type.upper(),
                    # as the official side: no aperture correction, fringe fit or leak correction
                    "--no-apply-apcorr", "--no-ifu-rfcorr", "--no-spectral-leak",
                    *(["--ifu-autocen"] if args.ifu_autocen else [])]
        mine_x1d = os.path.join(mine_dir, f"bench_{name}_x1d.fits")

        def fresh_output(side: str, path: str = mine_x1d) -> None:
            if side == "mrsdask" and os.path.exists(path):
                os.remove(path)  # each run writes it anew

        sides = [("official", f"{name}: the official Extract1dStep", off_cmd),
                 ("mrsdask", f"{name}: mrsdask extract", mine_cmd)]
        runs = run_alternating(sides, args.repeat, lambda side, n: os.path.join(workdir, f"{side}_{name}{autocen}-{n}.log"),
                               before=fresh_output, host_settle_max_s=args.host_settle_max)
        off, mine = median_of(runs["official"]), median_of(runs["mrsdask"])
        planes = open_group(store)[name]["sci"].shape[0]
        entry = {"planes": int(planes), "official": off, "mrsdask": mine,
                 "speedup_wall": off["wall_s"] / mine["wall_s"],
                 "difference": spectra_difference(official, os.path.join(mine_dir, f"bench_{name}_x1d.fits"))}
        results["cubes"][name] = entry
        _report_cube(name + (" (both sides auto-centring)" if args.ifu_autocen else ""), entry)
    if args.json:
        with open(args.json, "w") as fobj:
            json.dump(results, fobj, indent=2, default=float)
    return 0


def _report_cube(name: str, e: dict) -> None:
    print(f"  {name} ({e['planes']} planes)")
    for side in ("official", "mrsdask"):
        s = e[side]
        print(f"    {side:9s} wall {s['wall_s']:7.1f} s  CPU {s['cpu_s_sampled']:7.1f} s  peak RSS "
              f"{s['peak_rss_total_gb']:.2f} GB (largest process {s['peak_rss_process_gb']:.2f} GB)  "
              f"CPU stolen {100 * s['machine_steal_fraction']:.0f}%")
    print_host_settle(e["official"], e["mrsdask"], indent="    ")
    d = e["difference"]
    ratio_cpu = e["official"]["cpu_s_sampled"] / max(e["mrsdask"]["cpu_s_sampled"], 1e-9)
    print(f"    speed-up {e['speedup_wall']:.1f}x (CPU time ratio {ratio_cpu:.1f}x); same wavelengths {d['same_wavelengths']}, DQ {d['same_dq']}, "
          f"centre {d['same_centre']}; max relative difference " + ", ".join(f"{c} {d[c]:.1e}" for c in COLUMNS))



