"""Benchmark: official ``ResidualFringeStep`` against ``mrsdask.fringe.residual_fringe``.

Usage::

    python tests/fringe/bench_residual_fringe.py [--columns 40] [--x0 180] [--setting 12A]
                                                 [--workers 2] [--amplitude 0.1] [--snr 300]
                                                 [--point-source] [--official-from DIR]

A whole exposure: ``--x0 0 --columns 1032`` (with ``--point-source``: a bright point source in
both channels, every column fitted); the official step then takes tens of minutes, so its
result can be kept (``--workdir``) and reused by later runs (``--official-from``).

One exposure is made from the level-2 template of the setting with the official gwcs
(``assign_wcs_offline``) and synthetic data: a smooth source spectrum with emission lines on
every slice, times a realistic residual fringe (≈ 2.9 cm⁻¹, changing contrast and period,
2nd harmonic; plus the 0.4 cm⁻¹ dichroic fringe in channels 3/4) whose phase and amplitude vary
from column to column, plus noise. Both codes get the same cal file, the same FRINGEFREQ file
(written from the documented values) and REGIONS, and the same detector columns
``[x0, x0 + columns)`` (the official step through a restricted ``slice_info``, mrsdask through
``ds.isel(x=...)``). Each runs in its own process; wall time, CPU time and peak RSS are those
of its process tree (mrsdask: a LocalCluster of ``--workers`` single-thread processes started
inside the timed region). mrsdask reads a detector store written beforehand (``ingest``,
reported separately: it computes the per-pixel geometry once for all detector steps, as the
official step's WCS evaluation is part of its own time).

The figure the issue asks for (whole process, start-up included, same run) compares the
official child process, interpreter start and imports included, with the ``mrsdask fringe
--residual`` command run on the same cal file (``--command``, the default for a whole
exposure): reading the FITS file, the per-pixel geometry, the fit and the written detector
store, on the scheduler the command chooses by itself. Both are timed from outside (wall, and
the CPU time of the process and all its descendants from ``getrusage``).

Agreement: on the pixels both codes corrected, the correction factors are compared with each
other and, since the injected fringe is known, each with the truth (rms of
``factor·(1 + F) − 1``, lines excluded). Tolerance: the two corrections must agree to within
the sum of their own errors against the truth (they are two estimates of the same fringe,
each with its own noise and model choices), and mrsdask's error against the truth must not
exceed the official one's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fringe_synth import fringe_pattern  # noqa: E402


# --------------------------------------------------------------------------- resource monitor
class Monitor:
    """Wall time, CPU time and peak RSS of this process and all its descendants (only the
    descendants with ``children_only``)."""

    def __init__(self, interval: float = 0.05, children_only: bool = False):
        import psutil

        self.proc = psutil.Process()
        self.children_only = children_only
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        import psutil

        rss = 0
        procs = ([] if self.children_only else [self.proc]) + self.proc.children(recursive=True)
        for p in procs:
            try:
                t = p.cpu_times()
                self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), t.user + t.system)
                rss += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample()
        self.cpu0 = dict(self.cpu)
        self.rss0 = self.peak_rss
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self._sample()
        self._stop.set()
        self._thread.join()
        self.cpu_time = sum(self.cpu.values()) - sum(self.cpu0.values())

    def report(self) -> dict:
        return {"wall_s": self.wall, "cpu_s": self.cpu_time, "peak_rss_mb": self.peak_rss / 2**20}


# --------------------------------------------------------------------------- input exposure
LINES_UM = {
    "12A": (5.05, 5.34, 5.51, 6.985, 7.65),
    "12B": (5.9, 6.11, 6.64, 8.03, 8.99),
    "12C": (6.7, 6.985, 7.65, 9.67, 10.5),
    "34A": (12.28, 12.81, 14.32, 15.56, 17.03),
    "34B": (14.32, 15.56, 16.3, 18.71, 20.3),
    "34C": (16.3, 17.03, 18.71, 24.3, 25.9),
}


def make_input(workdir: Path, setting: str, amplitude: float, snr: float, seed: int,
               point_source: bool = False) -> dict:
    """Write the cal file, the truth and the FRINGEFREQ file; return their paths.

    With ``point_source`` the source is a bright point source centred in both channels
    (Gaussian across the slices of each channel, σ = 1 slice, and along each slice, σ = 8 %
    of the slice's width in columns) on a faint extended background (2 % of the peak):
    columns from S/N ≈ ``snr`` at the peak down to S/N of a few.
    """
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import IFUImageModel

    from mrsdask.fringe import write_fringefreq
    from mrsdask.instrument.reference import assign_wcs_offline, slice_map, template_file

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(template_file(setting))
        del hdul["ASDF"]
        model = IFUImageModel(hdul)
        model.meta.wcsinfo.ra_ref = 80.0
        model.meta.wcsinfo.dec_ref = -69.5
        model.meta.wcsinfo.roll_ref = 0.0
        model = assign_wcs_offline(model, setting)
    ny, nx = model.data.shape
    y, x = np.mgrid[:ny, :nx]
    wave = np.asarray(model.meta.wcs(x, y)[2], dtype=np.float64)
    smap = np.asarray(slice_map(setting))
    on = (smap > 0) & np.isfinite(wave) & (wave > 0)
    truth = np.zeros((ny, nx))
    fringe = np.ones((ny, nx))
    line_mask = np.zeros((ny, nx), bool)
    for s in np.unique(smap[on]):
        sel = on & (smap == s)
        lam = wave[sel]
        lo, hi = lam.min(), lam.max()
        t = (lam - lo) / (hi - lo)
        level = 100.0 * (1.0 + 0.3 * rng.uniform(-1, 1))
        cont = level * (1.0 + 0.3 * t - 0.2 * t**2)
        lines = np.zeros(lam.size)
        for centre in LINES_UM[setting]:
            fwhm = centre / 3500.0
            lines += cont * rng.uniform(0.5, 2.5) * np.exp(-0.5 * ((lam - centre) / (fwhm / 2.3548)) ** 2)
            line_mask[sel] |= np.abs(lam - centre) < 3 * fwhm
        if point_source:
            cols = x[sel]
            centre, width = 0.5 * (cols.min() + cols.max()), max(float(np.ptp(cols)), 1.0)
            in_channel = np.unique(smap[on & (smap // 100 == s // 100)])
            ds = (s - in_channel.mean()) if in_channel.size else 0.0
            profile = 0.02 + np.exp(-0.5 * ds**2) * np.exp(-0.5 * ((cols - centre) / (0.08 * width)) ** 2)
            cont = cont * profile
            lines = lines * profile
        truth[sel] = cont + lines
    # The fringe: per column and slice, phase and contrast vary across the detector.
    channel = smap // 100
    for xx in range(nx):
        col_on = on[:, xx]
        for s in np.unique(smap[col_on, xx]):
            rows = np.flatnonzero(col_on & (smap[:, xx] == s))
            if rows.size < 4:
                continue
            nu = 1.0e4 / wave[rows, xx]
            ch = int(s) // 100
            fr = fringe_pattern(nu, amplitude=amplitude * (1.0 + 0.2 * np.sin(0.05 * xx)), period=2.9,
                                phase=0.35 * xx + 0.7 * s, dichroic=0.015 if ch in (3, 4) else 0.0)
            fringe[rows, xx] = 1.0 + fr
    data = truth * fringe
    # photon noise: S/N = snr at a level of 100
    err = np.sqrt(np.maximum(truth, 1e-3) * 100.0) / snr
    data = data + rng.normal(0.0, 1.0, data.shape) * err
    data[~on] = np.nan
    err[~on] = np.nan
    dq = np.where(on, 0, 513).astype(np.uint32)
    model.data = data.astype(np.float32)
    model.err = err.astype(np.float32)
    model.dq = dq
    model.meta.cal_step.fringe = "COMPLETE"
    model.meta.filename = "bench_fringe_cal.fits"
    cal = workdir / "bench_fringe_cal.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(cal))
    np.savez(workdir / "truth.npz", truth=truth, fringe=fringe, line_mask=line_mask, channel=channel)
    fringefreq = write_fringefreq(workdir / "bench_fringefreq.fits")
    return {"cal": str(cal), "truth": str(workdir / "truth.npz"), "fringefreq": fringefreq}


# --------------------------------------------------------------------------- the two engines
def run_official(cal: str, fringefreq: str, setting: str, x0: int, x1: int, out: str) -> dict:
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "1"
    import logging

    from stdatamodels.jwst.datamodels import IFUImageModel

    from mrsdask.instrument.reference import disable_crds_context_lookup, regions_file

    disable_crds_context_lookup()
    import jwst.residual_fringe.utils as utils
    from jwst.residual_fringe import ResidualFringeStep

    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    original = utils.slice_info

    def restricted(slice_map, channel):
        slices, xrange, ranges, masks = original(slice_map, channel)
        ranges = ranges.copy()
        ranges[:, 1] = np.clip(ranges[:, 1], x0, x1)
        ranges[:, 2] = np.clip(ranges[:, 2], x0, x1)
        keep = ranges[:, 2] > ranges[:, 1]
        if not keep.any():  # the step needs at least one slice per channel
            keep[0] = True
        return slices[keep], xrange, ranges[keep], masks[keep]

    utils.slice_info = restricted
    regions = str(regions_file(setting))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Monitor() as mon:
            model = IFUImageModel(cal)
            result = ResidualFringeStep(override_fringefreq=fringefreq, override_regions=regions,
                                        skip=False).run(model)
            data = np.array(result.data)
    np.save(out, data)
    return mon.report()


def ingest(cal: str, store: str, workers: int) -> dict:
    from mrsdask.cluster import dask_client
    from mrsdask.io.detector_store import open_cal, write_detector_store

    with Monitor() as mon, dask_client(n_workers=workers, announce=lambda *_: None):
        write_detector_store(open_cal([cal]), store, overwrite=True)
    return mon.report()


def run_mrsdask(store: str, fringefreq: str, x0: int, x1: int, workers: int, scheduler: str, out: str) -> dict:
    """mrsdask from the detector store; ``scheduler`` is ``threads`` or ``cluster``.

    ``threads``: Dask's threaded scheduler with ``workers`` threads (the numba kernels release
    the GIL). ``cluster``: a LocalCluster of ``workers`` single-thread processes
    (:func:`mrsdask.cluster.dask_client`), started inside the timed region.
    """
    import dask

    from mrsdask.cluster import dask_client
    from mrsdask.fringe import residual_fringe, residual_fringe_summary
    from mrsdask.io.detector_store import open_detector_store

    timings = {}
    with Monitor() as mon:
        t = time.perf_counter()
        if scheduler == "cluster":
            ctx = dask_client(n_workers=workers, announce=lambda *_: None)
        else:
            ctx = dask.config.set(scheduler="threads", num_workers=workers)
        with ctx:
            timings["startup_s"] = time.perf_counter() - t
            ds = open_detector_store(store).isel(x=slice(x0, x1))
            block = max(1, -(-(x1 - x0) // (4 * workers)))
            res = residual_fringe(ds, fringefreq, column_block=block)
            sci, factor, status = dask.compute(res["sci"].data[0], res["rf_factor"].data[0], res["rf_status"].data)
            summary = residual_fringe_summary(res.assign(rf_status=(res["rf_status"].dims, status)))
            timings["compute_s"] = time.perf_counter() - t - timings["startup_s"]
    np.savez(out, sci=sci, factor=factor)
    report = mon.report()
    report.update(timings)
    report["summary"] = summary[0]
    return report


def command_line(cal: str, fringefreq: str, out: str) -> list[str]:
    """The ``mrsdask fringe --residual`` command a user runs on the cal file (its own scheduler choice)."""
    return [sys.executable, "-m", "mrsdask.cli", "fringe", "--residual", "--no-progress", "--overwrite",
            "--fringefreq", fringefreq, "-o", out, cal]


def timed_process(cmd: list[str]) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd``; its wall time, and the CPU time and peak RSS of it and all its descendants."""
    import resource

    os.sync()  # the input files just written, and the last run's outputs, are on disk before the clock starts
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Monitor(children_only=True) as mon:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, {"wall_s": mon.wall, "cpu_s": cpu, "peak_rss_mb": mon.peak_rss / 2**20}


# --------------------------------------------------------------------------- comparison
def command_output(store: str, x0: int, x1: int) -> tuple[np.ndarray, dict]:
    """The correction factor written by the command (columns ``[x0, x1)``) and its column summary."""
    from mrsdask.fringe import residual_fringe_summary
    from mrsdask.io.detector_store import open_detector_store

    ds = open_detector_store(store)
    return np.asarray(ds["rf_factor"][0, :, x0:x1], np.float64), residual_fringe_summary(ds)[0]


def compare(workdir: Path, paths: dict, x0: int, x1: int, c_ours: np.ndarray) -> dict:
    from astropy.io import fits

    truth = np.load(paths["truth"])
    with fits.open(paths["cal"]) as hdul:
        data_in = np.asarray(hdul["SCI"].data, np.float64)[:, x0:x1]
    off = np.load(workdir / "official.npy").astype(np.float64)[:, x0:x1]
    c_ours = np.asarray(c_ours, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c_off = off / data_in
    valid = np.isfinite(data_in) & (data_in > 0)
    corrected_off = valid & np.isfinite(c_off) & (np.abs(c_off - 1) > 1e-7)
    corrected_ours = valid & (np.abs(c_ours - 1) > 1e-7)
    both = corrected_off & corrected_ours
    fr = truth["fringe"][:, x0:x1]
    keep = both & ~truth["line_mask"][:, x0:x1]

    def rms(a):
        return float(np.sqrt(np.mean(a**2))) if a.size else float("nan")

    diff = (c_ours - c_off)[both]
    return {
        "pixels_corrected_official": int(corrected_off.sum()),
        "pixels_corrected_mrsdask": int(corrected_ours.sum()),
        "pixels_both": int(both.sum()),
        "factor_diff_median_abs": float(np.median(np.abs(diff))) if diff.size else float("nan"),
        "factor_diff_p95_abs": float(np.percentile(np.abs(diff), 95)) if diff.size else float("nan"),
        "factor_diff_rms": rms(diff),
        "fringe_rms_input": rms(fr[keep] - 1),
        "fringe_rms_after_official": rms(c_off[keep] * fr[keep] - 1),
        "fringe_rms_after_mrsdask": rms(c_ours[keep] * fr[keep] - 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setting", default="12A")
    parser.add_argument("--columns", type=int, default=40, help="detector columns processed by both codes")
    parser.add_argument("--x0", type=int, default=160, help="first detector column")
    parser.add_argument("--workers", type=int, default=2, help="mrsdask worker threads / processes")
    parser.add_argument("--schedulers", default="threads,cluster",
                        help="mrsdask runs: 'threads' (Dask threads) and/or 'cluster' (LocalCluster processes)")
    parser.add_argument("--amplitude", type=float, default=0.1, help="injected fringe amplitude")
    parser.add_argument("--snr", type=float, default=300.0, help="continuum S/N per pixel")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--point-source", action="store_true",
                        help="a bright point source centred in both channels on a faint background (see make_input)")
    parser.add_argument("--official-from", default=None,
                        help="reuse the official run kept in this --workdir of an earlier run with the same input "
                             "options (the official step takes ~1 s per column: a whole exposure is ~20 min)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every engine this many times and keep the fastest run (the machine may be shared)")
    parser.add_argument("--command", action=argparse.BooleanOptionalAction, default=None,
                        help="also time the whole 'mrsdask fringe --residual' command on the cal file against the "
                             "whole official process (default: on for a whole exposure, the only case the command "
                             "can do: it has no column range)")
    parser.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--engine", choices=["official", "ingest", "mrsdask"], help=argparse.SUPPRESS)
    parser.add_argument("--scheduler", default="threads", help=argparse.SUPPRESS)
    parser.add_argument("--cal", help=argparse.SUPPRESS)
    parser.add_argument("--fringefreq", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    x0, x1 = args.x0, args.x0 + args.columns

    if args.engine:  # child process
        if args.engine == "official":
            report = run_official(args.cal, args.fringefreq, args.setting, x0, x1, args.out)
        elif args.engine == "ingest":
            report = ingest(args.cal, args.store, args.workers)
        else:
            report = run_mrsdask(args.store, args.fringefreq, x0, x1, args.workers, args.scheduler, args.out)
        print("RESULT " + json.dumps(report))
        return 0

    tmp = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_fringe_")
        workdir = Path(tmp.name)
    print(f"setting {args.setting}{', point source' if args.point_source else ''}, columns {x0}..{x1 - 1}, fringe amplitude {args.amplitude}, S/N {args.snr}, "
          f"mrsdask workers {args.workers}, cpus {os.cpu_count()}")
    t = time.perf_counter()
    paths = make_input(workdir, args.setting, args.amplitude, args.snr, args.seed, args.point_source)
    print(f"input exposure made in {time.perf_counter() - t:.1f} s: {paths['cal']}")

    def child_once(engine, **kw):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--setting", args.setting,
               "--x0", str(x0), "--columns", str(args.columns), "--workers", str(args.workers)]
        for key, value in kw.items():
            cmd += [f"--{key}", str(value)]
        load = os.getloadavg()[0]
        proc, whole = timed_process(cmd)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
            raise SystemExit(f"{engine} run failed")
        report = json.loads(lines[-1][7:])
        report["load_before"] = load
        report["process"] = whole
        return report

    def command_once():
        load = os.getloadavg()[0]
        proc, report = timed_process(command_line(paths["cal"], paths["fringefreq"], str(command_store)))
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
            raise SystemExit("mrsdask fringe --residual failed")
        report["load_before"] = load
        report["process"] = dict(report)
        report["stdout"] = proc.stdout.strip().splitlines()
        return report

    def child(engine, **kw):
        runs = [(command_once() if engine == "command" else child_once(engine, **kw))
                for _ in range(max(1, args.repeat))]
        best = min(runs, key=lambda r: r["process"]["wall_s"])
        best["all_wall_s"] = [round(r["process"]["wall_s"], 2) for r in runs]
        return best

    store = workdir / "bench_store.zarr"
    command_store = workdir / "command_out.zarr"
    whole = x0 == 0 and x1 >= 1032
    run_command = whole if args.command is None else args.command
    if run_command and not whole:
        raise SystemExit("--command needs the whole exposure (--x0 0 --columns 1032): the command has no column range")
    schedulers = [x.strip() for x in args.schedulers.split(",") if x.strip()]
    results = {}
    if run_command:
        results["command"] = child("command")
    if schedulers:
        results["ingest"] = child("ingest", cal=paths["cal"], store=store)
    for sched in schedulers:
        results[f"mrsdask_{sched}"] = child("mrsdask", store=store, fringefreq=paths["fringefreq"],
                                            out=workdir / f"mrsdask_{sched}.npz", scheduler=sched)
    signature = {"setting": args.setting, "x0": x0, "columns": args.columns, "amplitude": args.amplitude,
                 "snr": args.snr, "seed": args.seed, "point_source": args.point_source}
    if args.official_from:
        kept = json.loads((Path(args.official_from) / "official.json").read_text())
        if kept["input"] != signature:
            raise SystemExit(f"--official-from: that run had the input {kept['input']}, not {signature}")
        results["official"] = kept["report"]
        if Path(args.official_from).resolve() != workdir.resolve():
            np.save(workdir / "official.npy", np.load(Path(args.official_from) / "official.npy"))
        print(f"official run reused from {args.official_from} (made {kept['when']})")
    else:
        results["official"] = child("official", cal=paths["cal"], fringefreq=paths["fringefreq"],
                                    out=workdir / "official.npy")
        (workdir / "official.json").write_text(json.dumps(
            {"input": signature, "report": results["official"],
             "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}))
    off = results["official"]
    print(f"\n{'':44s}{'wall s':>9s}{'CPU s':>9s}{'peak RSS MB':>13s}{'wall/official':>15s}{'CPU/official':>14s}")
    rows = [f"mrsdask_{s}" for s in schedulers]
    labels = {"official": "official ResidualFringeStep (step only)",
              "mrsdask_threads": f"mrsdask from store, {args.workers} threads",
              "mrsdask_cluster": f"mrsdask from store, LocalCluster {args.workers}",
              "ingest": "mrsdask ingest (not in the rows above)"}
    for name in ["official"] + rows + (["ingest"] if schedulers else []):
        r = results[name]
        print(f"{labels[name]:44s}{r['wall_s']:9.1f}{r['cpu_s']:9.1f}{r['peak_rss_mb']:13.0f}"
              f"{off['wall_s'] / r['wall_s']:14.1f}x{off['cpu_s'] / max(r['cpu_s'], 1e-9):13.1f}x")
    off_whole = off.get("process")
    if run_command:
        cmd = results["command"]["process"]
        print("whole processes, start-up and imports included:")
        if off_whole is None:
            print("  official process: not recorded by the run reused (--official-from); run the official step again")
        else:
            print(f"{'  official (python, imports, step)':44s}{off_whole['wall_s']:9.1f}{off_whole['cpu_s']:9.1f}"
                  f"{off_whole['peak_rss_mb']:13.0f}")
        ratios = (f"{off_whole['wall_s'] / cmd['wall_s']:14.1f}x{off_whole['cpu_s'] / max(cmd['cpu_s'], 1e-9):13.1f}x"
                  if off_whole else "")
        print(f"{'  mrsdask fringe --residual cal.fits':44s}{cmd['wall_s']:9.1f}{cmd['cpu_s']:9.1f}"
              f"{cmd['peak_rss_mb']:13.0f}{ratios}")
        sched_line = next((ln for ln in results["command"]["stdout"] if "Dask" in ln), "")
        print(f"  the command ran on: {sched_line}")
    for name in rows:
        r = results[name]
        print(f"{labels[name]}: start-up {r['startup_s']:.1f} s, residual_fringe {r['compute_s']:.1f} s")
    for name in ["official"] + rows + (["command"] if run_command else []):
        r = results[name]
        print(f"{labels.get(name, 'mrsdask fringe --residual')}: whole-process wall of each run {r['all_wall_s']} s, "
              f"1-min load average before the kept run {r['load_before']:.1f} on {os.cpu_count()} cpus")
    ok = True
    checks = [(f"mrsdask_{sched}", labels[f"mrsdask_{sched}"]) for sched in schedulers]
    if run_command:
        checks.append(("command", "mrsdask fringe --residual, whole processes"))
    for name, label in checks:
        ours = results[name]
        if name == "command":
            factor, ours["summary"] = command_output(str(command_store), x0, x1)
            speed = off_whole["wall_s"] / ours["process"]["wall_s"] if off_whole else float("nan")
            cpu_speed = off_whole["cpu_s"] / ours["process"]["cpu_s"] if off_whole else float("nan")
        else:
            factor = np.load(workdir / f"{name}.npz")["factor"]
            speed, cpu_speed = off["wall_s"] / ours["wall_s"], off["cpu_s"] / ours["cpu_s"]
        a = compare(workdir, paths, x0, x1, factor)
        results[name]["agreement"] = a
        results[name]["speed_ratio"] = speed
        results[name]["cpu_ratio"] = cpu_speed
        print(f"\n[{label}] speed ratio (wall) {speed:.1f}x, CPU {cpu_speed:.1f}x; columns: "
              f"{json.dumps(ours['summary'])}")
        print(f"pixels corrected: official {a['pixels_corrected_official']}, mrsdask {a['pixels_corrected_mrsdask']},"
              f" both {a['pixels_both']}")
        print(f"correction factor difference on common pixels: median {a['factor_diff_median_abs']:.5f}, "
              f"95th percentile {a['factor_diff_p95_abs']:.5f}, rms {a['factor_diff_rms']:.5f}")
        print(f"fringe rms (lines excluded): input {a['fringe_rms_input']:.5f}, after official "
              f"{a['fringe_rms_after_official']:.5f}, after mrsdask {a['fringe_rms_after_mrsdask']:.5f}")
        tol = a["fringe_rms_after_official"] + a["fringe_rms_after_mrsdask"]
        ok_agree = a["factor_diff_rms"] <= tol
        ok_truth = a["fringe_rms_after_mrsdask"] <= a["fringe_rms_after_official"]
        print(f"agreement: rms difference {a['factor_diff_rms']:.5f} <= sum of errors vs truth {tol:.5f}: "
              f"{'OK' if ok_agree else 'NO'}; mrsdask error <= official error: {'OK' if ok_truth else 'NO'}; "
              f"{'whole processes' if name == 'command' else 'steps only'}, wall >= 20x: "
              f"{'OK' if speed >= 20 else 'NO'}")
        ok = ok and ok_agree and ok_truth
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
