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
* :mod:`mrsdask.extract.kernels` — the per-plane arithmetic (one numba kernel per slab), no Dask;
  :mod:`mrsdask.extract.plan` — the apertures, columns and attributes of a spectrum, numpy only.
* :mod:`mrsdask.extract.stored` — a store's spectra computed by a plain Dask graph that reads
  the cubes' chunks itself, without xarray (what ``mrsdask extract`` runs in process).
* :mod:`mrsdask.extract.reffiles` — builds the shipped APCORR (Gaussian PSF) and approximate
  MRSPTCORR files; the CRDS files replace them for flight data (``--apcorr``, ``--mrsptcorr``).
* :func:`mrsdask.io.x1d.write_x1d` writes a spectrum as an official ``x1d`` file, recording
  the aperture correction, the centre, the proper motion and the spectral leak;
  :func:`extract_cubes` does all of it for the cubes of a store (``mrsdask extract``).
"""

from mrsdask.lazy import lazy_exports

# Public names by the module defining them; imported on first use, so that the light modules
# (mrsdask.extract.request, for the command-line flags) do not import Dask arrays and the
# numba kernels.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "apcorr": ("read_apcorr",),
    "leak": ("read_mrsptcorr",),
    "parameters": ("ExtractionParameters", "default_parameters", "read_extract1d", "write_extract1d"),
    "request": ("ExtractRequest",),
    "run": ("extract_cubes", "spectra"),
    "spectrum": ("extract_spectrum", "source_position"),
})
