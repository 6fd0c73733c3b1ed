"""The dispatch layer (:mod:`mrsdask.dispatch`) on small arrays: blocks, groups, outputs, errors.

Each test compares the lazy result with the kernel applied to the whole numpy arrays, records
which blocks the kernel saw, or checks the note an exception gets.
"""

from __future__ import annotations

import threading

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from mrsdask.dispatch import Output, map_exposures, map_slabs, merge_exposures
from mrsdask.errors import ParameterError

E, NY, NX = 4, 10, 7


@pytest.fixture
def stack():
    """A detector-like Dataset of 4 exposures of 10 × 7 pixels, chunked by 4 rows (Dask)."""
    rng = np.random.default_rng(1)
    sci = rng.normal(size=(E, NY, NX)).astype(np.float32)
    dq = rng.integers(0, 3, size=(E, NY, NX)).astype(np.uint32)
    dims = ("exposure", "y", "x")
    return xr.Dataset(
        {"sci": (dims, da.from_array(sci, chunks=(1, 4, NX))), "dq": (dims, da.from_array(dq, chunks=(1, 4, NX))),
         "err": (dims, np.abs(sci) + 1)},  # in memory: its chunks come from the first input
        coords={"filename": ("exposure", [f"e{i}.fits" for i in range(E)]), "detector": ("exposure", list("AABB"))},
    )


class Seen:
    """A kernel that records the shape of every block it gets (thread safe)."""

    def __init__(self, func):
        self.func, self.shapes, self.lock = func, [], threading.Lock()

    def __call__(self, *arrays, **kwargs):
        with self.lock:
            self.shapes.append(tuple(a.shape for a in arrays))
        return self.func(*arrays, **kwargs)


def test_rows_follow_the_input_chunks_and_keep_them(stack):
    kernel = Seen(lambda sci, dq: {"masked": np.where(dq == 0, sci, np.nan), "bad": (dq > 0).astype(np.uint8)})
    out = map_exposures(kernel, stack, {"masked": np.float32, "bad": np.uint8}, inputs=("sci", "dq"))
    assert out["masked"].chunks == ((1,) * E, (4, 4, 2), (NX,))
    got = dask.compute(out, scheduler="sync")[0]
    sci, dq = stack["sci"].values, stack["dq"].values
    np.testing.assert_array_equal(got["masked"], np.where(dq == 0, sci, np.nan))
    np.testing.assert_array_equal(got["bad"], (dq > 0).astype(np.uint8))
    assert got["bad"].dtype == np.uint8
    # One call per exposure and block of rows, each with 2-D planes of that block.
    assert sorted(kernel.shapes) == sorted([((4, NX), (4, NX))] * 2 * E + [((2, NX), (2, NX))] * E)


def test_column_blocks_per_column_outputs_and_parameters(stack):
    def kernel(sci, err, scale, offset):
        return sci * scale + offset, np.nanmax(err, axis=0)[None].repeat(2, axis=0)

    outputs = {"sci": np.float32, "colmax": Output(np.float32, ("two", "x"), {"two": 2})}
    kernel = Seen(kernel)
    out = map_exposures(kernel, stack, outputs, inputs=("sci", "err"), exposures=[3, 1], blocks="columns",
                        block_size=3, per_exposure={"scale": [10.0, 100.0]}, shared={"offset": 1.0})
    # Per-column outputs are cut like the blocks; pixel outputs come back in the input's row chunks.
    assert out["colmax"].chunks == ((1, 1), (2,), (3, 3, 1))
    assert out["sci"].chunks == ((1, 1), (4, 4, 2), (NX,))
    got = dask.compute(out, scheduler="threads")[0]
    sci, err = stack["sci"].values, stack["err"].values
    np.testing.assert_allclose(got["sci"], np.stack([sci[3] * 10 + 1, sci[1] * 100 + 1]), rtol=1e-6)
    np.testing.assert_array_equal(got["colmax"][:, 0], err[[3, 1]].max(axis=1))
    assert sorted({s[0] for s in kernel.shapes}) == [(NY, 1), (NY, 3)]


def test_merge_exposures_replaces_and_keeps(stack):
    out = map_exposures(lambda sci: sci * 0 - 1, stack, {"sci": np.float32}, inputs=("sci",), exposures=[2, 0])
    original = stack["sci"].data
    merged = merge_exposures(original, [2, 0], out["sci"], keep=[3, 2, 0]).compute()
    np.testing.assert_array_equal(merged[0], stack["sci"].values[3])
    assert (merged[1:] == -1).all()
    as_list = merge_exposures(original, [1], [da.zeros((NY, NX), np.float32)]).compute()
    assert as_list.shape == (E, NY, NX) and (as_list[1] == 0).all() and (as_list[2] == stack["sci"].values[2]).all()


def test_no_exposure_gives_empty_outputs(stack):
    out = map_exposures(lambda sci: sci, stack, {"sci": np.float32, "col": Output(np.int8, ("k", "x"), {"k": 2})},
                        inputs=("sci",), exposures=[], blocks="columns")
    assert out["sci"].shape == (0, NY, NX) and out["col"].shape == (0, 2, NX) and out["col"].dtype == np.int8


def test_whole_frames_give_one_call_per_exposure(stack):
    kernel = Seen(lambda sci: {"sum": sci.sum(axis=0), "total": np.array([sci.sum()])})
    out = map_exposures(kernel, stack, {"sum": Output(np.float64, ("x",)), "total": Output(np.float64, ("one",),
                        {"one": 1})}, inputs=("sci",), blocks="exposure")
    got = dask.compute(out, scheduler="sync")[0]
    assert kernel.shapes == [((NY, NX),)] * E
    np.testing.assert_allclose(got["total"][:, 0], stack["sci"].values.sum(axis=(1, 2)), rtol=1e-5)


def test_groups_stack_their_exposures(stack):
    """Groups of different sizes: each task gets the group's exposures of one block, stacked."""
    kernel = Seen(lambda sci, dq: np.where(dq == 0, sci, 0).sum(axis=0))
    out = map_exposures(kernel, stack, {"sum": np.float64}, inputs=("sci", "dq"), groups=[[0, 1, 3], [2]])
    got = out["sum"].compute(scheduler="sync")
    sci, dq = stack["sci"].values, stack["dq"].values
    masked = np.where(dq == 0, sci, 0).astype(np.float64)
    np.testing.assert_allclose(got[0], masked[[0, 1, 3]].sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[1], masked[2], rtol=1e-6)
    assert sorted({s[0][0] for s in kernel.shapes}) == [1, 3]  # stacks of 3 and of 1 exposure


def test_planes_are_cut_like_the_inputs(stack):
    background = np.arange(NY * NX, dtype=np.float32).reshape(NY, NX)
    out = map_exposures(lambda sci, bkg: sci if bkg is None else sci - bkg, stack, {"sci": np.float32},
                        inputs=("sci",), planes={"bkg": [background, None, background, da.from_array(background)]})
    got = out["sci"].compute()
    sci = stack["sci"].values
    np.testing.assert_array_equal(got, np.stack([sci[0] - background, sci[1], sci[2] - background,
                                                 sci[3] - background]))


def test_kernel_errors_name_the_exposure_and_block(stack):
    def kernel(sci):
        if np.isnan(sci).any():
            raise FloatingPointError("NaN in the block")
        return sci

    sci = stack["sci"].values.copy()
    sci[2, 5, 3] = np.nan
    bad = stack.assign(sci=(("exposure", "y", "x"), da.from_array(sci, chunks=(1, 4, NX))))
    out = map_exposures(kernel, bad, {"sci": np.float32}, inputs=("sci",), label="my step")
    with pytest.raises(FloatingPointError, match="NaN in the block") as info:
        out["sci"].compute(scheduler="sync")
    assert info.value.__notes__ == ["in my step: exposure 2 (e2.fits), rows 4:8"]
    grouped = map_exposures(lambda sci: kernel(sci).sum(axis=0), bad, {"sum": np.float32}, inputs=("sci",),
                            groups=[[1, 2]], label="g")
    with pytest.raises(FloatingPointError) as info:
        grouped["sum"].compute(scheduler="sync")
    assert info.value.__notes__ == ["in g: exposures 1, 2 (e1.fits, e2.fits), rows 4:8"]


def test_wrong_kernel_results_are_refused(stack):
    wrong_shape = map_exposures(lambda sci: sci[:, :3], stack, {"sci": np.float32}, inputs=("sci",))
    with pytest.raises(ValueError, match=r"output 'sci' has shape \((4|2), 3\), expected \((4|2), 7\)") as info:
        wrong_shape["sci"].compute(scheduler="sync")
    assert info.value.__notes__[0].startswith("in kernel: exposure ")
    missing = map_exposures(lambda sci: {"a": sci}, stack, {"a": np.float32, "b": np.float32}, inputs=("sci",))
    with pytest.raises(ValueError, match="returned no b"):
        missing["a"].compute(scheduler="sync")


def test_bad_requests_fail_before_any_work(stack):
    identity = lambda sci: sci  # noqa: E731
    with pytest.raises(ParameterError, match="'wavelength'"):
        map_exposures(identity, stack, {"sci": np.float32}, inputs=("wavelength",))
    with pytest.raises(ParameterError, match="not within the 4 exposures"):
        map_exposures(identity, stack, {"sci": np.float32}, inputs=("sci",), exposures=[4])
    with pytest.raises(ParameterError, match="3 values for 4"):
        map_exposures(identity, stack, {"sci": np.float32}, inputs=("sci",), per_exposure={"k": [1, 2, 3]})
    with pytest.raises(ParameterError, match="must be 'x'"):
        map_exposures(identity, stack, {"s": Output(np.float32, ("y",))}, inputs=("sci",), blocks="columns",
                      block_size=3)
    with pytest.raises(ParameterError, match="blocks 'tiles'"):
        map_exposures(identity, stack, {"sci": np.float32}, inputs=("sci",), blocks="tiles")
    with pytest.raises(ParameterError, match="not both"):
        map_exposures(identity, stack, {"sci": np.float32}, inputs=("sci",), exposures=[0], groups=[[0]])


def test_slabs_follow_the_chunks_and_slice_per_plane_values():
    rng = np.random.default_rng(2)
    cube = rng.normal(size=(11, 3, 4))
    weights = np.abs(cube)
    seen = []

    def kernel(sci, wmap, radius, scale):
        seen.append(sci.shape[0])
        return {"flux": (sci * wmap).sum(axis=(1, 2)) * radius * scale, "n": (wmap > 0.5).sum(axis=(1, 2))}

    out = map_slabs(kernel, [da.from_array(cube, chunks=(4, 3, 2)), weights], {"flux": np.float64, "n": np.int32},
                    per_plane={"radius": np.arange(11.0)}, shared={"scale": 2.0})
    assert out["flux"].chunks == ((4, 4, 3),)
    got = dask.compute(out, scheduler="sync")[0]
    np.testing.assert_allclose(got["flux"], (cube * weights).sum(axis=(1, 2)) * np.arange(11.0) * 2)
    np.testing.assert_array_equal(got["n"], (weights > 0.5).sum(axis=(1, 2)))
    assert got["n"].dtype == np.int32 and sorted(seen) == [3, 4, 4]
    # In memory: slabs of slab_planes planes; an exception names the planes.

    def fails_on_plane_7(sci, z):
        if 7 in z:
            raise ZeroDivisionError("plane 7")
        return sci[:, 0, 0]

    failing = map_slabs(fails_on_plane_7, [cube], {"v": np.float64}, slab_planes=5,
                        per_plane={"z": np.arange(11)}, label="extraction of cube x")
    assert failing["v"].chunks == ((5, 5, 1),)
    with pytest.raises(ZeroDivisionError) as info:
        failing["v"].compute(scheduler="sync")
    assert info.value.__notes__ == ["in extraction of cube x: planes 5:10"]
