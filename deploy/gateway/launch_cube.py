#!/usr/bin/env python
"""Build cubes on a dask-gateway cluster::

    python deploy/gateway/launch_cube.py --workers 8 -- s3://bucket/in/*_cal.fits -o s3://bucket/cubes.zarr

A gateway cluster is reached through the gateway's TLS proxy, so the build runs in this process
through the Python API (:func:`mrsdask.cube.build`, with the gateway client as the current Dask
client) rather than as a separate ``mrsdask --scheduler`` command. The arguments after ``--``
are the inputs, ``-o STORE`` and the cube options of ``mrsdask cube`` (the flags of
:class:`mrsdask.cube.plan.CubeRequest`, ``--cubepar``, ``--overwrite``).
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_config(path: str | None) -> None:
    """Merge a gateway YAML (``gateway.address``, ``auth``, ``cluster.options``) into Dask's config."""
    if not path:
        return
    import dask
    import yaml

    with open(path) as fobj:
        dask.config.update(dask.config.config, yaml.safe_load(fobj), priority="new")


def cube_parser() -> argparse.ArgumentParser:
    """The build's own arguments: inputs, ``-o`` and the cube options (declared in ``CubeRequest``)."""
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.options import add_arguments

    parser = argparse.ArgumentParser(prog="launch_cube.py ... --", description="the cube build")
    parser.add_argument("inputs", nargs="+", help="cal files, globs, association JSON or a detector store")
    parser.add_argument("-o", "--output", required=True, help="zarr cube store (path or s3:// URL)")
    parser.add_argument("--cubepar", default=None, help="official CUBEPAR reference file")
    parser.add_argument("--overwrite", action="store_true", help="rebuild cubes already complete in the store")
    add_arguments(parser, CubeRequest)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cube_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(HERE, "gateway.yaml"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-memory", type=float, default=None, help="GB per worker (cluster option)")
    args = parser.parse_args(own)
    load_config(args.config)

    from dask_gateway import Gateway

    import mrsdask.cube
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.options import from_arguments
    from mrsdask.scheduling import Scheduling

    cube = cube_parser().parse_args(cube_args)
    request = from_arguments(CubeRequest, cube)  # a bad option fails before the cluster is asked for
    gateway = Gateway()
    options = gateway.cluster_options()
    if args.worker_memory is not None:
        options.worker_memory = args.worker_memory
    with gateway.new_cluster(options) as cluster:
        cluster.scale(args.workers)
        print(f"dask-gateway cluster {cluster.name}: dashboard {cluster.dashboard_link}", flush=True)
        with cluster.get_client(set_as_default=True) as client:
            client.wait_for_workers(1, timeout=600)
            # The gateway client is the current one: mrsdask uses it instead of a local cluster.
            os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
            cubes = mrsdask.cube.build(cube.inputs, cube.output, request, cubepar=cube.cubepar,
                                       overwrite=cube.overwrite, scheduling=Scheduling(progress=True), announce=print)
    for name, data in cubes.items():
        print(f"  {name}: {data.sizes['x']} x {data.sizes['y']} x {data.sizes['wavelength']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
