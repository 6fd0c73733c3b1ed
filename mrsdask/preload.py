"""Dask worker preload: load what mrsdask tasks need while the worker starts.

A fresh worker otherwise pays ~2 s inside its first task: importing jwst's data models, gwcs
and the kernels (~1.4 s) and the ASDF extension registry's first use (~0.5 s). Done at start-up
instead, it overlaps with the client reading its inputs, and a setting's first task no longer
waits for it.

Local clusters started by mrsdask use it (:func:`mrsdask.cluster.dask_client`). On other
clusters name it in the Dask configuration (``distributed.worker.preload: [mrsdask.preload]``)
or on the command line (``dask worker --preload mrsdask.preload``); ``deploy/`` does.
"""

from __future__ import annotations

import io
import logging
import time
import warnings

log = logging.getLogger(__name__)


def warm_up() -> float:
    """Import the task modules and exercise the ASDF converters once; returns the seconds taken."""
    start = time.perf_counter()
    import asdf
    import gwcs  # noqa: F401
    import stdatamodels.jwst.datamodels  # noqa: F401  (registers the jwst ASDF extensions)
    from astropy.modeling import models

    import mrsdask.cube.build  # noqa: F401
    import mrsdask.io.mrs_wcs  # noqa: F401

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asdf.AsdfFile({"m": (models.Shift(1.0) & models.Scale(2.0)) | models.Polynomial2D(2)}).write_to(buffer)
        buffer.seek(0)
        with asdf.open(buffer) as af:
            af.tree["m"]
    return time.perf_counter() - start


def dask_setup(worker) -> None:
    """Called by Dask when the worker starts (the preload protocol)."""
    log.info("mrsdask preload: worker ready for mrsdask tasks in %.1f s", warm_up())
