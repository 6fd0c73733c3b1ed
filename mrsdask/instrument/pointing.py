"""Fast evaluation of an MRS exposure's (α, β, λ) → (RA, Dec) transform, its pointing.

The pointing part of an MRS gwcs (``alpha_beta → v2v3 → v2v3vacorr → world``) is a per-channel
pair of 2-D polynomials (α, β) → (V2, V3), chosen by λ; a per-axis affine velocity-aberration
correction; and the V2/V3 → sky rotation. astropy evaluates it as a chain of array operations
with a temporary per step (~175 ns per point); the drizzle footprint needs it on five points per
pixel (centre and four corners) of every exposure, which made it the largest per-exposure cost
of the pixel tables.

:func:`compile_pointing` recognises exactly that structure in the three gwcs step transforms and
returns a :class:`CompiledPointing` that evaluates centre and corners of every pixel in one
numba loop. It does not trust the recognition: it evaluates the astropy chain and the compiled
form on sample points in every λ range of the channel selector (all five corner paths, the range
limits included) and returns ``None`` unless they agree to :data:`TOLERANCE_DEG` with the same
undefined points; the caller then keeps the astropy transform. The λ → channel labels follow
the gwcs ``LabelMapperRange`` rule (strictly inside a range; a later range wins).

:mod:`mrsdask.io.mrs_pointing_steps` builds the same :class:`CompiledPointing` straight from the
ASDF tree of the steps, without astropy models (the tests hold it to this module's output).
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass

import numba
import numpy as np

from mrsdask.instrument.small_angles import (SMALL_ANGLE, atan2_small, atan_series, sin_cos_series, sin_cos_small,
                                             sin_cos_sum)

log = logging.getLogger(__name__)

#: Frames of an MRS gwcs, in order (the official ``assign_wcs`` for MIRI MRS).
MRS_FRAMES = ("detector", "alpha_beta", "v2v3", "v2v3vacorr", "world")
#: Largest RA/Dec difference (deg) from the astropy evaluation accepted on the sample points
#: (~0.4 µas; the two differ by rounding only, ~1e-13 deg).
TOLERANCE_DEG = 1e-10


@dataclass(frozen=True)
class CompiledPointing:
    """A recognised and checked MRS pointing transform, evaluated by a numba kernel.

    Attributes
    ----------
    ranges : ndarray, shape (n_ranges, 2)
        λ ranges of the channel selector's label mapper (µm, open intervals), in its order.
    range_labels : ndarray, shape (n_ranges,)
        The label of each range.
    no_label : float
        Label of a λ in no range (or NaN).
    labels : ndarray
        Selector labels that have a transform; row ``k`` of the tables belongs to ``labels[k]``.
    coefficients : ndarray, shape (n_labels, 2, degree + 1, degree + 1)
        Polynomial coefficients of V2 and V3 per label: ``[k, axis, i, j]`` multiplies αⁱ βʲ.
    affine : ndarray, shape (2, 4)
        Per-axis ``(scale_v2, offset_v2, scale_v3, offset_v3)`` of the velocity-aberration step
        (row 0) and of the arcsec → degree step before the sky rotation (row 1).
    matrix : ndarray, shape (3, 3)
        The V2/V3 → sky rotation matrix (applied to unit vectors).
    wrap_360 : bool
        Whether RA is wrapped to [0, 360) (else [-180, 180)).
    """

    ranges: np.ndarray
    range_labels: np.ndarray
    no_label: float
    labels: np.ndarray
    coefficients: np.ndarray
    affine: np.ndarray
    matrix: np.ndarray
    wrap_360: bool

    def label_index(self, alpha: np.ndarray, beta: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Row of the coefficient tables for each point (-1 where no transform applies).

        As gwcs ``LabelMapperRange``: a λ strictly inside a range gets its label (a later range
        overrides an earlier one), any other λ, NaN included, gets ``no_label``.
        """
        lam = np.asarray(lam, dtype=np.float64).ravel()
        raw = np.full(lam.shape, self.no_label)
        for (low, high), label in zip(self.ranges, self.range_labels):
            raw[(lam > low) & (lam < high)] = label
        index = np.full(raw.shape, -1, dtype=np.int64)
        for k, label in enumerate(self.labels):
            index[raw == label] = k
        return index

    def footprint(self, alpha, alpha_lo, alpha_hi, beta, half_width: float, lam):
        """Sky position of pixel centres and of their four footprint corners.

        Parameters
        ----------
        alpha, alpha_lo, alpha_hi, beta, lam : ndarray
            Pixel-centre α, the α edges, β and λ (1-D, same length).
        half_width : float
            Half the slice width (arcsec); the corners are at β ∓ ``half_width``.

        Returns
        -------
        ra, dec : ndarray
            Centres (deg).
        corner_ra, corner_dec : ndarray, shape (4, n)
            Corners ``(α_lo, β-h), (α_lo, β+h), (α_hi, β+h), (α_hi, β-h)`` (deg), all at the
            pixel-centre λ, as :func:`mrsdask.instrument.geometry.sky_geometry`.
        """
        arrays = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in (alpha, alpha_lo, alpha_hi, beta)]
        index = self.label_index(alpha, beta, lam)
        n = arrays[0].size
        ra, dec = np.empty(n), np.empty(n)
        corner_ra, corner_dec = np.empty((4, n)), np.empty((4, n))
        _footprint_kernel(*arrays, float(half_width), index, self.coefficients, self.affine,
                          self.matrix, self.wrap_360, ra, dec, corner_ra, corner_dec)
        return ra, dec, corner_ra, corner_dec

    def footprint_rows(self, alpha, alpha_lo, alpha_hi, beta, half_width: float, index: np.ndarray,
                       target: np.ndarray, rows: np.ndarray, sky_at: tuple[int, int, int, int],
                       copy: tuple[np.ndarray, ...], copy_at: tuple[int, ...]):
        """:meth:`footprint`, written straight into the rows of a table (no per-pixel corner arrays).

        The centre of every pixel is returned; the corners are mapped only for the pixels that
        have a row. The numbers are those of :meth:`footprint` bit for bit (the same kernel code).

        Parameters
        ----------
        alpha, alpha_lo, alpha_hi, beta : ndarray
            As :meth:`footprint` (1-D, same length n).
        half_width : float
            As :meth:`footprint`.
        index : ndarray of int64
            :meth:`label_index` of the pixels.
        target : ndarray of int64, shape (n,)
            Row of ``rows`` that pixel ``k`` goes to, or -1 (each row at most once).
        rows : ndarray, shape (n_rows, n_columns), float64
            Filled in place: for every pixel with a row, centre RA and Dec in columns
            ``sky_at[0]`` and ``sky_at[1]``, corner ``i``'s RA and Dec in columns ``sky_at[2] + i``
            and ``sky_at[3] + i``, and ``copy[j][k]`` in column ``copy_at[j]``.
        copy : tuple of ndarray
            Other per-pixel float64 values (C-contiguous, all read-only or all writeable).

        Returns
        -------
        ra, dec : ndarray, shape (n,)
            Centres of all the pixels (deg).
        finite : ndarray of bool, shape (n_rows,)
            Whether the row's centre RA and four corner RAs are finite.
        """
        arrays = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in (alpha, alpha_lo, alpha_hi, beta)]
        n = arrays[0].size
        ra, dec = np.empty(n), np.empty(n)
        finite = np.ones(rows.shape[0], dtype=np.bool_)
        _footprint_rows_kernel(*arrays, float(half_width), index, self.coefficients, self.affine, self.matrix,
                               self.wrap_360, target, rows, np.asarray(sky_at, dtype=np.int64), copy,
                               np.asarray(copy_at, dtype=np.int64), ra, dec, finite)
        return ra, dec, finite


def compile_pointing(alpha_beta_to_v2v3, v2v3_to_vacorr, vacorr_to_world) -> CompiledPointing | None:
    """Compile the three pointing steps of an MRS gwcs, or None if they cannot be compiled exactly.

    Parameters
    ----------
    alpha_beta_to_v2v3, v2v3_to_vacorr, vacorr_to_world : astropy.modeling.Model
        The transforms of the gwcs steps ``alpha_beta``, ``v2v3`` and ``v2v3vacorr``.
    """
    try:
        compiled = _recognise(alpha_beta_to_v2v3, v2v3_to_vacorr, vacorr_to_world)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        log.debug("pointing transform not compiled: %s", exc)
        return None
    if compiled is None:
        return None
    reference = alpha_beta_to_v2v3 | v2v3_to_vacorr | vacorr_to_world
    if not _agrees(compiled, reference):
        log.debug("compiled pointing disagrees with the gwcs on sample points: not used")
        return None
    return compiled


def compile_wcs_pointing(wcs) -> CompiledPointing | None:
    """:func:`compile_pointing` of a whole MRS gwcs (None if its frames are not the MRS chain)."""
    frames = list(getattr(wcs, "available_frames", []))
    if frames != list(MRS_FRAMES):
        return None
    return compile_pointing(*(wcs.get_transform(a, b) for a, b in zip(frames[1:4], frames[2:5])))


def _recognise(ab2v23, va, v23sky) -> CompiledPointing | None:
    from astropy.modeling import models
    from gwcs.geometry import CartesianToSpherical, SphericalToCartesian
    from gwcs.selector import LabelMapperRange, RegionsSelector

    # Step 1: (α, β, λ) → (V2, V3, λ): a λ-range selector of (Mapping(0,1,0,1) | P2D & P2D) & Identity.
    if not isinstance(ab2v23, RegionsSelector) or not isinstance(ab2v23.label_mapper, LabelMapperRange):
        return None
    if tuple(ab2v23.label_mapper.inputs_mapping.mapping) != (2,) or not np.isnan(ab2v23.undefined_transform_value):
        return None  # labels must depend on λ alone (corners share the centre's λ, hence its label)
    ranges, range_labels = [], []
    for (low, high), model in ab2v23.label_mapper.mapper.items():
        parts = _flatten(model, "|")
        if len(parts) != 2 or not isinstance(parts[0], models.Mapping) or tuple(parts[0].mapping) != (2,) \
                or not isinstance(parts[1], models.Const1D):
            return None
        ranges.append((float(low), float(high)))
        range_labels.append(float(parts[1].amplitude.value))
    labels, polys = [], []
    for label, transform in ab2v23.selector.items():
        pair = _polynomial_pair(transform, models)
        if pair is None:
            return None
        labels.append(float(label))
        polys.append(pair)
    degree = max(p.degree for pair in polys for p in pair)
    coefficients = np.zeros((len(labels), 2, degree + 1, degree + 1))
    for k, pair in enumerate(polys):
        for axis, poly in enumerate(pair):
            for name, value in zip(poly.param_names, poly.parameters):
                i, j = (int(v) for v in name[1:].split("_"))
                coefficients[k, axis, i, j] = value

    # Step 2: velocity aberration, per-axis affine on V2, V3 and λ passed through.
    affine_va = _separable_affine(va, n_axes=3, models=models)
    if affine_va is None or affine_va[2] != (1.0, 0.0):
        return None

    # Step 3: (V2, V3) → sky: affine (arcsec → deg) | SphericalToCartesian | rotation | CartesianToSpherical, & λ.
    if getattr(v23sky, "op", None) != "&" or not isinstance(v23sky.right, models.Identity) or v23sky.right.n_inputs != 1:
        return None
    chain = _flatten(v23sky.left, "|")
    if len(chain) < 4 or not isinstance(chain[-3], SphericalToCartesian) \
            or not isinstance(chain[-1], CartesianToSpherical) \
            or not isinstance(chain[-2], models.RotationSequence3D):
        return None
    pre = chain[0]
    for step in chain[1:-3]:
        pre = pre | step
    affine_sky = _separable_affine(pre, n_axes=2, models=models)
    if affine_sky is None:
        return None
    rotation = chain[-2]
    basis = np.eye(3)
    matrix = np.array(rotation(basis[0], basis[1], basis[2]), dtype=np.float64)  # columns = images of e_j
    wrap = int(chain[-1].wrap_lon_at)
    affine = np.array([[*affine_va[0], *affine_va[1]], [*affine_sky[0], *affine_sky[1]]])
    return CompiledPointing(np.array(ranges).reshape(-1, 2), np.array(range_labels),
                            float(ab2v23.label_mapper.no_label), np.array(labels), coefficients, affine,
                            np.ascontiguousarray(matrix), wrap != 180)


def rotation_sequence_matrix(angles_deg, axes_order: str) -> np.ndarray:
    """The matrix of astropy's ``RotationSequence3D(angles_deg, axes_order)``, computed as astropy does.

    Each angle (degrees, converted by ``np.deg2rad``) gives an elementary rotation about its axis
    (``astropy.coordinates.matrix_utilities.rotation_matrix``); the product is taken last to
    first. The result equals astropy's evaluation on the unit vectors bit for bit.
    """
    radians = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if radians.ndim != 1 or radians.size != len(axes_order) or radians.size == 0:
        raise ValueError("one angle per axis is needed")
    matrices = []
    for angle, axis in zip(radians, axes_order):
        i = "xyz".index(axis)
        a1, a2 = (i + 1) % 3, (i + 2) % 3
        s, c = np.sin(angle), np.cos(angle)
        r = np.zeros((3, 3))
        r[i, i] = 1.0
        r[a1, a1] = c
        r[a1, a2] = s
        r[a2, a1] = -s
        r[a2, a2] = c
        matrices.append(r)
    return functools.reduce(np.matmul, matrices[::-1])


def _polynomial_pair(transform, models):
    """(P_v2, P_v3) of ``(Mapping((0, 1, 0, 1)) | P2D & P2D) & Identity(1)``, else None."""
    if getattr(transform, "op", None) != "&" or not isinstance(transform.right, models.Identity):
        return None
    head = transform.left
    if getattr(head, "op", None) != "|" or not isinstance(head.left, models.Mapping):
        return None
    if tuple(head.left.mapping) != (0, 1, 0, 1) or getattr(head.right, "op", None) != "&":
        return None
    pair = (head.right.left, head.right.right)
    for poly in pair:
        if not isinstance(poly, models.Polynomial2D):
            return None
        # A domain equal to its window maps coordinates to themselves exactly; others are not compiled.
        for domain, window in ((poly.x_domain, poly.x_window), (poly.y_domain, poly.y_window)):
            if domain is not None and tuple(domain) != tuple(window):
                return None
        if len(poly) != 1:  # a model set, not one polynomial
            return None
    return pair


def _separable_affine(model, n_axes: int, models):
    """Per-axis (scale, offset) of a model made only of Identity, Shift and Scale, else None."""
    leaves = _leaves(model)
    if not all(type(leaf) in (models.Identity, models.Shift, models.Scale) for leaf in leaves):
        return None
    if model.n_inputs != n_axes or model.n_outputs != n_axes:
        return None
    from astropy.modeling.separable import separability_matrix

    if not np.array_equal(separability_matrix(model), np.eye(n_axes, dtype=bool)):
        return None
    zero = np.asarray(model(*([0.0] * n_axes)), dtype=np.float64)
    one = np.asarray(model(*([1.0] * n_axes)), dtype=np.float64)
    return [(float(one[a] - zero[a]), float(zero[a])) for a in range(n_axes)]


def _leaves(model) -> list:
    if getattr(model, "op", None) is None:
        return [model]
    return _leaves(model.left) + _leaves(model.right)


def _flatten(model, op: str) -> list:
    if getattr(model, "op", None) != op:
        return [model]
    return _flatten(model.left, op) + _flatten(model.right, op)


def _agrees(compiled: CompiledPointing, reference) -> bool:
    """Compare the compiled and astropy evaluations on points spread over every λ range."""
    ranges = [tuple(r) for r in compiled.ranges]
    grid = np.linspace(-7.5, 7.5, 7)
    alpha, beta, lam = (a.ravel() for a in np.meshgrid(
        grid, grid + 0.37, [lo + f * (hi - lo) for lo, hi in ranges for f in (0.0, 0.02, 0.5, 0.98, 1.0)]
        + [ranges[0][0] - 0.5, np.nan], indexing="ij"))
    half = 0.0881
    alpha_lo, alpha_hi = alpha - 0.0523, alpha + 0.0611
    ra, dec, cra, cdec = compiled.footprint(alpha, alpha_lo, alpha_hi, beta, half, lam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [reference(a, b, lam)[:2] for a, b in (
            (alpha, beta), (alpha_lo, beta - half), (alpha_lo, beta + half),
            (alpha_hi, beta + half), (alpha_hi, beta - half))]
    got = [(ra, dec)] + [(cra[i], cdec[i]) for i in range(4)]
    for (era, edec), (gra, gdec) in zip(expected, got):
        era, edec = np.asarray(era, dtype=np.float64), np.asarray(edec, dtype=np.float64)
        if not (np.array_equal(np.isnan(era), np.isnan(gra)) and np.array_equal(np.isnan(edec), np.isnan(gdec))):
            return False
        ok = np.isfinite(era)
        if not ok.any():
            return False
        dra = (gra[ok] - era[ok] + 180.0) % 360.0 - 180.0
        if np.max(np.abs(dra)) > TOLERANCE_DEG or np.max(np.abs(gdec[ok] - edec[ok])) > TOLERANCE_DEG:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _rotated(slon, clon, slat, clat, matrix):  # pragma: no cover - compiled
    """The unit vector of (lon, lat) given by sines and cosines, rotated by ``matrix``, and its
    distance from the pole (|x|, |y| ≤ 1: no overflow to guard against, as hypot)."""
    x = clat * clon
    y = clat * slon
    z = slat
    xr = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2] * z
    yr = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2] * z
    zr = matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2] * z
    return xr, yr, zr, np.sqrt(xr * xr + yr * yr)


@numba.njit(cache=True, nogil=True, inline="always")
def _input_angles(inner, m, a, affine):  # pragma: no cover - compiled
    """(α, β) → (V2, V3) → velocity aberration → the rotation's input lon, lat (rad), for the
    β sums ``inner[m]`` (:func:`_beta_sums`) and α = ``a``."""
    degree = inner.shape[2] - 1
    v2 = 0.0
    v3 = 0.0
    power_a = 1.0
    for i in range(degree + 1):
        v2 += inner[m, 0, i] * power_a
        v3 += inner[m, 1, i] * power_a
        power_a *= a
    v2 = affine[0, 0] * v2 + affine[0, 1]
    v3 = affine[0, 2] * v3 + affine[0, 3]
    deg2rad = np.pi / 180.0
    return (affine[1, 0] * v2 + affine[1, 1]) * deg2rad, (affine[1, 2] * v3 + affine[1, 3]) * deg2rad


@numba.njit(cache=True, nogil=True, inline="always")
def _wrap_lon(lon_deg, wrap_360):  # pragma: no cover - compiled
    """Longitude (deg) wrapped to [0, 360) or [-180, 180)."""
    if wrap_360:
        if lon_deg < 0.0 or lon_deg >= 360.0:
            lon_deg = lon_deg % 360.0
    elif lon_deg < -180.0 or lon_deg >= 180.0:
        lon_deg = (lon_deg + 180.0) % 360.0 - 180.0
    return lon_deg


@numba.njit(cache=True, nogil=True, inline="always")
def _beta_sums(coefficients, row, beta, half, pb, inner):  # pragma: no cover - compiled
    """``inner[m, axis, i] = Σ_j c_ij b^j`` for b = β, β - h, β + h (m = 0, 1, 2), per axis and power i
    of α: β is constant along a slice, so these sums are kept while the label and β stay the same."""
    degree = coefficients.shape[2] - 1
    for m in range(3):
        if m == 0:
            b = beta
        elif m == 1:
            b = beta - half
        else:
            b = beta + half
        pb[0] = 1.0
        for p in range(1, degree + 1):
            pb[p] = pb[p - 1] * b
        for i in range(degree + 1):
            s2 = 0.0
            s3 = 0.0
            for j in range(degree + 1 - i):
                s2 += coefficients[row, 0, i, j] * pb[j]
                s3 += coefficients[row, 1, i, j] * pb[j]
            inner[m, 0, i] = s2
            inner[m, 1, i] = s3


@numba.njit(cache=True, nogil=True, inline="always")
def _centre(alpha, inner, affine, matrix):  # pragma: no cover - compiled
    """A pixel centre with the full trigonometry: the rotation's input angles and their sines
    and cosines, the rotated unit vector and its distance from the pole, and the output lat, lon
    (rad; the state its corners are mapped from, see :func:`_pixel_sky`)."""
    lon_in, lat_in = _input_angles(inner, 0, alpha, affine)
    slon, clon = np.sin(lon_in), np.cos(lon_in)
    slat, clat = np.sin(lat_in), np.cos(lat_in)
    xr, yr, zr, h = _rotated(slon, clon, slat, clat, matrix)
    lat = np.arctan2(zr, h)
    lon = 0.0 if h == 0.0 else np.arctan2(yr, xr)
    return lon_in, lat_in, slon, clon, slat, clat, xr, yr, zr, h, lat, lon


#: Order of the corners of a pixel: the α edge (0: α at x - 0.4999, 1: at x + 0.4999) and the
#: β sums (:func:`_beta_sums`: 1 for β - h, 2 for β + h) of each.
CORNER_EDGES = ((0, 1), (0, 2), (1, 2), (1, 1))


@numba.njit(cache=True, nogil=True, inline="always")
def _pixel_sky(alpha, alpha_lo, alpha_hi, inner, affine, matrix, wrap_360, n_points, out):  # pragma: no cover
    """Sky (deg) of a pixel's centre, ``out[0] = (RA, Dec)``, and, when ``n_points`` is 5, of its
    corners ``out[1:5]``: (α, β) → (V2, V3) → sky, as the gwcs chain does.

    The centre is mapped with the full trigonometry. A corner is a fraction of an arcsecond
    from its centre, so it is mapped by angle addition from the centre's sines and cosines
    and its output angles are the centre's plus the small angle between the two rotated unit
    vectors: the same values to rounding (~1e-14 deg), with no libm call per corner.
    """
    rad2deg = 180.0 / np.pi
    lon_in0, lat_in0, slon0, clon0, slat0, clat0, x0, y0, z0, h0, lat0, lon0 = _centre(alpha, inner, affine, matrix)
    out[0, 0] = _wrap_lon(lon0 * rad2deg, wrap_360)
    out[0, 1] = lat0 * rad2deg
    for c in range(n_points - 1):
        lon_in, lat_in = _input_angles(inner, CORNER_EDGES[c][1], alpha_hi if CORNER_EDGES[c][0] else alpha_lo,
                                       affine)
        sd, cd = sin_cos_small(lon_in - lon_in0)
        slon, clon = sin_cos_sum(slon0, clon0, sd, cd)
        sd, cd = sin_cos_small(lat_in - lat_in0)
        slat, clat = sin_cos_sum(slat0, clat0, sd, cd)
        xr, yr, zr, h = _rotated(slon, clon, slat, clat, matrix)
        lat = lat0 + atan2_small(zr * h0 - z0 * h, h * h0 + zr * z0)
        lon = 0.0 if h == 0.0 else lon0 + atan2_small(x0 * yr - y0 * xr, x0 * xr + y0 * yr)
        out[c + 1, 0] = _wrap_lon(lon * rad2deg, wrap_360)
        out[c + 1, 1] = lat * rad2deg


@numba.njit(cache=True, nogil=True, inline="always")
def _corner_series(lon_in, lat_in, state, q, matrix):  # pragma: no cover - compiled
    """A corner as :func:`_pixel_sky` maps it when every angle is small, without branches (so that
    a loop of them is vectorised): lon, lat (rad) and whether every angle is indeed small
    (else :func:`_pixel_sky`'s values differ and it must be used). ``state[:, q]``: the centre's
    :func:`_centre`."""
    d = lon_in - state[0, q]
    ok = abs(d) <= SMALL_ANGLE
    sd, cd = sin_cos_series(d)
    slon, clon = sin_cos_sum(state[2, q], state[3, q], sd, cd)
    d = lat_in - state[1, q]
    ok = ok & (abs(d) <= SMALL_ANGLE)
    sd, cd = sin_cos_series(d)
    slat, clat = sin_cos_sum(state[4, q], state[5, q], sd, cd)
    xr, yr, zr, h = _rotated(slon, clon, slat, clat, matrix)
    y = zr * state[9, q] - state[8, q] * h
    x = h * state[9, q] + zr * state[8, q]
    ok = ok & (x > 0.0) & (abs(y) < SMALL_ANGLE * x)
    lat = state[10, q] + atan_series(y / x)
    y = state[6, q] * yr - state[7, q] * xr
    x = state[6, q] * xr + state[7, q] * yr
    ok = ok & (x > 0.0) & (abs(y) < SMALL_ANGLE * x) & (h != 0.0)
    lon = state[11, q] + atan_series(y / x)
    return lon, lat, ok


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _corner_block(n, angles, state, matrix, lon, lat, ok):  # pragma: no cover - compiled
    """:func:`_corner_series` of the four corners of ``n`` pixels (``angles[c], angles[4 + c]``:
    corner c's input lon, lat; ``state``: their centres'), vectorised. IEEE division: a zero
    divisor gives inf or NaN, not an exception (its corner is then not ``ok``)."""
    for c in range(4):
        for q in range(n):
            lon[c, q], lat[c, q], ok[c, q] = _corner_series(angles[c, q], angles[4 + c, q], state, q, matrix)


@numba.njit(cache=True, nogil=True)
def _footprint_kernel(alpha, alpha_lo, alpha_hi, beta, half, index, coefficients, affine, matrix,
                      wrap_360, ra, dec, corner_ra, corner_dec):  # pragma: no cover - compiled
    """Centre and corners of every pixel (:func:`_pixel_sky`)."""
    degree = coefficients.shape[2] - 1
    pb = np.empty(degree + 1)
    inner = np.empty((3, 2, degree + 1))
    out = np.empty((5, 2))
    last_row = -1
    last_beta = np.nan
    for k in range(alpha.size):
        row = index[k]
        if row < 0:
            ra[k] = np.nan
            dec[k] = np.nan
            for c in range(4):
                corner_ra[c, k] = np.nan
                corner_dec[c, k] = np.nan
            continue
        if row != last_row or not beta[k] == last_beta:
            _beta_sums(coefficients, row, beta[k], half, pb, inner)
            last_row = row
            last_beta = beta[k]
        _pixel_sky(alpha[k], alpha_lo[k], alpha_hi[k], inner, affine, matrix, wrap_360, 5, out)
        ra[k] = out[0, 0]
        dec[k] = out[0, 1]
        for c in range(4):
            corner_ra[c, k] = out[c + 1, 0]
            corner_dec[c, k] = out[c + 1, 1]


#: Pixels whose corners :func:`_footprint_rows_kernel` maps together (vectorised).
BLOCK = 256


@numba.njit(cache=True, nogil=True)
def _footprint_rows_kernel(alpha, alpha_lo, alpha_hi, beta, half, index, coefficients, affine, matrix,
                           wrap_360, target, rows, sky_at, copy, copy_at, ra, dec,
                           finite):  # pragma: no cover - compiled
    """Centres of every pixel into ``ra``, ``dec``; for each pixel ``k`` with ``target[k] >= 0``, its
    centre, corners and ``copy`` values written into row ``target[k]`` of ``rows`` (see
    :meth:`CompiledPointing.footprint_rows`), and ``finite[target[k]]``: whether its centre RA and
    its four corner RAs are finite.

    The numbers of :func:`_pixel_sky`, bit for bit, by blocks of :data:`BLOCK` pixels: centres and
    the corners' input angles pixel by pixel, then the corners of the block together
    (:func:`_corner_block`: the same operations, vectorised: 4x faster), and any pixel with a
    corner that is not small (none in practice) again by :func:`_pixel_sky`.
    """
    degree = coefficients.shape[2] - 1
    pb = np.empty(degree + 1)
    inner = np.empty((3, 2, degree + 1))
    inner_other = np.empty((3, 2, degree + 1))
    out = np.empty((5, 2))
    state = np.empty((12, BLOCK))
    angles = np.empty((8, BLOCK))
    lon = np.empty((4, BLOCK))
    lat = np.empty((4, BLOCK))
    ok = np.empty((4, BLOCK), dtype=np.bool_)
    pixel = np.empty(BLOCK, dtype=np.int64)
    rad2deg = 180.0 / np.pi
    last_row = -1
    last_beta = np.nan
    for k0 in range(0, alpha.size, BLOCK):
        n = 0
        for k in range(k0, min(alpha.size, k0 + BLOCK)):
            row = index[k]
            t = target[k]
            if row < 0:
                ra[k] = np.nan
                dec[k] = np.nan
                if t >= 0:
                    out[:, :] = np.nan
                    _write_row(rows, t, k, out, sky_at, copy, copy_at, finite)
                continue
            if row != last_row or not beta[k] == last_beta:
                _beta_sums(coefficients, row, beta[k], half, pb, inner)
                last_row = row
                last_beta = beta[k]
            centre = _centre(alpha[k], inner, affine, matrix)
            ra[k] = _wrap_lon(centre[11] * rad2deg, wrap_360)
            dec[k] = centre[10] * rad2deg
            if t < 0:
                continue
            for i in range(12):
                state[i, n] = centre[i]
            for c in range(4):
                angles[c, n], angles[4 + c, n] = _input_angles(
                    inner, CORNER_EDGES[c][1], alpha_hi[k] if CORNER_EDGES[c][0] else alpha_lo[k], affine)
            pixel[n] = k
            n += 1
        _corner_block(n, angles, state, matrix, lon, lat, ok)
        for q in range(n):
            k = pixel[q]
            if ok[0, q] and ok[1, q] and ok[2, q] and ok[3, q]:
                out[0, 0] = ra[k]
                out[0, 1] = dec[k]
                for c in range(4):
                    out[c + 1, 0] = _wrap_lon(lon[c, q] * rad2deg, wrap_360)
                    out[c + 1, 1] = lat[c, q] * rad2deg
            else:
                _beta_sums(coefficients, index[k], beta[k], half, pb, inner_other)
                _pixel_sky(alpha[k], alpha_lo[k], alpha_hi[k], inner_other, affine, matrix, wrap_360, 5, out)
            _write_row(rows, target[k], k, out, sky_at, copy, copy_at, finite)


@numba.njit(cache=True, nogil=True, inline="always")
def _write_row(rows, t, k, out, sky_at, copy, copy_at, finite):  # pragma: no cover - compiled
    """Row ``t`` of a table from pixel ``k``'s sky points ``out`` (see :func:`_footprint_rows_kernel`)."""
    rows[t, sky_at[0]] = out[0, 0]
    rows[t, sky_at[1]] = out[0, 1]
    good = np.isfinite(out[0, 0])
    for c in range(4):
        rows[t, sky_at[2] + c] = out[c + 1, 0]
        rows[t, sky_at[3] + c] = out[c + 1, 1]
        good = good and np.isfinite(out[c + 1, 0])
    for j in range(len(copy)):
        rows[t, copy_at[j]] = copy[j][k]
    finite[t] = good
