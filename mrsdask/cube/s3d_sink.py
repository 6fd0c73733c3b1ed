"""A cube's ``s3d`` file written while its slabs are computed, not read back from the store after.

The s3d file of a cube built from scratch in this process is laid out before the slabs run:
its primary header, then each image extension's header (``SCI``, ``ERR``, ``DQ``, ``WMAP``)
followed by room for its data, all sizes known from the cube's shape. A FITS image stores its
planes one after the other, so the planes ``z0:z1`` of an image are one byte range of the file:
each slab task writes its finished planes there (:meth:`S3dSink.write_planes`, positioned
writes, no lock), beside the zarr write of the same planes. After the last slab the spectral-
tear planes are blanked in the file as in the store, the ``WCS-TABLE`` and ``ASDF`` extensions
are appended and the file takes its name (:func:`s3d_sinks`). The file is byte for byte what
:func:`mrsdask.cube.export.write_s3d` writes from the finished store, minus the time to read
the store back (multi cube from 24 exposures: 785 MB of planes decompressed and rewritten).

A cube that the build only resumes or keeps is exported from the store after it, as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import xarray as xr

from mrsdask.cube.export import (FITS_BLOCK, IMAGES, append_tables, image_extension_header, image_header,
                                 submit_asdf_document, write_primary)
from mrsdask.datamodel.dq import NON_SCIENCE_HOLE
from mrsdask.io import outputs
from mrsdask.io.fits_data import fits_image_data

#: FITS block size: every header and data part is padded to a multiple of it.


@dataclasses.dataclass(frozen=True)
class S3dSink:
    """Where the planes of a cube go in its staged s3d file (small, handed to the slab tasks).

    Attributes
    ----------
    path : str
        The staged local file (renamed to its final name when the build completes).
    data_offsets : tuple of int
        File offset of the first data byte of each image of :data:`mrsdask.cube.export.IMAGES`.
    plane_bytes : int
        Bytes of one plane of one image (ny × nx × 4).
    nz : int
        Planes of the cube.
    """

    path: str
    data_offsets: tuple[int, ...]
    plane_bytes: int
    nz: int

    def write_planes(self, z0: int, planes: dict[str, np.ndarray]) -> None:
        """Write planes ``z0:z0 + n`` of every image; converts ``planes`` in place (they are spent)."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for (_, variable, _, dtype), offset in zip(IMAGES, self.data_offsets):
                block = planes[variable]
                if block.shape[0] and z0 + block.shape[0] > self.nz:
                    raise ValueError(f"planes {z0}:{z0 + block.shape[0]} outside a cube of {self.nz}")
                outputs.write_all_at(fd, fits_image_data(block, dtype, inplace=True), offset + z0 * self.plane_bytes)
        finally:
            os.close(fd)

    def blank_planes(self, planes: np.ndarray) -> None:
        """Blank planes as :func:`mrsdask.cube.slabs.finish_cube` does in the store (NaN, 0, no data)."""
        if not len(planes):
            return
        n = self.plane_bytes // 4
        fill = {"sci": np.full(n, np.nan, np.float32), "err": np.full(n, np.nan, np.float32),
                "dq": np.full(n, NON_SCIENCE_HOLE, np.uint32), "wmap": np.zeros(n, np.float32)}
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for (_, variable, _, dtype), offset in zip(IMAGES, self.data_offsets):
                data = fits_image_data(fill[variable], dtype, inplace=True).tobytes()
                for z in planes:
                    outputs.write_all_at(fd, data, offset + int(z) * self.plane_bytes)
        finally:
            os.close(fd)


def _padded(n: int) -> int:
    return -(-n // FITS_BLOCK) * FITS_BLOCK


def start_s3d(tmp: str, cube: xr.Dataset, path: str) -> S3dSink:
    """Lay out the s3d file of ``cube`` (an empty cube with the final attributes and shape) in
    ``tmp``: the primary HDU, then each image's header and zero-filled data part."""
    shape = (cube.sizes["wavelength"], cube.sizes["y"], cube.sizes["x"])
    write_primary(tmp, cube, path)
    offsets = []
    with open(tmp, "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        for extname, _, bunit, dtype in IMAGES:
            header = image_extension_header(image_header(cube, extname, bunit), shape, dtype)
            with warnings.catch_warnings():  # as StreamingHDU in write_s3d: long comments are cut
                warnings.simplefilter("ignore")
                text = header.tostring(sep="", endcard=True, padding=True)
            f.seek(end)
            f.write(text.encode("ascii"))
            offsets.append(f.tell())
            end = offsets[-1] + _padded(int(np.prod(shape)) * 4)
        f.truncate(end)  # the data parts, zeros (their FITS padding included) until written
    return S3dSink(tmp, tuple(offsets), shape[1] * shape[2] * 4, shape[0])


def finish_s3d(sink: S3dSink, wavelength: np.ndarray, tear_planes: np.ndarray, document: bytes) -> None:
    """Complete a sink's file after the last slab: blank the tear planes, add the tables."""
    sink.blank_planes(tear_planes)
    append_tables(sink.path, np.asarray(wavelength, dtype=np.float32), document)


class S3dSinks:
    """The s3d files of a build written as its slabs run, each staged until the build completes.

    Use :func:`s3d_sinks`; :meth:`start` lays out a cube's file and :meth:`finish` completes it.
    """

    def __init__(self, stack: contextlib.ExitStack):
        self._stack = stack
        self._pool = stack.enter_context(ThreadPoolExecutor(1))
        self.sinks: dict[str, S3dSink] = {}
        self._documents: dict[str, Future] = {}
        self._wavelengths: dict[str, np.ndarray] = {}
        self.finished: set[str] = set()

    def start(self, name: str, cube: xr.Dataset, path: str) -> S3dSink:
        """Stage the file of cube ``name`` (final ``path``) and lay it out; its ASDF document is
        made meanwhile (in the command's writer process when it has one), and a file already at
        ``path`` (one the checks let the build replace) removed (:func:`mrsdask.io.outputs.set_aside`)."""
        tmp = self._stack.enter_context(outputs.staged_file(path))
        aside = outputs.set_aside(path, tmp)  # a file this one replaces is removed while the slabs run
        if aside is not None:
            self._pool.submit(outputs.remove_quietly, aside)
        self._documents[name], self._wavelengths[name] = submit_asdf_document(self._pool, cube)
        self.sinks[name] = start_s3d(tmp, cube, path)
        return self.sinks[name]

    def finish(self, name: str, tear_planes: np.ndarray) -> None:
        """Complete the file of cube ``name`` (it takes its name when the build's block ends)."""
        finish_s3d(self.sinks[name], self._wavelengths[name], tear_planes, self._documents[name].result())
        self.finished.add(name)


@contextlib.contextmanager
def s3d_sinks() -> Iterator[S3dSinks]:
    """The build's s3d sinks: on success every started file is moved to its name, on an error
    every one is removed (nothing half-written is left under an s3d name)."""
    with contextlib.ExitStack() as stack:
        sinks = S3dSinks(stack)
        yield sinks
        unfinished = sorted(set(sinks.sinks) - sinks.finished)
        if unfinished:  # a bug, not a user error: no file may look complete
            raise RuntimeError(f"s3d files of cubes {unfinished} were started but not finished")
