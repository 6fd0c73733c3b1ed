"""1-D extraction of MRS cubes (the official IFU ``extract_1d`` and ``spectral_leak``), chunked along wavelength.

* :func:`spectra` — lazy spectra of a cube or of a store's cubes, with the options of
  :class:`ExtractRequest` (the official ``Extract1dStep`` names): circular aperture and
  sigma-clipped annulus background for point sources, the whole field for extended ones;
  aperture correction (:mod:`mrsdask.extract.apcorr`, on by default); auto-centring
  (``ifu_autocen``) and the target's proper motion (:mod:`mrsdask.extract.position`); the 1-D
  residual-fringe correction (``ifu_rfcorr``, ``rf_*`` columns); the spectral leak of 1B in 3A
  (:mod:`mrsdask.extract.leak`).
* :class:`ExtractionParameters`, :func:`default_parameters`, :func:`read_extract1d`,
  :func:`write_extract1d` — apertures per wavelength (the official EXTRACT1D reference format).
* :mod:`mrsdask.extract.kernels` — the per-plane arithmetic (one numba kernel per slab), no Dask.
* :mod:`mrsdask.extract.reffiles` — builds the shipped APCORR (Gaussian PSF) and approximate
  MRSPTCORR files; the CRDS files replace them for flight data (``--apcorr``, ``--mrsptcorr``).
* :func:`mrsdask.io.x1d.write_x1d` writes a spectrum as an official ``x1d`` file, recording
  the aperture correction, the centre, the proper motion and the spectral leak;
  :func:`extract_cubes` does all of it for the cubes of a store (``mrsdask extract``).
"""

from mrsdask.extract.apcorr import read_apcorr
from mrsdask.extract.leak import read_mrsptcorr
from mrsdask.extract.parameters import (
    ExtractionParameters,
    default_parameters,
    read_extract1d,
    write_extract1d,
)
from mrsdask.extract.request import ExtractRequest
from mrsdask.extract.run import extract_cubes, spectra
from mrsdask.extract.spectrum import extract_spectrum, source_position

__all__ = [
    "ExtractRequest",
    "ExtractionParameters",
    "default_parameters",
    "extract_cubes",
    "extract_spectrum",
    "read_apcorr",
    "read_extract1d",
    "read_mrsptcorr",
    "source_position",
    "spectra",
    "write_extract1d",
]
