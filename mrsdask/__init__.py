"""mrsdask: chunked, distributed processing of JWST MIRI MRS integral-field data.

Detector exposures and cubes are xarray datasets backed by zarr; the heavy steps
(cube building, background, fringe) run as Dask tasks over wavelength slabs or
detector chunks, in bounded memory. Importing the package registers the ``.mrs`` cube
accessor (:mod:`mrsdask.query`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrsdask")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from mrsdask import query as _query  # noqa: E402,F401  registers the xarray ``.mrs`` accessor

__all__ = ["__version__"]
