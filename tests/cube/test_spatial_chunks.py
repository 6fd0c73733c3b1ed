"""``spatial_chunks``: cubes chunked across the field for spaxel-by-spaxel queries."""

import numpy as np
import pytest
import xarray as xr
import zarr

import mrsdask.cube


class CountingStore(zarr.storage.WrapperStore):
    """A real local zarr store that counts the chunk reads of each array."""

    def __init__(self, store):
        super().__init__(store)
        self.reads: dict[str, int] = {}

    async def get(self, key, prototype, byte_range=None):
        if "/c/" in key:
            array = key.split("/c/")[0]
            self.reads[array] = self.reads.get(array, 0) + 1
        return await super().get(key, prototype, byte_range)


def _spaxel_reads(root: str, name: str, y: int, x: int) -> tuple[int, int]:
    counting = CountingStore(zarr.storage.LocalStore(root, read_only=True))
    cube = xr.open_zarr(counting, group=name, consolidated=False)
    values = cube["sci"].isel(y=y, x=x).values
    assert np.isfinite(values).any()
    n_chunks = int(np.prod([len(c) for c in cube["sci"].chunks]))
    return counting.reads.get(f"{name}/sci", 0), n_chunks


@pytest.mark.parametrize("output_type", ["band", "multi"])
def test_a_spaxel_spectrum_reads_a_fraction_of_a_spatially_chunked_cube(sim_1a, tmp_path, output_type):
    files = [str(p) for p in sim_1a.cal_files]
    window = {"channels": (1,), "wavemin": 5.0, "wavemax": 5.2, "slab_planes": 64, "scheduler": "threads",
              "output_type": output_type}
    (name, whole), = mrsdask.cube.build(files, str(tmp_path / "whole.zarr"), **window).items()
    chunked = mrsdask.cube.build(files, str(tmp_path / "chunked.zarr"), spatial_chunks=12, **window)[name]
    assert whole.attrs["wavelength_axis"] == ("tabular" if output_type == "multi" else "linear")
    assert whole["sci"].encoding["chunks"][1:] == whole["sci"].shape[1:]
    assert chunked["sci"].encoding["chunks"][1:] == (12, 12)
    for var in ("sci", "err", "dq", "wmap"):  # the same cube, stored otherwise
        np.testing.assert_array_equal(chunked[var].values, whole[var].values)
    y, x = (s // 2 for s in whole["sci"].shape[1:])
    read, total = _spaxel_reads(str(tmp_path / "chunked.zarr"), name, y, x)
    assert read == len(chunked["sci"].chunks[0]) and read <= 0.1 * total, (read, total)
    read, total = _spaxel_reads(str(tmp_path / "whole.zarr"), name, y, x)
    assert read == total  # whole-field chunks: every chunk holds a piece of the spectrum
