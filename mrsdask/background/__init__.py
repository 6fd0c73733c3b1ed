"""Background subtraction on chunked detector data.

* **pixel-by-pixel** (spec2 ``bkg_subtract``): the 3σ-clipped mean of the background
  exposures of the same detector setting, per pixel, subtracted from each science exposure
  (:mod:`mrsdask.background.pixel`);
* **master background** (spec3 ``master_background``): a 1-D background spectrum — from the
  background exposures' x1d files, from cubes of the background exposures, or supplied by the
  user — projected through every pixel's λ and subtracted (:mod:`mrsdask.background.master`).

Layers: :mod:`~mrsdask.background.kernels` (pure numpy functions of arrays), thin Dask/xarray
layers (:mod:`~mrsdask.background.pixel`, :mod:`~mrsdask.background.master`), spectra and their
files (:mod:`~mrsdask.background.spectrum`), and the entry points :func:`subtract` (inputs or a
Dataset → a lazy subtracted Dataset, or a detector store written and opened; its options are
:class:`~mrsdask.background.request.BackgroundRequest`) and
:func:`~mrsdask.background.run.run_background` (→ the store and a summary). Progress and
decisions are logged on the ``mrsdask.background`` logger.
"""

from mrsdask.lazy import lazy_exports

# Public names by the module defining them; imported on first use, so that importing the light
# modules (e.g. mrsdask.background.request, for the command-line flags) does not import the Dask
# layers and the cube builder.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "api": ("subtract",),
    "request": ("BackgroundRequest", "METHODS"),
    "run": ("BackgroundSummary", "open_inputs", "run_background", "subtract_background", "write_background_store"),
    "spectrum": ("BackgroundSpectrum", "combine", "read_spectrum", "write_spectrum"),
})
