"""``mrsdask bench background``: the official ``BackgroundStep`` and ``mrsdask background`` on one association.

The pixel-by-pixel method of spec2: science exposures of one setting and the dedicated
background exposures of the same setting, simulated once (:func:`prepare_association`,
reused). The official step runs as ``calwebb_spec2`` runs it, once per science exposure
(:mod:`mrsdask.bench.official_background`); ``mrsdask background --method pixel`` does all of
them in one job into a detector store, without adding the background ERR to the science ERR
(``--no-combine-errors``, as the official step). Each side is its own monitored process tree
(:func:`mrsdask.bench.monitor.run_alternating`); then SCI and ERR of every science exposure
are compared.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys

import numpy as np

from mrsdask.bench.monitor import (add_run_arguments, check_run_arguments, median_of, print_host_settle,
                                   run_alternating)

#: name: simulation overrides (science dithers and background exposures of one setting).
BACKGROUND_CASES = {
    "12a": {"bands": ["1A"], "n_dithers": 4, "n_background_exposures": 2},
    "12a-many": {"bands": ["1A"], "n_dithers": 4, "n_background_exposures": 6},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", default="12a", choices=sorted(BACKGROUND_CASES),
                   help="12a: 4 science and 2 background exposures of setting 12A; 12a-many: 6 backgrounds")
    p.add_argument("--workdir", default="mrsdask-bench", help="folder for inputs and outputs")
    p.add_argument("--n-workers", type=int, default=None,
                   help="mrsdask on a local cluster of this many workers (default: what 'mrsdask background' chooses)")
    add_run_arguments(p)


def prepare_association(overrides: dict, folder: str) -> str:
    """Simulate the case in ``folder`` (or reuse it): its association of science and background cal files."""
    from mrsdask.sim import simulate

    config = {"sources": [{"type": "point", "ra_offset": 0.2, "dec_offset": -0.1, "continuum_mjy": 30.0}],
              "sky_background": 1.0, "seed": 23, "prefix": "bkgbench", **overrides}
    stamp = os.path.join(folder, "config.json")
    if os.path.exists(stamp):
        with open(stamp) as fobj:
            if json.load(fobj) == config:
                found = glob.glob(os.path.join(folder, "*_asn.json"))
                if found:
                    return found[0]
    result = simulate(config, folder)
    with open(stamp, "w") as fobj:
        json.dump(config, fobj)
    return str(result.association)


def compare(official_dir: str, store: str) -> dict:
    """Largest differences of SCI and ERR per science exposure (official npz files vs the store)."""
    from mrsdask.io.detector_store import open_detector_store

    ds = open_detector_store(store)
    out: dict = {"exposures": {}}
    for i, name in enumerate(ds["filename"].values):
        path = os.path.join(official_dir, f"{str(name).removesuffix('.fits')}.npz")
        if str(ds["exptype"].values[i]) != "science" or not os.path.exists(path):
            continue
        ref = np.load(path)
        row = {}
        for var in ("sci", "err"):
            a, b = ref[var].astype(np.float64), ds[var].isel(exposure=i).values.astype(np.float64)
            both = np.isfinite(a) & np.isfinite(b)
            scale = float(np.nanmedian(np.abs(a[both]))) if both.any() else 1.0
            row[f"{var}_max_abs"] = float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0
            row[f"{var}_max_rel_to_median"] = row[f"{var}_max_abs"] / max(scale, 1e-30)
            row[f"{var}_same_nan"] = bool(np.array_equal(np.isfinite(a), np.isfinite(b)))
        row["dq_equal"] = bool(np.array_equal(ref["dq"], ds["dq"].isel(exposure=i).values))
        out["exposures"][str(name)] = row
    rows = out["exposures"].values()
    out["ok"] = bool(rows) and all(r["sci_max_rel_to_median"] < 1e-5 and r["err_max_rel_to_median"] < 1e-5
                                   and r["sci_same_nan"] for r in rows)
    return out


def run(args) -> int:
    check_run_arguments(args)
    workdir = os.path.abspath(os.path.join(args.workdir, f"background-{args.case}"))
    print(f"simulating inputs (or reusing them) in {workdir}/inputs …")
    asn = prepare_association(BACKGROUND_CASES[args.case], os.path.join(workdir, "inputs"))
    store, official_dir = os.path.join(workdir, "mrsdask.zarr"), os.path.join(workdir, "official")
    mine_cmd = [sys.executable, "-m", "mrsdask.cli", "background", asn, "-o", store, "--method", "pixel",
                "--no-combine-errors", "--overwrite", "--no-progress"]
    if args.n_workers is not None:
        mine_cmd += ["--n-workers", str(args.n_workers)]
    off_cmd = [sys.executable, "-m", "mrsdask.bench.official_background", asn, official_dir]

    def fresh_output(side: str) -> None:
        if side == "official":
            shutil.rmtree(official_dir, ignore_errors=True)

    with open(asn) as fobj:
        members = json.load(fobj)["products"][0]["members"]
    results: dict = {"case": args.case, "machine": {"cores": os.cpu_count()}, "repeat": args.repeat,
                     "n_science": sum(m["exptype"] == "science" for m in members),
                     "n_background": sum(m["exptype"] == "background" for m in members)}
    sides = [("official", "the official BackgroundStep (per science exposure)", off_cmd),
             ("mrsdask", "mrsdask background --method pixel", mine_cmd)]
    runs = run_alternating(sides, args.repeat, lambda side, n: os.path.join(workdir, f"{side}-{n}.log"),
                           before=fresh_output, host_settle_max_s=args.host_settle_max)
    for side, side_runs in runs.items():
        results[side] = median_of(side_runs)
    results["speedup_wall"] = results["official"]["wall_s"] / results["mrsdask"]["wall_s"]
    results["speedup_cpu"] = results["official"]["cpu_s_sampled"] / max(results["mrsdask"]["cpu_s_sampled"], 1e-9)
    results["parity"] = compare(official_dir, store)
    report(results)
    if args.json:
        with open(args.json, "w") as fobj:
            json.dump(results, fobj, indent=2, default=float)
    return 0 if results["parity"]["ok"] else 1


def report(r: dict) -> None:
    print(f"background case {r['case']}: {r['n_science']} science and {r['n_background']} background exposures, "
          f"{r['machine']['cores']} cores, median of {r['repeat']}")
    for side in ("official", "mrsdask"):
        s = r[side]
        print(f"  {side:9s} wall {s['wall_s']:7.1f} s  CPU {s['cpu_s_sampled']:7.1f} s  peak RSS "
              f"{s['peak_rss_total_gb']:.2f} GB (largest process {s['peak_rss_process_gb']:.2f} GB)  "
              f"CPU stolen {100 * s['machine_steal_fraction']:.0f}%")
    print_host_settle(r["official"], r["mrsdask"], indent="  ")
    print(f"  speed-up {r['speedup_wall']:.2f}x wall, {r['speedup_cpu']:.2f}x CPU time")
    for name, row in r["parity"]["exposures"].items():
        print(f"  {name}: SCI max |d| {row['sci_max_abs']:.2e} ({row['sci_max_rel_to_median']:.1e} of the median), "
              f"ERR {row['err_max_abs']:.2e} ({row['err_max_rel_to_median']:.1e}), same NaN {row['sci_same_nan']}, "
              f"DQ equal {row['dq_equal']}")
    print(f"  parity {'ok' if r['parity']['ok'] else 'NOT ok'}")
