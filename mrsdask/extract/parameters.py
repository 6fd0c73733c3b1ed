"""Extraction apertures of MRS cubes: the official EXTRACT1D (IFU) reference, or documented defaults.

The official step reads, per wavelength, the aperture radius and the background annulus (in
arcsec) from an ``Extract1dIFUModel`` reference file, with the aperture method and subpixel
count. Without one, mrsdask uses an aperture of twice the PSF FWHM (the default the pipeline's
documentation describes) with FWHM(λ) = 0.033 λ/µm + 0.106 arcsec, the MRS PSF fit of
Law et al. (2023, AJ 166, 45), and an annulus from 2 to 2.5 aperture radii, as in the
generator of the pipeline's MRS reference files (``miri3d``). Those are documented defaults,
not the values of the current CRDS file: pass the CRDS file (``--extract1d``) for those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrsdask.errors import InputError, ParameterError

#: MRS PSF FWHM (arcsec) = FWHM_SLOPE · λ[µm] + FWHM_OFFSET (Law et al. 2023).
FWHM_SLOPE, FWHM_OFFSET = 0.033, 0.106
#: Default aperture radius in FWHM, and the annulus in aperture radii.
RADIUS_FWHM, INNER_RADII, OUTER_RADII = 2.0, 2.0, 2.5
METHODS = ("exact", "subpixel", "center")


@dataclass(frozen=True)
class ExtractionParameters:
    """Aperture and background annulus as functions of wavelength, and how apertures are summed.

    Attributes
    ----------
    wavelength, radius, inner_bkg, outer_bkg : numpy.ndarray
        Wavelengths (µm) and radii (arcsec), interpolated (and linearly extrapolated) to
        each cube plane.
    subtract_background : bool
        Subtract the sigma-clipped annulus background (point sources).
    method : str
        ``exact``, ``subpixel`` or ``center`` (photutils' aperture methods).
    subpixels : int
        Subpixels per axis for ``subpixel``.
    bkg_sigma_clip : float
        Clipping threshold (σ) of the background statistics.
    source : str
        Where the values come from (a file name or ``"mrsdask defaults"``).
    """

    wavelength: np.ndarray
    radius: np.ndarray
    inner_bkg: np.ndarray
    outer_bkg: np.ndarray
    subtract_background: bool = True
    method: str = "subpixel"
    subpixels: int = 10
    bkg_sigma_clip: float = 3.0
    source: str = "mrsdask defaults"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(f"aperture method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.subpixels < 1:
            raise ParameterError(f"subpixels must be at least 1, not {self.subpixels}")
        sizes = {len(np.ravel(a)) for a in (self.wavelength, self.radius, self.inner_bkg, self.outer_bkg)}
        if len(sizes) != 1 or sizes.pop() < 2:
            raise ParameterError(f"{self.source}: extraction parameters need wavelength, radius, inner_bkg and "
                                 "outer_bkg of one length (at least 2)")
        values = np.concatenate([np.ravel(a) for a in (self.wavelength, self.radius, self.inner_bkg, self.outer_bkg)])
        if not np.all(np.isfinite(values)) or np.any(np.ravel(self.radius) <= 0):
            raise ParameterError(f"{self.source}: extraction wavelengths and radii must be finite and the "
                                 "radii positive")
        if len(np.unique(np.ravel(self.wavelength))) != len(np.ravel(self.wavelength)):
            raise ParameterError(f"{self.source}: extraction wavelengths must be distinct")

    def at(self, wavelength: np.ndarray, rscale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Radius, inner and outer annulus radius (arcsec) at each wavelength.

        ``rscale`` (0.5-3) scales the aperture radius by ``rscale / 2`` as the official
        ``ifu_rscale`` does; the annulus is not scaled.
        """
        wave = np.asarray(self.wavelength, dtype=np.float64).ravel()
        order = np.argsort(wave)

        def interp(values):
            v = np.asarray(values, dtype=np.float64).ravel()[order]
            return _interp_extrapolate(np.asarray(wavelength, dtype=np.float64), wave[order], v)

        radius = np.asarray(self.radius)
        if rscale is not None:
            if not 0.5 <= rscale <= 3.0:
                raise ParameterError(f"rscale {rscale}: allowed 0.5-3 (radius × rscale/2)")
            # before the interpolation and in the file's precision (float32 for a reference file), as the
            # official step: the same radii to the last bit
            radius = radius * rscale / 2.0
        return interp(radius), interp(self.inner_bkg), interp(self.outer_bkg)


def _interp_extrapolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Linear interpolation, linear extrapolation beyond the ends (scipy's ``fill_value="extrapolate"``)."""
    out = np.interp(x, xp, fp)
    lo, hi = x < xp[0], x > xp[-1]
    out[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    out[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return out


def default_parameters() -> ExtractionParameters:
    """The documented defaults over 4.5-28.5 µm (see the module docstring)."""
    wave = np.linspace(4.5, 28.5, 25)
    radius = RADIUS_FWHM * (FWHM_SLOPE * wave + FWHM_OFFSET)
    return ExtractionParameters(wave, radius, INNER_RADII * radius, OUTER_RADII * radius)


#: The arrays of an IFU EXTRACT1D file that the extraction uses, in ``data``.
_EXTRACT1D_VECTORS = ("wavelength", "radius", "inner_bkg", "outer_bkg")


def read_extract1d(path: str, bkg_sigma_clip: float = 3.0) -> ExtractionParameters:
    """Read an official EXTRACT1D reference file for IFU cubes (``Extract1dIFUModel``, ASDF).

    Raises
    ------
    InputError
        If the file cannot be read as an ``Extract1dIFUModel`` with the four vectors.
    """
    fast = _read_extract1d_tree(path, bkg_sigma_clip)
    if fast is not None:
        return fast
    from stdatamodels.jwst.datamodels import Extract1dIFUModel

    try:
        with Extract1dIFUModel(path) as ref:
            data = ref.data
            # as stored (float32): the official step scales the radii in that precision (ifu_rscale)
            values = [np.array(getattr(data, name)).ravel() for name in _EXTRACT1D_VECTORS]
            meta = ref.meta
            subtract, method, subpixels = meta.subtract_background, meta.method, meta.subpixels
    except Exception as exc:  # any unreadable or foreign file
        raise InputError(f"{path}: not an IFU EXTRACT1D reference file (Extract1dIFUModel) ({exc})") from exc
    return _file_parameters(path, values, subtract, method, subpixels, bkg_sigma_clip)


def _file_parameters(path: str, values: list[np.ndarray], subtract, method, subpixels,
                     bkg_sigma_clip: float) -> ExtractionParameters:
    """The parameters of an EXTRACT1D file from its four vectors and its metadata (either
    reader's), with the official step's defaults where the file leaves one out."""
    return ExtractionParameters(*values, subtract_background=bool(subtract if subtract is not None else True),
                                method=str(method or "exact"), subpixels=int(subpixels or 10),
                                bkg_sigma_clip=bkg_sigma_clip, source=str(path).rsplit("/", 1)[-1])


def _read_extract1d_tree(path: str, bkg_sigma_clip: float) -> ExtractionParameters | None:
    """:func:`read_extract1d` through the ASDF tree alone (libyaml and numpy), or None.

    Opening the file as an ``Extract1dIFUModel`` costs ~1.7 CPU-s (the datamodel's schemas and
    asdf's extensions) for a few kB of numbers. A file whose tree holds the four vectors as
    plain 1-D arrays of one length (inline, in binary blocks, or zlib/bzp2-compressed ones), and
    ``meta.reftype`` EXTRACT1D, is read here; anything else (another layout or compression, an
    unreadable file) returns None, and the datamodel reads it, with its own validation and
    error message.
    """
    from mrsdask.io.asdf_tree import read_reference_tree

    tree = read_reference_tree(path, "EXTRACT1D")
    if tree is None:
        return None
    try:
        data, meta = tree["data"], tree["meta"]
        values = [np.asarray(data[name]) for name in _EXTRACT1D_VECTORS]
    except (KeyError, TypeError, AttributeError):
        return None
    if not all(v.ndim == 1 and v.dtype.kind == "f" and v.size == values[0].size > 1 for v in values):
        return None
    return _file_parameters(path, values, meta.get("subtract_background"), meta.get("method"),
                            meta.get("subpixels"), bkg_sigma_clip)


def write_extract1d(params: ExtractionParameters, path: str) -> str:
    """Write parameters as an official EXTRACT1D IFU reference file (for the official step)."""
    from stdatamodels.jwst.datamodels import Extract1dIFUModel

    model = Extract1dIFUModel()
    model.meta.instrument.name = "MIRI"
    model.meta.exposure.type = "MIR_MRS"
    model.meta.reftype = "EXTRACT1D"
    model.meta.subtract_background = bool(params.subtract_background)
    model.meta.method = params.method
    model.meta.subpixels = int(params.subpixels)
    model.meta.region_type = "target"
    for name in _EXTRACT1D_VECTORS:
        setattr(model.data, name, np.asarray(getattr(params, name), dtype=np.float32))
    model.data.axis_ratio = np.ones(len(params.wavelength), dtype=np.float32)
    model.data.axis_pa = np.zeros(len(params.wavelength), dtype=np.float32)
    # Inline arrays: the official step reads them after it has closed the file (as the CRDS files allow).
    model.save(path, all_array_storage="inline")
    model.close()
    return path
