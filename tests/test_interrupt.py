"""Ctrl-C during a command on a local cluster: one line, and the advised command resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_ctrl_c_during_ingest_prints_one_line_and_the_same_command_finishes_the_store(sim_1a, tmp_path):
    store = tmp_path / "det.zarr"
    args = ["ingest", *map(str, sim_1a.cal_files), "-o", str(store), "--n-workers", "2", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    # As from a terminal: its own process group, SIGINT not ignored (a background shell job ignores it).
    proc = subprocess.Popen([sys.executable, "-m", "mrsdask.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    while not (store / "zarr.json").exists():  # the store is being written
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert err.strip() == "mrsdask: interrupted; run the same command again to resume", err
    assert json.loads((store / "zarr.json").read_text())["attributes"]["mrsdask_complete"] is False

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads((store / "zarr.json").read_text())["attributes"]["mrsdask_complete"] is True
    once_more = run_cli(*args)
    assert once_more.returncode == 2 and "already exists; pass" in once_more.stderr, once_more.stderr
