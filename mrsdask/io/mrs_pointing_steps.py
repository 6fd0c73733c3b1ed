"""Read the pointing steps of an MRS gwcs from their ASDF tree, without astropy models.

The official ``assign_wcs`` writes the three steps after the detector step as::

    alpha_beta → v2v3:     regions_selector, labels from λ ranges (label_mapper of
                           remap_axes([2]) | constant), per label
                           (remap_axes([0, 1, 0, 1]) | polynomial & polynomial) & identity
    v2v3 → v2v3vacorr:     (shift, scale, identity combined by & and |) & identity
    v2v3vacorr → world:    ((scale & scale | …) | spherical_to_cartesian | rotate_sequence_3d
                            | cartesian_to_spherical) & identity

:func:`compiled_pointing` reads exactly that into a
:class:`mrsdask.instrument.pointing.CompiledPointing` (the same object, to the bit, that
:func:`mrsdask.instrument.pointing.compile_pointing` makes from the astropy models; the tests
compare the two). The meaning of each tag is the ASDF transform and gwcs schemas'. Any key or
tag it does not know — a bounding box, a model set, a non-identity domain, a remapping in the
affine parts — returns None, and the caller converts the steps with asdf and uses the checked
astropy path instead. Parsing the tree takes ~7 ms per exposure against ~90 ms for asdf to
build the models, and no process needs the ASDF extension registry (~1 s at first use).
"""

from __future__ import annotations

import numpy as np

from mrsdask.instrument.pointing import MRS_FRAMES, CompiledPointing, rotation_sequence_matrix
from mrsdask.io.asdf_tree import short_tag

#: Keys every transform may carry that do not change its forward evaluation.
_COMMON = frozenset({"inputs", "outputs", "name", "inverse"})


def compiled_pointing(steps: list) -> CompiledPointing | None:
    """The compiled pointing of the steps ``alpha_beta``, ``v2v3`` and ``v2v3vacorr`` (tree nodes), or None."""
    try:
        if len(steps) != 3 or [_frame_name(s) for s in steps] != list(MRS_FRAMES[1:4]):
            return None
        if any(short_tag(s) != "gwcs/step" for s in steps):
            return None
        return _compile(*(s["transform"] for s in steps))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _frame_name(step) -> str | None:
    frame = step.get("frame") if hasattr(step, "get") else None
    return frame.get("name") if hasattr(frame, "get") else None


def _compile(selector, va, v23sky) -> CompiledPointing | None:
    # Step 1.
    if short_tag(selector) != "gwcs/regions_selector" or not _only(selector, {
            "label_mapper", "selector", "undefined_transform_value"}):
        return None
    if not np.isnan(float(selector.get("undefined_transform_value", np.nan))):
        return None
    mapped = _label_ranges(selector["label_mapper"])
    if mapped is None:
        return None
    ranges, range_labels, no_label = mapped
    table = selector["selector"]
    if set(table) != {"labels", "transforms"} or len(table["labels"]) != len(table["transforms"]):
        return None
    labels, polys = [], []
    for label, transform in zip(table["labels"], table["transforms"]):
        pair = _polynomial_pair(transform)
        if pair is None or isinstance(label, (str, bool)):
            return None
        labels.append(float(label))
        polys.append(pair)
    size = max(p.shape[0] for pair in polys for p in pair)
    coefficients = np.zeros((len(labels), 2, size, size))
    for k, pair in enumerate(polys):
        for axis, poly in enumerate(pair):
            degree = poly.shape[0] - 1
            for i in range(degree + 1):
                for j in range(degree + 1 - i):  # the terms a Polynomial2D of that degree has
                    coefficients[k, axis, i, j] = poly[i, j]

    # Step 2: velocity aberration, per axis, λ passed through.
    head = _pass_lambda(va)
    affine_va = _separable_affine([head], 2) if head is not None else None
    if affine_va is None:
        return None

    # Step 3: (V2, V3) → sky.
    head = _pass_lambda(v23sky)
    if head is None:
        return None
    chain = _flatten_compose(head)
    if len(chain) < 4:
        return None
    s2c, rotation, c2s = chain[-3:]
    if short_tag(s2c) != "gwcs/spherical_cartesian" or s2c.get("transform_type") != "spherical_to_cartesian" \
            or not _only(s2c, {"transform_type", "wrap_lon_at"}):
        return None
    if short_tag(c2s) != "gwcs/spherical_cartesian" or c2s.get("transform_type") != "cartesian_to_spherical" \
            or not _only(c2s, {"transform_type", "wrap_lon_at"}):
        return None
    if short_tag(rotation) != "asdf/transform/rotate_sequence_3d" or rotation.get("rotation_type") != "cartesian" \
            or not _only(rotation, {"angles", "axes_order", "rotation_type"}):
        return None
    angles = [float(a) for a in rotation["angles"]]
    matrix = rotation_sequence_matrix(angles, str(rotation["axes_order"]))
    affine_sky = _separable_affine(chain[:-3], 2)
    if affine_sky is None:
        return None
    wrap = int(c2s.get("wrap_lon_at", 360))
    if wrap not in (180, 360):
        return None
    affine = np.array([[*affine_va[0], *affine_va[1]], [*affine_sky[0], *affine_sky[1]]])
    return CompiledPointing(np.array(ranges, dtype=np.float64).reshape(-1, 2), np.array(range_labels),
                            float(no_label), np.array(labels), coefficients, affine,
                            np.ascontiguousarray(matrix), wrap != 180)


def _only(node, allowed: set) -> bool:
    """True if the node has no key besides ``allowed`` and the harmless common ones."""
    return set(node) <= _COMMON | allowed


def _label_ranges(mapper):
    """(ranges, labels, no_label) of a λ-range label mapper whose models are constants."""
    if short_tag(mapper) != "gwcs/label_mapper" or not _only(mapper, {"mapper", "inputs_mapping", "no_label"}):
        return None
    if not _is_remap(mapper.get("inputs_mapping"), [2]):
        return None
    table = mapper["mapper"]
    if set(table) != {"labels", "models"} or len(table["labels"]) != len(table["models"]):
        return None
    ranges, labels = [], []
    for (low, high), model in zip(table["labels"], table["models"]):
        if short_tag(model) != "asdf/transform/compose" or not _only(model, {"forward"}):
            return None
        remap, constant = model["forward"]
        if not _is_remap(remap, [2]) or short_tag(constant) != "asdf/transform/constant" \
                or not _only(constant, {"value", "dimensions"}) or int(constant.get("dimensions", 1)) != 1:
            return None
        value = np.asarray(constant["value"], dtype=np.float64)
        if value.shape != ():
            return None
        ranges.append((float(low), float(high)))
        labels.append(float(value))
    no_label = mapper.get("no_label", 0)
    if isinstance(no_label, (str, bool)):
        return None
    return ranges, labels, float(no_label)


def _is_remap(node, mapping: list[int]) -> bool:
    return short_tag(node) == "asdf/transform/remap_axes" and _only(node, {"mapping", "n_inputs"}) \
        and list(node["mapping"]) == mapping


def _pass_lambda(node):
    """The left part of ``left & identity(1)``, else None."""
    if short_tag(node) != "asdf/transform/concatenate" or not _only(node, {"forward"}) or len(node["forward"]) != 2:
        return None
    left, right = node["forward"]
    if short_tag(right) != "asdf/transform/identity" or not _only(right, {"n_dims"}) or int(right.get("n_dims", 1)) != 1:
        return None
    return left


def _polynomial_pair(node):
    """Coefficient arrays of ``(remap_axes([0, 1, 0, 1]) | P2D & P2D) & identity``, else None."""
    head = _pass_lambda(node)
    if head is None or short_tag(head) != "asdf/transform/compose" or not _only(head, {"forward"}):
        return None
    remap, pair = head["forward"]
    if not _is_remap(remap, [0, 1, 0, 1]) or short_tag(pair) != "asdf/transform/concatenate" \
            or not _only(pair, {"forward"}) or len(pair["forward"]) != 2:
        return None
    out = []
    for poly in pair["forward"]:
        if short_tag(poly) != "asdf/transform/polynomial" or not _only(poly, {"coefficients", "domain", "window"}):
            return None
        coefficients = np.asarray(poly["coefficients"], dtype=np.float64)
        if coefficients.ndim != 2 or coefficients.shape[0] != coefficients.shape[1]:
            return None
        # A domain equal to its window maps coordinates to themselves exactly; others are not compiled.
        domain, window = poly.get("domain"), poly.get("window")
        if (domain is None) != (window is None) or (domain is not None and (
                np.asarray(domain, dtype=np.float64).tolist() != np.asarray(window, dtype=np.float64).tolist())):
            return None
        out.append(coefficients)
    return tuple(out)


def _flatten_compose(node) -> list:
    if short_tag(node) == "asdf/transform/compose" and _only(node, {"forward"}):
        left, right = node["forward"]
        return _flatten_compose(left) + _flatten_compose(right)
    return [node]


def _n_axes(node) -> int | None:
    """Inputs of a transform made of identity, shift and scale by & and | (outputs are the same)."""
    tag = short_tag(node)
    if tag in ("asdf/transform/shift", "asdf/transform/scale"):
        return 1
    if tag == "asdf/transform/identity":
        return int(node.get("n_dims", 1))
    if tag == "asdf/transform/compose":
        return _n_axes(node["forward"][0])
    if tag == "asdf/transform/concatenate":
        counts = [_n_axes(n) for n in node["forward"]]
        return None if None in counts else sum(counts)
    return None


def _apply(node, values: list[float]) -> list[float]:
    """Evaluate a per-axis affine tree on one point, in the order astropy does (raises if not one)."""
    tag = short_tag(node)
    if _n_axes(node) != len(values):
        raise ValueError("axis count mismatch")
    if tag == "asdf/transform/shift" and _only(node, {"offset"}):
        return [values[0] + _scalar(node["offset"])]
    if tag == "asdf/transform/scale" and _only(node, {"factor"}):
        return [_scalar(node["factor"]) * values[0]]
    if tag == "asdf/transform/identity" and _only(node, {"n_dims"}):
        return list(values)
    if tag == "asdf/transform/compose" and _only(node, {"forward"}):
        for part in node["forward"]:
            values = _apply(part, values)
        return values
    if tag == "asdf/transform/concatenate" and _only(node, {"forward"}):
        out, start = [], 0
        for part in node["forward"]:
            n = _n_axes(part)
            if n is None:
                raise ValueError("not a per-axis affine transform")
            out += _apply(part, values[start:start + n])
            start += n
        if start != len(values):
            raise ValueError("axis count mismatch")
        return out
    raise ValueError(f"{tag or type(node).__name__} is not a per-axis affine step")


def _scalar(value) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != ():
        raise ValueError("a model set or a quantity, not one number")
    return float(array)


def _separable_affine(chain: list, n_axes: int):
    """Per-axis (scale, offset) of a chain of identity/shift/scale trees (& and |), else None.

    Such a chain maps each axis on its own; the values come from evaluating it at 0 and 1 (as
    :func:`mrsdask.instrument.pointing._separable_affine` does with the astropy model).
    """
    zero, one = [0.0] * n_axes, [1.0] * n_axes
    for node in chain:
        zero, one = _apply(node, zero), _apply(node, one)
    return [(one[a] - zero[a], zero[a]) for a in range(n_axes)]
