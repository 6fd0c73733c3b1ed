"""mrsdask: chunked, distributed processing of JWST MIRI MRS integral-field data.

Detector exposures and cubes are xarray datasets backed by zarr; the heavy steps
(cube building, background, fringe) run as Dask tasks over wavelength slabs or
detector chunks, in bounded memory. Importing the package registers the ``.mrs`` cube
accessor (:mod:`mrsdask.query`) as soon as xarray is imported (at once if it is already): a
command that needs no xarray (``mrsdask extract`` of a store) does not import it (~0.5 s).
When numba is imported, its cache of mrsdask's kernels is pointed at a folder named by their
sources (:mod:`mrsdask.kernel_cache`), so that a kernel never runs a stale cached callee.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrsdask")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from mrsdask.lazy import when_imported  # noqa: E402


def _register_accessor(xarray) -> None:
    """Register the ``.mrs`` accessor (importing :mod:`mrsdask.query` does)."""
    import mrsdask.query  # noqa: F401


when_imported("xarray", _register_accessor)


def _configure_kernel_cache(numba) -> None:
    """numba's cache of mrsdask's kernels, named by their sources (:mod:`mrsdask.kernel_cache`)."""
    from mrsdask.kernel_cache import configure

    configure()


when_imported("numba", _configure_kernel_cache)

__all__ = ["__version__"]
