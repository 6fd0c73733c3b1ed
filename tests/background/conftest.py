"""Fixtures of the background tests (slow tests run with ``--runslow``, see tests/conftest.py).

The simulated observation is session-scoped: about 25 s for its four exposures (two settings,
one science and one background exposure each), built once per run (``build_once``).
"""

from __future__ import annotations

import os
import warnings

import pytest
from bkg_helpers import SIM_CONFIG

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def sim_1a3a(tmp_path_factory):
    """Simulated bands 1A and 3A: per setting one science and one background exposure."""
    from mrsdask.instrument.reference import disable_crds_context_lookup
    from mrsdask.sim import simulate

    from tests.conftest import build_once

    disable_crds_context_lookup()  # in every worker, as the tests that use the files expect

    def build(folder):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return simulate(dict(SIM_CONFIG), folder)

    return build_once(tmp_path_factory, "sim_1a3a", build)
