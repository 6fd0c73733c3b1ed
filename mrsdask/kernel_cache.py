"""Where numba caches mrsdask's compiled kernels: a folder named by a hash of their sources.

numba keys a cached kernel on its own source file only (its modification time and size). A
kernel that calls a kernel of another module (``drizzle_accumulate`` → the polygon clipper of
:mod:`mrsdask.cube.kernels.polygon`, the footprint kernels → :mod:`mrsdask.instrument.small_angles`)
holds the callee compiled into its cache entry, so a checkout that changes the callee's file
alone keeps running the old callee from the cache, silently, until the caller's file changes.

Here every process that imports numba for mrsdask points numba's cache folder
(``NUMBA_CACHE_DIR``) at ``<mrsdask cache>/numba/<digest>``, the digest being one of the
sources of every mrsdask module that imports numba (:func:`kernel_sources_digest`). A change to
any of them gives a new, empty folder: every kernel is compiled again once, with its callees as
they are. A folder that someone chose (``NUMBA_CACHE_DIR`` in the environment, numba's
``.numba_config.yaml``) is kept as it is; one that mrsdask set in a parent process (marked by
:data:`MARKER`) is replaced by this process's own digest's. Folders of other digests are
removed once more than :data:`KEEP_FOLDERS` are kept and they have not been used for
:data:`UNUSED_S` (a process's use is marked when it starts: a process running for longer may
lose its folder, and numba then makes it again as it saves).

:func:`configure` runs when numba is first imported (registered by ``mrsdask/__init__.py``),
before any kernel module decorates its functions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: The package's source folder.
PACKAGE_DIR = Path(__file__).resolve().parent
#: Folders of other digests are removed when more than this many are kept and they have not
#: been used (configured by a process) for :data:`UNUSED_S`: another checkout may still use one.
KEEP_FOLDERS = 4
UNUSED_S = 86400.0


#: A line that imports numba: the modules whose source the digest takes.
_IMPORTS_NUMBA = re.compile(rb"^\s*(import numba|from numba)\b", re.MULTILINE)


def kernel_sources_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """A hash of the path and text of every ``.py`` file under ``package_dir`` that imports numba.

    A kernel that reads a module-level value of a module that does not import numba (numba
    freezes globals into the compiled code) would not follow a change of that value: keep such
    values in the kernel modules, or import them there.
    """
    digest = hashlib.sha1()
    for path in sorted(package_dir.rglob("*.py")):
        try:
            text = path.read_bytes()
        except OSError:
            continue
        if _IMPORTS_NUMBA.search(text):
            digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
            digest.update(text + b"\0")
    return digest.hexdigest()[:16]


def kernel_cache_dir() -> Path:
    """``<mrsdask cache>/numba/<digest of the kernel sources>`` (not created here)."""
    from mrsdask.instrument.reference import cache_dir

    return cache_dir() / "numba" / kernel_sources_digest()


#: Set beside ``NUMBA_CACHE_DIR`` when mrsdask sets it: a child process (a worker, or another
#: checkout run from this one) that inherits both recognises the folder as mrsdask's, not the
#: user's, and sets its own digest's.
MARKER = "MRSDASK_NUMBA_CACHE_DIR"


def configure() -> str | None:
    """Point numba's cache at :func:`kernel_cache_dir`, unless a cache folder was chosen by
    someone else (``NUMBA_CACHE_DIR``, or numba's ``.numba_config.yaml``).

    This sets numba's cache folder for the whole process and its child processes: other
    packages' cached kernels go there too (and are compiled again when mrsdask's sources change).
    numba re-reads its ``NUMBA_*`` settings here (``reload_config``), as it would at its next
    compilation anyway: values assigned to ``numba.config`` directly, before, are read again
    from the environment.

    Returns
    -------
    str or None
        The folder used; None when left as it is (chosen by someone else, or the cache folder
        cannot be made: numba then caches beside the sources).
    """
    config = sys.modules.get("numba.core.config")
    given = (getattr(config, "CACHE_DIR", "") if config is not None else "") or os.environ.get("NUMBA_CACHE_DIR", "")
    if given and given != os.environ.get(MARKER):
        return None  # the user's choice
    try:
        folder = kernel_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. no writable home on a cluster's node
        log.debug("numba's cache stays where numba puts it: %s", exc)
        return None
    _remove_old_folders(folder)
    os.environ["NUMBA_CACHE_DIR"] = os.environ[MARKER] = str(folder)  # workers inherit both
    if config is not None:
        config.CACHE_DIR = str(folder)
        config.reload_config()  # numba's record of the environment, so that it keeps this folder
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
