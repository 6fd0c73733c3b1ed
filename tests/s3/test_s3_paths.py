"""Object-store paths: options from the environment only, per-process filesystems, output checks."""

import hashlib
import multiprocessing
import os

import pytest

from mrsdask.errors import ParameterError
from mrsdask.io import outputs, paths
from tests.cluster import dask_procs


def test_storage_options_come_from_the_environment_and_hold_no_credentials(monkeypatch, s3_secret):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("MRSDASK_S3_ANON", raising=False)
    opts = paths.storage_options_for("s3://bucket/x.zarr")
    assert opts["endpoint_url"] == "http://127.0.0.1:9"
    assert "anon" not in opts
    assert opts["config_kwargs"]["retries"]["max_attempts"] >= 3
    assert s3_secret not in repr(opts) and "AKIDEXAMPLE" not in repr(opts)
    # The public JWST bucket is read anonymously unless told otherwise.
    assert paths.storage_options_for("s3://stpubdata/jwst/public/jw01523/x_cal.fits")["anon"] is True
    monkeypatch.setenv("MRSDASK_S3_ANON", "0")
    assert "anon" not in paths.storage_options_for("s3://stpubdata/jwst/public/x_cal.fits")
    monkeypatch.setenv("MRSDASK_S3_ANON", "1")
    assert paths.storage_options_for("s3://private/x")["anon"] is True
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:10")
    assert paths.storage_options_for("s3://b/x")["endpoint_url"] == "http://127.0.0.1:10"
    assert paths.storage_options_for("/local/x.zarr") == {}


def _child_reads(url, parent_fs, queue):
    fs = paths.filesystem(url)
    with paths.open_file(url) as fobj:
        digest = hashlib.sha256(fobj.read()).hexdigest()
    queue.put((digest, fs is not parent_fs, os.getpid()))


def test_a_forked_process_gets_its_own_filesystem(s3_server, s3_env_here, bucket):
    """fsspec/s3fs instances (event loop, connection pool) are not fork-safe: a child makes its own."""
    name, fs = bucket
    payload = os.urandom(100_000)
    fs.pipe_file(f"{name}/blob.bin", payload)
    url = f"s3://{name}/blob.bin"
    parent_fs = paths.filesystem(url)
    assert paths.exists(url)  # the parent's instance is in use (loop and session started)
    with paths.open_file(url) as fobj:
        assert fobj.read() == payload
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_reads, args=(url, parent_fs, queue))
    child.start()
    digest, fresh, pid = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and pid != os.getpid()
    assert fresh, "the child reused its parent's filesystem instance"
    assert digest == hashlib.sha256(payload).hexdigest()


# --------------------------------------------------------------------------- output paths
def test_output_store_checks(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("keep me too")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="a file is already there"):
        outputs.check_output_store(str(tmp_path / "notes.txt"))
    with pytest.raises(ParameterError, match="not a zarr store"):
        outputs.check_output_store(str(tmp_path / "home"))
    with pytest.raises(ParameterError, match=r"'\.\.'"):
        outputs.check_output_store(str(tmp_path / "empty" / ".." / "home"))
    with pytest.raises(ParameterError, match="not the bucket itself"):
        outputs.check_output_store("s3://bucket")
    assert outputs.check_output_store(str(tmp_path / "empty")) == str(tmp_path / "empty")
    assert outputs.check_output_store(str(tmp_path / "new.zarr") + "/") == str(tmp_path / "new.zarr")
    import zarr

    zarr.open_group(str(tmp_path / "old.zarr"), mode="w")
    assert outputs.check_output_store(str(tmp_path / "old.zarr"))


@pytest.mark.parametrize("name", ["..", "../etc", "a/../../b", "/abs", "ch1/short", "a\\b", "", "~user"])
def test_group_names_must_stay_inside_the_store(tmp_path, name):
    from mrsdask.cube import store as cube_store

    with pytest.raises(ParameterError, match="group name"):
        cube_store.group_path(str(tmp_path / "c.zarr"), name)
    with pytest.raises(ParameterError, match="group name"):
        cube_store.create_cube_group(str(tmp_path / "c.zarr"), name, None, (8, 1, 1))
    assert cube_store.group_path("s3://b/c.zarr", "ch1-short") == "s3://b/c.zarr/ch1-short"


def test_commands_refuse_outputs_outside_a_store(sim_1a, tmp_path, capsys):
    """In this process (the command's ``main``): the refusal comes before any cluster starts."""
    from tests.conftest import run_cli_here

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "paper.txt").write_text("precious")
    proc = run_cli_here(capsys, "cube", sim_1a.cal_files[0], "-o", folder, *dask_procs.SELECTION,
                        "--n-workers", "1", "--no-progress", "--overwrite")
    assert proc.returncode == 2 and "not a zarr store" in proc.stderr, proc.stderr
    assert sorted(os.listdir(folder)) == ["paper.txt"]
    target = tmp_path / "det.txt"
    target.write_text("precious")
    proc = run_cli_here(capsys, "ingest", sim_1a.cal_files[0], "-o", target, "--overwrite", "--n-workers", "1",
                        "--no-progress")
    assert proc.returncode == 2 and "a file is already there" in proc.stderr, proc.stderr
    assert target.read_text() == "precious"


def test_without_s3fs_an_s3_path_is_one_clear_error_and_exit_2():
    """s3fs is the optional ``s3`` extra: without it an s3:// path names the extra to install."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['s3fs'] = None\n"
            "from mrsdask.cli import main\n"
            "sys.exit(main(['cube', 's3://bucket/inputs/x_cal.fits', '-o', 's3://bucket/cubes.zarr']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "pip install 'mrsdask[s3]'" in done.stderr and "Traceback" not in done.stderr
