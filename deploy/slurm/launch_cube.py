#!/usr/bin/env python
"""Start Dask workers as SLURM (or PBS) jobs and run ``mrsdask cube`` on them.

Run it on a login node (or inside a small batch job) from the environment that has mrsdask and
dask-jobqueue (``pip install "mrsdask[deploy]"``)::

    python deploy/slurm/launch_cube.py --jobs 4 -- \\
        /scratch/$USER/obs/jw_spec3_asn.json -o /scratch/$USER/obs/cubes.zarr --output-type band

Everything after ``--`` is passed to ``mrsdask cube``, with ``--scheduler ADDRESS`` added. The
scheduler runs in this process; workers are batch jobs described by ``jobqueue.yaml``. If the run
is interrupted (walltime, node failure), run the same command again: finished slabs are reused.
``--dry-run`` prints the batch script that would be submitted and the command, and submits nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def make_cluster(system: str, config: str | None, **overrides):
    """A ``SLURMCluster``/``PBSCluster`` from the jobqueue YAML (and keyword overrides)."""
    import dask
    import yaml

    if config:
        with open(config) as fobj:
            dask.config.update(dask.config.config, yaml.safe_load(fobj), priority="new")
    from dask_jobqueue import PBSCluster, SLURMCluster

    cls = {"slurm": SLURMCluster, "pbs": PBSCluster}[system]
    return cls(**{k: v for k, v in overrides.items() if v is not None})


def cube_command(address: str, cube_args: list[str]) -> list[str]:
    """The ``mrsdask cube`` command line run against the batch cluster."""
    from mrsdask.scheduling import Scheduling

    return ["mrsdask", "cube", *cube_args, *Scheduling(scheduler=address, progress=True).flags()]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cube_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=["slurm", "pbs"], default="slurm")
    parser.add_argument("--config", default=os.path.join(HERE, "jobqueue.yaml"), help="jobqueue YAML")
    parser.add_argument("--jobs", type=int, default=2, help="batch jobs of workers")
    parser.add_argument("--queue", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--walltime", default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the job script and the command only")
    args = parser.parse_args(own)
    if not cube_args:
        parser.error("give the mrsdask cube arguments after --")
    cluster = make_cluster(args.system, args.config, queue=args.queue, account=args.account,
                           walltime=args.walltime)
    try:
        if args.dry_run:
            print(cluster.job_script())
            print(" ".join(cube_command(cluster.scheduler_address, cube_args)))
            return 0
        cluster.scale(jobs=args.jobs)
        print(f"scheduler {cluster.scheduler_address}, dashboard {cluster.dashboard_link}; "
              f"{args.jobs} {args.system.upper()} job(s) requested", flush=True)
        return subprocess.call(cube_command(cluster.scheduler_address, cube_args))
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
