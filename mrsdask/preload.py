"""Dask worker preload: load what mrsdask tasks need while the worker starts.

A fresh worker otherwise pays ~1 s inside its first task importing the task modules (dask,
xarray, zarr, astropy.io.fits, numba and the kernels). Done at start-up instead, it overlaps
with the client reading its inputs, and a setting's first task no longer waits for it.

The gwcs of cal files written by the official ``assign_wcs`` is read as a plain ASDF tree
(:mod:`mrsdask.io.asdf_tree`), so the tasks need neither jwst/gwcs nor the ASDF extension
registry; they load those only for a gwcs of another layout, and the preload leaves them out.

Local clusters started by mrsdask use it (:func:`mrsdask.cluster.dask_client`). On other
clusters name it in the Dask configuration (``distributed.worker.preload: [mrsdask.preload]``)
or on the command line (``dask worker --preload mrsdask.preload``); ``deploy/`` does.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def warm_up() -> float:
    """Import the task modules; returns the seconds taken."""
    start = time.perf_counter()
    import mrsdask.cube.builder  # noqa: F401
    import mrsdask.cube.pixels  # noqa: F401
    import mrsdask.io.mrs_wcs  # noqa: F401

    return time.perf_counter() - start


def dask_setup(worker) -> None:
    """Called by Dask when the worker starts (the preload protocol); also installs
    :func:`mrsdask.release.install_auto_trim` (once), for clusters that name only this preload."""
    from mrsdask.release import install_auto_trim

    install_auto_trim(worker)
    log.info("mrsdask preload: worker ready for mrsdask tasks in %.1f s", warm_up())
