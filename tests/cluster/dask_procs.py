"""Helpers of the cluster and object-store tests (imported as ``tests.cluster.dask_procs``).

* :class:`SeparateCluster` — a real ``dask scheduler`` and ``dask worker`` (nanny) processes on
  loopback, started from a scheduler file, with their logs kept.
* :func:`start_s3_server` — a real S3-compatible HTTP server (moto) on 127.0.0.1.
* :class:`FaultyProxy` — an HTTP proxy in front of it that fails chosen requests.
* :func:`reference_cube` — the undisturbed local build every distributed/remote build must equal.
* :func:`cli` / :func:`cli_popen` — the ``mrsdask`` command as a subprocess.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

#: The stretch of band 1A (µm) that the cluster and object-store builds make: 570 planes, enough
#: slabs to kill a worker midway, a fraction of the whole band's time.
WAVEMIN, WAVEMAX = 5.0, 5.4
#: The small selection every test builds (12A simulated exposures, channel 1 short, that stretch).
SELECTION = ["--channel", "1", "--band", "short", "--wavemin", str(WAVEMIN), "--wavemax", str(WAVEMAX)]
CUBE = "ch1-short"
VARS = ("sci", "err", "dq", "wmap")


# --------------------------------------------------------------------------- processes
def clean_env(**extra) -> dict:
    """The test process's environment without a scheduler address, plus ``extra``."""
    env = dict(os.environ)
    for key in ("DASK_SCHEDULER_ADDRESS", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                "MRSDASK_S3_ANON"):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``mrsdask ARGS`` to completion."""
    return subprocess.run([sys.executable, "-m", "mrsdask.cli", *map(str, args)], capture_output=True,
                          text=True, env=env or clean_env(), timeout=timeout)


def cli_popen(*args, env=None, log=None) -> subprocess.Popen:
    """Start ``mrsdask ARGS`` in its own process group (so that the group can be killed)."""
    out = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "mrsdask.cli", *map(str, args)], stdout=out,
                            stderr=subprocess.STDOUT, env=env or clean_env(), start_new_session=True)


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL, timeout=30) -> None:
    """Kill a process started with :func:`cli_popen` and every process of its group."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(timeout=timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:  # wait for the group's other members (workers) to be gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


class SeparateCluster:
    """A scheduler and ``n_workers`` nanny-managed worker processes, all on 127.0.0.1.

    Started as ``python -m distributed.cli.dask_scheduler --scheduler-file F`` and
    ``python -m distributed.cli.dask_worker --scheduler-file F --nworkers N --nthreads 1
    --memory-limit M`` (what ``dask scheduler`` / ``dask worker`` run), each in its own process
    group, logging to files in ``folder``.
    """

    def __init__(self, folder, n_workers: int = 2, memory_limit: str = "1GB", env: dict | None = None):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.scheduler_file = os.path.join(self.folder, "scheduler.json")
        self.n_workers = n_workers
        self.env = env or clean_env()
        self.logs = {"scheduler": os.path.join(self.folder, "scheduler.log"),
                     "workers": os.path.join(self.folder, "workers.log")}
        self._procs: list[subprocess.Popen] = []
        self._files = []
        try:
            self._start(memory_limit)
        except BaseException:
            self.close()
            raise

    def _spawn(self, args, log):
        out = open(log, "w")
        self._files.append(out)
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=self.env, cwd=self.folder, start_new_session=True)
        self._procs.append(proc)
        return proc

    def _start(self, memory_limit: str) -> None:
        scheduler = self._spawn(["distributed.cli.dask_scheduler", "--scheduler-file", self.scheduler_file,
                                 "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"],
                                self.logs["scheduler"])
        deadline = time.time() + 60
        while not os.path.exists(self.scheduler_file):
            if scheduler.poll() is not None or time.time() > deadline:
                raise RuntimeError("scheduler did not start:\n" + open(self.logs["scheduler"]).read()[-3000:])
            time.sleep(0.1)
        time.sleep(0.2)
        with open(self.scheduler_file) as fobj:
            self.address = json.load(fobj)["address"]
        self._spawn(["distributed.cli.dask_worker", "--scheduler-file", self.scheduler_file,
                     "--nworkers", str(self.n_workers), "--nthreads", "1", "--memory-limit", memory_limit,
                     "--host", "127.0.0.1", "--no-dashboard", "--local-directory", self.folder],
                    self.logs["workers"])
        self.wait_for_workers(self.n_workers, timeout=120)

    def client(self):
        """A new ``distributed.Client`` (close it: an open client becomes the default scheduler)."""
        from distributed import Client

        return Client(self.address, timeout="30s", set_as_default=False)

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        """Block until the scheduler has ``n`` workers."""
        with self.client() as client:
            client.wait_for_workers(n, timeout=timeout)

    def worker_pids(self) -> dict[str, int]:
        """Worker address → process id (of the worker process itself, not its nanny)."""
        with self.client() as client:
            return client.run(os.getpid)

    def processing(self) -> dict[str, list]:
        """Tasks running on each worker, whichever client submitted them."""
        with self.client() as client:
            return {k: list(v) for k, v in client.processing().items()}

    def log_text(self) -> str:
        """Everything the scheduler and workers logged so far."""
        for f in self._files:
            f.flush()
        return "".join(open(p, errors="replace").read() for p in self.logs.values())

    def close(self) -> None:
        """Stop the workers, then the scheduler."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for f in self._files:
            f.close()


# --------------------------------------------------------------------------- stores
def slabs_done(root: str) -> np.ndarray | None:
    """The ``slab_done`` markers of the test cube, None before the cube group exists."""
    from mrsdask.cube import store as cube_store

    try:
        return cube_store.slabs_done(root, CUBE)
    except Exception:
        return None


def cube_arrays(root: str, storage_options: dict | None = None) -> dict[str, np.ndarray]:
    """The data variables and wavelengths of the finished test cube, opened with xarray."""
    import xarray as xr

    ds = xr.open_zarr(root, group=CUBE, consolidated=False, storage_options=storage_options)
    assert ds.attrs["mrsdask_complete"] is True
    out = {name: ds[name].values for name in VARS}
    out["wavelength"] = ds["wavelength"].values
    return out


def assert_same_cube(got: dict, expected: dict) -> None:
    """Bit-for-bit equality of two cubes (NaN in the same places)."""
    for name in (*VARS, "wavelength"):
        assert got[name].shape == expected[name].shape, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@functools.lru_cache(maxsize=4)
def reference_cube(cal_files: tuple[str, ...], folder: str, *, window: bool = False) -> dict[str, np.ndarray]:
    """The test cube built undisturbed in this process (synchronous scheduler, automatic slabs).

    ``window``: only :data:`WAVEMIN`–:data:`WAVEMAX` (what :data:`SELECTION` builds), else the
    whole band.
    """
    import dask

    from mrsdask.cube.builder import build_cubes
    from mrsdask.cube.plan import CubeRequest
    from mrsdask.io.detector_store import open_cal

    root = os.path.join(folder, "reference.zarr")
    ds = open_cal(list(cal_files))
    with dask.config.set(scheduler="synchronous"):
        limits = {"wavemin": WAVEMIN, "wavemax": WAVEMAX} if window else {}
        names = build_cubes(ds, root, CubeRequest(output_type="band", channels=(1,), subbands=("A",), **limits),
                            progress=False)
    assert names == [CUBE]
    return cube_arrays(root)


# --------------------------------------------------------------------------- S3
def start_s3_server():
    """A moto S3 server on 127.0.0.1 (random port) in a thread; returns (server, endpoint URL)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def s3_filesystem(endpoint: str):
    """An s3fs filesystem on the test server (dummy credentials from the environment)."""
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=endpoint, key="mrsdask-test-key", secret="mrsdask-test-admin",
                             skip_instance_cache=True, use_listings_cache=False)


class FaultyProxy:
    """An HTTP proxy on 127.0.0.1 in front of an S3 endpoint that fails chosen requests.

    ``rules`` is a list of ``(method, path regex, status, times)``: the first ``times``
    requests that match get ``status`` with an S3 error body instead of reaching the server.
    ``hits`` counts the failures served per rule.
    """

    CODES = {500: "InternalError", 503: "SlowDown", 403: "AccessDenied"}

    def __init__(self, upstream: str, rules: list[tuple[str, str, int, int]]):
        self.upstream = upstream.split("://", 1)[1]
        self.rules = [(m, re.compile(p), s, n) for m, p, s, n in rules]
        self.hits = [0] * len(rules)
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                fail = proxy._match(self.command, self.path)
                if fail:
                    payload = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{proxy.CODES[fail]}</Code>"
                               f"<Message>injected by the test</Message></Error>").encode()
                    self.send_response(fail)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=120)
                skip = ("connection", "keep-alive", "expect", "transfer-encoding", "content-length")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(key, value)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _match(self, method: str, path: str) -> int | None:
        with self._lock:
            self.requests += 1
            for i, (m, pattern, status, times) in enumerate(self.rules):
                if m == method and pattern.search(path) and self.hits[i] < times:
                    self.hits[i] += 1
                    return status
        return None

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


#: What :func:`fragment_heap` keeps (a worker-side module global, as a per-process cache would).
_PINNED: list = []


def fragment_heap(nbytes: int, block: int = 256 * 1024) -> int:
    """In a worker: allocate ``nbytes`` in heap-sized blocks, free all but the last; the RSS after.

    The one block kept sits above the freed ones, so glibc cannot give them back by shrinking
    the heap: the process keeps ``nbytes`` of free heap, as after a step of many mid-sized
    arrays, until something trims it.
    """
    from mrsdask.release import rss_bytes

    blocks = [np.ones(block // 8) for _ in range(max(1, nbytes // block))]
    _PINNED.append(blocks[-1])
    del blocks
    return rss_bytes()
