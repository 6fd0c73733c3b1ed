"""Read the detector → α, β, λ step of an MRS gwcs from its ASDF tree, without astropy models.

The step is written by the official ``assign_wcs`` as a gwcs ``regions_selector``: a label
array (the slice map) and, per label, the transform::

    remap_axes([1, 0, 0, 1, 0]) | (((identity & shift) | polynomial) & constant
                                   & ((identity & shift) | polynomial))

i.e. ``α = P_α(y, x + s_α)``, ``β = constant``, ``λ = P_λ(y, x + s_λ)``. :func:`detector_model`
reads exactly that structure from the tagged tree (the ASDF transform schemas define each
tag's meaning) into a :class:`mrsdask.instrument.detector_model.DetectorModel`, about 7× faster
than building the astropy models. Anything else — another tag, another arrangement, a
non-NaN undefined value — returns None, and the caller converts the step with asdf/gwcs.
"""

from __future__ import annotations

import numpy as np

from mrsdask.instrument.detector_model import DetectorModel, SlicePolynomial, domain_map
from mrsdask.io.asdf_tree import UnsupportedTree, open_tree, read_tree_parts, short_tag

#: ASDF extensions whose converters are left out when asdf reads the step as a tree.
_SKIPPED_EXTENSIONS = ("asdf://asdf-format.org/transform/extensions/",
                       "asdf://asdf-format.org/astronomy/gwcs/extensions/")


def detector_model(text: bytes, blocks: bytes | memoryview) -> DetectorModel | None:
    """The detector model of the single gwcs step in an ASDF document, or None.

    Parameters
    ----------
    text : bytes
        The document's YAML, holding the step as ``mrsdask_steps.steps[0]``.
    blocks : bytes or memoryview
        Its binary blocks, without the block index (may be a view of a larger buffer).
    """
    try:
        tree = read_tree_parts(text, blocks)  # libyaml and numpy only
    except UnsupportedTree:
        tree = open_tree(text + blocks, skip_extensions=_SKIPPED_EXTENSIONS)
    step = tree["mrsdask_steps"]["steps"][0]
    if short_tag(step) != "gwcs/step" or _name(step.get("frame")) != "detector":
        return None
    try:
        return _selector(step["transform"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _name(frame) -> str | None:
    return frame.get("name") if hasattr(frame, "get") else None


def _selector(node) -> DetectorModel | None:
    if short_tag(node) != "gwcs/regions_selector" or not np.isnan(float(node.get("undefined_transform_value", np.nan))):
        return None
    mapper = node["label_mapper"]
    if short_tag(mapper) != "gwcs/label_mapper" or mapper.get("inputs_mapping") is not None:
        return None
    slice_map = np.asarray(mapper["mapper"])
    if slice_map.ndim != 2 or slice_map.dtype.kind not in "iu" or int(mapper.get("no_label", 0)) != 0:
        return None
    labels, transforms = node["selector"]["labels"], node["selector"]["transforms"]
    if len(labels) != len(transforms):
        return None
    slices = {}
    for label, transform in zip(labels, transforms):
        parts = _slice_transform(transform)
        if parts is None or not isinstance(label, (int, np.integer)):
            return None
        slices[int(label)] = parts
    return DetectorModel.from_slices(slice_map, slices)


def _slice_transform(node):
    """(α polynomial, β, λ polynomial) of one slice's transform, else None."""
    if short_tag(node) != "asdf/transform/compose":
        return None
    remap, body = node["forward"]
    if short_tag(remap) != "asdf/transform/remap_axes" or list(remap["mapping"]) != [1, 0, 0, 1, 0]:
        return None
    if short_tag(body) != "asdf/transform/concatenate":
        return None
    left, lam = body["forward"]
    if short_tag(left) != "asdf/transform/concatenate":
        return None
    alpha, beta = left["forward"]
    if short_tag(beta) != "asdf/transform/constant" or int(beta.get("dimensions", 1)) != 1:
        return None
    value = np.asarray(beta["value"], dtype=np.float64)
    if value.shape != ():
        return None
    alpha_poly, lam_poly = _shifted_polynomial(alpha), _shifted_polynomial(lam)
    if alpha_poly is None or lam_poly is None:
        return None
    return alpha_poly, float(value), lam_poly


def _shifted_polynomial(node) -> SlicePolynomial | None:
    """``(identity & shift) | polynomial`` → the polynomial of (u, v + shift)."""
    if short_tag(node) != "asdf/transform/compose":
        return None
    pair, poly = node["forward"]
    if short_tag(pair) != "asdf/transform/concatenate" or short_tag(poly) != "asdf/transform/polynomial":
        return None
    identity, shift = pair["forward"]
    if short_tag(identity) != "asdf/transform/identity" or int(identity.get("n_dims", 1)) != 1:
        return None
    if short_tag(shift) != "asdf/transform/shift":
        return None
    offset = np.asarray(shift["offset"], dtype=np.float64)
    coefficients = np.asarray(poly["coefficients"], dtype=np.float64)
    if offset.shape != () or coefficients.ndim != 2 or coefficients.shape[0] != coefficients.shape[1]:
        return None
    domain = poly.get("domain") or (None, None)
    window = poly.get("window") or (None, None)
    if len(domain) != 2 or len(window) != 2:
        return None
    return SlicePolynomial(coefficients, float(offset), domain_map(domain[0], window[0]),
                           domain_map(domain[1], window[1]))
