"""Where numba caches mrsdask's compiled kernels: a folder named by a hash of their sources.

numba keys a cached kernel on its own source file only (its modification time and size). A
kernel that calls a kernel of another module (``drizzle_accumulate`` → the polygon clipper of
:mod:`mrsdask.cube.kernels.polygon`, the footprint kernels → :mod:`mrsdask.instrument.small_angles`)
holds the callee compiled into its cache entry, so a checkout that changes the callee's file
alone keeps running the old callee from the cache, silently, until the caller's file changes.

Here every process that imports numba for mrsdask points numba's cache folder
(``NUMBA_CACHE_DIR``) at ``<mrsdask cache>/numba/<digest>``, the digest being one of the
sources of every mrsdask module that uses numba (:func:`kernel_sources_digest`). A change to
any of them gives a new, empty folder: every kernel is compiled again once, with its callees as
they are. A folder that someone set (``NUMBA_CACHE_DIR`` in the environment) is kept as it is.

:func:`configure` runs when numba is first imported (registered by ``mrsdask/__init__.py``),
before any kernel module decorates its functions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: The package's source folder.
PACKAGE_DIR = Path(__file__).resolve().parent
#: Folders of other digests are removed when more than this many are kept and they have not
#: been used (configured by a process) for :data:`UNUSED_S`: another checkout may still use one.
KEEP_FOLDERS = 4
UNUSED_S = 86400.0


def kernel_sources_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """A hash of the path and text of every ``.py`` file under ``package_dir`` that mentions numba."""
    digest = hashlib.sha1()
    for path in sorted(package_dir.rglob("*.py")):
        try:
            text = path.read_bytes()
        except OSError:
            continue
        if b"numba" in text:
            digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
            digest.update(text + b"\0")
    return digest.hexdigest()[:16]


def kernel_cache_dir() -> Path:
    """``<mrsdask cache>/numba/<digest of the kernel sources>`` (not created here)."""
    from mrsdask.instrument.reference import cache_dir

    return cache_dir() / "numba" / kernel_sources_digest()


def configure(numba_module=None) -> str | None:
    """Point numba's cache at :func:`kernel_cache_dir`, unless ``NUMBA_CACHE_DIR`` was set by
    someone else; the folder used, or None when left to numba (set elsewhere, or the cache
    folder cannot be made: numba then caches beside the sources as before)."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    try:
        folder = kernel_cache_dir()
    except OSError as exc:  # e.g. no writable home on a cluster's node
        log.debug("numba's cache stays where numba puts it: %s", exc)
        return None
    if given and Path(given) != folder:
        return None  # the user's choice (or another mrsdask's sources, in a parent process)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.debug("numba's cache stays where numba puts it: %s", exc)
        return None
    _remove_old_folders(folder)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)  # kept when numba reloads its settings; workers inherit it
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = str(folder)
    return str(folder)


def _remove_old_folders(current: Path) -> None:
    """Mark ``current`` used; remove the digest folders beside it beyond the :data:`KEEP_FOLDERS`
    most recently used, if unused for :data:`UNUSED_S`."""
    import shutil
    import time

    try:
        os.utime(current)
        others = sorted(((p.stat().st_mtime, p) for p in current.parent.iterdir() if p.is_dir() and p != current),
                        reverse=True)
    except OSError:
        return
    for used, old in others[KEEP_FOLDERS - 1:]:
        if time.time() - used > UNUSED_S:
            shutil.rmtree(old, ignore_errors=True)
