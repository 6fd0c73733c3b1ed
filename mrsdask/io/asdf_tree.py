"""ASDF documents held in bytes: read as a plain tree, or opened with asdf.

Two readers:

* :func:`read_tree` parses the YAML with libyaml and resolves ``core/ndarray`` nodes to numpy
  arrays from the binary blocks; every other tagged node stays a :class:`TaggedDict`,
  :class:`TaggedList` or :class:`TaggedString` carrying its tag. It needs neither the asdf
  package nor its extension registry, whose first use in a process costs ~1 s (it imports
  asdf-astropy, gwcs and the jwst transforms) and whose converters build astropy models that
  the fast paths (:mod:`mrsdask.io.mrs_detector_step`, :mod:`mrsdask.io.mrs_pointing_steps`)
  do not want. What it cannot read exactly (a compression or data type it does not know, a
  masked or streamed array) raises :class:`UnsupportedTree`, and the caller uses asdf.
* :func:`open_tree` opens the document with asdf (all converters, or all but some).

The binary-block layout (ASDF standard §3.2) is read by :func:`block_table`;
:func:`sorted_extension_history` makes a written document's list of extensions used the same
from one process to the next.
"""

from __future__ import annotations

import bz2
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from mrsdask.errors import InputError

BLOCK_MAGIC = b"\xd3BLK"
BLOCK_INDEX = b"#ASDF BLOCK INDEX"
_NDARRAY_TAG = "tag:stsci.edu:asdf/core/ndarray-"
_TAG_PREFIX = "tag:stsci.edu:"


class UnsupportedTree(ValueError):
    """The document uses something :func:`read_tree` does not read; open it with asdf instead."""


class TaggedDict(dict):
    """A YAML mapping with its tag (``_tag``), as asdf leaves a tag it has no converter for."""

    _tag: str = ""


class TaggedList(list):
    """A tagged YAML sequence."""

    _tag: str = ""


class TaggedString(str):
    """A tagged YAML scalar, e.g. ``!unit/unit-1.0.0 arcsec``."""

    _tag: str = ""


def short_tag(node) -> str:
    """``"asdf/transform/shift"`` for ``tag:stsci.edu:asdf/transform/shift-1.4.0`` (version dropped)."""
    tag = getattr(node, "_tag", None) or ""
    return tag.split(_TAG_PREFIX, 1)[-1].rsplit("-", 1)[0]


@dataclass(frozen=True)
class Block:
    """One binary block: where its data starts in the block bytes, and how it is stored."""

    start: int
    used: int
    data_size: int
    compression: bytes


def block_table(blocks: bytes | memoryview) -> list[Block] | None:
    """The binary blocks that follow an ASDF document's YAML, in order; None if malformed.

    ``blocks`` starts at the first block magic; a trailing block index must be cut off first.
    """
    table, pos = [], 0
    while pos < len(blocks):
        if blocks[pos:pos + 4] != BLOCK_MAGIC:
            return None if bytes(blocks[pos:]).strip() else table
        if pos + 6 + 38 > len(blocks):
            return None
        (header_size,) = struct.unpack(">H", blocks[pos + 4:pos + 6])
        _flags, compression, allocated, used, data_size = struct.unpack(">I4sQQQ", blocks[pos + 6:pos + 38])
        table.append(Block(pos + 6 + header_size, used, data_size, compression))
        pos += 6 + header_size + allocated
    return table


def split_document(document: bytes | bytearray) -> tuple[bytes, memoryview]:
    """(YAML bytes, the binary blocks without the block index) of an ASDF file held in bytes.

    The blocks are a view of ``document``, not a copy: a cal file's are ~9 MB, and copying
    them holds the GIL while the other threads of a build wait for it.
    """
    start = document.find(BLOCK_MAGIC)
    if start < 0:
        return bytes(document), memoryview(b"")
    cut = document.rfind(BLOCK_INDEX, start)
    return bytes(document[:start]), memoryview(document)[start:cut if cut >= 0 else len(document)]


def read_tree(document: bytes | bytearray) -> dict:
    """The tree of an ASDF document as plain Python objects and numpy arrays.

    Parameters
    ----------
    document : bytes or bytearray
        A complete ASDF file.

    Raises
    ------
    UnsupportedTree
        The document needs asdf (unknown compression, string or structured arrays, masks…).
    """
    return read_tree_parts(*split_document(document))


def read_tree_parts(text: bytes, blocks: bytes | memoryview) -> dict:
    """:func:`read_tree` of a document given as its YAML text and its binary blocks (the block
    index cut off), without joining them: ``blocks`` may be a view of a larger buffer."""
    import yaml

    table = block_table(blocks)
    if table is None:
        raise UnsupportedTree("malformed binary blocks")
    loader = _Loader(text)
    loader.blocks, loader.block_table = blocks, table
    try:
        return loader.get_single_data()
    except UnsupportedTree:
        raise
    except yaml.YAMLError as exc:
        raise UnsupportedTree(f"YAML: {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # e.g. a block too short for its array
        raise UnsupportedTree(f"{type(exc).__name__}: {exc}") from exc
    finally:
        loader.dispose()


def _loader_class():
    import yaml

    base = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader

    class Loader(base):
        blocks: bytes | memoryview = b""
        block_table: list = []

    def tagged(loader, suffix, node):
        tag = node.tag
        if isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
            if tag.startswith(_NDARRAY_TAG):
                return _ndarray(value, loader)
            out = TaggedDict(value)
        elif isinstance(node, yaml.SequenceNode):
            out = TaggedList(loader.construct_sequence(node, deep=True))
        else:
            out = TaggedString(loader.construct_scalar(node))
        out._tag = tag
        return out

    def omap(loader, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        out = {}
        for item in node.value:
            if not isinstance(item, yaml.MappingNode) or len(item.value) != 1:
                raise UnsupportedTree("an !!omap entry is not a one-key mapping")
            key, value = item.value[0]
            out[loader.construct_object(key, deep=True)] = loader.construct_object(value, deep=True)
        return out

    Loader.add_multi_constructor("tag:stsci.edu:", tagged)
    Loader.add_multi_constructor("tag:astropy.org:", tagged)
    Loader.add_multi_constructor("asdf://", tagged)
    Loader.add_constructor("tag:yaml.org,2002:omap", omap)
    return Loader


_DTYPES = {"bool8": np.bool_}


def _ndarray(node: dict, loader) -> np.ndarray:
    unknown = set(node) - {"source", "data", "datatype", "byteorder", "shape", "offset", "strides"}
    if unknown:
        raise UnsupportedTree(f"ndarray with {sorted(unknown)}")
    datatype = node.get("datatype")
    if not isinstance(datatype, str):
        raise UnsupportedTree(f"ndarray of datatype {datatype!r}")
    dtype = np.dtype(_DTYPES.get(datatype, datatype))
    if "data" in node:
        return np.asarray(node["data"], dtype=dtype)
    source, shape = node.get("source"), node.get("shape")
    if not isinstance(source, int) or not isinstance(shape, list) or not all(isinstance(n, int) for n in shape):
        raise UnsupportedTree("ndarray in an external or streamed block")
    if not 0 <= source < len(loader.block_table):
        raise UnsupportedTree(f"ndarray block {source} is missing")
    block = loader.block_table[source]
    data = loader.blocks[block.start:block.start + block.used]
    compression = block.compression.rstrip(b"\0")
    if compression == b"zlib":
        data = zlib.decompress(data)
    elif compression == b"bzp2":
        data = bz2.decompress(data)
    elif compression:
        raise UnsupportedTree(f"block compression {compression!r}")
    dtype = dtype.newbyteorder("<" if node.get("byteorder", "little") == "little" else ">")
    offset = int(node.get("offset", 0))
    strides = node.get("strides")
    array = np.ndarray(tuple(shape), dtype=dtype, buffer=data, offset=offset,
                       strides=tuple(strides) if strides else None)
    return array.astype(dtype.newbyteorder("="), copy=True)  # native order, owns its memory


_Loader = _loader_class()


def open_tree(document: bytes, skip_extensions: tuple[str, ...] = ()) -> dict:
    """The tree of an ASDF document held in bytes, converted by asdf (arrays loaded, file closed).

    Parameters
    ----------
    document : bytes
        A complete ASDF file.
    skip_extensions : tuple of str
        Prefixes of extension URIs whose converters are left out: their tags stay tagged dicts.
    """
    import asdf
    import stdatamodels.jwst.datamodels  # noqa: F401  (registers the jwst ASDF extensions)

    with warnings.catch_warnings(), asdf.config_context() as config:
        warnings.simplefilter("ignore")  # skipped tags are reported as unknown
        config.validate_on_read = False
        if skip_extensions:
            for extension in list(config.extensions):
                if (extension.extension_uri or "").startswith(skip_extensions):
                    config.remove_extension(extension)
        with asdf.open(io.BytesIO(document), lazy_load=False, memmap=False) as af:
            return dict(af.tree)


def wcs_from_asdf_bytes(path: str, raw: bytes | bytearray):
    """The gwcs (``meta.wcs``) held in the bytes of a cal file's ASDF extension."""
    import asdf
    import stdatamodels.jwst.datamodels  # noqa: F401  (registers the jwst ASDF extensions)

    with warnings.catch_warnings(), asdf.config_context() as config:
        warnings.simplefilter("ignore")
        config.validate_on_read = False
        with asdf.open(io.BytesIO(raw), lazy_load=False, memmap=False, lazy_tree=True) as af:
            try:
                wcs = af["meta"]["wcs"]
            except KeyError:
                wcs = None
    if wcs is None:
        raise InputError(f"{path}: the ASDF extension holds no WCS; run assign_wcs on it")
    return wcs


def read_reference_tree(path: str, reftype: str) -> dict | None:
    """The tree of the ASDF reference file ``path`` (:func:`read_tree`) if its ``meta.reftype`` is
    ``reftype``, else None: the file cannot be opened or read here, or is another kind of file.

    For the quick readers of small CRDS files (APCORR, EXTRACT1D): on None the caller opens the
    file with its datamodel, which validates it and words the error.
    """
    from mrsdask.io.paths import open_file

    try:
        with open_file(path) as fobj:
            tree = read_tree(fobj.read())
        if str(tree["meta"].get("reftype", "")).upper() != reftype:
            return None
    except (UnsupportedTree, OSError, KeyError, TypeError, AttributeError):
        return None
    return tree


# The list of extensions an ASDF document used ("history: extensions:", a block sequence of mappings).
_EXTENSION_HISTORY = re.compile(rb"^history:\n  extensions:\n((?:  [- ] .*\n)+)", re.MULTILINE)


def sorted_extension_history(document: bytes) -> bytes:
    """An ASDF document with the entries of its ``history: extensions:`` list in sorted order.

    asdf collects the extensions a document used in a set, so their order changed from one
    process to the next: two identical builds wrote s3d (and x1d) files that differed in these
    bytes. Sorted, the same cube gives the same bytes. The YAML keeps its length, so any binary block
    after it (and the block index) is where it was. A document without such a list is returned
    as it is.
    """
    end = document.find(b"\n...\n")  # the end of the YAML tree: binary blocks follow it
    match = _EXTENSION_HISTORY.search(document, 0, len(document) if end < 0 else end + 1)
    if match is None:
        return document
    entries = re.split(rb"(?m)^(?=  - )", match.group(1))[1:]
    if not entries or b"".join(entries) != match.group(1):
        return document
    return document[:match.start(1)] + b"".join(sorted(entries)) + document[match.end(1):]
