"""s3d and x1d files written straight to an object store (moto on loopback), nothing local."""

import io
import os
import subprocess
import sys

import xarray as xr
from astropy.io import fits


def _cli(*args, env, cwd):
    return subprocess.run([sys.executable, "-m", "mrsdask.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_export_and_extract_write_to_s3(window_cube_1a, s3_env_here, bucket, tmp_path, capsys, monkeypatch):
    """Each command in its own process first, as a user runs it; run again in this process (the
    same ``main``; a fresh interpreter costs seconds of imports) it replaces its own file."""
    from tests.conftest import run_cli_here

    store, cube = window_cube_1a
    s3_env = s3_env_here
    monkeypatch.chdir(tmp_path)  # for the runs in this process, as cwd= for the others
    name, fs = bucket
    product = xr.open_zarr(store, group=cube, consolidated=False).attrs["product_name"]  # files start with it
    for command, option, kind in (("export", "--s3d", "s3d"), ("extract", "--x1d", "x1d")):
        proc = _cli(command, store, option, f"s3://{name}/out/{kind}", env=s3_env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        key = f"{name}/out/{kind}/{product}_{cube}_{kind}.fits"
        with fits.open(io.BytesIO(fs.cat_file(key))) as hdul:
            assert hdul[0].header["ORIGIN"] == "mrsdask" and hdul[0].header["FILENAME"] == os.path.basename(key)
            if kind == "s3d":
                assert hdul["SCI"].data.ndim == 3
            else:
                assert "FLUX" in hdul["EXTRACT1D"].columns.names
        # Its own file is replaced by the same command; nothing half-written is left.
        again = run_cli_here(capsys, command, store, option, f"s3://{name}/out/{kind}")
        assert again.returncode == 0, again.stderr[-3000:]
        assert fs.ls(f"{name}/out/{kind}", detail=False) == [key]
    assert os.listdir(tmp_path) == [], "a local folder was made for the s3:// output"
