"""Output safety: what every command that writes goes through.

* **Before any heavy work** the output paths are checked: :func:`check_output_folder` (a folder
  of files: s3d, x1d, simulated files, a run folder), :func:`check_output_store`
  (a zarr store) and :func:`check_writable` (the nearest existing folder can be written to: a
  read-only mount or a folder without permission is found before hours of work, not after).
  :func:`check_output_files` refuses to replace existing files unless told to, or unless
  mrsdask made them (:func:`is_mrsdask_fits`).
* **Files appear only when complete**: :func:`staged_file` gives a temporary local path
  ``<folder>/<name>.part/<name>`` (the final name, so that FITS ``FILENAME`` keywords are right),
  renamed into place (or uploaded, for ``s3://`` outputs) only after the writer returned. A
  failed or interrupted write removes it; anything ending in ``.part`` is incomplete. Zarr
  stores are marked complete by an attribute written last.
* **OS errors while writing** (read-only file system, no permission, disk full, quota) become
  one :class:`~mrsdask.errors.OutputError` naming the path and what to do
  (:func:`writing`, :func:`describe_write_error`); ``mrsdask`` prints it and exits with status 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator

from mrsdask.errors import OutputError, ParameterError
from mrsdask.io import paths

#: errno values that mean "this output cannot be written here", with what to do about each.
WRITE_ERRNOS: dict[int, str] = {
    errno.EROFS: "the file system is read-only; choose an output path on a writable file system",
    errno.EACCES: "no permission to write there; choose another output path or fix its permissions",
    errno.EPERM: "the operation is not permitted there; choose another output path or fix its permissions",
    errno.ENOSPC: "no space left on the device; free space (or choose another path) and run the same command again",
    errno.EDQUOT: "disk quota exceeded; free space (or choose another path) and run the same command again",
}
#: Suffix of everything being written and not yet complete.
PART = ".part"


def write_all_at(fd: int, data, offset: int) -> None:
    """All the bytes of ``data`` (a contiguous buffer) into file ``fd`` from ``offset``
    (``os.pwrite`` until none is left; a call that writes nothing raises, never loops)."""
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.EIO, f"no byte written at offset {offset}")
        view, offset = view[written:], offset + written


def is_write_error(exc: BaseException) -> bool:
    """Whether an exception is an OS refusal to write (:data:`WRITE_ERRNOS`)."""
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def as_write_error(exc: BaseException, output: str) -> OSError | None:
    """The OS refusal to write behind ``exc``, or None if it is not one.

    A short write (numpy's ``tofile``: "N requested and M written", no errno) on a local file
    system with less than 1 MiB free is a full disk (ENOSPC).
    """
    if is_write_error(exc):
        return exc  # type: ignore[return-value]
    if isinstance(exc, OSError) and exc.errno is None and output and not paths.is_remote(output):
        try:
            free = shutil.disk_usage(_nearest_existing(output)).free
        except OSError:
            return None
        if free < 2**20:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


def describe_write_error(exc: OSError, output: str, left: str = "") -> str:
    """One line: which path could not be written, why, and what to do.

    Parameters
    ----------
    exc : OSError
        With an errno of :data:`WRITE_ERRNOS`.
    output : str
        The output being written (named when the error carries no file name).
    left : str
        What was left behind, e.g. "the store is marked incomplete".
    """
    where = exc.filename or output
    if output and str(where) != str(output) and not str(where).startswith(str(output).rstrip("/") + "/"):
        where = f"{where} (writing {output})"
    reason = exc.strerror or os.strerror(exc.errno)
    text = f"{where}: cannot write: {reason}; {WRITE_ERRNOS[exc.errno]}"
    return f"{text} ({left})" if left else text


@contextlib.contextmanager
def writing(output: str, left: str = "") -> Iterator[None]:
    """Turn OS refusals to write inside the block into an :class:`OutputError` naming ``output``."""
    try:
        yield
    except OSError as exc:
        refusal = as_write_error(exc, output)
        if refusal is None:
            raise
        raise OutputError(describe_write_error(refusal, output, left)) from exc


def _nearest_existing(path: str) -> str:
    current = os.path.abspath(os.path.expanduser(str(path)))
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def check_writable(path: str) -> None:
    """Refuse a local output path that cannot be created or written, before any work.

    The path itself if it exists, else its nearest existing parent, must be a folder this
    process may write to (``access(2)`` reports read-only mounts, for root too). Object-store
    paths are not checked here (permissions show on the first write).

    Raises
    ------
    OutputError
    """
    if paths.is_remote(path):
        return
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise OutputError(f"{path}: {existing} is a file, not a folder; choose another output path")
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        code = errno.EROFS if read_only else errno.EACCES
        raise OutputError(f"{path}: cannot write in {existing}: {os.strerror(code)}; {WRITE_ERRNOS[code]}")


def check_output_folder(path: str, what: str = "output folder") -> str:
    """Check a folder that files will be written into (it is not created here).

    Refused: an empty path, ``..`` components, an existing file of that name, a local place
    that cannot be written (:func:`check_writable`), and a bucket root on object stores.

    Returns
    -------
    str
        The path, as given.

    Raises
    ------
    OutputError
    """
    text = str(path).rstrip("/") or str(path)
    if not text:
        raise OutputError(f"{what}: empty path; give a folder")
    body = paths.fs_path(text)
    if ".." in body.replace("\\", "/").split("/"):
        raise OutputError(f"{what} {path!r}: '..' is not allowed in an output path; give it directly")
    if paths.is_remote(text):
        if len(body.split("/", 1)) < 2:
            raise OutputError(f"{what} {path!r}: give a prefix inside the bucket (s3://bucket/s3d), not the bucket")
        fs = paths.filesystem(text)
        if fs.isfile(body):
            raise OutputError(f"{what} {path}: a file is already there; give a folder (prefix) instead")
        return text
    if os.path.lexists(text) and not os.path.isdir(text):
        raise OutputError(f"{what} {path}: a file is already there; give a folder (or remove the file)")
    check_writable(text)
    return str(path)


def check_output_store(path: str) -> str:
    """Refuse an output store path that would write outside a zarr store.

    A new path, an empty folder (or empty prefix) and an existing zarr store (``zarr.json`` at
    its root) are accepted; an existing file, or a non-empty folder that is not a zarr store,
    is refused, and so are paths with ``..`` components and local places that cannot be
    written (:func:`check_writable`).

    Raises
    ------
    mrsdask.errors.ParameterError
    mrsdask.errors.OutputError
        If the path cannot be written (read-only file system, no permission).
    """
    text = str(path).rstrip("/")
    if not text:
        raise ParameterError("output store: empty path; give a folder such as cubes.zarr or s3://bucket/cubes.zarr")
    body = paths.fs_path(text)
    if ".." in body.replace("\\", "/").split("/"):
        raise ParameterError(f"output store {path!r}: '..' is not allowed in an output path; give it directly")
    if paths.is_remote(text):
        parts = body.split("/", 1)
        if len(parts) < 2 or not parts[1]:
            raise ParameterError(
                f"output store {path!r}: give a prefix inside the bucket (s3://bucket/cubes.zarr), not the bucket itself"
            )
    fs = paths.filesystem(text)
    if fs.exists(body + "/zarr.json"):
        check_writable(text)
        return text
    if fs.exists(body):
        if not fs.isdir(body):
            raise ParameterError(
                f"output store {path!r}: a file is already there; choose a new path or an existing zarr store"
            )
        if fs.ls(body, detail=False):
            raise ParameterError(
                f"output store {path!r}: an existing folder that is not a zarr store; choose a new "
                "path (mrsdask only writes inside its own stores)"
            )
    check_writable(text)
    return text


def make_folder(path: str) -> None:
    """Create a local output folder (parents too); object stores need none."""
    if not paths.is_remote(path):
        with writing(path):
            os.makedirs(os.path.expanduser(str(path)), exist_ok=True)


def join(folder: str, name: str) -> str:
    """``folder/name`` for local paths and URLs alike."""
    return str(folder).rstrip("/") + "/" + name


def is_mrsdask_fits(path: str) -> bool:
    """Whether a FITS file says mrsdask wrote it (``ORIGIN = 'mrsdask'`` in its primary header)."""
    from astropy.io import fits

    try:
        with paths.open_file(path, "rb") as fobj:
            return str(fits.getheader(fobj).get("ORIGIN", "")) == "mrsdask"
    except (OSError, ValueError):
        return False


def check_output_files(files: Iterable[str], overwrite: bool = False,
                       own: Callable[[str], bool] | None = None, fix: str = "pass --overwrite to replace them") -> None:
    """Refuse to replace existing files, unless ``overwrite`` or mrsdask made them (``own``).

    Raises
    ------
    OutputError
        Listing every clashing file and the fix.
    """
    if overwrite:
        return
    clashes = []
    for path in files:
        if paths.exists(path) and not (own is not None and own(path)):
            clashes.append(str(path))
    if clashes:
        shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise OutputError(f"{shown}: already there and not written by mrsdask; {fix}, or choose another folder")


@contextlib.contextmanager
def staged_file(path: str) -> Iterator[str]:
    """A temporary local path to write ``path`` to; moved into place only if the block succeeds.

    Local outputs are written to ``<path>.part/<name>`` and renamed (atomic on one file
    system); ``s3://`` outputs to a local temporary folder and uploaded as one object (which
    appears only when complete). On failure the temporary file is removed; OS refusals to write
    become an :class:`OutputError` naming ``path``.
    """
    name = str(path).rstrip("/").rsplit("/", 1)[-1]
    remote = paths.is_remote(path)
    with writing(path, "nothing was left under its name"):
        stage = tempfile.mkdtemp(prefix="mrsdask-") if remote else os.path.expanduser(str(path)) + PART
        try:
            if not remote:
                shutil.rmtree(stage, ignore_errors=True)
                if os.path.isfile(stage):
                    os.remove(stage)
                os.makedirs(stage)
            tmp = os.path.join(stage, name)
            yield tmp
            if remote:
                paths.filesystem(path).put_file(tmp, paths.fs_path(path))
            else:
                os.replace(tmp, os.path.expanduser(str(path)))
        finally:
            shutil.rmtree(stage, ignore_errors=True)


#: Suffix of the file that a staged output replaces once set aside (:func:`set_aside`).
REPLACED = ".replaced"


def set_aside(path: str, tmp: str) -> str | None:
    """Move the file at ``path``, that the staged ``tmp`` (:func:`staged_file`) will replace,
    into ``tmp``'s stage folder at once (a rename); where it went, for :func:`remove_quietly`,
    or None (no such file, or a remote one).

    Removing a large file takes its file system a while (a 786 MB s3d file: ~0.4 s of waiting
    on the disk). Replaced by :func:`staged_file`'s final rename, it took that time at the end
    of the command; set aside, it can be removed while the command works. The old file is then
    gone from its name from here on, as an overwritten cube is from its store; the new one
    still appears only when complete, and a failed build leaves neither.
    """
    if paths.is_remote(path) or not os.path.isfile(os.path.expanduser(str(path))):
        return None
    aside = tmp + REPLACED
    os.replace(os.path.expanduser(str(path)), aside)
    return aside


def remove_quietly(path: str) -> None:
    """Remove a file if it is still there (e.g. one :func:`set_aside`)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
