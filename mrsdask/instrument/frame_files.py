"""Detector-frame geometry kept on disk, so that the processes of a machine compute it once.

The detector-frame geometry of a channel (:class:`mrsdask.instrument.frames.ChannelFrame`:
the channel's pixels and their α, β, λ, λ extent and α edges) depends only on the instrument
model, which every exposure of a setting shares. Computing it (parsing the detector step of a
gwcs and evaluating ~1,200 polynomials on ~0.37 M pixels) costs ~0.3 CPU-s per setting in every
process that builds a cube, before any exposure's own work starts: 1.8-1.9 CPU-s for a
multi-channel cube from six settings, against 0.02-0.05 CPU-s to read them from these files.
The official pipeline pays it in every run.

This module keeps each computed frame in a file of the cache folder
(:func:`mrsdask.instrument.reference.cache_dir`, ``$MRSDASK_CACHE``), named by

* the **content key** of the exposure's detector step (:attr:`mrsdask.io.mrs_wcs.MrsWcsParts.instrument_key`:
  a hash of its serialized YAML and binary blocks; another reference file gives another key), and
* a **digest of the code** that computes a frame (:data:`CODE_MODULES`), so that a changed
  computation never reads a frame of the old one.

A file holds the exact float64 numbers that were computed (the same bits as computing them
again). It is written whole under a temporary name and renamed, so that a concurrent process
never reads half of one; a file that does not read back as a frame is ignored and replaced.
Files not used for the longest are removed when the folder holds more than :data:`MAX_BYTES`.
``MRSDASK_FRAME_CACHE=0`` turns the files off (each process then computes its frames).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Environment variable that turns the frame files off (``0``, ``off``, ``no``, ``false``).
SWITCH = "MRSDASK_FRAME_CACHE"
#: Sub-folder of the cache folder that holds the frame files.
FOLDER = "frames"
#: Most bytes the frame files may take; the least recently used go first (one setting's two
#: channels take ~36 MB, all twelve settings of one instrument model ~0.43 GB).
MAX_BYTES = 2**30
#: Modules whose source decides a frame's numbers (their digest is part of every file name).
CODE_MODULES = (
    "mrsdask.instrument.frames",
    "mrsdask.instrument.frame_files",
    "mrsdask.instrument.geometry",
    "mrsdask.instrument.detector_model",
    "mrsdask.instrument.bands",
    "mrsdask.io.mrs_detector_step",
    "mrsdask.io.mrs_wcs",
)
#: Per-pixel float64 arrays of a frame, in file order.
GEOMETRY_ARRAYS = ("alpha", "beta", "wavelength", "dwavelength", "alpha_lo", "alpha_hi")
#: A frame file is one float64 ``.npy`` array: ``[dbeta, n]``, then rows of n values: ``ys``,
#: ``xs`` (pixel indices, exact in float64) and :data:`GEOMETRY_ARRAYS`.
_HEADER = 2


def enabled() -> bool:
    """False when ``$MRSDASK_FRAME_CACHE`` turns the frame files off."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "off", "no", "false")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Hash of the source of :data:`CODE_MODULES` (a frame computed by other code is another file)."""
    digest = hashlib.blake2b(digest_size=8)
    for name in CODE_MODULES:
        origin = importlib.util.find_spec(name).origin
        digest.update(Path(origin).read_bytes())
    return digest.hexdigest()


def frame_path(instrument_key: str, channel: int) -> Path:
    """File of the frame of ``channel`` for the instrument model ``instrument_key``."""
    from mrsdask.instrument.reference import cache_dir

    return cache_dir() / FOLDER / f"{instrument_key}_{code_digest()}_ch{int(channel)}.npy"


def load_frame(instrument_key: str, channel: int) -> dict[str, np.ndarray] | None:
    """The arrays of a stored frame (``ys``, ``xs``, :data:`GEOMETRY_ARRAYS`, ``dbeta``), or None.

    The geometry arrays are read-only views of the memory-mapped file (the processes of a
    machine share its pages). None when the files are off, there is no file, or it does not
    read back as a frame (then the caller computes the frame and :func:`save_frame` replaces
    the file).
    """
    if not enabled():
        return None
    try:
        path = frame_path(instrument_key, channel)
        flat = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign file: computed and written again
        log.debug("frame file of %s channel %s not used: %s", instrument_key, channel, exc)
        return None
    rows = 2 + len(GEOMETRY_ARRAYS)
    n = int(flat[1]) if flat.ndim == 1 and flat.dtype == np.float64 and flat.size >= 2 and flat[1] >= 0 else -1
    if n < 0 or flat.size != _HEADER + rows * n or not np.isfinite(flat[0]):
        log.debug("frame file %s does not hold a frame: ignored", path)
        return None
    table = np.asarray(flat[_HEADER:]).reshape(rows, n)  # plain ndarray views of the map
    try:
        os.utime(path)  # recently used: kept when the folder is pruned
    except OSError:
        pass
    arrays = {"dbeta": float(flat[0]), "ys": table[0].astype(np.intp), "xs": table[1].astype(np.intp)}
    arrays.update(zip(GEOMETRY_ARRAYS, table[2:]))
    return arrays


def save_frame(instrument_key: str, channel: int, ys: np.ndarray, xs: np.ndarray, geometry: dict[str, np.ndarray],
               dbeta: float) -> None:
    """Keep a computed frame in its file (whole or not at all); a failure is only logged.

    Parameters
    ----------
    instrument_key : str
        Content key of the detector step.
    channel : int
        1 to 4.
    ys, xs : numpy.ndarray
        The channel's pixel indices.
    geometry : dict
        :data:`GEOMETRY_ARRAYS` by name (float64, one value per pixel).
    dbeta : float
        The channel's slice width (arcsec).
    """
    if not enabled():
        return
    tmp = None
    try:
        path = frame_path(instrument_key, channel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        n = len(ys)
        flat = np.empty(_HEADER + (2 + len(GEOMETRY_ARRAYS)) * n)
        flat[0], flat[1] = dbeta, n
        flat[_HEADER:].reshape(2 + len(GEOMETRY_ARRAYS), n)[:] = [ys, xs, *(geometry[k] for k in GEOMETRY_ARRAYS)]
        with os.fdopen(fd, "wb") as f:
            np.save(f, flat, allow_pickle=False)
        os.replace(tmp, path)
        tmp = None
        prune(path.parent, MAX_BYTES)
    except OSError as exc:  # a read-only or full cache folder: each process computes its frames
        log.debug("cannot keep the frame of %s channel %s: %s", instrument_key, channel, exc)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def prune(folder: Path, max_bytes: int) -> None:
    """Remove the least recently used frame files until the folder holds at most ``max_bytes``."""
    files = []
    for entry in os.scandir(folder):
        if entry.name.endswith(".npy") and entry.is_file():
            info = entry.stat()
            files.append((info.st_mtime_ns, info.st_size, entry.path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        try:
            os.remove(path)
            total -= size
        except OSError:
            pass
