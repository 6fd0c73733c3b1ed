"""1-D extraction of MRS cubes (the official IFU ``extract_1d``), chunked along wavelength.

* :func:`extract_spectrum` — lazy spectrum of a cube: circular aperture and sigma-clipped
  annulus background for point sources, the whole field for extended ones; optional 1-D
  residual-fringe correction (``rf_*`` columns).
* :class:`ExtractionParameters`, :func:`default_parameters`, :func:`read_extract1d`,
  :func:`write_extract1d` — apertures per wavelength (the official EXTRACT1D reference format).
* :mod:`mrsdask.extract.kernels` — the per-plane arithmetic (one numba kernel per slab), no Dask.
* :func:`mrsdask.io.x1d.write_x1d` writes a spectrum as an official ``x1d`` file;
  :func:`extract_cubes` does all of it for the cubes of a store (``mrsdask extract``).

Aperture corrections (the official APCORR reference) are not implemented: spectra say so
(``aperture_correction = "not applied"``), and the flux of a point source is the flux inside
the aperture.
"""

from mrsdask.extract.parameters import (
    ExtractionParameters,
    default_parameters,
    read_extract1d,
    write_extract1d,
)
from mrsdask.extract.run import extract_cubes
from mrsdask.extract.spectrum import extract_spectrum, source_position

__all__ = [
    "ExtractionParameters",
    "default_parameters",
    "extract_cubes",
    "extract_spectrum",
    "read_extract1d",
    "source_position",
    "write_extract1d",
]
