"""Background subtraction on chunked detector data.

* **pixel-by-pixel** (spec2 ``bkg_subtract``): the 3σ-clipped mean of the background
  exposures of the same detector setting, per pixel, subtracted from each science exposure
  (:mod:`mrsdask.background.pixel`);
* **master background** (spec3 ``master_background``): a 1-D background spectrum — from the
  background exposures' x1d files, from cubes of the background exposures, or supplied by the
  user — projected through every pixel's λ and subtracted (:mod:`mrsdask.background.master`).

Layers: :mod:`~mrsdask.background.kernels` (pure numpy functions of arrays), thin Dask/xarray
layers (:mod:`~mrsdask.background.pixel`, :mod:`~mrsdask.background.master`), spectra and their
files (:mod:`~mrsdask.background.spectrum`), and the entry point
:func:`~mrsdask.background.run.run_background` (inputs → subtracted detector store). Progress
and decisions are logged on the ``mrsdask.background`` logger.
"""

from mrsdask.background.run import (
    METHODS,
    BackgroundSummary,
    open_inputs,
    run_background,
    subtract_background,
    write_background_store,
)
from mrsdask.background.spectrum import BackgroundSpectrum, combine, read_spectrum, write_spectrum

__all__ = [
    "METHODS",
    "BackgroundSpectrum",
    "BackgroundSummary",
    "combine",
    "open_inputs",
    "read_spectrum",
    "run_background",
    "subtract_background",
    "write_background_store",
    "write_spectrum",
]
