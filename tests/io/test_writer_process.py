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


def test_without_a_process_a_writer_runs_here():
    from mrsdask.cube.gwcs_document import cube_asdf_bytes

    wave = np.linspace(5.0, 5.1, 7, dtype=np.float32)
    assert writer_process.run("cube_asdf_bytes", HEADER, (7, 9, 9), wave) == cube_asdf_bytes(HEADER, (7, 9, 9), wave)


def test_the_extensions_an_asdf_document_used_are_listed_in_one_order():
    """asdf lists them from a set: whatever order it gives, the s3d document is the same bytes,
    of the same length (binary blocks stay where they are), and asdf reads it."""
    import io

    import asdf

    from mrsdask.cube.gwcs_document import cube_asdf_bytes
    from mrsdask.io.asdf_tree import sorted_extension_history

    wave = np.linspace(5.0, 5.1, 7, dtype=np.float32)
    document = cube_asdf_bytes(HEADER, (7, 9, 9), wave)
    lines = document.split(b"\n")
    start = lines.index(b"  extensions:") + 1
    end = next(k for k in range(start, len(lines)) if not lines[k].startswith(b"  "))
    entries = b"\n".join(lines[start:end]).replace(b"\n  - ", b"\n\0  - ").split(b"\n\0")
    assert len(entries) >= 3 and entries == sorted(entries)
    for shuffled in (entries[::-1], entries[1:] + entries[:1]):
        other = b"\n".join(lines[:start] + [b"\n".join(shuffled)] + lines[end:])
        assert other != document and len(other) == len(document)
        assert sorted_extension_history(other) == document
    with asdf.open(io.BytesIO(document)) as af:
        assert af.tree["meta"]["wcs"].output_frame.name == "world"
    assert sorted_extension_history(b"#ASDF 1.0.0\nmeta: {}\n...\n") == b"#ASDF 1.0.0\nmeta: {}\n...\n"


def test_no_process_once_the_writers_are_loaded_here_or_with_other_threads():
    from mrsdask.cube.gwcs_document import load_writer

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
        from mrsdask.cube.gwcs_document import cube_asdf_bytes
        here = cube_asdf_bytes(header, (7, 9, 9), wave)  # byte for byte: extensions listed in sorted order
        print(there == here, again == here, failure, sep="|")
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


def test_lighter_asdf_leaves_out_the_unused_plugins_and_writes_the_same_x1d(tmp_path):
    """In fresh interpreters: the x1d file the writer process writes (asdf lightened there) is the
    one a process with every asdf plugin writes, and the lightened asdf never imports ndcube."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import xarray as xr
        from mrsdask.io import writer_process
        n = 50
        wave = np.linspace(5.0, 6.0, n)
        names = ("flux", "flux_error", "surf_bright", "sb_error", "background", "bkgd_error", "npixels",
                 "rf_flux", "rf_surf_bright", "rf_background")
        data = {name: ("wavelength", np.linspace(1.0, 2.0, n) * (k + 1)) for k, name in enumerate(names)}
        data["dq"] = ("wavelength", np.arange(n, dtype=np.uint32) % 2)
        spectrum = xr.Dataset(data, coords={"wavelength": wave}, attrs={
            "slit_ra": 10.0, "slit_dec": -20.0, "source_type": "POINT", "x_center": 4.0, "y_center": 5.0,
            "center_from": "given (center_xy)", "channel": "1", "band": "short", "targ_ra": 10.0, "targ_dec": -20.0})
        if sys.argv[1] == "process":
            with writer_process.started("x1d") as process:
                assert process is not None
                writer_process.run("write_x1d", spectrum, sys.argv[2])
        else:
            import asdf
            from mrsdask.io.x1d import write_x1d
            write_x1d(spectrum, sys.argv[2])
            assert any(e.package_name == "ndcube" for e in asdf.get_config().extensions)  # every plugin here
            assert writer_process.lighter_asdf() is True  # what the process did, here after the write
            asdf.get_config().reset_extensions()
            assert not any(e.package_name in writer_process.UNUSED_ASDF_PLUGINS for e in asdf.get_config().extensions)
    """)
    files = {how: str(tmp_path / how / "spectrum_x1d.fits") for how in ("process", "here")}  # one FILENAME
    for how, path in files.items():
        (tmp_path / how).mkdir()
        out = subprocess.run([sys.executable, "-c", code, how, path], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    from astropy.io import fits

    with fits.open(files["process"]) as there, fits.open(files["here"]) as here:
        assert there["EXTRACT1D"].data.tobytes() == here["EXTRACT1D"].data.tobytes()
        documents = [h["ASDF"].data.tobytes().split(b"\n") for h in (there, here)]  # extensions sorted: same order
    undated = [[line for line in d if b"date:" not in line and b"_fits_hash:" not in line] for d in documents]
    assert undated[0] == undated[1]


def test_lighter_asdf_does_not_import_the_left_out_packages():
    code = textwrap.dedent("""
        import sys
        from mrsdask.io import writer_process
        assert writer_process.lighter_asdf() is True
        from mrsdask.io.x1d import load_writer
        load_writer()
        print(sorted(p for p in writer_process.UNUSED_ASDF_PLUGINS + ("matplotlib", "crds") if p in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_s3d_writer_loads_no_xarray_dask_or_zarr():
    """What the s3d writer process loads (on the core the build's first tasks need) is the gwcs
    and asdf side only: the rest of the s3d writer's imports (~0.9 CPU-s) stay out of it."""
    code = textwrap.dedent("""
        import sys
        from mrsdask.io import writer_process
        writer_process.lighter_asdf()
        writer_process._function(writer_process.LOADERS["s3d"][0])()
        print(sorted(m for m in ("xarray", "pandas", "dask", "dask.array", "zarr", "numba") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"
