"""The writer process: the same outputs as writing here, its failures reported, a lost process replaced."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from mrsdask.io import writer_process

HEADER = "\n".join([
    "WCSAXES = 3", "CRPIX1 = 5.0", "CRPIX2 = 5.0", "CRPIX3 = 1.0", "CRVAL1 = 10.0", "CRVAL2 = -20.0",
    "CRVAL3 = 5.0", "CDELT1 = 3.6E-05", "CDELT2 = 3.6E-05", "CDELT3 = 0.001", "CTYPE1 = 'RA---TAN'",
    "CTYPE2 = 'DEC--TAN'", "CTYPE3 = 'WAVE'", "CUNIT1 = 'deg'", "CUNIT2 = 'deg'", "CUNIT3 = 'um'",
    "PC1_1 = -1.0", "PC1_2 = 0.0", "PC1_3 = 0.0", "PC2_1 = 0.0", "PC2_2 = 1.0", "PC2_3 = 0.0",
    "PC3_1 = 0.0", "PC3_2 = 0.0", "PC3_3 = 1.0"])


def comparable(document: bytes) -> bytes:
    """An ASDF document without its list of extensions used, whose order changes from one
    process to the next (asdf keeps them in a set)."""
    lines = document.split(b"\n")
    start = lines.index(b"history:")
    end = next(k for k in range(start + 1, len(lines)) if lines[k][:1] not in (b" ", b"-"))
    return b"\n".join(lines[:start] + lines[end:])


def test_without_a_process_a_writer_runs_here():
    from mrsdask.cube.export import cube_asdf_bytes

    wave = np.linspace(5.0, 5.1, 7, dtype=np.float32)
    assert writer_process.run("cube_asdf_bytes", HEADER, (7, 9, 9), wave) == cube_asdf_bytes(HEADER, (7, 9, 9), wave)


def test_no_process_once_the_writers_are_loaded_here_or_with_other_threads():
    from mrsdask.cube.export import load_writer

    load_writer()
    with writer_process.started("s3d") as process:
        assert process is None
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with writer_process.started("x1d") as process:
            assert process is None or "stdatamodels.jwst.datamodels" not in sys.modules
            assert process is None  # another thread runs: no fork
    finally:
        stop.set()
        other.join()


def test_the_process_writes_what_this_process_writes_and_reports_failures():
    """In a fresh interpreter (the writers not loaded yet), as a command runs."""
    code = textwrap.dedent(f"""
        import sys, warnings
        import numpy as np
        from mrsdask.io import writer_process
        header = {HEADER!r}
        wave = np.linspace(5.0, 5.1, 7, dtype=np.float32)
        with writer_process.started("s3d") as process:
            assert process is not None
            assert "jwst.assign_wcs.pointing" not in sys.modules  # loaded there, not here
            there = writer_process.run("cube_asdf_bytes", header, (7, 9, 9), wave)
            assert "jwst.assign_wcs.pointing" not in sys.modules
            try:
                writer_process.run("cube_asdf_bytes", header.replace("WCSAXES = 3", "WCSAXES = 2"), (7, 9, 9), wave)
            except Exception as exc:
                failure = type(exc).__name__ + ": " + str(exc)
            else:
                failure = None
            process._proc.kill()  # lost: the next call runs here
            process._proc.join()
            with warnings.catch_warnings():
                again = writer_process.run("cube_asdf_bytes", header, (7, 9, 9), wave)
        from mrsdask.cube.export import cube_asdf_bytes
        from tests.io.test_writer_process import comparable
        here = comparable(cube_asdf_bytes(header, (7, 9, 9), wave))
        print(comparable(there) == here, comparable(again) == here, failure, sep="|")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    same, same_again, failure = out.stdout.strip().splitlines()[-1].split("|")
    assert same == "True" and same_again == "True"
    assert failure.startswith("ValueError") and "3 WCS axes" in failure
    assert "writer process stopped" in out.stderr  # the lost process is said, then replaced


@pytest.mark.parametrize("fmt", sorted(writer_process.LOADERS))
def test_every_format_names_a_loader_and_its_calls_exist(fmt):
    writer_process._function(writer_process.LOADERS[fmt][0])
    for name in writer_process.CALLS:
        assert callable(writer_process._function(name))
