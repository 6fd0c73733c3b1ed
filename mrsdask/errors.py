"""Exceptions raised by mrsdask for bad input and impossible requests.

Every error names the offending file or parameter and says what to do, so that the
CLI can print it as is and exit non-zero.
"""


class MrsdaskError(Exception):
    """Base class of all errors that mrsdask raises on purpose."""


class InputError(MrsdaskError):
    """An input file, store or association is missing, unreadable or not usable."""


class ParameterError(MrsdaskError):
    """A parameter value is invalid or inconsistent with the data."""


class IncompleteStoreError(MrsdaskError):
    """A zarr store exists but was not finished (an interrupted run)."""


class OutputError(MrsdaskError):
    """An output cannot be written: its path is wrong or taken, or the OS refused to write."""


class OutsideCubeError(MrsdaskError, ValueError):
    """A query asks for a wavelength, position or aperture outside a cube's data."""


class DamagedStoreError(MrsdaskError):
    """A finished zarr store lost data since it was written (chunks missing on disk)."""
