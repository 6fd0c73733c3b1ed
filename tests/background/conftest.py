"""Fixtures of the background tests (slow tests run with ``--runslow``, see tests/conftest.py).

Their simulated observation, ``sim_1a3a`` (about 25 s for its four exposures: two settings, one
science and one background exposure each), is in tests/conftest.py: it is built once per run,
side by side with ``sim_1a`` when the tests run on two workers.
"""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "1")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
