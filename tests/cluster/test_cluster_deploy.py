"""deploy/: the configurations parse, name the mrsdask image and sane resources, and render.

No batch system, Kubernetes or gateway runs here: the checks are structural (PyYAML), dry runs
(dask-jobqueue renders the real job script; the gateway launcher runs against a stand-in gateway
whose client is a real in-process cluster) and a lint of the Dockerfile and its entrypoint.
"""

import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
IMAGE = re.compile(r"^ghcr\.io/mrsdask/mrsdask:\d+\.\d+\.\d+$")


def _load_all(*parts):
    with open(os.path.join(DEPLOY, *parts)) as fobj:
        return [doc for doc in yaml.safe_load_all(fobj) if doc is not None]


def _bytes(text) -> float:
    from dask.utils import parse_bytes

    return float(parse_bytes(str(text).replace("Gi", "GiB").replace("Mi", "MiB")))


def _no_literal_credentials(env):
    for item in env or []:
        if item["name"] in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
            assert "value" not in item and "secretKeyRef" in item.get("valueFrom", {}), item


def _arg(args, flag):
    return args[args.index(flag) + 1]


def _launcher(kind):
    """Import ``deploy/<kind>/launch_cube.py`` under its own module name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"launch_cube_{kind}", os.path.join(DEPLOY, kind, "launch_cube.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_covers_every_deployment():
    with open(os.path.join(DEPLOY, "README.md")) as fobj:
        text = fobj.read()
    for topic in ("SLURM", "PBS", "Kubernetes", "Helm", "dask-gateway", "Dockerfile", "s3://stpubdata/jwst/public/",
                  "DASK_SCHEDULER_ADDRESS", "credentials"):
        assert topic in text, topic
    for path in ("slurm/jobqueue.yaml", "slurm/launch_cube.py", "kubernetes/daskcluster.yaml",
                 "kubernetes/values.yaml", "gateway/values.yaml", "gateway/gateway.yaml", "gateway/launch_cube.py",
                 "container/Dockerfile", "container/entrypoint.sh"):
        assert os.path.exists(os.path.join(DEPLOY, path)), path
        assert path in text, f"deploy/README.md does not mention {path}"


# --------------------------------------------------------------------------- Kubernetes
def test_dask_operator_manifests():
    docs = _load_all("kubernetes", "daskcluster.yaml")
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ServiceAccount", "DaskCluster", "Job"}
    sa = kinds["ServiceAccount"]["metadata"]["name"]
    cluster = kinds["DaskCluster"]
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    name = cluster["metadata"]["name"]
    spec = cluster["spec"]
    worker = spec["worker"]["spec"]["containers"][0]
    scheduler = spec["scheduler"]["spec"]["containers"][0]
    assert spec["worker"]["replicas"] >= 1
    for pod, container in ((spec["worker"]["spec"], worker), (spec["scheduler"]["spec"], scheduler)):
        assert IMAGE.match(container["image"]), container["image"]
        assert pod["serviceAccountName"] == sa
        _no_literal_credentials(container.get("env"))
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    args = worker["args"]
    assert args[0] == "dask-worker" and _arg(args, "--nthreads") == "1"
    # The worker's Dask memory limit fits its container, and holds a pixel-table task.
    from mrsdask.cube.memory import TaskBudget, PIXEL_TABLE_TASK_BYTES

    limit = _bytes(_arg(args, "--memory-limit"))
    assert limit <= _bytes(worker["resources"]["limits"]["memory"])
    assert TaskBudget(int(limit)).per_task > PIXEL_TABLE_TASK_BYTES
    assert scheduler["args"][0] == "dask-scheduler"
    ports = {p["name"]: p for p in spec["scheduler"]["service"]["ports"]}
    assert ports["tcp-comm"]["port"] == 8786 and "http-dashboard" in ports
    assert spec["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == name
    # The Job runs `mrsdask cube` (the image's entrypoint) against the cluster's scheduler Service.
    job = kinds["Job"]["spec"]["template"]["spec"]
    container = job["containers"][0]
    assert IMAGE.match(container["image"]) and container["args"][0] == "cube"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DASK_SCHEDULER_ADDRESS"] == f"tcp://{name}-scheduler:{ports['tcp-comm']['port']}"
    assert container["args"][container["args"].index("-o") + 1].startswith("s3://")
    _no_literal_credentials(container["env"])
    assert job["serviceAccountName"] == sa


def test_helm_values_for_the_dask_chart():
    (values,) = _load_all("kubernetes", "values.yaml")
    assert set(values) >= {"scheduler", "worker", "jupyter"}
    for part in ("scheduler", "worker"):
        image = values[part]["image"]
        assert IMAGE.match(f"{image['repository']}:{image['tag']}")
        assert values[part]["resources"]["limits"]["memory"]
    worker = values["worker"]
    assert worker["image"]["dask_worker"] == "dask-worker" and worker["threads_per_worker"] == 1
    assert worker["replicas"] >= 1 and values["jupyter"]["enabled"] is False
    from mrsdask.cube.memory import TaskBudget, PIXEL_TABLE_TASK_BYTES

    assert TaskBudget(int(_bytes(worker["resources"]["limits"]["memory"]))).per_task > PIXEL_TABLE_TASK_BYTES
    _no_literal_credentials(worker["env"])


# --------------------------------------------------------------------------- SLURM / PBS
@pytest.mark.parametrize("system", ["slurm", "pbs"])
def test_jobqueue_config_renders_a_job_script(system):
    pytest.importorskip("dask_jobqueue")
    launch_cube = _launcher("slurm")
    (config,) = _load_all("slurm", "jobqueue.yaml")
    section = config["jobqueue"][system]
    assert section["processes"] == section["cores"]  # one single-threaded worker per core
    from mrsdask.cube.memory import TaskBudget, PIXEL_TABLE_TASK_BYTES

    per_worker = _bytes(section["memory"]) / section["processes"]
    assert TaskBudget(int(per_worker)).per_task > PIXEL_TABLE_TASK_BYTES
    cluster = launch_cube.make_cluster(system, os.path.join(DEPLOY, "slurm", "jobqueue.yaml"), queue="compute",
                                       account="jwst", scheduler_options={"host": "127.0.0.1",
                                                                          "dashboard_address": "127.0.0.1:0"})
    try:
        script = cluster.job_script()
        command = launch_cube.cube_command(cluster.scheduler_address, ["in.json", "-o", "out.zarr"])
    finally:
        cluster.close()
    directive = "#SBATCH" if system == "slurm" else "#PBS"
    assert f"{directive} -A jwst" in script and "compute" in script
    assert "MRSDASK_VENV" in script and "/bin/activate" in script and "OMP_NUM_THREADS=1" in script
    assert "--nthreads 1" in script and "--nworkers 8" in script and "--memory-limit 7.45GiB" in script
    assert "--lifetime 3h50m" in script and cluster.scheduler_address in script
    if system == "slurm":
        assert "#SBATCH -t 04:00:00" in script and "#SBATCH --mem=60G" in script
    else:
        assert "select=1:ncpus=8:mem=64GB" in script
    assert command[:2] == ["mrsdask", "cube"] and command[-2:] == ["--scheduler", cluster.scheduler_address]


def test_slurm_launcher_dry_run_prints_the_script_and_the_command():
    pytest.importorskip("dask_jobqueue")
    env = dict(os.environ, DASK_JOBQUEUE__SLURM__SCHEDULER_OPTIONS='{"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}')
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    proc = subprocess.run([sys.executable, os.path.join(DEPLOY, "slurm", "launch_cube.py"), "--dry-run", "--",
                           "obs_asn.json", "-o", "cubes.zarr"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "#SBATCH -J mrsdask-worker" in proc.stdout
    assert re.search(r"^mrsdask cube obs_asn\.json -o cubes\.zarr --scheduler tcp://127\.0\.0\.1:\d+$",
                     proc.stdout, re.M), proc.stdout[-2000:]


# --------------------------------------------------------------------------- dask-gateway
def test_gateway_values_and_client_config():
    (values,) = _load_all("gateway", "values.yaml")
    backend = values["gateway"]["backend"]
    assert IMAGE.match(f"{backend['image']['name']}:{backend['image']['tag']}")
    assert backend["worker"]["threads"] == 1 and backend["worker"]["memory"]["limit"]
    assert "AWS_SECRET_ACCESS_KEY" not in str(values)
    code = values["gateway"]["extraConfig"]["mrsdask-options"]
    compile(code, "extraConfig", "exec")  # valid Python
    assert "worker_memory" in code and "c.Backend.cluster_options" in code
    (client,) = _load_all("gateway", "gateway.yaml")
    assert client["gateway"]["address"].startswith("https://")
    assert set(client["gateway"]["cluster"]["options"]) == {"worker_cores", "worker_memory", "image_tag"}


def test_gateway_launcher_builds_through_the_gateway_client(monkeypatch, sim_1a, reference, tmp_path, capsys):
    """A stand-in Gateway whose cluster is a real in-process Dask cluster: the launcher builds the
    cube through the Python API on that cluster's client, and it equals the reference build."""
    pytest.importorskip("dask_gateway")
    import types

    import numpy as np
    from distributed import Client, LocalCluster

    from tests.cluster import dask_procs

    local = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0")
    seen = {}

    class FakeCluster:
        name = "fake"
        dashboard_link = local.dashboard_link

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def scale(self, n):
            seen["scale"] = n

        def get_client(self, set_as_default=True):
            return Client(local, set_as_default=set_as_default)

    class FakeGateway:
        def cluster_options(self):
            return types.SimpleNamespace(worker_memory=8)

        def new_cluster(self, options):
            seen["options"] = options
            return FakeCluster()

    monkeypatch.setattr("dask_gateway.Gateway", FakeGateway)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    gateway_launch = _launcher("gateway")
    store = str(tmp_path / "cubes.zarr")
    try:
        rc = gateway_launch.main(["--workers", "3", "--worker-memory", "12", "--", *map(str, sim_1a.cal_files),
                                  "-o", store, "--channel", "1", "--band", "short"])
    finally:
        local.close()
    out = capsys.readouterr().out
    assert rc == 0 and seen["scale"] == 3 and seen["options"].worker_memory == 12
    assert f"current Dask client: scheduler {local.scheduler_address}" in out  # not a new cluster, not in process
    assert "ch1-short" in out
    got = dask_procs.cube_arrays(store)
    for name, value in reference.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


# --------------------------------------------------------------------------- container
def _dockerfile():
    """Instructions of the Dockerfile as (KEYWORD, argument) with continuation lines joined."""
    with open(os.path.join(DEPLOY, "container", "Dockerfile")) as fobj:
        text = re.sub(r"\\\n", " ", fobj.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_lint():
    import json

    instructions = _dockerfile()
    known = {"FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE"}
    assert all(k in known for k, _ in instructions), instructions
    assert instructions[0][0] == "FROM" and re.match(r"python:3\.1[1-9]-slim", instructions[0][1])
    runs = " ".join(rest for k, rest in instructions if k == "RUN")
    # the package with its object-store extra (s3fs): workers read and write s3:// stores
    assert re.search(r"pip install (--no-cache-dir )?\"?\.\[s3\]\"?( |$)", runs), runs
    copies = [rest for k, rest in instructions if k == "COPY"]
    assert any("pyproject.toml" in c for c in copies) and any(c.startswith("mrsdask ") for c in copies)
    for src in (c.split()[0] for c in copies):  # every COPY source exists in the build context (repo root)
        assert os.path.exists(os.path.join(ROOT, src)), src
    user = [rest for k, rest in instructions if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    env = " ".join(rest for k, rest in instructions if k == "ENV")
    assert "AWS_SECRET" not in env and "AWS_ACCESS_KEY" not in env
    (entry,) = [json.loads(rest) for k, rest in instructions if k == "ENTRYPOINT"]
    assert entry == ["/usr/local/bin/mrsdask-entrypoint"]


def test_container_entrypoint_is_mrsdask_and_passes_dask_commands_through(tmp_path):
    """Run the entrypoint script with stand-in programs on PATH."""
    for name in ("mrsdask", "dask-worker", "dask"):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        stub.chmod(0o755)
    script = os.path.join(DEPLOY, "container", "entrypoint.sh")
    env = dict(os.environ, PATH=f"{tmp_path}:/usr/bin:/bin")

    def run(*args):
        return subprocess.run(["sh", script, *args], capture_output=True, text=True, env=env).stdout.strip()

    assert run("cube", "s3://b/x_cal.fits", "-o", "s3://b/c.zarr") == "mrsdask cube s3://b/x_cal.fits -o s3://b/c.zarr"
    assert run("--help") == "mrsdask --help"
    assert run("dask-worker", "tcp://s:8786", "--nthreads", "1") == "dask-worker tcp://s:8786 --nthreads 1"
    assert run("dask", "scheduler") == "dask scheduler"
