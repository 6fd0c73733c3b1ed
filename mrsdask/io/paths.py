"""Local and object-store paths (``s3://…``) through fsspec.

Credentials come only from the standard places that fsspec/s3fs and botocore read
(environment, config files, instance roles); mrsdask never logs or stores them.
"""

from __future__ import annotations

import glob
import os

import fsspec


def is_remote(path: str) -> bool:
    """True for URLs with a protocol other than ``file``."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def expand(patterns: list[str]) -> list[str]:
    """Expand globs (local or remote) in order, keeping literal paths as they are."""
    out: list[str] = []
    for pattern in patterns:
        text = str(pattern)
        if any(ch in text for ch in "*?["):
            if is_remote(text):
                fs, _, _ = fsspec.get_fs_token_paths(text)
                protocol = text.split("://", 1)[0]
                matches = sorted(f"{protocol}://{p}" for p in fs.glob(text))
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
    fs, _, paths = fsspec.get_fs_token_paths(str(path))
    return fs.exists(paths[0])


def open_file(path: str, mode: str = "rb"):
    """Open a local or remote file (a context manager giving a file object)."""
    return fsspec.open(str(path), mode)


def storage_options_for(path: str) -> dict:
    """fsspec storage options for a path (from the environment only)."""
    if str(path).startswith("s3://"):
        opts: dict = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        if os.environ.get("MRSDASK_S3_ANON", "").lower() in ("1", "true", "yes"):
            opts["anon"] = True
        return opts
    return {}
