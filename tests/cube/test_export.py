"""The s3d export's gwcs is the one jwst's ``create_fitswcs`` makes from an ``IFUCubeModel``."""

import io

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from mrsdask.cube.export import cube_gwcs
from mrsdask.cube.gwcs_document import _wave_table

_HEADER = """WCSAXES = 3
CRPIX1  = 36.0
CRPIX2  = 34.0
CRVAL1  = 80.492606822
CRVAL2  = -69.49970377150001
CDELT1  = 3.61111097865634E-05
CDELT2  = 3.61111097865634E-05
CTYPE1  = 'RA---TAN'
CTYPE2  = 'DEC--TAN'
CUNIT1  = 'deg'
CUNIT2  = 'deg'
PC1_1   = -0.9
PC1_2   = 0.1
PC2_1   = 0.1
PC2_2   = 0.9
PC3_3   = 1.0
CUNIT3  = 'um'
RADESYS = 'ICRS'
"""
_LINEAR = "CTYPE3  = 'WAVE'\nCRVAL3  = 4.9\nCRPIX3  = 1.0\nCDELT3  = 0.001\n"
_TABULAR = "CTYPE3  = 'WAVE-TAB'\nPS3_0   = 'WCS-TABLE'\nPS3_1   = 'wavelength'\nCRVAL3  = 1.0\nCRPIX3  = 1.0\nCDELT3  = 1.0\n"


def _official_gwcs(ds, wavelength):
    """``cube_build``'s way: the keywords in an ``IFUCubeModel``, then ``create_fitswcs``."""
    from jwst.assign_wcs.pointing import create_fitswcs
    from stdatamodels.jwst.datamodels import IFUCubeModel

    header = fits.Header.fromstring(ds.attrs["wcs_header"], sep="\n")
    model = IFUCubeModel()
    for key, value in header.items():
        if key.lower().startswith(("wcsaxes", "crpix", "crval", "cdelt", "ctype", "cunit", "pc", "ps3_")):
            setattr(model.meta.wcsinfo, key.lower(), value)
    if header.get("CTYPE3") == "WAVE-TAB":
        model.wavetable = _wave_table(wavelength)
    wcs = create_fitswcs(model)
    wcs.bounding_box = ((0, ds.sizes["x"] - 1), (0, ds.sizes["y"] - 1), (0, ds.sizes["wavelength"] - 1))
    return wcs


def _asdf_bytes(wcs) -> bytes:
    import asdf

    buffer = io.BytesIO()
    asdf.AsdfFile({"wcs": wcs}).write_to(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("axis", [_LINEAR, _TABULAR], ids=["linear", "tabular"])
def test_cube_gwcs_is_create_fitswcs_of_the_model(axis):
    wavelength = np.linspace(4.9, 5.7, 40) ** 1.01
    text = "\n".join(fits.Card.fromstring(line.ljust(80)).image for line in (_HEADER + axis).splitlines())
    ds = xr.Dataset(coords={"wavelength": wavelength, "y": np.arange(5), "x": np.arange(6)},
                    attrs={"wcs_header": text})
    mine, official = cube_gwcs(ds), _official_gwcs(ds, wavelength)
    assert _asdf_bytes(mine) == _asdf_bytes(official)
    x, y, z = np.meshgrid(np.arange(6.0), np.arange(5.0), np.arange(0.0, 40.0, 3.0), indexing="ij")
    for got, want in zip(mine(x, y, z), official(x, y, z)):
        np.testing.assert_array_equal(got, want)


def test_open_cube_keeps_the_store_chunks_or_opens_without_dask(cube_1a):
    """Dask chunks are the store's (not merged into larger "auto" chunks: an extraction of a
    large cube then held several times the memory); ``dask=False`` gives lazy arrays without Dask,
    which the s3d export streams."""
    import zarr

    from mrsdask.cube.builder import open_cube

    store, name = cube_1a
    stored = zarr.open_group(store, mode="r")[name]["sci"].chunks
    cube = open_cube(store, name)
    assert tuple(c[0] for c in cube["sci"].chunks) == stored
    lazy = open_cube(store, name, dask=False)
    assert lazy["sci"].chunks is None and lazy["sci"].encoding["chunks"] == stored
    np.testing.assert_array_equal(lazy["sci"][:3].values, cube["sci"][:3].values)


def test_the_appended_tables_are_the_bytes_astropy_writes(tmp_path):
    """WCS-TABLE and ASDF written without astropy's table classes: the bytes of its BinTableHDUs."""
    import io

    from astropy.io import fits

    from mrsdask.cube.export import append_tables

    wave = np.linspace(4.9, 27.9, 1001).astype(np.float32)
    document = b"#ASDF 1.0.0\n" + bytes(range(256)) * 7
    path = tmp_path / "t.fits"
    fits.PrimaryHDU().writeto(path)
    append_tables(str(path), wave, document)
    table = fits.BinTableHDU(_wave_table(wave), name="WCS-TABLE")
    column = fits.Column(array=np.frombuffer(document, np.uint8)[None, :], format=f"{len(document)}B",
                         name="ASDF_METADATA")
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table, fits.BinTableHDU.from_columns([column], name="ASDF")]).writeto(buffer)
    assert path.read_bytes() == buffer.getvalue()
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul["WCS-TABLE"].data["wavelength"][0][:, 0], wave)
        assert bytes(hdul["ASDF"].data["ASDF_METADATA"][0]) == document
