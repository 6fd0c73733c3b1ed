"""Read an MRS gwcs in two parts: the instrument model and the pointing.

An MRS level-2 gwcs is a chain of steps ``detector → alpha_beta → v2v3 → v2v3vacorr → world``.
The first step (slice map, per-slice distortion and wavelength polynomials) comes from the
reference files only and is the same for every exposure of a setting; it is also nearly all of
the cost of reading the gwcs (~6,000 YAML lines, ~1,200 models, 0.6 s to convert) and of
evaluating it. The later steps depend on the pointing and are cheap.

:func:`split_mrs_wcs` therefore reads the ASDF extension of a cal file as text, cuts it at
the step boundaries and

* computes a **content key** of the first step: a hash of its serialized YAML and of every
  binary block it references. Two exposures with the same key have byte-identical
  detector → α, β, λ transforms, so anything derived from that transform alone may be reused;
* reads the later steps (a small ASDF document that reuses the original binary blocks) as a
  plain tree and compiles the exposure's pointing from it
  (:mod:`mrsdask.io.mrs_pointing_steps`); it converts them to astropy models, the exposure's
  own ``alpha_beta → world`` transform, only when that is not possible or when asked;
* reads the first step only when asked (a cache miss), as plain arrays when it has the
  layout ``assign_wcs`` writes (:mod:`mrsdask.io.mrs_detector_step`), else with asdf/gwcs.

When the extension does not have the expected layout (another writer, another gwcs version),
it falls back to converting the whole gwcs and returns no key, so nothing is reused.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any, Callable

from mrsdask.errors import InputError
from mrsdask.instrument.pointing import MRS_FRAMES, CompiledPointing, compile_pointing
from mrsdask.io.asdf_tree import (
    UnsupportedTree,
    block_table,
    open_tree,
    read_tree_parts,
    split_document,
    wcs_from_asdf_bytes,
)
from mrsdask.io.mrs_detector_step import detector_model
from mrsdask.io.mrs_pointing_steps import compiled_pointing

STEP_PREFIX = "    - !<tag:stsci.edu:gwcs/step-"
_SOURCE = re.compile(r"^\s*source:\s*(\S+)\s*$", re.M)
#: YAML anchors (``&id001``) and aliases (``*id001``): a cut-out whose aliases point outside it is
#: not self-contained, so it is neither hashed alone nor converted alone.
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&([A-Za-z0-9_-]+)")
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])\*([A-Za-z0-9_-]+)")


def _self_contained(text: str) -> bool:
    """True if every YAML alias in ``text`` refers to an anchor defined in ``text``."""
    if "*" not in text:  # no alias at all (a scan ~20x quicker than the patterns over a 200 kB step)
        return True
    return set(_ALIAS.findall(text)) <= set(_ANCHOR.findall(text))


class MrsWcsParts:
    """An MRS gwcs split into the instrument model and the pointing.

    Attributes
    ----------
    instrument_key : str or None
        Content hash of the detector → alpha_beta step; None when the gwcs could not be
        split (then nothing derived from it may be shared with another exposure).
    """

    def __init__(self, instrument_key: str | None, load_pointing_steps: Callable[[], tuple],
                 load_detector_to_alpha_beta: Callable[[], Any], compiled: CompiledPointing | None = None):
        self.instrument_key = instrument_key
        self._load_pointing_steps = load_pointing_steps
        self._load_detector_to_alpha_beta = load_detector_to_alpha_beta
        self._compiled = compiled

    def __repr__(self) -> str:
        return f"MrsWcsParts(instrument_key={self.instrument_key!r})"

    @functools.cached_property
    def pointing_steps(self) -> tuple:
        """The astropy transforms of the steps alpha_beta → v2v3 → v2v3vacorr → world (converted on demand)."""
        return self._load_pointing_steps()

    @functools.cached_property
    def alpha_beta_to_world(self):
        """The exposure's own (α, β, λ) → (RA, Dec, λ) astropy transform (converted on demand)."""
        steps = self.pointing_steps
        return steps[0] | steps[1] | steps[2] if len(steps) == 3 else steps[0]

    @functools.cached_property
    def pointing(self):
        """The pointing compiled for fast evaluation, else ``alpha_beta_to_world`` itself.

        Compiled from the steps' ASDF tree when it has the official layout
        (:mod:`mrsdask.io.mrs_pointing_steps`), else from the astropy models and checked on
        sample points (:func:`mrsdask.instrument.pointing.compile_pointing`).
        """
        if self._compiled is not None:
            return self._compiled
        steps = self.pointing_steps
        compiled = compile_pointing(*steps) if len(steps) == 3 else None
        return self.alpha_beta_to_world if compiled is None else compiled

    @functools.cached_property
    def detector_to_alpha_beta(self):
        """The (x, y) → (α, β, λ) transform with its slice map (read on demand).

        A :class:`mrsdask.instrument.detector_model.DetectorModel` when the step has the
        official layout, else the gwcs step's astropy model; both are called as ``f(x, y)``.
        """
        return self._load_detector_to_alpha_beta()


def split_mrs_wcs(path: str, raw: bytes | bytearray) -> MrsWcsParts:
    """Split the gwcs held in the raw bytes of a cal file's ASDF extension.

    Parameters
    ----------
    path : str
        The file (for error messages).
    raw : bytes or bytearray
        The ``ASDF_METADATA`` bytes of its ``ASDF`` extension. The parts keep views of it (a
        bytearray can then no longer be resized, and the parts cannot be pickled): do not
        change it afterwards.
    """
    layout = _layout(raw)
    if layout is None:
        return _whole(path, raw)
    header, steps, blocks, offsets = layout
    refs = _SOURCE.findall(steps[0])
    if not all(r.isdigit() and int(r) < len(offsets) for r in refs) or not (
            _self_contained(steps[0]) and _self_contained("".join(steps[1:4]))):
        return _whole(path, raw)
    digest = hashlib.blake2b(steps[0].encode(), digest_size=20)
    for r in refs:
        start, size = offsets[int(r)]
        digest.update(blocks[start:start + size])

    def load(step_texts: list[str]) -> list:
        return open_tree(_steps_document(header, step_texts, blocks))["mrsdask_steps"]["steps"]

    def pointing_steps(later=None) -> tuple:
        later = load(steps[1:4]) if later is None else later
        if [getattr(getattr(s, "frame", None), "name", None) for s in later] != list(MRS_FRAMES[1:4]):
            raise InputError(f"{path}: the gwcs steps after the detector are not {list(MRS_FRAMES[1:4])}")
        return tuple(step.transform for step in later)

    def detector_step():
        model = detector_model(_steps_text(header, steps[:1]), blocks)  # arrays, no astropy models
        if model is not None:
            return model
        first = load(steps[:1])[0]
        if first.frame.name != MRS_FRAMES[0]:
            raise InputError(f"{path}: first gwcs frame is {first.frame.name!r}, not 'detector': "
                             "not an MRS WCS; run assign_wcs on the rate file")
        return first.transform

    try:  # the official layout: compiled from the plain tree, no astropy models
        tree = read_tree_parts(_steps_text(header, steps[1:4]), blocks)
        compiled = compiled_pointing(tree["mrsdask_steps"]["steps"])
    except (UnsupportedTree, KeyError, TypeError):
        compiled = None
    if compiled is not None:
        return MrsWcsParts(digest.hexdigest(), pointing_steps, detector_step, compiled)
    try:
        later = pointing_steps(load(steps[1:4]))
    except Exception:  # anything the cut-out document cannot express: use the whole gwcs
        return _whole(path, raw)
    return MrsWcsParts(digest.hexdigest(), lambda: later, detector_step)


def _steps_text(header: str, step_texts: list[str]) -> bytes:
    """The YAML of a small ASDF document holding the given gwcs steps (its blocks: the original ones)."""
    return (header + "mrsdask_steps:\n    steps:\n" + "".join(step_texts) + "...\n").encode()


def _steps_document(header: str, step_texts: list[str], blocks: bytes | memoryview) -> bytes:
    """A small ASDF document holding the given gwcs steps and the original binary blocks (joined:
    for asdf, which reads a whole file)."""
    return _steps_text(header, step_texts) + blocks


def _layout(raw: bytes | bytearray):
    """(header, step texts, binary blocks, block offsets) or None when the layout is unexpected.

    The blocks are a view of ``raw``: no copy of its ~9 MB.
    """
    yaml, blocks = split_document(raw)
    try:
        text = yaml.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines(keepends=True)
    doc = next((k for k, line in enumerate(lines) if line.startswith("--- ")), None)
    wcs = next((k for k, line in enumerate(lines) if line.startswith("  wcs: !<tag:stsci.edu:gwcs/wcs-")), None)
    if doc is None or wcs is None:
        return None
    first = next((k for k in range(wcs + 1, len(lines)) if lines[k].startswith(STEP_PREFIX)), None)
    if first is None:
        return None
    # The steps list runs until a line indented 4 spaces or less that does not start an item.
    end = next((k for k in range(first, len(lines))
                if not lines[k].startswith("     ") and not lines[k].startswith("    - ")), len(lines))
    bounds = [k for k in range(first, end) if lines[k].startswith(STEP_PREFIX)]
    if len(bounds) != len(MRS_FRAMES):
        return None
    bounds.append(end)
    steps = ["".join(lines[bounds[i]:bounds[i + 1]]) for i in range(len(MRS_FRAMES))]
    table = block_table(blocks)
    if table is None:
        return None
    return "".join(lines[:doc + 1]), steps, blocks, [(b.start, b.used) for b in table]


def _whole(path: str, raw: bytes | bytearray) -> MrsWcsParts:
    wcs = wcs_from_asdf_bytes(path, raw)
    if "alpha_beta" not in wcs.available_frames:
        raise InputError(f"{path}: its WCS has no alpha_beta frame (frames {list(wcs.available_frames)}): "
                         "not a MIRI MRS WCS; run assign_wcs on the MRS rate file")
    frames = list(wcs.available_frames)
    steps = tuple(wcs.get_transform(a, b) for a, b in zip(frames[1:], frames[2:]))
    if len(steps) != 3:  # not the MRS chain: only the whole transform is known
        steps = (wcs.get_transform("alpha_beta", wcs.output_frame.name),)
    return MrsWcsParts(None, lambda: steps, lambda: wcs.get_transform(frames[0], "alpha_beta"))
