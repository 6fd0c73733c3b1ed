"""Local and object-store paths (``s3://…``) through fsspec.

Credentials come only from the standard places that fsspec/s3fs and botocore read
(environment, ``~/.aws`` config files, fsspec config files, instance/pod roles); mrsdask never
passes, logs or stores them. The only S3 options it sets itself come from the environment:

* ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` — an S3-compatible endpoint (MinIO, Ceph, moto);
* ``MRSDASK_S3_ANON=1`` — anonymous (unsigned) requests; the public JWST bucket ``stpubdata``
  is read anonymously by default (``MRSDASK_S3_ANON=0`` turns that off);
* ``MRSDASK_S3_RETRIES`` — attempts per S3 request (botocore "standard" retry mode, default 10),
  on top of which every Dask task is retried (``retries=3``) by the cube builder.

Filesystem instances are created per process (fsspec's instance cache is keyed by process id,
and :func:`filesystem` keys its own on it too), so a Dask worker — spawned or forked — never
reuses the event loop or connection pool of its parent.
"""

from __future__ import annotations

import glob
import os

import fsspec

#: Public buckets read anonymously unless ``MRSDASK_S3_ANON=0``.
PUBLIC_BUCKETS = ("stpubdata",)
DEFAULT_S3_ATTEMPTS = 10

_FILESYSTEMS: dict[tuple, fsspec.AbstractFileSystem] = {}


def is_remote(path: str) -> bool:
    """True for URLs with a protocol other than ``file``."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def protocol_of(path: str) -> str:
    """``"s3"`` for ``s3://…``, ``"file"`` for local paths."""
    text = str(path)
    return text.split("://", 1)[0] if "://" in text else "file"


def require_s3fs(path: str) -> None:
    """Raise a clear :class:`~mrsdask.errors.InputError` when ``s3fs`` (the ``s3`` extra) is missing."""
    try:
        import s3fs  # noqa: F401  (fsspec would import it for s3:// anyway)
    except ImportError:
        from mrsdask.errors import InputError

        raise InputError(f"{path}: object-store paths need the optional package s3fs: "
                         "pip install 'mrsdask[s3]'") from None


def storage_options_for(path: str) -> dict:
    """fsspec storage options for a path (from the environment only, never credentials)."""
    if not str(path).startswith(("s3://", "s3a://")):
        return {}
    require_s3fs(path)
    opts: dict = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["endpoint_url"] = endpoint
    anon = os.environ.get("MRSDASK_S3_ANON", "").strip().lower()
    bucket = str(path).split("://", 1)[1].split("/", 1)[0]
    if anon in ("1", "true", "yes") or (anon == "" and bucket in PUBLIC_BUCKETS):
        opts["anon"] = True
    try:
        attempts = int(os.environ.get("MRSDASK_S3_RETRIES", DEFAULT_S3_ATTEMPTS))
    except ValueError:
        attempts = DEFAULT_S3_ATTEMPTS
    # Transient errors (5xx, throttling, dropped connections) are retried by botocore.
    opts["config_kwargs"] = {"retries": {"max_attempts": max(1, attempts), "mode": "standard"}}
    # Many processes write the same store: never answer from a stale directory listing.
    opts["use_listings_cache"] = False
    return opts


def filesystem(path: str) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem of a path, created once per process and options."""
    protocol = protocol_of(path)
    opts = storage_options_for(path)
    key = (os.getpid(), protocol, repr(sorted(opts.items())))
    fs = _FILESYSTEMS.get(key)
    if fs is None:
        if len(_FILESYSTEMS) > 32 or any(k[0] != key[0] for k in _FILESYSTEMS):
            _FILESYSTEMS.clear()  # a forked child drops its parent's instances
        fs = fsspec.filesystem(protocol, **opts)
        _FILESYSTEMS[key] = fs
    return fs


def fs_path(path: str) -> str:
    """The path as its file system names it: without ``protocol://``, with ``~`` expanded."""
    text = str(path)
    return text.split("://", 1)[1] if "://" in text else os.path.expanduser(text)


def expand(patterns: list[str]) -> list[str]:
    """Expand globs (local or remote) in order, keeping literal paths as they are."""
    out: list[str] = []
    for pattern in patterns:
        text = str(pattern)
        if any(ch in text for ch in "*?["):
            if is_remote(text):
                protocol = protocol_of(text)
                matches = sorted(f"{protocol}://{p}" for p in filesystem(text).glob(fs_path(text)))
            else:
                matches = sorted(glob.glob(os.path.expanduser(text)))
            if not matches:
                from mrsdask.errors import InputError

                raise InputError(f"no file matches {text!r}; check the pattern and the folder")
            out.extend(matches)
        else:
            out.append(text if is_remote(text) else os.path.expanduser(text))
    return out


def exists(path: str) -> bool:
    """Whether a local or remote path exists."""
    return filesystem(path).exists(fs_path(path))


def isdir(path: str) -> bool:
    """Whether a local or remote path is a folder (a prefix holding objects, on S3)."""
    return filesystem(path).isdir(fs_path(path))


def stamp(path: str) -> str:
    """``size:modified`` of a local or remote file: changes when the file is rewritten.

    The modification time on a file system; on object stores what the server gives
    (``LastModified``, else the ``ETag``). Empty if the file cannot be reached.
    """
    try:
        info = filesystem(path).info(fs_path(path))
    except (OSError, ValueError):
        return ""
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("ETag")
    return f"{info.get('size')}:{modified}"


def open_file(path: str, mode: str = "rb"):
    """Open a local or remote file (a context manager giving a file object)."""
    if not is_remote(path):
        return fsspec.open(os.path.expanduser(str(path)), mode)
    return filesystem(path).open(fs_path(path), mode)


# --------------------------------------------------------------------------- output validation
def check_store_name(name: str) -> str:
    """A group name inside a store: one plain path component (no ``..``, ``/``, ``\\``)."""
    from mrsdask.errors import ParameterError

    text = str(name)
    if (not text or text in (".", "..") or ".." in text or "/" in text or "\\" in text
            or text.startswith("~") or any(ord(c) < 32 for c in text)):
        raise ParameterError(
            f"group name {name!r}: must be one plain name inside the store (no '..', '/' or '\\')"
        )
    return text


# --------------------------------------------------------------------------- input stores
def check_store_metadata(path: str, missing: str = "create one with 'mrsdask ingest' or 'mrsdask cube'") -> None:
    """Check that every ``zarr.json`` of a store given as input can be read, before opening it.

    zarr itself reports a damaged metadata file as a bare JSON error ("Expecting value: line 1
    column 1") without saying which file; this names it.

    Parameters
    ----------
    path : str
        Store root (local path or URL).
    missing : str
        What to do when there is no store at all.

    Raises
    ------
    mrsdask.errors.InputError
        If there is no ``zarr.json`` at the root, or one of the store's ``zarr.json`` files is
        not a JSON object describing a zarr node.
    """
    import json

    from mrsdask.errors import InputError

    text = str(path).rstrip("/")
    fs = filesystem(text)
    body = fs_path(text)
    root = body + "/zarr.json"
    if not fs.exists(root):
        raise InputError(f"{path}: no zarr store there; {missing}")
    files = [root] + sorted(p for p in fs.find(body) if p.endswith("/zarr.json") and p.rstrip("/") != root
                            and "/_scratch/" not in p)
    for name in files:
        shown = name if not is_remote(text) else f"{protocol_of(text)}://{name}"
        try:
            meta = json.loads(fs.cat_file(name))
        except (OSError, ValueError) as exc:
            raise InputError(f"{shown}: damaged store metadata ({exc}); rebuild the store (or restore this "
                             "file from a backup)") from exc
        if not isinstance(meta, dict) or meta.get("node_type") not in ("group", "array"):
            raise InputError(f"{shown}: not zarr v3 metadata (no node_type); rebuild the store")


def is_s3d_path(path: str) -> bool:
    """True for a FITS file name (an ``s3d`` cube), False for a store."""
    return str(path).lower().endswith((".fits", ".fits.gz"))
