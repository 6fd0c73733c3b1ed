"""The direct extraction of a store's cubes (mrsdask.extract.stored): the files of the lazy spectra."""

import os
import re
import shutil

import numpy as np
import pytest
import zarr
from astropy.io import fits

from mrsdask.extract.request import ExtractRequest
from mrsdask.extract.run import check_extraction, extract_cubes
from mrsdask.extract.stored import PlaneFiles, StoredCube
from mrsdask.scheduling import scheduler_block


def _same_x1d(a: str, b: str) -> None:
    """The two x1d files hold the same table, bit for bit, and the same headers (but their dates)."""
    with fits.open(a) as ha, fits.open(b) as hb:
        assert [h.name for h in ha] == [h.name for h in hb]
        ta, tb = ha["EXTRACT1D"].data, hb["EXTRACT1D"].data
        assert ta.dtype == tb.dtype
        for column in ta.columns.names:
            assert np.array_equal(ta[column], tb[column], equal_nan=True), column
        for i in range(len(ha) - 1):  # the ASDF extension: its tree's dates differ
            skip = {"DATE", "FILENAME"} if i == 0 else set()
            cards = [(c.keyword, c.value) for c in ha[i].header.cards if c.keyword not in skip]
            assert cards == [(c.keyword, c.value) for c in hb[i].header.cards if c.keyword not in skip], ha[i].name


@pytest.mark.parametrize("options", [
    {"ifu_set_srctype": "POINT"},  # apcorr on, annulus background
    {"ifu_set_srctype": "POINT", "apply_apcorr": False, "ifu_rscale": 1.5},
    {"ifu_set_srctype": "EXTENDED"},
    {"ifu_rfcorr": True, "spectral_leak": True},  # the defaults: the 1-D fringe fit (1A: one band), no 1B/3A pair
    {"ifu_set_srctype": "POINT", "ifu_autocen": True},  # the median image read by bands of rows from zarr
])
def test_a_direct_extraction_writes_the_files_of_the_lazy_spectra(sim_1a_cube, tmp_path, options):
    store, name = sim_1a_cube
    request = ExtractRequest(**{"spectral_leak": False, "ifu_rfcorr": False, **options})
    with scheduler_block("threads"):
        cubes = check_extraction(store, [name], request, direct=True)
        assert isinstance(cubes[name], StoredCube)
        direct = extract_cubes(store, [name], str(tmp_path / "direct"), "p", request, cubes=cubes)
        lazy = extract_cubes(store, [name], str(tmp_path / "lazy"), "p", request,
                             cubes=check_extraction(store, [name], request))
    _same_x1d(direct[0], lazy[0])
    if request.ifu_autocen:  # a source found, not the target position fallen back on
        assert fits.getheader(direct[0])["SRCPOS"].startswith("auto-centring (ifu_autocen")


def test_a_stored_array_selects_as_xarray_does(sim_1a_cube):
    """``isel`` of a StoredCube's array (what auto-centring reads) equals xarray's, and refuses
    what it cannot select."""
    from mrsdask.cube.reader import open_cube

    store, name = sim_1a_cube
    stored = StoredCube(zarr.open_group(os.path.join(store, name), mode="r"), name)
    cube = open_cube(store, name, dask=False)
    planes = np.array([0, 3, 4, 250, cube.sizes["wavelength"] - 1])
    for indexers in ({"wavelength": planes, "y": slice(2, 9)}, {"y": slice(0, 1)}, {"x": slice(5, None)}):
        selection = stored["sci"].isel(**indexers)
        expected = cube["sci"].isel(**indexers).values
        assert selection.shape == expected.shape, indexers
        assert np.array_equal(selection.values, expected, equal_nan=True), indexers
    with pytest.raises(ValueError, match="cannot select"):
        stored["sci"].isel(z=0)
    with pytest.raises(ValueError, match="cannot select"):
        stored["sci"].isel(y=slice(0, 2)).isel(x=slice(0, 2))


def test_plane_files_read_what_zarr_reads(sim_1a_cube, tmp_path):
    """Every chunk (the last one short), a chunk missing on disk (its fill value), and no reader
    for an array stored otherwise."""
    store, name = sim_1a_cube
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(store, copy)
    sci = zarr.open_group(os.path.join(copy, name), mode="r")["sci"]
    reader = PlaneFiles.of(sci)
    assert reader is not None
    nz, step = sci.shape[0], sci.chunks[0]
    os.remove(os.path.join(copy, name, "sci", "c", "1", "0", "0"))
    for z0 in range(0, nz, step):
        got, expected = reader.read(z0, min(z0 + step, nz)), sci[z0:z0 + step]
        assert got.dtype == expected.dtype and np.array_equal(got, expected, equal_nan=True), z0
    assert np.isnan(reader.read(step, min(2 * step, nz))).all()
    with pytest.raises(ValueError, match="not within one chunk"):
        reader.read(1, 2)
    other = zarr.create_array(str(tmp_path / "zlib.zarr"), shape=(4, 3, 2), chunks=(2, 3, 2), dtype="f4",
                              compressors=zarr.codecs.BloscCodec())
    assert PlaneFiles.of(other) is None
    assert PlaneFiles.of(zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 3, 2), chunks=(2, 3, 2),
                                           dtype="f4")) is None


def test_a_damaged_chunk_file_is_refused_naming_it(sim_1a_cube, tmp_path):
    """A chunk that does not decode, or decodes to fewer planes than a chunk holds, is an error
    naming the file and the repair (never planes left unfilled)."""
    import shutil

    import zarr
    from numcodecs import Zstd

    from mrsdask.errors import DamagedStoreError

    store, name = sim_1a_cube
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(store, copy)
    sci = zarr.open_group(os.path.join(copy, name), mode="r")["sci"]
    reader = PlaneFiles.of(sci)
    step = sci.chunks[0]
    first, second = (os.path.join(copy, name, "sci", "c", str(i), "0", "0") for i in (0, 1))
    with open(first, "r+b") as fobj:
        fobj.truncate(100)
    with pytest.raises(DamagedStoreError, match=rf"{first}: chunk of planes 0:{step} cannot be read .*"
                                                r"remove that file and run the same 'mrsdask cube' command"):
        reader.read(0, step)
    with open(second, "wb") as fobj:  # a whole zstd frame, of one plane fewer than a chunk
        fobj.write(Zstd().encode(np.zeros((step - 1,) + sci.shape[1:], dtype=sci.dtype).tobytes()))
    with pytest.raises(DamagedStoreError, match=f"{second}: .*bytes, a chunk of this array"):
        reader.read(step, 2 * step)
    # Auto-centring reads its planes before the slab tasks: a damaged chunk is named there too
    # (either of the two: zarr decodes the chunks of a read concurrently).
    from mrsdask.extract.run import check_extraction, extract_cubes

    request = ExtractRequest(ifu_autocen=True, ifu_set_srctype="POINT", spectral_leak=False, ifu_rfcorr=False)
    with scheduler_block("threads"):
        cubes = check_extraction(copy, [name], request, direct=True)
        assert isinstance(cubes[name], StoredCube)
        with pytest.raises(DamagedStoreError, match=f"({re.escape(first)}|{re.escape(second)}): chunk"):
            extract_cubes(copy, [name], str(tmp_path / "x1d"), "p", request, cubes=cubes)


def test_the_extract_command_imports_no_xarray(sim_1a_cube, tmp_path):
    """Nor pandas, Dask's arrays or astropy's WCS (~1 CPU-s): its writer process does the rest."""
    import subprocess
    import sys
    import textwrap

    store, name = sim_1a_cube
    code = textwrap.dedent(f"""
        import sys
        from mrsdask.cli.entry import main
        code = main(["extract", {store!r}, "--x1d", {str(tmp_path)!r}, "--ifu-set-srctype", "POINT",
                     "--no-spectral-leak", "--no-ifu-rfcorr", "--no-apply-apcorr", "--no-progress"])
        print(code, sorted(m for m in ("xarray", "pandas", "dask.array", "astropy.wcs") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "0 []"
    assert len(os.listdir(tmp_path)) == 1


def test_the_accessor_is_registered_when_xarray_is_imported():
    import subprocess
    import sys

    code = ("import sys, mrsdask; before = 'xarray' in sys.modules; import xarray as xr; "
            "print(before, hasattr(xr.Dataset, 'mrs'), xr.__spec__.loader is xr.__loader__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["False", "True", "True"]
